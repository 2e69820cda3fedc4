//! The policy under test: the real seawall decorators, built from the scenario's document.
//!
//! Only the decorators the document names for the instance take part, composed in the order
//! the crate recommends: retry → circuit breaker → hedge → bulkhead → adaptive limiter →
//! per-attempt timeout. (`Registries::policy` would create a missing one from its defaults,
//! e.g. a retry of 3 attempts the scenario never asked for.)

use std::sync::{Arc, Mutex, PoisonError};

use seawall::circuit_breaker::{CircuitBreakerEvent, Outcome, State};
use seawall::policy::BoxPolicy;
use seawall::registry::{BuildContext, Registries};
use seawall::{ConfigError, Error, ErrorKind, Policy};

use crate::model::Nanos;
use crate::scenario::Loaded;

/// The error the simulated dependency answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepError {
    /// An error kind of the scenario (an index into its kinds).
    Kind(u16),
    /// Refused by an outage.
    Refused,
    /// Refused: the queue was full.
    QueueFull,
}

impl std::fmt::Display for DepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kind(kind) => write!(f, "dependency error kind {kind}"),
            Self::Refused => f.write_str("connection refused"),
            Self::QueueFull => f.write_str("dependency queue full"),
        }
    }
}

impl std::error::Error for DepError {}

/// The type-erased policy the lab drives.
pub type LabPolicy = BoxPolicy<(), DepError>;

/// What the decorators reported through their events.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Breaker transitions: when, from, to.
    pub transitions: Vec<(Nanos, State, State)>,
    /// Calls the breaker did not permit.
    pub breaker_rejections: u64,
    /// Retries started.
    pub retries: u64,
    /// Retries the budget refused.
    pub retry_budget_refusals: u64,
    /// Hedged attempts started.
    pub hedges: u64,
    /// Calls the bulkhead rejected.
    pub bulkhead_rejections: u64,
    /// Calls the adaptive limiter rejected.
    pub limiter_rejections: u64,
    /// The adaptive limit's changes: when, new limit.
    pub limits: Vec<(Nanos, usize)>,
    /// Per-attempt timeouts.
    pub timeouts: u64,
    /// Slow-call thresholds set by the tuner: when, the new threshold.
    pub tunings: Vec<(Nanos, std::time::Duration)>,
}

/// The decorators present, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Present {
    /// A retry.
    pub retry: bool,
    /// A circuit breaker.
    pub breaker: bool,
    /// A hedge.
    pub hedge: bool,
    /// A bulkhead.
    pub bulkhead: bool,
    /// An adaptive limiter.
    pub adaptive: bool,
    /// A timeout.
    pub timeout: bool,
}

/// The built policy, its registries, and what its events report.
#[derive(Debug)]
pub struct Built {
    /// The policy.
    pub policy: LabPolicy,
    /// The registries it was built from.
    pub registries: Registries,
    /// What the decorators reported.
    pub observed: Arc<Mutex<Observed>>,
    /// Which decorators take part.
    pub present: Present,
}

/// Builds `opt_chain!(builder; method(option), …)`: adds each decorator that is `Some`.
macro_rules! opt_chain {
    ($builder:expr;) => {
        LabPolicy::new($builder.build())
    };
    ($builder:expr; $method:ident($opt:ident) $(, $rest:ident($rest_opt:ident))*) => {
        match $opt {
            Some(decorator) => opt_chain!($builder.$method(decorator); $($rest($rest_opt)),*),
            None => opt_chain!($builder; $($rest($rest_opt)),*),
        }
    };
}

