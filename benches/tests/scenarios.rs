//! Every row of the catalogue does what its group says: a closed breaker returns the value, an
//! open one rejects, and so on. Benchmarks measure, they don't assert — these tests only check
//! that each row measures what its name claims, once, with no timing involved.

use std::collections::HashSet;

use benches::contender::Contender;
use benches::harness::{INPUT, Outcome, current_thread_runtime, multi_thread_runtime, on_threads};
use benches::scenarios::{self, GROUPS, Row, Runner};
use tokio::runtime::Runtime;

/// Calls each row a few times and records what it returned.
struct Checker {
    runtime: Runtime,
    multi: Runtime,
    seen: Vec<(Row, Outcome)>,
}

impl Checker {
    fn new() -> Self {
        Self {
            runtime: current_thread_runtime(),
            multi: multi_thread_runtime(2),
            seen: Vec::new(),
        }
    }

    fn check_calls<C: Contender>(&mut self, row: Row, contender: &mut C) {
        let first = contender.call(INPUT);
        for _ in 0..3 {
            assert_eq!(contender.call(INPUT), first, "{row:?} changed its answer");
        }
        let awaited = self.runtime.block_on(contender.call_awaited(INPUT));
        assert_eq!(awaited, first, "{row:?} answers differently when awaited");
        self.seen.push((row, first));
    }
}

impl Runner for Checker {
    fn steady<C: Contender>(&mut self, row: Row, make: impl FnOnce() -> C) {
        let mut contender = {
            let _entered = self.runtime.enter();
            make()
        };
        let _entered = self.runtime.enter();
        self.check_calls(row, &mut contender);
    }

    fn refilled<C: Contender>(&mut self, row: Row, chunk: u64, mut make: impl FnMut() -> C) {
        assert!(chunk > 0, "{row:?}: empty chunk");
        let mut contender = {
            let _entered = self.runtime.enter();
            make()
        };
        let _entered = self.runtime.enter();
        self.check_calls(row, &mut contender);
    }

    fn threaded<C: Contender + Clone + Send + 'static>(
        &mut self,
        row: Row,
        threads: usize,
        make: impl FnOnce() -> C,
    ) {
        let mut contender = {
            let _entered = self.multi.enter();
            make()
        };
        // The threads really run, and every call answers like a single-thread one.
        on_threads(&self.multi, &contender, threads, 1, 100, |calls| calls());
        let outcome = self.multi.block_on(contender.call_awaited(INPUT));
        self.seen.push((row, outcome));
    }

    fn window_fills(&self) -> &'static [(&'static str, usize)] {
        // 100k calls into tower-resilience's O(n) window take minutes in a debug build.
        &[("1k", 1_000)]
    }
}

#[test]
fn every_row_returns_what_its_group_promises() {
    let mut checker = Checker::new();
    scenarios::run_all(&mut checker);
    assert!(!checker.seen.is_empty());
    for (row, outcome) in &checker.seen {
        let group = scenarios::group(row.group).expect("a catalogued group");
        let expected = if row.contender.starts_with("baseline") {
            Outcome::Value(42)
        } else {
            group.expect
        };
        assert_eq!(*outcome, expected, "{row:?}");
    }
}

#[test]
fn every_group_has_a_baseline_row_per_parameter_and_unique_rows() {
    let mut checker = Checker::new();
    scenarios::run_all(&mut checker);
    let rows: Vec<Row> = checker.seen.iter().map(|(row, _)| *row).collect();
    let unique: HashSet<Row> = rows.iter().copied().collect();
    assert_eq!(unique.len(), rows.len(), "duplicate rows");
    for group in GROUPS {
        let params: HashSet<&str> = rows
            .iter()
            .filter(|row| row.group == group.name)
            .map(|row| row.param)
            .collect();
        assert!(!params.is_empty(), "{} has no rows", group.name);
        for param in params {
            assert!(
                rows.contains(&Row {
                    group: group.name,
                    contender: "baseline",
                    param
                }),
                "{} / {param} has no baseline row",
                group.name
            );
        }
    }
}

#[test]
fn group_names_are_decorator_slash_scenario() {
    for group in GROUPS {
        let parts: Vec<&str> = group.name.split('/').collect();
        assert_eq!(parts.len(), 2, "{}", group.name);
        assert!(parts.iter().all(|part| !part.is_empty()), "{}", group.name);
    }
}
