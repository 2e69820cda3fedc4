//! The targets the report checks, each met, missed or pending with its figures.

use super::{Key, Run, fmt_ns, fmt_ratio};

pub(crate) enum Verdict {
    Met(String),
    Missed(String),
    Pending(String),
}

fn ratio_target(
    run: &Run,
    (group, param): (&str, &str),
    ours: &[&str],
    theirs: &str,
    limit: f64,
) -> Verdict {
    let mut met = true;
    let mut details = Vec::new();
    for contender in ours {
        match run.ratio(group, param, contender, theirs) {
            Some(ratio) => {
                met &= ratio <= limit;
                details.push(format!(
                    "{contender} {} ns = {ratio:.2}× {theirs} ({} ns)",
                    fmt_ns(run.ns(group, contender, param).unwrap_or(f64::NAN)),
                    fmt_ns(run.ns(group, theirs, param).unwrap_or(f64::NAN)),
                ));
            }
            None => return Verdict::Pending(format!("no {contender} or {theirs} row in this run")),
        }
    }
    let detail = details.join("; ");
    if met {
        Verdict::Met(detail)
    } else {
        Verdict::Missed(detail)
    }
}

/// seawall's rows of a group within 1.1× its baseline + 5 ns: what a decorator that does
/// nothing for this call may cost.
fn bar_target(run: &Run, (group, param): (&str, &str)) -> Verdict {
    let Some(base) = run.ns(group, "baseline", param) else {
        return Verdict::Pending(format!("no {group} baseline row in this run"));
    };
    let bar = 1.1 * base + 5.0;
    let mut met = true;
    let mut details = vec![format!(
        "bar = 1.1 × {} + 5 = {} ns",
        fmt_ns(base),
        fmt_ns(bar)
    )];
    for contender in ["seawall", "seawall-tower"] {
        if let Some(ns) = run.ns(group, contender, param) {
            met &= ns <= bar;
            details.push(format!("{contender} {} ns", fmt_ns(ns)));
        }
    }
    let detail = details.join("; ");
    if met {
        Verdict::Met(detail)
    } else {
        Verdict::Missed(detail)
    }
}

/// The tower layer of a decorator against its native API, in time and allocations.
fn layer_target(run: &Run, group: &str, param: &str) -> Verdict {
    let Some(ratio) = run.ratio(group, param, "seawall-tower", "seawall") else {
        return Verdict::Pending(format!(
            "no seawall or seawall-tower row of {group} in this run"
        ));
    };
    let allocs = run
        .allocs
        .get(&(
            group.to_owned(),
            "seawall-tower".to_owned(),
            param.to_owned(),
        ))
        .copied();
    // What the layer itself adds, net of tower's protocol (`baseline-tower`), against what the
    // native decorator adds to the bare call (`baseline`).
    let added = |contender: &str, floor: &str| {
        Some(run.ns(group, contender, param)? - run.ns(group, floor, param)?)
    };
    let layer_only = added("seawall-tower", "baseline-tower")
        .zip(added("seawall", "baseline"))
        .map(|(tower, native)| tower / native);
    let detail = format!(
        "seawall-tower {} ns = {ratio:.2}× seawall ({} ns); net of each floor (baseline-tower, baseline) {}; {} allocs/call",
        fmt_ns(run.ns(group, "seawall-tower", param).unwrap_or(f64::NAN)),
        fmt_ns(run.ns(group, "seawall", param).unwrap_or(f64::NAN)),
        layer_only.map_or_else(|| "unknown".to_owned(), |r| format!("{r:.2}×")),
        allocs.map_or_else(|| "unknown".to_owned(), |a| format!("{a:.2}")),
    );
    if ratio <= 1.5 && allocs == Some(0.0) {
        Verdict::Met(detail)
    } else {
        Verdict::Missed(detail)
    }
}

