//! The report: numbers computed from a run, printed as Markdown.

use std::fmt::Write as _;
use std::time::Duration;

use seawall::circuit_breaker::State;

use crate::model::Nanos;
use crate::scenario::Loaded;
use crate::sim::{Outcome, RunResult};

/// One timeline bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    /// Calls started in the bucket.
    pub calls: u64,
    /// Of them, successes.
    pub ok: u64,
    /// Requests that reached the dependency in the bucket.
    pub requests: u64,
    /// The median latency of the bucket's calls.
    pub p50: Nanos,
    /// The 99th percentile.
    pub p99: Nanos,
}

/// The numbers of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The scenario's title.
    pub title: String,
    /// The seed.
    pub seed: u64,
    /// Caller calls made.
    pub calls: u64,
    /// Of them, successes.
    pub ok: u64,
    /// Calls by outcome label, in a fixed order.
    pub outcomes: Vec<(String, u64)>,
    /// Median, P99 and maximum latency of every call.
    pub latency: [Nanos; 3],
    /// P99 latency of the successful calls.
    pub ok_p99: Nanos,
    /// Requests that reached the dependency.
    pub requests: u64,
    /// Requests per caller call.
    pub amplification: f64,
    /// Retries started.
    pub retries: u64,
    /// Hedges started.
    pub hedges: u64,
    /// Calls abandoned after the dependency started the work.
    pub uncertain: u64,
    /// Calls abandoned while queued (the dependency still does them).
    pub abandoned_queued: u64,
    /// Calls still running when the run ended.
    pub unfinished: u64,
    /// Callers who stopped waiting while their call went on.
    pub left: u64,
    /// The first outage's phase, if any: (name, start, end).
    pub outage: Option<(String, Nanos, Nanos)>,
    /// From the outage's start to the breaker's first opening after it.
    pub time_to_open: Option<Nanos>,
    /// From the outage's end to the breaker's first closing after it.
    pub time_to_recover: Option<Nanos>,
    /// Whether the policy has a circuit breaker.
    pub has_breaker: bool,
    /// Breaker transitions.
    pub transitions: Vec<(Nanos, State, State)>,
    /// Slow-call thresholds the tuner set: when, what.
    pub tunings: Vec<(Nanos, Duration)>,
    /// Per-decorator lines: (decorator, what, count).
    pub decorators: Vec<(String, String, u64)>,
    /// P95 of the dependency's successful answers (for the 1.3×P95 rule).
    pub dependency_p95: Option<Nanos>,
    /// The timeline's bucket width.
    pub bucket: Nanos,
    /// The timeline.
    pub buckets: Vec<Bucket>,
    /// The run's load duration.
    pub duration: Nanos,
    /// Phase boundaries: (name, start, end).
    pub phases: Vec<(String, Nanos, Nanos)>,
}

/// The `q` quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[Nanos], q: f64) -> Nanos {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn outcome_label(outcome: Outcome, kinds: &[String]) -> String {
    match outcome {
        Outcome::Ok => "success".to_owned(),
        Outcome::DepError(kind) => format!(
            "dependency error `{}`",
            kinds.get(usize::from(kind)).map_or("?", String::as_str)
        ),
        Outcome::Refused => "refused by the dependency".to_owned(),
        Outcome::Timeout => "timed out (seawall timeout)".to_owned(),
        Outcome::CircuitOpen => "rejected: circuit open".to_owned(),
        Outcome::BulkheadFull => "rejected: bulkhead full".to_owned(),
        Outcome::LimitExceeded => "rejected: adaptive limit".to_owned(),
        Outcome::OtherRejection => "rejected: other".to_owned(),
        Outcome::CallerGaveUp => "caller gave up".to_owned(),
    }
}

