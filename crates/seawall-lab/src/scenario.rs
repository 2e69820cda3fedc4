//! The scenario file: load, a dependency model per phase, the policy document, and a seed.
//!
//! ```toml
//! name = "3 am PG outage"
//! seed = 42
//!
//! [load]
//! rate = 200                      # open loop: calls per second (or `concurrency = 50`)
//! arrivals = "poisson"            # or "uniform" (evenly spaced)
//!
//! [dependency]                    # the model every phase starts from
//! workers = 8                     # absent: unlimited
//! queue = 1000                    # absent: unbounded backlog
//! latency = { uniform = { min = "100ms", max = "500ms" } }
//! errors = { internal = 0.4 }     # kind = probability, after the latency
//!
//! [[phase]]
//! name = "healthy"
//! duration = "10m"
//!
//! [[phase]]
//! name = "hang"
//! duration = "10m"
//! outage = "hang"                 # "refuse", { slow = { factor = 8 } }, { flap = { … } }
//!
//! [policy]
//! instance = "pg"                 # the instance name in every section
//! [policy.document.circuitbreaker.instances.pg]
//! failure_rate_threshold = 50
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seawall::ConfigError;
use seawall::registry::document::{Document, Format};
use serde::Deserialize;

/// A duration written as a humantime string (`"250ms"`, `"10m"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct Dur(#[serde(with = "humantime_serde")] pub Duration);

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A title for the report.
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario shows.
    #[serde(default)]
    pub description: Option<String>,
    /// The seed of every random draw (arrivals, latencies, errors, retry jitter).
    #[serde(default)]
    pub seed: u64,
    /// The callers.
    pub load: Load,
    /// The dependency every phase starts from.
    pub dependency: Dependency,
    /// The phases, in order (absent: one phase of `load.duration`).
    #[serde(default, rename = "phase")]
    pub phases: Vec<Phase>,
    /// The policy in front of the dependency (absent: none, a naive client).
    #[serde(default)]
    pub policy: PolicySpec,
    /// How the run is reported.
    #[serde(default)]
    pub report: ReportSpec,
    /// A parameter grid for `seawall-lab sweep`.
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
}

/// How calls arrive.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Open loop: calls per second, whatever the answers.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Closed loop: this many callers, each calling again once answered.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Closed loop: the pause between a caller's answer and its next call.
    #[serde(default)]
    pub think: Option<Dur>,
    /// Open loop: evenly spaced or Poisson arrivals.
    #[serde(default)]
    pub arrivals: Arrivals,
    /// The length of the run when there are no phases.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// How long a caller waits before giving up on its own (absent: forever).
    #[serde(default)]
    pub caller_timeout: Option<Dur>,
    /// Whether a caller giving up cancels the call (default `true`). `false`: the call goes
    /// on and its outcome counts (a service that finishes an order after its shopper left);
    /// the caller's latency is capped at `caller_timeout`.
    #[serde(default = "yes")]
    pub caller_cancels: bool,
}

fn yes() -> bool {
    true
}

/// The spacing of open-loop arrivals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Exponential gaps (a Poisson process).
    #[default]
    Poisson,
    /// Equal gaps.
    Uniform,
}

/// The dependency model: latency, errors, capacity.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Workers serving requests (absent: unlimited).
    #[serde(default)]
    pub workers: Option<u32>,
    /// Requests that may wait for a worker (absent: unbounded); over it, refused at once.
    #[serde(default)]
    pub queue: Option<u32>,
    /// How long a worker takes per request.
    pub latency: Latency,
    /// Error kinds and their probabilities (each in `[0, 1]`, the sum at most 1); an error
    /// is returned after the request's latency.
    #[serde(default)]
    pub errors: BTreeMap<String, f64>,
}

/// Changes a phase makes to the dependency and the load.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// A label for the report and the timeline.
    #[serde(default)]
    pub name: Option<String>,
    /// How long the phase lasts.
    pub duration: Dur,
    /// Open loop: the arrival rate in this phase.
    #[serde(default)]
    pub rate: Option<f64>,
    /// The latency in this phase.
    #[serde(default)]
    pub latency: Option<Latency>,
    /// The error rates in this phase (replacing the dependency's).
    #[serde(default)]
    pub errors: Option<BTreeMap<String, f64>>,
    /// An outage in this phase.
    #[serde(default)]
    pub outage: Option<Outage>,
}

