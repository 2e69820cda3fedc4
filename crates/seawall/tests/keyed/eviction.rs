use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::circuit_breaker::State;
use seawall::clock::ManualClock;
use seawall::keyed::{Eviction, KeyedEvent};

use super::{breakers, open};

const TTL: Duration = Duration::from_secs(60);

#[test]
fn an_idle_key_is_evicted_after_the_ttl() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 100, Some(TTL));
    keyed.get("VISA");
    clock.advance(TTL - Duration::from_secs(1));
    keyed.get("AMEX");
    assert_eq!(keyed.evict_idle(), 0, "not idle yet");
    assert!(keyed.contains("VISA"));

    clock.advance(Duration::from_secs(1));
    assert_eq!(keyed.evict_idle(), 1);
    assert!(!keyed.contains("VISA"));
    assert!(keyed.contains("AMEX"));
    assert_eq!(keyed.len(), 1);
}

#[test]
fn lookups_sweep_idle_keys_by_themselves() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 100, Some(TTL));
    keyed.get("VISA");
    // The sweep runs every quarter of the TTL: the key is gone at most 1.25 TTL after its use.
    clock.advance(TTL + TTL / 4);
    keyed.get("AMEX");
    assert!(!keyed.contains("VISA"));
    assert_eq!(keyed.len(), 1);
}

#[test]
fn a_key_in_use_is_not_idle() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 100, Some(TTL));
    for _ in 0..10 {
        keyed.get("VISA");
        clock.advance(TTL / 2);
    }
    assert_eq!(keyed.evict_idle(), 0);
    assert!(keyed.contains("VISA"));
}

#[test]
fn the_least_recently_used_key_is_evicted_at_the_bound() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 3, None);
    for key in ["a", "b", "c"] {
        keyed.get(key);
        clock.advance(Duration::from_secs(1));
    }
    keyed.get("a"); // now b is the least recently used
    clock.advance(Duration::from_secs(1));
    keyed.get("d");
    assert_eq!(keyed.len(), 3);
    assert!(!keyed.contains("b"));
    for key in ["a", "c", "d"] {
        assert!(keyed.contains(key), "{key}");
    }
}

#[test]
fn an_open_breaker_is_not_evicted_while_its_neighbours_are() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 3, None);
    open(&keyed, "SAMSUNG"); // the least recently used from here on
    for n in 0..100 {
        clock.advance(Duration::from_secs(1));
        keyed.get(&format!("churn-{n}"));
        assert!(keyed.len() <= 3);
    }
    assert!(keyed.contains("SAMSUNG"));
    assert_eq!(keyed.get("SAMSUNG").state(), State::Open);
    assert!(!keyed.contains("churn-0"));
}

#[test]
fn an_open_breaker_is_not_evicted_when_idle() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 100, Some(TTL));
    open(&keyed, "SAMSUNG");
    keyed.get("VISA").transition_to_forced_open().unwrap();
    keyed.get("AMEX");
    clock.advance(TTL * 10);
    assert_eq!(keyed.evict_idle(), 1);
    assert!(!keyed.contains("AMEX"));
    assert_eq!(keyed.get("SAMSUNG").state(), State::Open);
    assert_eq!(keyed.get("VISA").state(), State::ForcedOpen);

    keyed.get("SAMSUNG").transition_to_closed().unwrap();
    clock.advance(TTL * 10);
    assert_eq!(keyed.evict_idle(), 1, "closed again, it may go");
    assert!(!keyed.contains("SAMSUNG"));
}

#[test]
fn new_keys_share_the_overflow_instance_when_every_breaker_is_open() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 2, None);
    let overflowed = Arc::new(Mutex::new(Vec::new()));
    let seen = overflowed.clone();
    keyed.on_event(move |event| {
        if let KeyedEvent::Overflowed { key } = event {
            seen.lock().unwrap().push(key.clone());
        }
    });
    open(&keyed, "a");
    open(&keyed, "b");
    let overflow = keyed.get("c");
    assert_eq!(overflow.name(), "charge[other]");
    assert_eq!(*overflowed.lock().unwrap(), ["c"]);
    assert_eq!(keyed.len(), 2);
    assert!(!keyed.contains("c"));

    keyed.get("a").transition_to_closed().unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        keyed.get("c").name(),
        "charge[c]",
        "room again: its own instance"
    );
    assert!(!keyed.contains("a"));
    assert_eq!(keyed.len(), 2);
}