impl Summary {
    /// Computes the numbers of `run`.
    pub fn new(loaded: &Loaded, run: &RunResult) -> Self {
        let scenario = &loaded.scenario;
        let bucket = scenario.report.bucket.map_or_else(
            || (run.duration / 120).max(1_000_000).div_ceil(1_000_000) * 1_000_000,
            |d| crate::model::nanos(d.0).max(1),
        );
        let mut latencies: Vec<Nanos> = run.calls.iter().map(|c| c.latency).collect();
        latencies.sort_unstable();
        let mut ok_latencies: Vec<Nanos> = run
            .calls
            .iter()
            .filter(|c| c.outcome == Outcome::Ok)
            .map(|c| c.latency)
            .collect();
        ok_latencies.sort_unstable();
        let mut outcomes: Vec<(String, u64)> = Vec::new();
        for call in &run.calls {
            let label = outcome_label(call.outcome, &run.error_kinds);
            match outcomes.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => outcomes.push((label, 1)),
            }
        }
        outcomes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let calls = run.calls.len() as u64;
        let requests = run.dependency.requests;
        let outage = run
            .phases
            .iter()
            .zip(&loaded.phases)
            .find(|(_, phase)| phase.outage.is_some())
            .map(|(model, _)| (model.name.clone(), model.start, model.end));
        let (time_to_open, time_to_recover) = open_and_recover(run, outage.as_ref());
        let mut success = run.dependency.success_latencies.clone();
        success.sort_unstable();
        Self {
            title: scenario
                .name
                .clone()
                .unwrap_or_else(|| "scenario".to_owned()),
            seed: scenario.seed,
            calls,
            ok: ok_latencies.len() as u64,
            outcomes,
            latency: [
                quantile(&latencies, 0.5),
                quantile(&latencies, 0.99),
                latencies.last().copied().unwrap_or(0),
            ],
            ok_p99: quantile(&ok_latencies, 0.99),
            requests,
            amplification: ratio(requests, calls),
            retries: run.observed.retries,
            hedges: run.observed.hedges,
            uncertain: run.dependency.uncertain,
            abandoned_queued: run.dependency.abandoned_queued,
            unfinished: run.unfinished,
            left: run.calls.iter().filter(|c| c.left).count() as u64,
            outage,
            time_to_open,
            time_to_recover,
            has_breaker: run.present.breaker,
            transitions: run.observed.transitions.clone(),
            tunings: run.observed.tunings.clone(),
            decorators: decorator_lines(run),
            dependency_p95: (!success.is_empty()).then(|| quantile(&success, 0.95)),
            bucket,
            buckets: buckets(run, bucket),
            duration: run.duration,
            phases: run
                .phases
                .iter()
                .map(|p| (p.name.clone(), p.start, p.end))
                .collect(),
        }
    }

    /// The share of calls that succeeded, in percent.
    pub fn success_rate(&self) -> f64 {
        ratio(self.ok, self.calls) * 100.0
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn open_and_recover(
    run: &RunResult,
    outage: Option<&(String, Nanos, Nanos)>,
) -> (Option<Nanos>, Option<Nanos>) {
    let (start, end) = outage.map_or((0, 0), |(_, s, e)| (*s, *e));
    let opened = run
        .observed
        .transitions
        .iter()
        .find(|(at, _, to)| *at >= start && *to == State::Open)
        .map(|(at, _, _)| at - start);
    let closed = outage.and_then(|_| {
        run.observed
            .transitions
            .iter()
            .find(|(at, _, to)| *at >= end && *to == State::Closed)
            .map(|(at, _, _)| at - end)
    });
    (opened, closed)
}

fn decorator_lines(run: &RunResult) -> Vec<(String, String, u64)> {
    let o = &run.observed;
    let p = &run.present;
    let mut lines = Vec::new();
    let mut add = |present: bool, who: &str, what: &str, n: u64| {
        if present {
            lines.push((who.to_owned(), what.to_owned(), n));
        }
    };
    add(p.retry, "retry", "retries started", o.retries);
    add(
        p.retry,
        "retry",
        "retries refused by the budget",
        o.retry_budget_refusals,
    );
    add(
        p.breaker,
        "circuit breaker",
        "transitions",
        o.transitions.len() as u64,
    );
    add(
        p.breaker,
        "circuit breaker",
        "calls not permitted",
        o.breaker_rejections,
    );
    add(p.hedge, "hedge", "hedges started", o.hedges);
    add(
        p.bulkhead,
        "bulkhead",
        "calls rejected",
        o.bulkhead_rejections,
    );
    add(
        p.adaptive,
        "adaptive limiter",
        "calls rejected",
        o.limiter_rejections,
    );
    add(
        p.adaptive,
        "adaptive limiter",
        "limit changes",
        o.limits.len() as u64,
    );
    add(p.timeout, "timeout", "attempts timed out", o.timeouts);
    add(
        !o.tunings.is_empty(),
        "slow-call tuner",
        "threshold changes",
        o.tunings.len() as u64,
    );
    lines
}

fn buckets(run: &RunResult, width: Nanos) -> Vec<Bucket> {
    let count = usize::try_from(run.duration.div_ceil(width))
        .unwrap_or(0)
        .max(1);
    let mut buckets = vec![Bucket::default(); count];
    let mut latencies: Vec<Vec<Nanos>> = vec![Vec::new(); count];
    let index = |at: Nanos| {
        usize::try_from(at / width)
            .unwrap_or(usize::MAX)
            .min(count - 1)
    };
    for call in &run.calls {
        let i = index(call.at);
        buckets[i].calls += 1;
        if call.outcome == Outcome::Ok {
            buckets[i].ok += 1;
        }
        latencies[i].push(call.latency);
    }
    for &at in &run.dependency.request_times {
        buckets[index(at)].requests += 1;
    }
    for (bucket, mut values) in buckets.iter_mut().zip(latencies) {
        values.sort_unstable();
        bucket.p50 = quantile(&values, 0.5);
        bucket.p99 = quantile(&values, 0.99);
    }
    buckets
}

/// A duration for people: `1.23 s`, `45 ms`, `812 µs`.
#[allow(clippy::cast_precision_loss)]
pub fn human(n: Nanos) -> String {
    let secs = n as f64 / 1e9;
    if n == 0 {
        "0 s".to_owned()
    } else if secs >= 60.0 {
        let d = Duration::from_secs(n / 1_000_000_000);
        humantime::format_duration(d).to_string()
    } else if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if n >= 1_000_000 {
        format!("{:.0} ms", n as f64 / 1e6)
    } else {
        format!("{:.0} µs", n as f64 / 1e3)
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Closed => "CLOSED",
        State::Open => "OPEN",
        State::HalfOpen => "HALF_OPEN",
        State::Disabled => "DISABLED",
        State::ForcedOpen => "FORCED_OPEN",
        State::MetricsOnly => "METRICS_ONLY",
    }
}

/// The report as Markdown.
pub fn markdown(summary: &Summary, loaded: &Loaded) -> String {
    let s = summary;
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", s.title);
    if let Some(description) = &loaded.scenario.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(
        out,
        "Seed {}, {} of load, {} calls.\n",
        s.seed,
        human(s.duration),
        s.calls
    );
    let _ = writeln!(
        out,
        "## Phases\n\n| phase | from | to | dependency |\n|---|---|---|---|"
    );
    for ((name, start, end), phase) in s.phases.iter().zip(&loaded.phases) {
        let latency = phase
            .latency
            .as_ref()
            .unwrap_or(&loaded.scenario.dependency.latency);
        let outage = phase
            .outage
            .as_ref()
            .map_or(String::new(), |o| format!(", outage: {o}"));
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {latency}{outage} |",
            human(*start),
            human(*end)
        );
    }
    caller_section(&mut out, s);
    dependency_section(&mut out, s);
    breaker_section(&mut out, s);
    out
}

