//! The pure decision logic: given the config, the forced faults and a seeded RNG, what happens
//! to a request. No clock, no I/O, no sleeping, so it can be tested statistically in
//! microseconds and replayed exactly from a seed.

use std::time::Duration;

use crate::config::{OutcomeWeights, SimConfig};
use crate::fault::{ActiveFaults, Fault, HeaderFaults, Trigger};
use crate::model::{CardType, Outcome};
use crate::rng::SimRng;

/// Everything decided for one payment request before any waiting happens.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentPlan {
    /// Faults active for this request (forced and rolled).
    pub faults: ActiveFaults,
    /// Latency to wait before answering (the slow latency when `slow` is active).
    pub latency: Duration,
    /// The canonical pre-create 500 was rolled (`request.fail_rate`).
    pub fail_before_create: bool,
    /// The outcome processing will give the transaction.
    pub outcome: Outcome,
    /// Time from creation to the outcome.
    pub processing_delay: Duration,
}

/// Everything decided for one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPlan {
    /// Faults active for this query.
    pub faults: ActiveFaults,
    /// Latency to wait before answering.
    pub latency: Duration,
}

/// Makes every random decision from one seeded generator.
#[derive(Clone, Debug)]
pub struct Decider {
    rng: SimRng,
}

impl Decider {
    /// A decider whose decisions are fixed by `seed` (for a fixed sequence of calls).
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SimRng::seed_from_u64(seed),
        }
    }

    /// Plans a payment request.
    ///
    /// `forced` are the header and magic-card faults; rolled faults come from
    /// `faults.rates`, the card outage from `faults.card_outages`, then the canonical fail
    /// rate. `suppress_random` (header `none`) skips every roll except latency and outcome.
    pub fn plan_payment(
        &mut self,
        config: &SimConfig,
        forced: &ActiveFaults,
        suppress_random: bool,
        card_type: CardType,
    ) -> PaymentPlan {
        let mut faults = forced.clone();
        if !suppress_random {
            for (fault, p) in &config.faults.rates {
                if self.rng.chance(*p) {
                    faults.insert(*fault, Trigger::Rate, None);
                }
            }
            let outage = config
                .faults
                .card_outages
                .get(&card_type)
                .copied()
                .unwrap_or(0.0);
            if self.rng.chance(outage) {
                faults.insert(Fault::CardOutage, Trigger::Rate, None);
            }
        }
        let latency = self.latency(config, &faults, &config.request.latency);
        let fail_before_create = !suppress_random && self.rng.chance(config.request.fail_rate);
        let outcome =
            forced_outcome(&faults).unwrap_or_else(|| self.outcome(config.processing.outcomes));
        let processing_delay = config.processing.delay.sample(&mut self.rng);
        PaymentPlan {
            faults,
            latency,
            fail_before_create,
            outcome,
            processing_delay,
        }
    }

    /// Plans a query: rolled faults from `faults.query_rates` plus the forced ones.
    pub fn plan_query(
        &mut self,
        config: &SimConfig,
        forced: &ActiveFaults,
        suppress_random: bool,
    ) -> QueryPlan {
        let mut faults = forced.clone();
        if !suppress_random {
            for (fault, p) in &config.faults.query_rates {
                if self.rng.chance(*p) {
                    faults.insert(*fault, Trigger::Rate, None);
                }
            }
        }
        let latency = self.latency(config, &faults, &config.query.latency);
        QueryPlan { faults, latency }
    }

    /// Draws an outcome from the weights.
    pub fn outcome(&mut self, weights: OutcomeWeights) -> Outcome {
        let total = u64::from(weights.success)
            + u64::from(weights.limit_exceeded)
            + u64::from(weights.invalid_card);
        if total == 0 {
            return Outcome::Success;
        }
        let roll = self.rng.range_inclusive(1, total);
        // Same partition as the canonical 1..100 roll: limit exceeded, invalid card, success.
        if roll <= u64::from(weights.limit_exceeded) {
            Outcome::LimitExceeded
        } else if roll <= u64::from(weights.limit_exceeded) + u64::from(weights.invalid_card) {
            Outcome::InvalidCard
        } else {
            Outcome::Success
        }
    }

    /// Random bits for key suffixes and the like.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn latency(
        &mut self,
        config: &SimConfig,
        faults: &ActiveFaults,
        normal: &crate::config::Latency,
    ) -> Duration {
        match faults.get(Fault::Slow) {
            Some(slow) => match slow.param {
                Some(ms) => Duration::from_millis(ms),
                None => config.faults.slow_latency.sample(&mut self.rng),
            },
            None => normal.sample(&mut self.rng),
        }
    }
}

/// The outcome forced by `approve`, `limit-exceeded` or `invalid-card`, first one wins.
fn forced_outcome(faults: &ActiveFaults) -> Option<Outcome> {
    faults.iter().find_map(|a| match a.fault {
        Fault::Approve => Some(Outcome::Success),
        Fault::LimitExceeded => Some(Outcome::LimitExceeded),
        Fault::InvalidCard => Some(Outcome::InvalidCard),
        _ => None,
    })
}