#[test]
fn evictions_are_reported_with_their_reason() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 2, Some(TTL));
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let seen = evicted.clone();
    keyed.on_event(move |event| {
        if let KeyedEvent::Evicted { key, reason, .. } = event {
            seen.lock().unwrap().push((key.clone(), *reason));
        }
    });
    keyed.get("a");
    clock.advance(Duration::from_secs(1));
    keyed.get("b");
    clock.advance(Duration::from_secs(1));
    keyed.get("c");
    clock.advance(TTL * 2);
    keyed.evict_idle();
    let mut evicted = evicted.lock().unwrap().clone();
    evicted.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = [
        ("a", Eviction::Capacity),
        ("b", Eviction::Idle),
        ("c", Eviction::Idle),
    ]
    .map(|(key, reason)| (key.to_owned(), reason));
    assert_eq!(evicted, expected);
}

#[test]
fn concurrent_lookups_never_exceed_the_bound() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 64, Some(TTL));
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let keyed = keyed.clone();
            scope.spawn(move || {
                for n in 0..5_000 {
                    let key = format!("{}", (n * 7 + thread * 13) % 500);
                    assert!(keyed.get(&key).name().starts_with("charge["));
                    assert!(keyed.len() <= 64);
                }
            });
        }
    });
    assert!(keyed.len() <= 64);
}

#[test]
fn a_bulkhead_with_calls_in_flight_is_not_evicted() {
    use seawall::bulkhead::BulkheadConfig;
    use seawall::keyed::Keyed;
    use seawall::registry::Bulkheads;

    let clock = ManualClock::new();
    let keyed = Keyed::<Bulkheads>::builder(BulkheadConfig::default())
        .idle_ttl(Some(TTL))
        .clock(clock.clone().into())
        .build()
        .unwrap();
    let busy = keyed.get("merchant-1");
    let permit = busy.try_acquire().unwrap();
    keyed.get("merchant-2");
    clock.advance(TTL * 2);
    assert_eq!(keyed.evict_idle(), 1);
    assert!(keyed.contains("merchant-1"), "a call is still in flight");
    drop(permit);
    assert_eq!(keyed.evict_idle(), 1);
    assert!(keyed.is_empty());
}

#[tokio::test]
async fn a_rate_limiter_that_spent_its_permits_is_not_evicted() {
    use seawall::keyed::Keyed;
    use seawall::rate_limiter::RateLimiterConfig;
    use seawall::registry::RateLimiters;

    let clock = ManualClock::new();
    let mut config = RateLimiterConfig::default();
    config.limit_for_period = 1;
    config.limit_refresh_period = TTL * 10;
    config.timeout = Duration::ZERO;
    let keyed = Keyed::<RateLimiters>::builder(config)
        .max_keys(1)
        .max_labelled_keys(1)
        .idle_ttl(None)
        .clock(clock.clone().into())
        .build()
        .unwrap();
    let limiter = keyed.get("client-1");
    limiter.call(|| async { Ok::<(), ()>(()) }).await.unwrap();
    assert_eq!(limiter.available_permits(), 0);
    // A churning client cannot reset its limit: the new key shares the overflow limiter.
    assert_eq!(keyed.get("client-2").name(), "keyed[other]");
    assert!(keyed.contains("client-1"));
    clock.advance(TTL * 10);
    assert_eq!(
        keyed.get("client-2").name(),
        "keyed[client-2]",
        "refilled: it may go"
    );
    assert!(!keyed.contains("client-1"));
}

#[test]
fn a_listener_may_look_keys_up_while_keys_are_evicted() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 2, None);
    let inner = keyed.clone();
    keyed.on_event(move |event| {
        if let KeyedEvent::Evicted { key, .. } = event {
            // At the bound: this lookup starts an eviction pass of its own.
            inner.get(&format!("{key}-again"));
        }
    });
    for key in ["a", "b", "c"] {
        clock.advance(Duration::from_secs(1));
        keyed.get(key);
    }
    assert!(keyed.len() <= 2);
}