/// A latency distribution.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    /// Always the same.
    Fixed(Dur),
    /// Uniform between two bounds.
    Uniform {
        /// The lower bound.
        min: Dur,
        /// The upper bound.
        max: Dur,
    },
    /// Log-normal, given by its median and its P99.
    Lognormal {
        /// The median.
        median: Dur,
        /// The 99th percentile.
        p99: Dur,
    },
    /// A percentile table (`p50 = "100ms"`, `p99 = "1s"`, `p100 = "3s"`), interpolated
    /// linearly; `p0` defaults to zero and `p100` to the highest given.
    Percentiles(BTreeMap<String, Dur>),
}

/// An outage.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Outage {
    /// Requests are accepted and never answered.
    Hang,
    /// Requests are refused at once (a connection refused).
    Refuse,
    /// Every request takes `factor` times longer.
    Slow {
        /// The latency multiplier (> 0).
        factor: f64,
    },
    /// Healthy for `up`, then down (`hang` or `refuse`) for `down`, and again.
    Flap {
        /// How long each healthy stretch lasts.
        up: Dur,
        /// How long each outage lasts.
        down: Dur,
        /// What the dependency does while down.
        #[serde(default)]
        mode: FlapMode,
    },
}

/// What a flapping dependency does while down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlapMode {
    /// Never answers.
    #[default]
    Hang,
    /// Refuses at once.
    Refuse,
}

/// The policy: a registry configuration document, embedded or in a file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The instance name the policy is built from in every section (default `pg`).
    #[serde(default = "default_instance")]
    pub instance: String,
    /// The document as a TOML table in the scenario.
    #[serde(default)]
    pub document: Option<toml::Table>,
    /// The document as a file (TOML, YAML or JSON), relative to the scenario file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// What the retry retries: dependency error kinds, `refused`, `queue_full`, `timeout`,
    /// `rejected` (a full bulkhead or adaptive limit). Absent: seawall's default, every error
    /// but an open circuit.
    #[serde(default)]
    pub retry_on: Option<Vec<String>>,
    /// What the adaptive limiter counts as a drop (the same names as `retry_on`); other
    /// errors are no sample. Absent: seawall's default, every failure.
    #[serde(default)]
    pub limit_drops: Option<Vec<String>>,
    /// Runs seawall's slow-call tuner (`seawall::tuning::SlowCallTuner`, 1.3 × P95 within
    /// [1 s, 10 s]) on the breaker every this often, from the P95 of the successful answers
    /// since its last run, through the registry's live reconfiguration.
    #[serde(default)]
    pub tune_every: Option<Dur>,
}

fn default_instance() -> String {
    "pg".to_owned()
}

impl Default for PolicySpec {
    fn default() -> Self {
        Self {
            instance: default_instance(),
            document: None,
            path: None,
            retry_on: None,
            limit_drops: None,
            tune_every: None,
        }
    }
}

/// How the run is reported.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// The width of a timeline bucket (default: the run split into 120 buckets).
    #[serde(default)]
    pub bucket: Option<Dur>,
    /// How long calls still in flight at the end may take to finish (default 60 s); those
    /// still running then are reported as unfinished.
    #[serde(default = "default_drain")]
    pub drain: Dur,
}

fn default_drain() -> Dur {
    Dur(Duration::from_secs(60))
}

impl Default for ReportSpec {
    fn default() -> Self {
        Self {
            bucket: None,
            drain: default_drain(),
        }
    }
}

/// A parameter grid and an objective for `seawall-lab sweep`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Parameter path → values, e.g. `"circuitbreaker.pg.failure_rate_threshold" = [30, 50]`.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<toml::Value>>,
    /// The objective's bound on the caller's P99 latency.
    #[serde(default)]
    pub max_p99: Option<Dur>,
    /// The objective's bound on amplification (dependency calls per caller call).
    #[serde(default)]
    pub max_amplification: Option<f64>,
}

/// A scenario whose policy document has been read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The scenario.
    pub scenario: Scenario,
    /// The policy document, as TOML text (what the registry parses).
    pub document: Document,
    /// The phases, never empty (one phase of `load.duration` when none were written).
    pub phases: Vec<Phase>,
}

/// Where a scenario came from, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// The directory relative paths are read from.
    pub dir: &'a Path,
}