/// Collects the forced faults of a request: header items first, then the magic card.
/// Faults that do not apply to the endpoint are ignored.
pub(crate) fn forced_faults(
    header: &HeaderFaults,
    magic: Option<Fault>,
    applies: impl Fn(Fault) -> bool,
) -> ActiveFaults {
    let mut faults = ActiveFaults::new();
    for (fault, param) in &header.faults {
        if applies(*fault) {
            faults.insert(*fault, Trigger::Header, *param);
        }
    }
    if let Some(fault) = magic.filter(|f| applies(*f)) {
        faults.insert(fault, Trigger::MagicCard, None);
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Latency;

    fn share(count: usize, total: usize) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let s = count as f64 / total as f64;
        s
    }

    #[test]
    fn ten_thousand_canonical_decisions_land_within_two_points_of_the_configured_rates() {
        // Arrange
        let config = SimConfig::canonical();
        let mut decider = Decider::new(20_250_816);
        let n = 10_000;
        let (mut failed, mut success, mut limit, mut invalid) = (0, 0, 0, 0);
        let mut latency_sum = Duration::ZERO;
        // Act
        for _ in 0..n {
            let plan = decider.plan_payment(&config, &ActiveFaults::new(), false, CardType::Kb);
            assert!(plan.latency >= Duration::from_millis(100));
            assert!(plan.latency <= Duration::from_millis(500));
            assert!(plan.processing_delay >= Duration::from_secs(1));
            assert!(plan.processing_delay <= Duration::from_secs(5));
            latency_sum += plan.latency;
            if plan.fail_before_create {
                failed += 1;
                continue;
            }
            match plan.outcome {
                Outcome::Success => success += 1,
                Outcome::LimitExceeded => limit += 1,
                Outcome::InvalidCard => invalid += 1,
            }
        }
        // Assert: per POST 40 % 500, 42 % success, 12 % limit, 6 % invalid card (±2 points)
        for (name, got, want) in [
            ("500", share(failed, n), 0.40),
            ("success", share(success, n), 0.42),
            ("limit", share(limit, n), 0.12),
            ("invalid", share(invalid, n), 0.06),
        ] {
            assert!((got - want).abs() <= 0.02, "{name}: {got} vs {want}");
        }
        let mean_ms = latency_sum.as_secs_f64() * 1000.0 / 10_000.0;
        assert!((mean_ms - 300.0).abs() < 8.0, "mean latency {mean_ms}");
    }

    #[test]
    fn configured_fault_rates_are_honoured_within_two_points() {
        let mut config = SimConfig::instant();
        config.faults.rates.insert(Fault::ErrorAfterCreate, 0.25);
        config.faults.rates.insert(Fault::DropCallback, 0.10);
        config.processing.outcomes = OutcomeWeights {
            success: 50,
            limit_exceeded: 50,
            invalid_card: 0,
        };
        let mut decider = Decider::new(99);
        let (mut after, mut dropped, mut ok) = (0, 0, 0);
        for _ in 0..10_000 {
            let plan = decider.plan_payment(&config, &ActiveFaults::new(), false, CardType::Kb);
            after += usize::from(plan.faults.contains(Fault::ErrorAfterCreate));
            dropped += usize::from(plan.faults.contains(Fault::DropCallback));
            ok += usize::from(plan.outcome == Outcome::Success);
            assert!(!plan.fail_before_create);
            assert_ne!(plan.outcome, Outcome::InvalidCard);
        }
        assert!((share(after, 10_000) - 0.25).abs() <= 0.02);
        assert!((share(dropped, 10_000) - 0.10).abs() <= 0.02);
        assert!((share(ok, 10_000) - 0.50).abs() <= 0.02);
    }

    #[test]
    fn forced_faults_and_none_override_the_dice() {
        let mut config = SimConfig::canonical();
        config.request.fail_rate = 1.0;
        config.faults.rates.insert(Fault::DropCallback, 1.0);
        let mut forced = ActiveFaults::new();
        forced.insert(Fault::InvalidCard, Trigger::Header, None);
        forced.insert(Fault::Slow, Trigger::Header, Some(1234));
        let mut decider = Decider::new(1);
        let plan = decider.plan_payment(&config, &forced, true, CardType::Samsung);
        assert!(!plan.fail_before_create);
        assert!(!plan.faults.contains(Fault::DropCallback));
        assert_eq!(plan.outcome, Outcome::InvalidCard);
        assert_eq!(plan.latency, Duration::from_millis(1234));
        let plan = decider.plan_payment(&config, &forced, false, CardType::Samsung);
        assert!(plan.fail_before_create);
        assert!(plan.faults.contains(Fault::DropCallback));
    }

    #[test]
    fn a_card_outage_hits_only_its_card_type() {
        let mut config = SimConfig::instant();
        config.faults.card_outages.insert(CardType::Samsung, 1.0);
        let mut decider = Decider::new(5);
        let none = ActiveFaults::new();
        assert!(
            decider
                .plan_payment(&config, &none, false, CardType::Samsung)
                .faults
                .contains(Fault::CardOutage)
        );
        assert!(
            !decider
                .plan_payment(&config, &none, false, CardType::Hyundai)
                .faults
                .contains(Fault::CardOutage)
        );
    }

    #[test]
    fn the_same_seed_replays_the_same_plans() {
        let mut config = SimConfig::canonical();
        config.faults.rates.insert(Fault::Slow, 0.3);
        config.faults.slow_latency = Latency::fixed(Duration::from_secs(2));
        let run = |seed| {
            let mut d = Decider::new(seed);
            (0..200)
                .map(|_| d.plan_payment(&config, &ActiveFaults::new(), false, CardType::Kb))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }
}
