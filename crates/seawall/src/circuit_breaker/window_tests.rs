//! Property and concurrency tests of the windows: the bit-packed ring against a plain list of
//! the last n outcomes, and the stripes of a time window.

mod ring {
    use super::super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    proptest! {
        /// The bit-packed ring holds exactly the last `size` outcomes, whatever their order
        /// and however often it went round.
        #[test]
        fn the_ring_counts_exactly_the_last_n_outcomes(
            size in 1u32..200,
            outcomes in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..600),
        ) {
            let window = CountWindow::new(size);
            let mut last: VecDeque<(bool, bool)> = VecDeque::new();
            for (step, &(failure, slow)) in outcomes.iter().enumerate() {
                let replaced = window.record(failure, slow);
                prop_assert_eq!(replaced, step >= size as usize);
                last.push_back((failure, slow));
                if last.len() > size as usize {
                    last.pop_front();
                }
                let mut expected = Counts::default();
                for &(failure, slow) in &last {
                    expected.add(code(failure, slow));
                }
                prop_assert_eq!(window.counts(), expected);
            }
            let newest: Vec<u8> = last.iter().map(|&(f, s)| code(f, s)).collect();
            prop_assert_eq!(window.newest(size as usize), newest);
            window.clear();
            prop_assert_eq!(window.counts(), Counts::default());
            prop_assert!(window.newest(size as usize).is_empty());
        }
    }
}

mod stripes {
    use super::super::*;
    use std::time::Duration;

    #[test]
    fn threads_recording_into_their_stripes_add_up_exactly() {
        let window = TimeWindow::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Instant::ZERO,
        );
        let at = Instant::from_nanos(500_000_000);
        std::thread::scope(|scope| {
            for thread in 0..6u64 {
                let window = &window;
                scope.spawn(move || {
                    for call in 0..1_000u64 {
                        let failure = (call + thread) % 4 == 0;
                        window.record(code(failure, call % 10 == 0), at);
                    }
                });
            }
        });
        assert_eq!(
            window.counts(at),
            Counts {
                calls: 6_000,
                failures: 1_500,
                slow: 600,
                slow_failures: (0..6u64)
                    .flat_map(|thread| (0..1_000u64).map(move |call| (thread, call)))
                    .filter(|(thread, call)| (call + thread) % 4 == 0 && call % 10 == 0)
                    .count() as u64,
            }
        );
        let total: u64 = window.stripes.iter().map(|s| s.totals.load().calls).sum();
        assert_eq!(total, 6_000, "the stripes' totals are the window's");
        // All of it expires together, whichever stripe holds it.
        assert_eq!(
            window.counts(Instant::from_nanos(11_000_000_000)),
            Counts::default()
        );
        window.record(code(true, false), Instant::from_nanos(11_000_000_000));
        window.clear(Instant::from_nanos(11_000_000_000));
        assert_eq!(
            window.counts(Instant::from_nanos(11_000_000_000)),
            Counts::default()
        );
    }

    #[test]
    fn a_resized_time_window_keeps_the_buckets_of_every_stripe() {
        let second = Duration::from_secs(1);
        let old = Window::new(SlidingWindow::time(5 * second), Instant::ZERO);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| old.record(true, false, || Instant::ZERO));
            }
        });
        let new = old.resized(SlidingWindow::time(3 * second), Instant::ZERO);
        assert_eq!(new.counts(|| Instant::ZERO).failures, 3);
        assert!(
            !new.record(false, false, || Instant::ZERO),
            "the copied failures are marked too"
        );
    }

    #[test]
    fn a_success_is_settled_only_while_the_window_holds_no_failure_or_slow_call() {
        let second = Duration::from_secs(1);
        let at = |s: u64| Instant::from_nanos(s * 1_000_000_000);
        let window = TimeWindow::new(3 * second, second, at(0));
        assert!(window.record(code(false, false), at(0)));
        window.record(code(true, false), at(1));
        assert!(
            !window.record(code(false, false), at(1)),
            "a failure is held"
        );
        window.record(code(false, true), at(2));
        // Period 4 retires period 1's failure; period 2's slow call is still held.
        assert!(!window.record(code(false, false), at(4)));
        // Period 5 retires the slow call.
        assert!(window.record(code(false, false), at(5)));
        window.record(code(true, true), at(5));
        assert!(!window.record(code(false, false), at(5)));
        window.clear(at(5));
        assert!(window.record(code(false, false), at(5)), "a cleared window");
        window.record(code(true, false), at(6));
        assert!(
            window.record(code(false, false), at(60)),
            "a long idle expires everything at once"
        );
    }

    #[test]
    fn a_success_writes_only_its_own_stripe() {
        let window = TimeWindow::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Instant::ZERO,
        );
        let at = Instant::from_nanos(500_000_000);
        let words = |window: &TimeWindow| {
            window
                .stripes
                .iter()
                .map(|stripe| stripe.totals.load())
                .collect::<Vec<_>>()
        };
        let before = words(&window);
        let marks = window.marks.0.load(Ordering::Relaxed);
        let head = window.head.load(Ordering::Relaxed);
        std::thread::scope(|scope| {
            scope.spawn(|| window.record(code(false, false), at));
        });
        let after = words(&window);
        let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert_eq!(changed, 1, "one stripe's totals moved");
        assert_eq!(window.marks.0.load(Ordering::Relaxed), marks);
        assert_eq!(window.head.load(Ordering::Relaxed), head);
    }

    #[test]
    fn the_shared_words_of_a_time_window_are_on_lines_of_their_own() {
        assert_eq!(std::mem::align_of::<TimeWindow>(), 128);
        assert_eq!(std::mem::align_of::<time::Stripe>(), 128);
        let window = TimeWindow::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Instant::ZERO,
        );
        let marks = std::ptr::from_ref(&window.marks) as usize;
        let head = std::ptr::from_ref(&window.head) as usize;
        assert_eq!(marks % 128, 0);
        assert!(marks.abs_diff(head) >= 128, "marks and head apart");
        for stripe in window.stripes.iter() {
            assert_eq!(std::ptr::from_ref(stripe) as usize % 128, 0);
        }
    }
}

