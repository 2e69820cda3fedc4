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
    }
}
