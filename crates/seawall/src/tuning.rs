//! Tuning helpers: adjust a breaker's slow-call threshold from observed latency.
//!
//! The rule: every few minutes, take the P95 latency of the calls, propose
//! `1.3 × P95` clamped to `[1 s, 10 s]`, and change the threshold only when the proposal
//! differs from the current value by at least 10 % (so it does not flap), logging every
//! change. The change goes through the registry's live reconfiguration, so the breaker keeps
//! its state and a `ConfigChanged` event records the old and new values.

use std::time::Duration;

use crate::registry::{CircuitBreakers, Registry, RegistryError};

/// Proposes slow-call thresholds from observed latency. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowCallTuner {
    /// The multiple of the P95 latency to propose (default 1.3).
    pub factor: f64,
    /// The smallest threshold to propose (default 1 s).
    pub min: Duration,
    /// The largest threshold to propose (default 10 s).
    pub max: Duration,
    /// The smallest relative change worth making (default 0.10 = 10 %).
    pub min_change: f64,
}

impl Default for SlowCallTuner {
    fn default() -> Self {
        Self {
            factor: 1.3,
            min: Duration::from_secs(1),
            max: Duration::from_secs(10),
            min_change: 0.10,
        }
    }
}

/// A threshold change made by [`SlowCallTuner::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdChange {
    /// The breaker's name.
    pub name: String,
    /// The P95 latency the change was computed from.
    pub p95: Duration,
    /// The threshold before (`None`: slow-call tracking was off).
    pub old: Option<Duration>,
    /// The threshold after.
    pub new: Duration,
}

impl SlowCallTuner {
    /// The threshold to use for `p95`, if it differs enough from `current`.
    pub fn propose(&self, p95: Duration, current: Option<Duration>) -> Option<Duration> {
        let proposed = p95.mul_f64(self.factor).clamp(self.min, self.max);
        match current {
            Some(current) if !current.is_zero() => {
                let change =
                    (proposed.as_secs_f64() - current.as_secs_f64()).abs() / current.as_secs_f64();
                (change >= self.min_change).then_some(proposed)
            }
            _ => Some(proposed),
        }
    }

    /// Applies the proposal for `p95` to breaker `name` through `registry`, if it differs
    /// enough; returns the change made, if any (also logged with the `tracing` feature).
    ///
    /// # Errors
    ///
    /// An unknown breaker.
    pub fn apply(
        &self,
        registry: &Registry<CircuitBreakers>,
        name: &str,
        p95: Duration,
    ) -> Result<Option<ThresholdChange>, RegistryError> {
        let current = registry.current_config(name)?;
        let old = current.slow_call_duration_threshold;
        let Some(new) = self.propose(p95, old) else {
            return Ok(None);
        };
        registry.update(name, |mut config| {
            config.slow_call_duration_threshold = Some(new);
            Ok(config)
        })?;
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "seawall::tuning",
            name, p95 = ?p95, old = ?old, new = ?new,
            "slow-call threshold tuned"
        );
        Ok(Some(ThresholdChange {
            name: name.to_owned(),
            p95,
            old,
            new,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn proposals_are_one_point_three_times_p95_clamped() {
        let tuner = SlowCallTuner::default();
        assert_eq!(tuner.propose(ms(2_000), None), Some(ms(2_600)));
        assert_eq!(tuner.propose(ms(100), None), Some(ms(1_000)), "clamped up");
        assert_eq!(
            tuner.propose(ms(20_000), None),
            Some(ms(10_000)),
            "clamped down"
        );
    }

    #[test]
    fn changes_under_ten_percent_are_not_worth_making() {
        let tuner = SlowCallTuner::default();
        // 1.3 × 2000 = 2600 vs 2400: 8.3 % — keep.
        assert_eq!(tuner.propose(ms(2_000), Some(ms(2_400))), None);
        // vs 2363: exactly 10 % or more — change.
        assert_eq!(tuner.propose(ms(2_000), Some(ms(2_360))), Some(ms(2_600)));
    }

    #[test]
    fn tuning_goes_through_live_reconfiguration_and_keeps_state() {
        let registry = Registry::<CircuitBreakers>::new();
        let breaker = registry.get_or_create("pg");
        breaker.transition_to_open().unwrap();
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        registry.on_event(move |event| sink.lock().unwrap().push(event.clone()));

        let change = SlowCallTuner::default()
            .apply(&registry, "pg", ms(3_000))
            .unwrap()
            .unwrap();
        assert_eq!(change.old, Some(Duration::from_secs(60)));
        assert_eq!(change.new, ms(3_900));
        assert_eq!(
            breaker.config().slow_call_duration_threshold,
            Some(ms(3_900))
        );
        assert_eq!(
            breaker.state(),
            crate::circuit_breaker::State::Open,
            "state kept"
        );
        assert_eq!(events.lock().unwrap().len(), 1, "one ConfigChanged event");

        let again = SlowCallTuner::default()
            .apply(&registry, "pg", ms(3_100))
            .unwrap();
        assert_eq!(again, None, "3.9 s vs 4.03 s: under 10 %");
    }
}