mod striped {
    use super::super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// The sizes of the stripes of `window`.
    fn sizes(window: &StripedCountWindow) -> Vec<u64> {
        window
            .stripes
            .iter()
            .map(|ring| u64::from(ring.0.size))
            .collect()
    }

    proptest! {
        /// Once every stripe is full, the striped window's failures and slow calls are
        /// those of the exact last n calls ± the stripes' skew, whatever the interleaving;
        /// before that it reports min(calls seen, n) calls; and a success it calls settled
        /// raises nothing.
        #[test]
        fn the_striped_window_stays_within_the_skew_of_the_exact_last_n_calls(
            size in 1u32..120,
            stripes in 1usize..=8,
            calls in proptest::collection::vec(
                (0usize..8, any::<bool>(), any::<bool>(), 0u8..4),
                0..700,
            ),
        ) {
            let window = StripedCountWindow::with_stripes(size, stripes);
            let count = window.stripe_count();
            let shares = sizes(&window);
            prop_assert_eq!(shares.iter().sum::<u64>(), u64::from(size));
            prop_assert!(count.is_power_of_two() && count <= stripes && count <= size as usize);
            let mut last: VecDeque<(usize, bool, bool)> = VecDeque::new();
            let mut seen = vec![0u64; count];
            for &(stripe, failure, slow, bias) in &calls {
                // Skew the interleaving: a biased draw goes to stripe 0.
                let stripe = if bias == 0 { 0 } else { stripe % count };
                let before = window.counts();
                let settled = window.record_in(stripe, failure, slow);
                seen[stripe] += 1;
                last.push_back((stripe, failure, slow));
                if last.len() > size as usize {
                    last.pop_front();
                }
                let counts = window.counts();
                if settled && !failure && !slow {
                    prop_assert_eq!(counts.calls, before.calls);
                    prop_assert!(counts.failures <= before.failures);
                    prop_assert!(counts.slow <= before.slow);
                }
                let total: u64 = seen.iter().sum();
                prop_assert_eq!(counts.calls, total.min(u64::from(size)));
                prop_assert!(counts.failures <= counts.calls && counts.slow <= counts.calls);
                if seen.iter().zip(&shares).all(|(seen, share)| seen >= share) {
                    let mut per_stripe = vec![0u64; count];
                    let (mut failures, mut slow_calls) = (0u64, 0u64);
                    for &(stripe, failure, slow) in &last {
                        per_stripe[stripe] += 1;
                        failures += u64::from(failure);
                        slow_calls += u64::from(slow);
                    }
                    let skew: u64 = per_stripe
                        .iter()
                        .zip(&shares)
                        .map(|(&held, &share)| held.saturating_sub(share))
                        .sum();
                    prop_assert_eq!(counts.calls, u64::from(size));
                    prop_assert!(counts.failures.abs_diff(failures) <= skew,
                        "failures {} against exact {} with skew {}", counts.failures, failures, skew);
                    prop_assert!(counts.slow.abs_diff(slow_calls) <= skew,
                        "slow {} against exact {} with skew {}", counts.slow, slow_calls, skew);
                    if skew == 0 {
                        prop_assert_eq!(counts.failures, failures);
                    }
                }
            }
            window.clear();
            prop_assert_eq!(window.counts(), Counts::default());
        }
    }

    #[test]
    fn one_thread_alone_meets_the_minimum_after_n_calls_at_the_rate_of_its_newest_calls() {
        let window = StripedCountWindow::with_stripes(100, 4);
        for call in 0..100 {
            window.record_in(0, call >= 75, false);
        }
        // Stripe 0 holds its newest 25 calls, all failures; 100 calls were seen.
        let counts = window.counts();
        assert_eq!(counts.calls, 100);
        assert_eq!(
            counts.failures, 100,
            "the rate of the newest 25 calls: 100 %"
        );
        for _ in 0..25 {
            window.record_in(0, false, false);
        }
        assert_eq!(window.counts().failures, 0);
    }

    #[test]
    fn threads_recording_at_once_into_an_unfilled_striped_window_add_up_exactly() {
        let window = StripedCountWindow::new(10_000);
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let window = &window;
                scope.spawn(move || {
                    for call in 0..500u64 {
                        window.record((call + thread) % 5 == 0, call % 10 == 0);
                    }
                });
            }
        });
        let counts = window.counts();
        assert_eq!(counts.calls, 2_000);
        assert_eq!(counts.failures, 400);
        assert_eq!(counts.slow, 200);
    }

    #[test]
    fn a_resized_striped_window_keeps_each_stripes_newest_calls() {
        let old = Window::new(SlidingWindow::striped_count(8), Instant::ZERO);
        for _ in 0..8 {
            old.record(true, false, || Instant::ZERO);
        }
        let new = old.resized(SlidingWindow::striped_count(16), Instant::ZERO);
        assert!(new.has_shape(SlidingWindow::striped_count(16)));
        let Window::StripedCount(striped) = &old else {
            panic!("a striped window")
        };
        // The calls the old stripes held (not the calls they had seen) move over.
        let held: u64 = striped
            .stripes
            .iter()
            .map(|ring| ring.0.counts().calls)
            .sum();
        let counts = new.counts(|| Instant::ZERO);
        assert_eq!((counts.calls, counts.failures), (held, held));
    }
}
