//! `seawall-lab sweep`: a grid over named policy parameters, the best point for an
//! objective, and a check of seawall's 1.3×P95 rule of thumb ([`seawall::tuning`]).
//!
//! A parameter is `section.instance.key` (`circuitbreaker.pg.failure_rate_threshold`), set
//! in the scenario's embedded document under `section.instances.instance.key`; keys may be
//! written in camelCase (`failureRateThreshold`) as in Resilience4j. Values are TOML values;
//! what is not one (`3s`) is a string.

use std::fmt::Write as _;
use std::time::Duration;

use seawall::ConfigError;
use seawall::registry::document::{Document, Format};
use seawall::tuning::SlowCallTuner;

use crate::model::nanos;
use crate::report::{Summary, human};
use crate::scenario::Loaded;

/// One swept parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// `section.instance.key`, the key in snake case.
    pub path: String,
    /// The values to try.
    pub values: Vec<toml::Value>,
}

/// What the best point must satisfy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Objective {
    /// The caller's P99 latency at most this.
    pub max_p99: Option<Duration>,
    /// Dependency requests per caller call at most this.
    pub max_amplification: Option<f64>,
}

impl Objective {
    fn admits(&self, s: &Summary) -> bool {
        self.max_p99.is_none_or(|max| s.latency[1] <= nanos(max))
            && self
                .max_amplification
                .is_none_or(|max| s.amplification <= max + 1e-9)
    }

    fn describe(&self) -> String {
        let mut parts = vec!["the most successes".to_owned()];
        if let Some(max) = self.max_p99 {
            parts.push(format!("p99 ≤ {}", human(nanos(max))));
        }
        if let Some(max) = self.max_amplification {
            parts.push(format!("amplification ≤ {max}"));
        }
        parts.join(", subject to ")
    }
}

/// One grid point's result.
#[derive(Clone, Debug)]
pub struct Row {
    /// The values, in the order of the parameters.
    pub values: Vec<String>,
    /// Its numbers.
    pub summary: Summary,
}

/// A sweep's results.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// The parameters.
    pub params: Vec<Param>,
    /// The objective.
    pub objective: Objective,
    /// Every grid point.
    pub rows: Vec<Row>,
    /// The index of the best row that meets the objective.
    pub best: Option<usize>,
    /// The rule-of-thumb check.
    pub rule: Option<RuleCheck>,
}

/// The 1.3×P95 rule applied to the scenario, and how it fared.
#[derive(Clone, Debug)]
pub struct RuleCheck {
    /// The P95 of the dependency's successful answers in the scenario as written.
    pub p95: Duration,
    /// What the rule proposes.
    pub proposed: Duration,
    /// The keys it was applied to.
    pub applied_to: Vec<String>,
    /// The run with the rule's values.
    pub summary: Summary,
    /// The scenario as written.
    pub baseline: Summary,
    /// The scenario with the tuner applying the rule live every 5 minutes
    /// (`policy.tune_every`), when it has a breaker.
    pub live: Option<Summary>,
}

/// Parses `path=v1,v2,…`.
///
/// # Errors
///
/// No `=`, a path that is not `section.instance.key`, or no values (key `--param`).
pub fn parse_param(arg: &str) -> Result<Param, ConfigError> {
    let (path, values) = arg
        .split_once('=')
        .ok_or_else(|| ConfigError::new("--param", format!("`{arg}`: write path=v1,v2,…")))?;
    let values: Vec<toml::Value> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(value)
        .collect();
    param(path.trim(), values)
}

fn param(path: &str, values: Vec<toml::Value>) -> Result<Param, ConfigError> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::new(
            "--param",
            format!(
                "`{path}`: a parameter is section.instance.key, e.g. circuitbreaker.pg.failure_rate_threshold"
            ),
        ));
    }
    if values.is_empty() {
        return Err(ConfigError::new("--param", format!("`{path}`: no values")));
    }
    Ok(Param {
        path: format!("{}.{}.{}", parts[0], parts[1], snake(parts[2])),
        values,
    })
}

/// The scenario's `[sweep]` parameters, then those of the command line.
///
/// # Errors
///
/// A malformed parameter.
pub fn params_of(loaded: &Loaded, extra: Vec<Param>) -> Result<Vec<Param>, ConfigError> {
    let mut params = Vec::new();
    if let Some(sweep) = &loaded.scenario.sweep {
        for (path, values) in &sweep.params {
            params.push(param(path, values.clone()).map_err(|e| {
                ConfigError::new(format!("sweep.params.{path}"), e.rule().to_owned())
            })?);
        }
    }
    params.extend(extra);
    Ok(params)
}

