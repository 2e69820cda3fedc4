//! Memory stays bounded however many distinct keys pass.

use seawall::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
use seawall::clock::ManualClock;
use seawall::keyed::Keyed;
use seawall::registry::CircuitBreakers;

const KEYS: u64 = 1_000_000;
const MAX_KEYS: usize = 10_000;
/// The stated bound: 10 000 breakers with their 20-call windows, map slots and names, and
/// an eviction pass's scratch vector, stay under 16 MiB (measured: 12.2 MiB peak; 8.1 MiB before
/// each breaker had its window table, 10.4 MiB before its shared probe slots and rejection
/// origins; 16.9 MiB while the origins were built eagerly and a count window was padded to the
/// time window's 128-byte alignment).
const MEMORY_BOUND: u64 = 16 << 20;

#[test]
fn memory_is_bounded_under_a_million_distinct_keys() {
    let clock = ManualClock::new();
    let mut peak_len = 0;
    let mut keyed = None;
    let allocations = allocation_counter::measure(|| {
        // A per-issuer breaker: the last 20 calls (a window's first chunk is allocated with
        // the breaker, so a smaller window also keeps the debug build's test fast).
        let mut template = CircuitBreakerConfig::default();
        template.sliding_window = SlidingWindow::Count(20);
        template.minimum_number_of_calls = 10;
        let breakers = Keyed::<CircuitBreakers, u64>::builder(template)
            .name("issuer")
            .max_keys(MAX_KEYS)
            .clock(clock.clone().into())
            .build()
            .unwrap();
        for key in 0..KEYS {
            let breaker = breakers.get(&key);
            if key % 1_000 == 0 {
                // Spread the keys over time so the least recently used is well defined.
                clock.advance(std::time::Duration::from_millis(2));
                assert_eq!(breaker.state(), seawall::circuit_breaker::State::Closed);
            }
            peak_len = peak_len.max(breakers.len());
        }
        keyed = Some(breakers);
    });
    let keyed = keyed.unwrap();
    assert_eq!(peak_len, MAX_KEYS, "never more instances than the bound");
    assert!(keyed.contains(&(KEYS - 1)), "the newest key is live");
    assert!(!keyed.contains(&0), "the oldest key is gone");
    assert!(
        allocations.bytes_max < MEMORY_BOUND,
        "peak {} bytes over the stated {MEMORY_BOUND}",
        allocations.bytes_max
    );
    println!(
        "1M keys through {MAX_KEYS} slots: peak {} KiB, live {} KiB, {} allocations",
        allocations.bytes_max >> 10,
        allocations.bytes_current >> 10,
        allocations.count_total
    );
}