/// Builds the registries and the policy of `loaded`, subscribed to their events; `now`
/// gives the simulated time for event timestamps.
///
/// # Errors
///
/// A value the registries refuse, named by its key.
pub fn build(
    loaded: &Loaded,
    error_kinds: &[String],
    now: impl Fn() -> Nanos + Send + Sync + Clone + 'static,
) -> Result<Built, ConfigError> {
    let context = BuildContext::default().seed(loaded.scenario.seed);
    let registries = Registries::from_document(&loaded.document, context)
        .map_err(|err| err.under("policy.document"))?;
    let name = loaded.scenario.policy.instance.as_str();
    let observed = Arc::new(Mutex::new(Observed::default()));
    let retry = registries.retries().find(name);
    let breaker = registries.circuit_breakers().find(name);
    let hedge = registries.hedges().find(name);
    let bulkhead = registries.bulkheads().find(name);
    let adaptive = registries.adaptive_limiters().find(name);
    let timeout = registries.timeouts().find(name);
    let present = Present {
        retry: retry.is_some(),
        breaker: breaker.is_some(),
        hedge: hedge.is_some(),
        bulkhead: bulkhead.is_some(),
        adaptive: adaptive.is_some(),
        timeout: timeout.is_some(),
    };
    let record = {
        let observed = observed.clone();
        move |f: &dyn Fn(&mut Observed)| {
            f(&mut observed.lock().unwrap_or_else(PoisonError::into_inner));
        }
    };
    if let Some(breaker) = &breaker {
        let (record, now) = (record.clone(), now.clone());
        breaker.on_event(move |event| match event {
            CircuitBreakerEvent::StateTransition { from, to, .. } => {
                let at = now();
                record(&|o| o.transitions.push((at, *from, *to)));
            }
            CircuitBreakerEvent::CallNotPermitted { .. } => {
                record(&|o| o.breaker_rejections += 1);
            }
            _ => {}
        });
    }
    if let Some(retry) = &retry {
        let record = record.clone();
        retry.on_event(move |event| match event {
            seawall::retry::RetryEvent::Retrying { .. } => record(&|o| o.retries += 1),
            seawall::retry::RetryEvent::GaveUp {
                reason: seawall::GaveUp::BudgetExhausted,
                ..
            } => record(&|o| o.retry_budget_refusals += 1),
            _ => {}
        });
    }
    if let Some(hedge) = &hedge {
        let record = record.clone();
        hedge.on_event(move |event| {
            if let seawall::hedge::HedgeEvent::Started { .. } = event {
                record(&|o| o.hedges += 1);
            }
        });
    }
    if let Some(bulkhead) = &bulkhead {
        let record = record.clone();
        bulkhead.on_event(move |event| {
            if let seawall::bulkhead::BulkheadEvent::Rejected { .. } = event {
                record(&|o| o.bulkhead_rejections += 1);
            }
        });
    }
    if let Some(adaptive) = &adaptive {
        let (record, now) = (record.clone(), now);
        adaptive.on_event(move |event| match event {
            seawall::adaptive::AdaptiveLimiterEvent::Rejected { .. } => {
                record(&|o| o.limiter_rejections += 1);
            }
            seawall::adaptive::AdaptiveLimiterEvent::LimitChanged { to, .. } => {
                let at = now();
                record(&|o| o.limits.push((at, *to)));
            }
            _ => {}
        });
    }
    if let Some(timeout) = &timeout {
        let record = record.clone();
        timeout.on_event(move |_| record(&|o| o.timeouts += 1));
    }
    let retry = retry.map(|retry| {
        let rule = RetryRule::new(loaded.scenario.policy.retry_on.as_deref(), error_kinds);
        retry.retry_error_if(move |error: &Error<DepError>| rule.retries(error))
    });
    let adaptive = adaptive.map(|limiter| {
        let rule = RetryRule::new(loaded.scenario.policy.limit_drops.as_deref(), error_kinds);
        let default = loaded.scenario.policy.limit_drops.is_none();
        limiter.classify(move |result: &Result<(), Error<DepError>>| match result {
            Ok(()) => Outcome::Success,
            Err(_) if default => Outcome::Failure,
            Err(error) if rule.retries(error) => Outcome::Failure,
            Err(_) => Outcome::Ignored,
        })
    });
    let policy = opt_chain!(Policy::builder();
        retry(retry), circuit_breaker(breaker), hedge(hedge), bulkhead(bulkhead),
        adaptive_limiter(adaptive), timeout(timeout));
    Ok(Built {
        policy,
        registries,
        observed,
        present,
    })
}

/// Which errors a list of names (`policy.retry_on`, `policy.limit_drops`) picks.
#[derive(Clone, Debug)]
struct RetryRule {
    /// `None`: seawall's default.
    kinds: Option<Vec<bool>>,
    refused: bool,
    queue_full: bool,
    timeout: bool,
    rejected: bool,
}

impl RetryRule {
    fn new(retry_on: Option<&[String]>, error_kinds: &[String]) -> Self {
        let has = |name: &str| retry_on.is_none_or(|list| list.iter().any(|n| n == name));
        Self {
            kinds: retry_on.map(|list| error_kinds.iter().map(|k| list.contains(k)).collect()),
            refused: has("refused"),
            queue_full: has("queue_full"),
            timeout: has("timeout"),
            rejected: has("rejected"),
        }
    }

    fn retries(&self, error: &Error<DepError>) -> bool {
        match error.kind() {
            ErrorKind::CircuitOpen | ErrorKind::RetriesExhausted => false,
            ErrorKind::Timeout => self.timeout,
            ErrorKind::BulkheadFull | ErrorKind::LimitExceeded => self.rejected,
            ErrorKind::Inner => match error.inner() {
                Some(DepError::Kind(kind)) => self
                    .kinds
                    .as_ref()
                    .is_none_or(|kinds| kinds.get(usize::from(*kind)).copied().unwrap_or(false)),
                Some(DepError::Refused) => self.refused,
                Some(DepError::QueueFull) => self.queue_full,
                None => false,
            },
            _ => self.kinds.is_none(),
        }
    }
}