fn value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A copy of `loaded` with `path` set to `value` in its embedded document.
///
/// # Errors
///
/// A scenario whose policy is a file (key `policy.path`), or a value the document refuses.
pub fn with_value(loaded: &Loaded, path: &str, value: toml::Value) -> Result<Loaded, ConfigError> {
    let mut table = loaded.scenario.policy.document.clone().ok_or_else(|| {
        ConfigError::new(
            "policy.path",
            "a sweep needs the policy document embedded in the scenario",
        )
    })?;
    let mut parts = path.splitn(3, '.');
    let (Some(section), Some(instance), Some(key)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ConfigError::new(
            "--param",
            format!("`{path}` is not section.instance.key"),
        ));
    };
    let mut node = &mut table;
    for part in [section, "instances", instance] {
        let entry = node
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| {
            ConfigError::new(format!("policy.document.{part}"), "must be a table")
        })?;
    }
    // A key written in another case is replaced, not doubled.
    node.retain(|k, _| snake(k) != key);
    node.insert(key.to_owned(), value);
    let text = toml::to_string(&table)
        .map_err(|err| ConfigError::new("policy.document", err.to_string()))?;
    let mut out = loaded.clone();
    out.document = Document::parse(&text, Format::Toml).map_err(|e| e.under("policy.document"))?;
    out.scenario.policy.document = Some(table);
    Ok(out)
}

fn grid(params: &[Param]) -> Vec<Vec<usize>> {
    let mut points = vec![Vec::new()];
    for param in params {
        points = points
            .into_iter()
            .flat_map(|point| {
                (0..param.values.len()).map(move |i| {
                    let mut next = point.clone();
                    next.push(i);
                    next
                })
            })
            .collect();
    }
    points
}

/// Runs every point of the grid, picks the best for `objective`, and checks the rule.
///
/// # Errors
///
/// A value the document refuses, named by its key.
pub fn sweep(
    loaded: &Loaded,
    params: Vec<Param>,
    objective: Objective,
) -> Result<SweepReport, ConfigError> {
    let mut rows = Vec::new();
    for point in grid(&params) {
        let mut variant = loaded.clone();
        let mut values = Vec::new();
        for (param, &index) in params.iter().zip(&point) {
            let value = param.values[index].clone();
            values.push(show(&value));
            variant = with_value(&variant, &param.path, value)?;
        }
        let summary = crate::run(&variant)?.summary;
        rows.push(Row { values, summary });
    }
    let best = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| objective.admits(&row.summary))
        .max_by(|(ia, a), (ib, b)| {
            a.summary
                .ok
                .cmp(&b.summary.ok)
                .then(b.summary.latency[1].cmp(&a.summary.latency[1]))
                .then(ib.cmp(ia))
        })
        .map(|(i, _)| i);
    let rule = rule_check(loaded, &params)?;
    Ok(SweepReport {
        params,
        objective,
        rows,
        best,
        rule,
    })
}

/// Applies 1.3×P95 (clamped to [1 s, 10 s], [`SlowCallTuner`]) to the swept timing keys, or
/// to the breaker's slow-call threshold, and runs the scenario with it.
fn rule_check(loaded: &Loaded, params: &[Param]) -> Result<Option<RuleCheck>, ConfigError> {
    let baseline = crate::run(loaded)?.summary;
    let Some(p95) = baseline.dependency_p95 else {
        return Ok(None);
    };
    let p95 = Duration::from_nanos(p95);
    let Some(proposed) = SlowCallTuner::default().propose(p95, None) else {
        return Ok(None);
    };
    let instance = &loaded.scenario.policy.instance;
    let timing = |p: &&Param| {
        p.path.ends_with(".slow_call_duration_threshold") || p.path.ends_with(".timeout_duration")
    };
    let mut keys: Vec<String> = params
        .iter()
        .filter(timing)
        .map(|p| p.path.clone())
        .collect();
    if keys.is_empty() {
        keys.push(format!(
            "circuitbreaker.{instance}.slow_call_duration_threshold"
        ));
    }
    let text = humantime::format_duration(Duration::from_millis(
        u64::try_from(proposed.as_millis()).unwrap_or(u64::MAX),
    ))
    .to_string();
    let mut variant = loaded.clone();
    for key in &keys {
        variant = with_value(&variant, key, toml::Value::String(text.clone()))?;
    }
    let live = if baseline.has_breaker {
        let mut live = loaded.clone();
        if live.scenario.policy.tune_every.is_none() {
            live.scenario.policy.tune_every = Some(crate::scenario::Dur(Duration::from_secs(300)));
        }
        Some(crate::run(&live)?.summary)
    } else {
        None
    };
    Ok(Some(RuleCheck {
        p95,
        proposed,
        applied_to: keys,
        summary: crate::run(&variant)?.summary,
        baseline,
        live,
    }))
}

