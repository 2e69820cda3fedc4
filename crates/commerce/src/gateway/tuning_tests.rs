use std::sync::Arc;
use std::time::Duration;

use pg_client::{CallPath, PgClientConfig};
use seawall::circuit_breaker::State;
use seawall::registry::Registries;

use super::*;
use crate::configuration::GatewaySettings;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The service's client: charge read timeout 1.5 s, bulkhead 64, slow over 1 s.
fn service_client() -> PgClientConfig {
    GatewaySettings::default_client()
}

fn limits() -> ChargeLimits {
    ChargeLimits::new(&service_client(), &ChargeTuningSettings::default())
}

#[test]
fn the_p95_is_the_nearest_rank_of_the_last_samples() {
    let settings = ChargeTuningSettings {
        sample_size: 100,
        min_samples: 1,
        ..ChargeTuningSettings::default()
    };
    let mut window = LatencyWindow::new(&settings);
    assert_eq!(window.p95(), None);
    for i in 1..=100 {
        window.push(ms(i));
    }
    assert_eq!(window.p95(), Some(ms(95)));
    // 100 more: the first hundred are gone.
    for i in 1..=100 {
        window.push(ms(1_000 + i));
    }
    assert_eq!(window.p95(), Some(ms(1_095)));
}

#[test]
fn the_window_evaluates_first_at_min_samples_then_every_n_samples() {
    let settings = ChargeTuningSettings {
        sample_size: 50,
        min_samples: 20,
        every: 10,
        ..ChargeTuningSettings::default()
    };
    let mut window = LatencyWindow::new(&settings);
    let due: Vec<usize> = (1..=45)
        .filter(|_| window.push(ms(100)).is_some())
        .collect();
    assert_eq!(due.len(), 3);
    let mut window = LatencyWindow::new(&settings);
    let at: Vec<usize> = (1..=45)
        .filter_map(|i| window.push(ms(100)).map(|_| i))
        .collect();
    assert_eq!(at, vec![20, 30, 40]);
}

#[test]
fn the_read_timeout_is_one_point_three_times_p95_between_the_configured_value_and_the_ceiling() {
    let limits = limits();
    let ceiling = Duration::from_secs(6);
    // The slow PG (2-4 s): p95 3.9 s -> 5.07 s.
    assert_eq!(limits.read_timeout_for(ms(3_900), ceiling), Some(ms(5_070)));
    // The canonical PG (p95 under 0.5 s): back to the configured 1.5 s.
    assert_eq!(limits.read_timeout_for(ms(480), ceiling), Some(ms(1_500)));
    // Never past the ceiling, and no change under 10 %.
    assert_eq!(limits.read_timeout_for(ms(9_000), ms(1_500)), Some(ceiling));
    assert_eq!(limits.read_timeout_for(ms(9_000), ceiling), None);
    assert_eq!(limits.read_timeout_for(ms(3_900), ms(5_000)), None);
}

#[test]
fn the_slow_call_threshold_follows_the_same_rule_from_the_configured_threshold() {
    let tuner = limits().slow_call_tuner();
    assert_eq!(tuner.propose(ms(3_900), Some(ms(6_000))), Some(ms(5_070)));
    assert_eq!(tuner.propose(ms(480), Some(ms(6_000))), Some(ms(1_000)));
    assert_eq!(tuner.propose(ms(60_000), None), Some(ms(6_000)));
}

#[test]
fn the_bulkhead_grows_with_the_timeout_up_to_its_ceiling() {
    let limits = limits();
    assert_eq!(limits.bulkhead_for(ms(1_500)), 64);
    assert_eq!(
        limits.bulkhead_for(ms(1_000)),
        64,
        "never under the configured size"
    );
    assert_eq!(limits.bulkhead_for(ms(3_000)), 128);
    assert_eq!(limits.bulkhead_for(ms(5_070)), 192, "the ceiling");
}

#[test]
fn an_unknown_pg_starts_at_the_ceilings() {
    assert_eq!(limits().start(), (Duration::from_secs(6), 192));
}

#[test]
fn settings_are_checked_against_the_clients_limits() {
    let client = service_client();
    ChargeTuningSettings::default().validate(&client).unwrap();
    let low = ChargeTuningSettings {
        read_timeout_ceiling_ms: 1_000,
        ..ChargeTuningSettings::default()
    };
    assert_eq!(
        low.validate(&client).unwrap_err().key(),
        "read_timeout_ceiling_ms"
    );
    let small = ChargeTuningSettings {
        bulkhead_ceiling: 10,
        ..ChargeTuningSettings::default()
    };
    assert_eq!(
        small.validate(&client).unwrap_err().key(),
        "bulkhead_ceiling"
    );
    let more_than_kept = ChargeTuningSettings {
        sample_size: 10,
        min_samples: 20,
        ..ChargeTuningSettings::default()
    };
    assert_eq!(
        more_than_kept.validate(&client).unwrap_err().key(),
        "min_samples"
    );
    let never = ChargeTuningSettings {
        every: 0,
        ..ChargeTuningSettings::default()
    };
    assert_eq!(never.validate(&client).unwrap_err().key(), "every");
}