fn caller_section(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "\n## Caller side\n");
    let _ = writeln!(out, "| metric | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| success | {:.2} % ({} of {}) |",
        s.success_rate(),
        s.ok,
        s.calls
    );
    let _ = writeln!(
        out,
        "| latency p50 / p99 / max | {} / {} / {} |",
        human(s.latency[0]),
        human(s.latency[1]),
        human(s.latency[2])
    );
    let _ = writeln!(out, "| p99 of successes | {} |", human(s.ok_p99));
    let _ = writeln!(out, "| unfinished at the end | {} |", s.unfinished);
    if s.left > 0 {
        let _ = writeln!(
            out,
            "| callers who stopped waiting (the call went on) | {} |",
            s.left
        );
    }
    let _ = writeln!(out, "\n| outcome | calls |\n|---|---|");
    for (label, n) in &s.outcomes {
        let _ = writeln!(out, "| {label} | {n} |");
    }
}

fn dependency_section(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "\n## Load on the dependency\n");
    let _ = writeln!(out, "| metric | value |\n|---|---|");
    let _ = writeln!(out, "| requests that reached it | {} |", s.requests);
    let _ = writeln!(
        out,
        "| amplification (requests per call) | {:.3} (retries {}, hedges {}) |",
        s.amplification, s.retries, s.hedges
    );
    let _ = writeln!(
        out,
        "| uncertain (abandoned after the work started) | {} |",
        s.uncertain
    );
    let _ = writeln!(
        out,
        "| abandoned while queued (done later anyway) | {} |",
        s.abandoned_queued
    );
    if let Some(p95) = s.dependency_p95 {
        let _ = writeln!(out, "| p95 of successful answers | {} |", human(p95));
    }
}

fn breaker_section(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "\n## Decorators\n");
    if let Some((name, start, end)) = s.outage.as_ref().filter(|_| s.has_breaker) {
        let show = |v: Option<Nanos>| v.map_or_else(|| "never".to_owned(), human);
        let _ = writeln!(
            out,
            "Outage: phase `{name}` ({} to {}). Time to open: {}. Time to recover (closed after the outage ended): {}.\n",
            human(*start),
            human(*end),
            show(s.time_to_open),
            show(s.time_to_recover)
        );
    }
    let _ = writeln!(out, "| decorator | what | count |\n|---|---|---|");
    for (who, what, n) in &s.decorators {
        let _ = writeln!(out, "| {who} | {what} | {n} |");
    }
    if !s.tunings.is_empty() {
        let _ = writeln!(
            out,
            "\nSlow-call thresholds set by the tuner (first 10 of {}):\n",
            s.tunings.len()
        );
        for (at, threshold) in s.tunings.iter().take(10) {
            let _ = writeln!(
                out,
                "- {}: {}",
                human(*at),
                human(crate::model::nanos(*threshold))
            );
        }
    }
    if !s.transitions.is_empty() {
        let _ = writeln!(
            out,
            "\nBreaker transitions (first 20 of {}):\n",
            s.transitions.len()
        );
        for (at, from, to) in s.transitions.iter().take(20) {
            let _ = writeln!(
                out,
                "- {}: {} → {}",
                human(*at),
                state_name(*from),
                state_name(*to)
            );
        }
    }
}