impl Scenario {
    /// Parses a scenario from TOML text; errors name the key.
    ///
    /// # Errors
    ///
    /// A syntax error (key `scenario`), or an unknown key or bad value, named by its path.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|err| ConfigError::new("scenario", err.to_string()))?;
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            let key = if path == "." {
                "scenario".to_owned()
            } else {
                path
            };
            ConfigError::new(key, err.into_inner().message().to_owned())
        })
    }

    /// Checks every rule and reads the policy document (a `path` is read from `origin.dir`).
    ///
    /// # Errors
    ///
    /// The first broken rule, named by its key (`phase[1].errors.internal`,
    /// `policy.document.circuitbreaker.instances.pg.failure_rate_threshold`, …).
    pub fn load(self, origin: Origin<'_>) -> Result<Loaded, ConfigError> {
        self.validate()?;
        let document = match (&self.policy.document, &self.policy.path) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "policy",
                    "give either `document` or `path`, not both",
                ));
            }
            (Some(table), None) => {
                let text = toml::to_string(table)
                    .map_err(|err| ConfigError::new("policy.document", err.to_string()))?;
                Document::parse(&text, Format::Toml).map_err(|err| err.under("policy.document"))?
            }
            (None, Some(path)) => {
                Document::read(&origin.dir.join(path)).map_err(|err| err.under("policy.path"))?
            }
            (None, None) => Document::default(),
        };
        let phases = if self.phases.is_empty() {
            vec![Phase {
                name: None,
                duration: self.load.duration.unwrap_or(Dur(Duration::ZERO)),
                rate: None,
                latency: None,
                errors: None,
                outage: None,
            }]
        } else {
            self.phases.clone()
        };
        Ok(Loaded {
            scenario: self,
            document,
            phases,
        })
    }

    /// Checks the scenario's own rules (not the policy document's).
    ///
    /// # Errors
    ///
    /// The first broken rule, named by its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let load = &self.load;
        match (load.rate, load.concurrency) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "load",
                    "give either `rate` (open loop) or `concurrency` (closed loop), not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "load",
                    "give `rate` (open loop) or `concurrency` (closed loop)",
                ));
            }
            (Some(rate), None) => check_rate("load.rate", rate)?,
            (None, Some(0)) => return Err(ConfigError::new("load.concurrency", "must be > 0")),
            (None, Some(_)) => {}
        }
        if self.phases.is_empty() {
            match load.duration {
                Some(Dur(d)) if !d.is_zero() => {}
                _ => {
                    return Err(ConfigError::new(
                        "load.duration",
                        "must be > 0 when there are no phases",
                    ));
                }
            }
        } else if load.duration.is_some() {
            return Err(ConfigError::new(
                "load.duration",
                "the phases give the duration; remove it",
            ));
        }
        if self.dependency.workers == Some(0) {
            return Err(ConfigError::new("dependency.workers", "must be > 0"));
        }
        check_latency("dependency.latency", &self.dependency.latency)?;
        check_errors("dependency.errors", &self.dependency.errors)?;
        for (index, phase) in self.phases.iter().enumerate() {
            phase.validate(&format!("phase[{index}]"), load.rate.is_some())?;
        }
        if self.policy.tune_every.is_some_and(|d| d.0.is_zero()) {
            return Err(ConfigError::new("policy.tune_every", "must be > 0"));
        }
        self.validate_retry_on()
    }

    /// The error kinds the dependency may answer with, in any phase.
    pub fn error_kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.dependency.errors.keys().map(String::as_str).collect();
        for phase in &self.phases {
            kinds.extend(
                phase
                    .errors
                    .iter()
                    .flat_map(|e| e.keys().map(String::as_str)),
            );
        }
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    fn validate_retry_on(&self) -> Result<(), ConfigError> {
        let kinds = self.error_kinds();
        let lists = [
            ("retry_on", &self.policy.retry_on),
            ("limit_drops", &self.policy.limit_drops),
        ];
        for (list, name, index) in lists.iter().flat_map(|(list, names)| {
            names
                .iter()
                .flatten()
                .enumerate()
                .map(move |(i, n)| (*list, n, i))
        }) {
            let known = ["refused", "queue_full", "timeout", "rejected"].contains(&name.as_str())
                || kinds.contains(&name.as_str());
            if !known {
                return Err(ConfigError::new(
                    format!("policy.{list}[{index}]"),
                    format!(
                        "`{name}` is neither an error kind of the dependency nor refused, queue_full, timeout, rejected"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The run's total simulated duration.
    pub fn total_duration(phases: &[Phase]) -> Duration {
        phases.iter().map(|phase| phase.duration.0).sum()
    }
}

impl Phase {
    fn validate(&self, key: &str, open_loop: bool) -> Result<(), ConfigError> {
        if self.duration.0.is_zero() {
            return Err(ConfigError::new(format!("{key}.duration"), "must be > 0"));
        }
        if let Some(rate) = self.rate {
            if !open_loop {
                return Err(ConfigError::new(
                    format!("{key}.rate"),
                    "only an open-loop load (`load.rate`) has a rate",
                ));
            }
            check_rate(&format!("{key}.rate"), rate)?;
        }
        if let Some(latency) = &self.latency {
            check_latency(&format!("{key}.latency"), latency)?;
        }
        if let Some(errors) = &self.errors {
            check_errors(&format!("{key}.errors"), errors)?;
        }
        match &self.outage {
            Some(Outage::Slow { factor }) if !(factor.is_finite() && *factor > 0.0) => {
                Err(ConfigError::new(
                    format!("{key}.outage.slow.factor"),
                    must_be_positive(*factor),
                ))
            }
            Some(Outage::Flap { up, down, .. }) if up.0.is_zero() || down.0.is_zero() => Err(
                ConfigError::new(format!("{key}.outage.flap"), "`up` and `down` must be > 0"),
            ),
            _ => Ok(()),
        }
    }
}

fn must_be_positive(value: f64) -> String {
    format!("must be a finite number > 0, got {value}")
}

fn check_rate(key: &str, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key.to_owned(),
            format!("must be in (0, 1000000] calls per second, got {rate}"),
        ))
    }
}

fn check_errors(key: &str, errors: &BTreeMap<String, f64>) -> Result<(), ConfigError> {
    let mut sum = 0.0;
    for (kind, rate) in errors {
        if !(rate.is_finite() && (0.0..=1.0).contains(rate)) {
            return Err(ConfigError::new(
                format!("{key}.{kind}"),
                format!("must be a probability in [0, 1], got {rate}"),
            ));
        }
        sum += rate;
    }
    if sum > 1.0 + 1e-9 {
        return Err(ConfigError::new(
            key.to_owned(),
            format!("the probabilities add up to {sum}, more than 1"),
        ));
    }
    Ok(())
}

fn check_latency(key: &str, latency: &Latency) -> Result<(), ConfigError> {
    match latency {
        Latency::Fixed(_) => Ok(()),
        Latency::Uniform { min, max } if min > max => Err(ConfigError::new(
            format!("{key}.uniform"),
            format!("`min` ({:?}) is above `max` ({:?})", min.0, max.0),
        )),
        Latency::Uniform { .. } => Ok(()),
        Latency::Lognormal { median, p99 } if median.0.is_zero() || p99 < median => {
            Err(ConfigError::new(
                format!("{key}.lognormal"),
                "`median` must be > 0 and `p99` at least the median",
            ))
        }
        Latency::Lognormal { .. } => Ok(()),
        Latency::Percentiles(table) => crate::model::percentile_points(table)
            .map(drop)
            .map_err(|rule| ConfigError::new(format!("{key}.percentiles"), rule)),
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: &Dur| humantime::format_duration(d.0).to_string();
        match self {
            Self::Fixed(d) => write!(f, "fixed {}", show(d)),
            Self::Uniform { min, max } => write!(f, "uniform {}–{}", show(min), show(max)),
            Self::Lognormal { median, p99 } => {
                write!(f, "log-normal, median {}, p99 {}", show(median), show(p99))
            }
            Self::Percentiles(table) => {
                let parts: Vec<String> = table
                    .iter()
                    .map(|(k, v)| format!("{k} {}", show(v)))
                    .collect();
                write!(f, "percentiles {}", parts.join(", "))
            }
        }
    }
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hang => f.write_str("hang"),
            Self::Refuse => f.write_str("refuse"),
            Self::Slow { factor } => write!(f, "slow ×{factor}"),
            Self::Flap { up, down, mode } => write!(
                f,
                "flap: up {}, down {} ({})",
                humantime::format_duration(up.0),
                humantime::format_duration(down.0),
                match mode {
                    FlapMode::Hang => "hang",
                    FlapMode::Refuse => "refuse",
                }
            ),
        }
    }
}