/// The sweep as Markdown.
pub fn markdown(report: &SweepReport, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Sweep: {title}\n");
    let _ = writeln!(out, "Objective: {}.\n", report.objective.describe());
    let names: Vec<&str> = report.params.iter().map(|p| p.path.as_str()).collect();
    let _ = writeln!(
        out,
        "| {} | success | p99 | amplification | uncertain | time to open | meets objective |",
        names.join(" | ")
    );
    let _ = writeln!(out, "|{}", "---|".repeat(names.len() + 6));
    for (i, row) in report.rows.iter().enumerate() {
        let s = &row.summary;
        let mark = if report.best == Some(i) {
            " **best**"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {} | {:.2} % | {} | {:.3} | {} | {} | {}{mark} |",
            row.values.join(" | "),
            s.success_rate(),
            human(s.latency[1]),
            s.amplification,
            s.uncertain,
            s.time_to_open.map_or_else(|| "never".to_owned(), human),
            if report.objective.admits(s) {
                "yes"
            } else {
                "no"
            },
        );
    }
    match report.best {
        Some(i) => {
            let row = &report.rows[i];
            let settings: Vec<String> = names
                .iter()
                .zip(&row.values)
                .map(|(n, v)| format!("`{n} = {v}`"))
                .collect();
            let _ = writeln!(
                out,
                "\nBest: {} ({:.2} % success).",
                settings.join(", "),
                row.summary.success_rate()
            );
        }
        None => {
            let _ = writeln!(out, "\nNo point of the grid meets the objective.");
        }
    }
    if let Some(rule) = &report.rule {
        rule_markdown(&mut out, report, rule);
    }
    out
}

fn rule_markdown(out: &mut String, report: &SweepReport, rule: &RuleCheck) {
    let s = &rule.summary;
    let meets = |s: &Summary| {
        if report.objective.admits(s) {
            "meets"
        } else {
            "misses"
        }
    };
    let _ = writeln!(
        out,
        "\n## The 1.3×P95 rule of thumb\n\nThe scenario as written: {:.2} % success, p99 {}.\n\n\
         **Once, from the whole run.** The dependency's successful answers had a P95 of {}; the \
         rule (seawall's `SlowCallTuner`: 1.3 × P95 within [1 s, 10 s]) proposes {} for {}. \
         With it: {:.2} % success, p99 {}, amplification {:.3}; it {} the objective.",
        rule.baseline.success_rate(),
        human(rule.baseline.latency[1]),
        human(nanos(rule.p95)),
        human(nanos(rule.proposed)),
        rule.applied_to
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(" and "),
        s.success_rate(),
        human(s.latency[1]),
        s.amplification,
        meets(s),
    );
    if let Some(live) = &rule.live {
        let _ = writeln!(
            out,
            "\n**Live, every 5 minutes** (the tuner on the running breaker, from the answers of \
             the last 5 minutes, as `seawall::tuning` describes it): {:.2} % success, p99 {}, {} threshold \
             changes; it {} the objective.",
            live.success_rate(),
            human(live.latency[1]),
            live.tunings.len(),
            meets(live),
        );
    }
    if let Some(best) = report.best.map(|i| &report.rows[i].summary) {
        let verdict = |s: &Summary| {
            #[allow(clippy::cast_possible_wrap)]
            let diff = s.ok as i64 - best.ok as i64;
            if diff >= 0 {
                "as many successes as the grid's best or more".to_owned()
            } else {
                format!(
                    "{:.2} points below the grid's best",
                    best.success_rate() - s.success_rate()
                )
            }
        };
        let _ = write!(
            out,
            "\nAgainst the grid's best: the rule applied once is {}",
            verdict(s)
        );
        if let Some(live) = &rule.live {
            let _ = write!(out, "; applied live, {}", verdict(live));
        }
        let _ = writeln!(out, ".");
    }
}