/// A tuner over a real client (no request is sent) and its registry's breaker.
fn tuned() -> (Arc<PgClient>, ChargeTuner, Registries) {
    let config = service_client();
    let registries = Registries::default();
    let client =
        Arc::new(crate::gateway::pg::client_with_registry(config.clone(), &registries).unwrap());
    let tuner = ChargeTuner::new(
        &config,
        &ChargeTuningSettings::default(),
        registries.circuit_breakers().clone(),
    );
    tuner.attach(&client).unwrap();
    (client, tuner, registries)
}

fn slow_call_threshold(registries: &Registries) -> Option<Duration> {
    registries
        .circuit_breakers()
        .current_config(CHARGE_BREAKER)
        .unwrap()
        .slow_call_duration_threshold
}

#[test]
fn a_fast_pg_brings_the_charge_path_down_to_its_configured_limits() {
    let (client, tuner, registries) = tuned();
    assert_eq!(client.charge_read_timeout(), Duration::from_secs(6));
    assert_eq!(
        client.bulkhead(CallPath::Charge).max_concurrent_calls(),
        192
    );
    assert_eq!(
        slow_call_threshold(&registries),
        Some(Duration::from_secs(6))
    );
    let permit_wait = || client.adaptive_limiter(CallPath::Charge).config().max_wait;
    assert_eq!(permit_wait(), Duration::from_secs(3));

    for i in 0..20 {
        tuner.observe(ms(100 + 20 * i));
    }

    assert_eq!(client.charge_read_timeout(), ms(1_500));
    assert_eq!(client.bulkhead(CallPath::Charge).max_concurrent_calls(), 64);
    assert_eq!(slow_call_threshold(&registries), Some(ms(1_000)));
    assert_eq!(permit_wait(), ms(750), "half the read timeout");
}

#[test]
fn a_slow_but_working_pg_is_followed_and_the_breaker_keeps_its_state() {
    let (client, tuner, registries) = tuned();
    for _ in 0..20 {
        tuner.observe(ms(300));
    }
    let breaker = registries.circuit_breakers().find(CHARGE_BREAKER).unwrap();
    breaker.transition_to_open().unwrap();

    // The PG slows to 2-4 s; its answers keep coming.
    for i in 0..50 {
        tuner.observe(ms(2_000 + 40 * i));
    }

    let read_timeout = client.charge_read_timeout();
    assert!(read_timeout >= ms(5_000), "{read_timeout:?}");
    assert!(read_timeout <= Duration::from_secs(6));
    assert_eq!(
        client.bulkhead(CallPath::Charge).max_concurrent_calls(),
        192
    );
    assert!(slow_call_threshold(&registries).unwrap() >= ms(5_000));
    assert_eq!(
        breaker.state(),
        State::Open,
        "the tuning kept the breaker's state"
    );
}

#[test]
fn a_hanging_pg_moves_nothing() {
    let (client, tuner, registries) = tuned();
    for _ in 0..20 {
        tuner.observe(ms(300));
    }
    let before = (
        client.charge_read_timeout(),
        client.bulkhead(CallPath::Charge).max_concurrent_calls(),
        slow_call_threshold(&registries),
    );

    // A hang: every charge times out. Timeouts are not accepted attempts, so the observer
    // is never called (pg-client's `a_hanging_gateway_feeds_the_observer_nothing`), and the
    // limits stay where the last answers put them, for the breaker to count the timeouts.
    assert_eq!(
        (
            client.charge_read_timeout(),
            client.bulkhead(CallPath::Charge).max_concurrent_calls(),
            slow_call_threshold(&registries),
        ),
        before
    );
    assert_eq!(before.0, ms(1_500));
}

#[test]
fn a_dropped_client_is_not_kept_alive_by_its_tuner() {
    let (client, tuner, _registries) = tuned();
    drop(client);
    for _ in 0..20 {
        tuner.observe(ms(300));
    }
}

#[test]
fn a_second_pg_built_by_the_same_builder_gets_its_own_tuned_breakers() {
    let registries = Registries::default();
    let wiring = crate::gateway::pg::PgWiring::named("pg-charge-B", "pg-query-B");

    let gateway = crate::gateway::pg::gateway_with_registry(
        service_client(),
        &ChargeTuningSettings::default(),
        true,
        &registries,
        &wiring,
    )
    .unwrap();

    let breakers = registries.circuit_breakers();
    let threshold = breakers
        .current_config("pg-charge-B")
        .unwrap()
        .slow_call_duration_threshold;
    assert_eq!(threshold, Some(Duration::from_secs(6)), "tuned at start");
    assert!(breakers.find("pg-query-B").is_some());
    assert!(
        breakers.find(CHARGE_BREAKER).is_none(),
        "A's breaker untouched"
    );
    assert_eq!(
        gateway.client().charge_read_timeout(),
        Duration::from_secs(6)
    );
    let by_card_type = gateway.client().card_type_breakers().unwrap();
    assert!(
        by_card_type
            .entries()
            .iter()
            .all(|(_, _, breaker)| breaker.name().starts_with("pg-charge-B")),
        "card types' breakers under B's name"
    );
}
