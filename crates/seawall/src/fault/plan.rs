//! What a call gets, decided from the configuration and random draws alone (no clock, no
//! future), so that the rates and the seeded sequence are tested exactly and synchronously.

use std::time::Duration;

use super::FaultConfig;

/// What happens to a call once any injected delay is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// The operation runs.
    Run,
    /// The call fails with an injected error.
    Fail,
    /// The call returns an injected outcome (if the injector has one).
    Replace,
}

/// The faults drawn for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// A delay before the action.
    pub(crate) delay: Option<Duration>,
    pub(crate) action: Action,
}

#[cfg(test)]
impl Plan {
    /// Nothing injected.
    pub(crate) const RUN: Self = Self {
        delay: None,
        action: Action::Run,
    };
}

/// 2⁵³: a rate is compared with the top 53 bits of a draw, so that 1.0 always hits.
const SCALE: f64 = (1u64 << 53) as f64;

/// Whether a draw hits `rate` (a probability in `[0, 1]`). A rate of 0 never hits and takes no
/// draw; any other rate takes exactly one.
fn hit(rate: f64, draw: &mut impl FnMut() -> u64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    // Validation keeps the rate in (0, 1] here, so the product is in (0, 2⁵³].
    let threshold = (rate * SCALE) as u64;
    (draw() >> 11) < threshold
}

/// The faults for one call of an enabled injector configured with `config`: one draw per
/// configured kind, in the order latency, error, outcome (so a run is reproducible from the
/// seed whatever was drawn).
pub(crate) fn plan(config: &FaultConfig, mut draw: impl FnMut() -> u64) -> Plan {
    let delay = hit(config.latency_injection_rate, &mut draw).then_some(config.latency_duration);
    let fail = hit(config.error_injection_rate, &mut draw);
    let replace = hit(config.outcome_injection_rate, &mut draw);
    let action = if fail {
        Action::Fail
    } else if replace {
        Action::Replace
    } else {
        Action::Run
    };
    Plan { delay, action }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{RandomSource, SplitMix64};

    fn count(config: &FaultConfig, seed: u64, calls: usize, what: impl Fn(Plan) -> bool) -> usize {
        let random = SplitMix64::seeded(seed);
        (0..calls)
            .filter(|_| what(plan(config, || random.next_u64())))
            .count()
    }

    #[test]
    fn a_rate_of_one_always_hits_and_zero_never_draws() {
        let config = FaultConfig::new().error(1.0);
        let mut draws = 0;
        for value in [0, u64::MAX, 1 << 63] {
            let plan = plan(&config, || {
                draws += 1;
                value
            });
            assert_eq!(plan.action, Action::Fail);
            assert_eq!(plan.delay, None);
        }
        assert_eq!(draws, 3, "only the error kind draws");
        let nothing = FaultConfig::new();
        assert_eq!(plan(&nothing, || unreachable!("no draw")), Plan::RUN);
    }

    #[test]
    fn each_kind_hits_at_about_its_rate() {
        let config = FaultConfig::new()
            .error(0.1)
            .latency(0.3, Duration::from_millis(5))
            .outcome(0.5);
        let calls = 100_000;
        let errors = count(&config, 1, calls, |p| p.action == Action::Fail);
        let delays = count(&config, 1, calls, |p| p.delay.is_some());
        // An outcome is replaced only when no error was drawn: 0.9 × 0.5.
        let replaced = count(&config, 1, calls, |p| p.action == Action::Replace);
        let near = |got: usize, rate: f64| (got as f64 / calls as f64 - rate).abs() < 0.01;
        assert!(near(errors, 0.1), "errors {errors}");
        assert!(near(delays, 0.3), "delays {delays}");
        assert!(near(replaced, 0.45), "replaced {replaced}");
    }

    #[test]
    fn a_draw_below_the_threshold_hits_and_one_at_it_does_not() {
        let config = FaultConfig::new().error(0.5);
        let half = 1u64 << 63;
        assert_eq!(plan(&config, || half - 1).action, Action::Fail);
        assert_eq!(plan(&config, || half).action, Action::Run);
    }

    #[test]
    fn an_injected_error_wins_over_an_injected_outcome() {
        let config = FaultConfig::new().error(1.0).outcome(1.0);
        assert_eq!(plan(&config, || 0).action, Action::Fail);
    }
}