pub(crate) fn targets(run: &Run) -> Vec<(&'static str, Verdict)> {
    let mut list = Vec::new();
    let closed = ("circuit_breaker/closed", "count-100");
    list.push((
        "breaker closed ≤ 0.1× tower-resilience",
        ratio_target(run, closed, &["seawall"], "tower-resilience", 0.1),
    ));
    list.push((
        "breaker closed ≤ 1.0× recloser's async breaker",
        ratio_target(run, closed, &["seawall"], "recloser-async", 1.0),
    ));
    list.push((
        "metrics on: per-call overhead of a registry breaker bound to `metrics` (information)",
        match (
            run.ns(closed.0, "seawall-metrics", closed.1),
            run.ns(closed.0, "seawall", closed.1),
        ) {
            (Some(on), Some(off)) => Verdict::Met(format!(
                "seawall-metrics {} ns vs seawall {} ns: +{} ns",
                fmt_ns(on),
                fmt_ns(off),
                fmt_ns(on - off)
            )),
            _ => Verdict::Pending("no seawall-metrics row in this run".into()),
        },
    ));
    let slow = ("circuit_breaker/slow_calls", "count-100");
    list.push((
        "breaker with slow-call tracking ≤ 0.15× tower-resilience",
        match ratio_target(run, slow, &["seawall-coarse-clock"], "tower-resilience", 0.15) {
            Verdict::Met(detail) | Verdict::Missed(detail)
                if run.ns(slow.0, "seawall", slow.1).is_some() =>
            {
                let tokio = run
                    .ratio(slow.0, slow.1, "seawall", "tower-resilience")
                    .unwrap_or(f64::NAN);
                let coarse_met = run
                    .ratio(slow.0, slow.1, "seawall-coarse-clock", "tower-resilience")
                    .is_some_and(|ratio| ratio <= 0.15);
                let detail = format!(
                    "{detail}; on tokio's clock (two clock reads per call) seawall {} ns = {tokio:.2}×",
                    fmt_ns(run.ns(slow.0, "seawall", slow.1).unwrap_or(f64::NAN)),
                );
                if coarse_met {
                    Verdict::Met(detail)
                } else {
                    Verdict::Missed(detail)
                }
            }
            other => other,
        },
    ));
    let window = "circuit_breaker/time_window";
    let growth = |contender: &str| {
        Some(run.ns(window, contender, "100k")? / run.ns(window, contender, "1k")?)
    };
    list.push((
        "time window at 100k calls ≤ 1.2× its cost at 1k",
        match growth("seawall") {
            Some(g) if g <= 1.2 => Verdict::Met(format!(
                "seawall 100k/1k = {g:.2}×; coarse clock {}; tower-resilience {}; failsafe {}",
                fmt_ratio(growth("seawall-coarse-clock")),
                fmt_ratio(growth("tower-resilience")),
                fmt_ratio(growth("failsafe")),
            )),
            Some(g) => Verdict::Missed(format!("seawall 100k/1k = {g:.2}×")),
            None => Verdict::Pending("no seawall time-window rows in this run".into()),
        },
    ));
    list.push((
        "bulkhead ≤ 1.0× tower ConcurrencyLimit",
        ratio_target(
            run,
            ("bulkhead/permit_free", "25"),
            &["seawall", "seawall-tower"],
            "tower",
            1.0,
        ),
    ));
    list.push((
        "timeout ≤ 1.0× tower Timeout",
        ratio_target(
            run,
            ("timeout/ready", "1s"),
            &["seawall", "seawall-tower"],
            "tower",
            1.0,
        ),
    ));
    list.push((
        "retry without a retry ≤ 1.1× baseline + 5 ns",
        bar_target(run, ("retry/first_success", "3-attempts")),
    ));
    list.push((
        "retry without a retry, opaque inner call ≤ 1.1× baseline + 5 ns",
        bar_target(run, ("retry/first_success_opaque", "3-attempts")),
    ));
    let stack = ("stack/full", "ready");
    list.push((
        "full stack ≤ 0.2× tower-resilience's equivalent stack",
        ratio_target(
            run,
            stack,
            &["seawall", "seawall-tower"],
            "tower-resilience",
            0.2,
        ),
    ));
    list.push((
        "full stack, opaque inner call ≤ 0.1× tower-resilience's equivalent stack",
        ratio_target(
            run,
            ("stack/full_opaque", "ready"),
            &["seawall", "seawall-tower"],
            "tower-resilience",
            0.1,
        ),
    ));
    list.push((
        "breaker closed, opaque inner call ≤ 1.0× recloser's async breaker",
        ratio_target(
            run,
            ("circuit_breaker/closed_opaque", "count-100"),
            &["seawall"],
            "recloser-async",
            1.0,
        ),
    ));
    let seawall_allocs: Vec<(Key, f64)> = run
        .allocs
        .iter()
        .filter(|((_, contender, _), _)| contender.starts_with("seawall"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let allocating: Vec<String> = seawall_allocs
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|((group, contender, param), v)| format!("{group} {contender} {param}: {v:.2}"))
        .collect();
    list.push((
        "0 allocations per call in every seawall row",
        if seawall_allocs.is_empty() {
            Verdict::Pending("no seawall rows counted".into())
        } else if allocating.is_empty() {
            Verdict::Met(format!("{} seawall rows, all 0", seawall_allocs.len()))
        } else {
            Verdict::Missed(allocating.join("; "))
        },
    ));
    for (label, group, param) in [
        (
            "timeout: tower layer ≤ 1.5× the native API, 0 allocations",
            "timeout/ready",
            "1s",
        ),
        (
            "retry: tower layer ≤ 1.5× the native API, 0 allocations",
            "retry/first_success",
            "3-attempts",
        ),
        (
            "open breaker: tower layer ≤ 1.5× the native API, 0 allocations",
            "circuit_breaker/open",
            "count-100",
        ),
    ] {
        list.push((label, layer_target(run, group, param)));
    }
    list.extend(hedge_adaptive_fault_targets(run));
    list.extend(breaker_cost_targets(run));
    let threads = "circuit_breaker/threads";
    let scaling =
        |contender: &str| Some(run.ns(threads, contender, "1")? / run.ns(threads, contender, "2")?);
    list.push((
        "two threads on one breaker: throughput ≥ 1.5× one thread",
        match scaling("seawall") {
            Some(s) if s >= 1.5 => Verdict::Met(format!(
                "seawall {s:.2}× (baseline, the control: {})",
                fmt_ratio(scaling("baseline"))
            )),
            Some(s) => Verdict::Missed(format!(
                "seawall {s:.2}× (baseline, the control: {})",
                fmt_ratio(scaling("baseline"))
            )),
            None => Verdict::Pending(format!(
                "seawall's breaker is not on this branch; for reference: tower-resilience {}, failsafe {}, recloser-async {}; the baseline, the control, reached {} (well under 2× means this run could not have two free cores)",
                fmt_ratio(scaling("tower-resilience")),
                fmt_ratio(scaling("failsafe")),
                fmt_ratio(scaling("recloser-async")),
                fmt_ratio(scaling("baseline")),
            )),
        },
    ));
    list
}

/// Hedging with no hedge fired and the adaptive limiter beside tower-resilience's
/// equivalents, and the cost of a fault injector left switched off.
fn hedge_adaptive_fault_targets(run: &Run) -> Vec<(&'static str, Verdict)> {
    let fault = ("fault/disabled", "off");
    let fault_verdict = match run.ns(fault.0, "baseline", fault.1) {
        None => Verdict::Pending("no fault/disabled rows in this run".into()),
        Some(base) => {
            let bar = base + 5.0;
            let rows: Vec<(&str, f64)> = ["seawall", "seawall-tower"]
                .into_iter()
                .filter_map(|c| Some((c, run.ns(fault.0, c, fault.1)?)))
                .collect();
            let detail = format!(
                "bar = baseline {} + 5 = {} ns; {}",
                fmt_ns(base),
                fmt_ns(bar),
                rows.iter()
                    .map(|(c, ns)| format!("{c} {} ns", fmt_ns(*ns)))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            if !rows.is_empty() && rows.iter().all(|(_, ns)| *ns <= bar) {
                Verdict::Met(detail)
            } else {
                Verdict::Missed(detail)
            }
        }
    };
    vec![
        (
            "hedge, no hedge fired ≤ 1.0× tower-resilience's hedge",
            ratio_target(
                run,
                ("hedge/no_hedge", "100ms"),
                &["seawall", "seawall-tower"],
                "tower-resilience",
                1.0,
            ),
        ),
        (
            "adaptive limiter (AIMD) ≤ 1.0× tower-resilience's AIMD",
            ratio_target(
                run,
                ("adaptive/permit_free", "aimd-20"),
                &["seawall", "seawall-tower"],
                "tower-resilience",
                1.0,
            ),
        ),
        (
            "fault injector switched off ≤ baseline + 5 ns (one atomic load)",
            fault_verdict,
        ),
    ]
}

/// Issue 15's breaker targets: the closed breaker in units of one uncontended `fetch_add`,
/// slow-call tracking on tokio's clock, and throughput across threads.
pub(crate) fn breaker_cost_targets(run: &Run) -> Vec<(&'static str, Verdict)> {
    let (closed, param) = ("circuit_breaker/closed", "count-100");
    let unit = match (
        run.ns(closed, "baseline", param),
        run.ns(closed, "fetch-add", param),
        run.ns(closed, "seawall", param),
    ) {
        (Some(base), Some(fetch_add), Some(ours)) => {
            let net = (ours - base) / (fetch_add - base);
            let detail = format!(
                "seawall {} ns = {:.2}× the fetch-add row ({} ns); net of the bare call ({} ns): {net:.2}× one fetch_add",
                fmt_ns(ours),
                ours / fetch_add,
                fmt_ns(fetch_add),
                fmt_ns(base),
            );
            if net <= 3.0 {
                Verdict::Met(detail)
            } else {
                Verdict::Missed(detail)
            }
        }
        _ => Verdict::Pending(
            "no baseline, fetch-add or seawall row of circuit_breaker/closed".into(),
        ),
    };
    let slow = match (
        run.ns("circuit_breaker/slow_calls", "seawall", param),
        run.ns(closed, "seawall", param),
    ) {
        (Some(with), Some(without)) => {
            let ratio = with / without;
            let detail = format!(
                "slow_calls/seawall {} ns = {ratio:.2}× closed/seawall {} ns",
                fmt_ns(with),
                fmt_ns(without)
            );
            if ratio <= 1.3 {
                Verdict::Met(detail)
            } else {
                Verdict::Missed(detail)
            }
        }
        _ => Verdict::Pending("no seawall rows in slow_calls and closed".into()),
    };
    let threads = "circuit_breaker/threads";
    let scaling = |contender: &str, n: &str| {
        Some(run.ns(threads, contender, "1")? / run.ns(threads, contender, n)?)
    };
    let time = match scaling("seawall-time-window", "2") {
        Some(s) => {
            let detail = format!(
                "seawall-time-window {s:.2}× at 2 threads, {} at 4; exact count window {} at 2, {} at 4 (baseline, the control: {})",
                fmt_ratio(scaling("seawall-time-window", "4")),
                fmt_ratio(scaling("seawall", "2")),
                fmt_ratio(scaling("seawall", "4")),
                fmt_ratio(scaling("baseline", "2")),
            );
            if s >= 1.6 {
                Verdict::Met(detail)
            } else {
                Verdict::Missed(detail)
            }
        }
        None => Verdict::Pending("no seawall-time-window rows in circuit_breaker/threads".into()),
    };
    let striped = match scaling("seawall-striped", "2") {
        Some(s) => {
            let detail = format!(
                "seawall-striped {s:.2}× at 2 threads, {} at 4; exact count window {} at 2 (baseline, the control: {})",
                fmt_ratio(scaling("seawall-striped", "4")),
                fmt_ratio(scaling("seawall", "2")),
                fmt_ratio(scaling("baseline", "2")),
            );
            if s >= 1.5 {
                Verdict::Met(detail)
            } else {
                Verdict::Missed(detail)
            }
        }
        None => Verdict::Pending("no seawall-striped rows in circuit_breaker/threads".into()),
    };
    vec![
        (
            "breaker closed ≤ 3× one uncontended fetch_add (net of the bare call)",
            unit,
        ),
        (
            "slow-call tracking on tokio's clock ≤ 1.3× the same breaker without it",
            slow,
        ),
        (
            "time-window breaker, 2 threads ≥ 1.6× the throughput of 1",
            time,
        ),
        (
            "striped count-window breaker, 2 threads ≥ 1.5× the throughput of 1",
            striped,
        ),
    ]
}
