//! The scenario catalogue: every group, its rows, and the outcome each row must produce.
//!
//! A scenario is written once, as a generic function over a [`Runner`]: the criterion benches
//! time it, the `allocs` binary counts its allocations, the `probe` binary runs one of its rows
//! under callgrind, and the tests check every row's outcome. Each row names a contender and a
//! parameter (`BenchmarkId::new(contender, param)` in criterion) and hands the runner a
//! constructor; everything a constructor does — building the contender, tripping a breaker,
//! filling a time window — happens outside the measurement.

use crate::config::TRIP_CALLS;
use crate::contender::{Baseline, Contender, FetchAdd, OpaqueBaseline, tower_baseline};
use crate::harness::{Failure, INPUT, Inner, Outcome};
use crate::ours;
use crate::peers::{self, Window};

/// One row: a contender in a group, with a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Row {
    /// The group, `<decorator>/<scenario>`.
    pub group: &'static str,
    /// The contender (`baseline`, `seawall`, `tower-resilience`, …).
    pub contender: &'static str,
    /// The scenario's parameter (window fill, thread count, configuration).
    pub param: &'static str,
}

/// Runs rows: times them, counts their allocations, checks them…
pub trait Runner {
    /// A row whose contender's state does not drift: built once, then called as often as the
    /// runner likes.
    fn steady<C: Contender>(&mut self, row: Row, make: impl FnOnce() -> C);

    /// A row whose contender's state drifts with every call (a time window that keeps filling):
    /// the runner must build a fresh contender with `make` (outside the measurement) at least
    /// every `chunk` calls.
    fn refilled<C: Contender>(&mut self, row: Row, chunk: u64, make: impl FnMut() -> C);

    /// A row whose calls are made from `threads` threads at once, on clones of one contender
    /// (clones share the decorator's state).
    fn threaded<C: Contender + Clone + Send + 'static>(
        &mut self,
        row: Row,
        threads: usize,
        make: impl FnOnce() -> C,
    );

    /// The time-window fills to run, as (parameter, calls in the window).
    fn window_fills(&self) -> &'static [(&'static str, usize)] {
        WINDOW_FILLS
    }
}

/// The time-window fills of the issue: 1k and 100k calls in the window.
pub const WINDOW_FILLS: &[(&str, usize)] = &[("1k", 1_000), ("100k", 100_000)];

/// The thread counts of the multi-thread scenario.
pub const THREADS: &[(&str, usize)] = &[("1", 1), ("2", 2), ("4", 4)];

/// A group of rows measured side by side.
#[derive(Clone, Copy, Debug)]
pub struct Group {
    /// `<decorator>/<scenario>`.
    pub name: &'static str,
    /// What is measured, for the glossary.
    pub about: &'static str,
    /// What every non-baseline row must return for [`INPUT`] (the baseline returns the value).
    pub expect: Outcome,
}

const VALUE: Outcome = match INPUT.result() {
    Ok(value) => Outcome::Value(value),
    Err(Failure) => Outcome::Failed,
};

/// Every group, in report order.
pub const GROUPS: &[Group] = &[
    Group {
        name: "circuit_breaker/closed",
        about: "closed breaker, count window of 100 calls, minimum 100 calls; a successful call is admitted and recorded",
        expect: VALUE,
    },
    Group {
        name: "circuit_breaker/closed_opaque",
        about: "as `closed`, with the inner call hidden from the optimizer (a future whose `poll` is never inlined): the decorator cannot be folded into the caller",
        expect: VALUE,
    },
    Group {
        name: "circuit_breaker/slow_calls",
        about: "as `closed`, plus a 1 s slow-call threshold: every call is timed",
        expect: VALUE,
    },
    Group {
        name: "circuit_breaker/time_window",
        about: "closed breaker with a 60 s time-based window already holding 1k or 100k calls (refilled every tenth of that, outside the measurement)",
        expect: VALUE,
    },
    Group {
        name: "circuit_breaker/open",
        about: "breaker tripped by 200 failures (open for an hour); the call is rejected without running",
        expect: Outcome::Rejected,
    },
    Group {
        name: "circuit_breaker/threads",
        about: "closed breaker (count window; `seawall-time-window`: 60 s time window; `seawall-striped`: the opt-in striped count window of the same size) shared by 1, 2 or 4 OS threads inside a multi-thread runtime with as many workers as the largest count; time is wall time per call, so throughput is its inverse",
        expect: VALUE,
    },
    Group {
        name: "bulkhead/permit_free",
        about: "25 permits, all free: take one, run, give it back",
        expect: VALUE,
    },
    Group {
        name: "adaptive/permit_free",
        about: "AIMD adaptive limit of 20, all free: take a permit, run, measure the RTT, feed the algorithm, give it back",
        expect: VALUE,
    },
    Group {
        name: "timeout/ready",
        about: "1 s timeout around a call that is ready at once",
        expect: VALUE,
    },
    Group {
        name: "retry/first_success",
        about: "3 attempts, exponential backoff from 10 ms; the first attempt succeeds",
        expect: VALUE,
    },
    Group {
        name: "retry/first_success_opaque",
        about: "as `first_success`, with the inner call hidden from the optimizer (a future whose `poll` is never inlined)",
        expect: VALUE,
    },
    Group {
        name: "fault/disabled",
        about: "fault injector switched off (error and latency rates of 1 configured), call ready at once: one atomic load; tower-resilience's chaos layer has no switch, so its row injects at rate 0",
        expect: VALUE,
    },
    Group {
        name: "hedge/no_hedge",
        about: "one hedged attempt after 100 ms around a call that is ready at once: no hedge fires",
        expect: VALUE,
    },
    Group {
        name: "stack/full",
        about: "fallback → timeout → retry → circuit breaker → bulkhead, first attempt succeeds; `-no-breaker` rows (peers) leave the breaker out",
        expect: VALUE,
    },
    Group {
        name: "stack/full_opaque",
        about: "as `full`, with the inner call hidden from the optimizer (a future whose `poll` is never inlined)",
        expect: VALUE,
    },
];

/// Runs every row of `group` through `runner`.
///
/// # Panics
///
/// If `group` is not in [`GROUPS`].
pub fn run<R: Runner>(group: &str, runner: &mut R) {
    match group {
        "circuit_breaker/closed" => breaker_closed(runner),
        "circuit_breaker/closed_opaque" => breaker_closed_opaque(runner),
        "circuit_breaker/slow_calls" => breaker_slow_calls(runner),
        "circuit_breaker/time_window" => breaker_time_window(runner),
        "circuit_breaker/open" => breaker_open(runner),
        "circuit_breaker/threads" => breaker_threads(runner),
        "bulkhead/permit_free" => bulkhead_permit_free(runner),
        "adaptive/permit_free" => adaptive_permit_free(runner),
        "timeout/ready" => timeout_ready(runner),
        "retry/first_success" => retry_first_success(runner),
        "retry/first_success_opaque" => retry_first_success_opaque(runner),
        "fault/disabled" => fault_disabled(runner),
        "hedge/no_hedge" => hedge_no_hedge(runner),
        "stack/full" => stack_full(runner),
        "stack/full_opaque" => stack_full_opaque(runner),
        other => panic!("no such group: {other}"),
    }
}

/// Runs every group.
pub fn run_all<R: Runner>(runner: &mut R) {
    for group in GROUPS {
        run(group.name, runner);
    }
}

/// The group named `name`.
pub fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|group| group.name == name)
}

const fn row(group: &'static str, contender: &'static str, param: &'static str) -> Row {
    Row {
        group,
        contender,
        param,
    }
}

/// Makes `calls` successful calls: fills a window.
fn filled<C: Contender>(mut contender: C, calls: usize) -> C {
    for _ in 0..calls {
        contender.call(INPUT);
    }
    contender
}

/// Makes [`TRIP_CALLS`] failing calls: opens a breaker.
fn tripped<C: Contender>(mut contender: C) -> C {
    for _ in 0..TRIP_CALLS {
        contender.call(Inner::FAIL);
    }
    contender
}

fn breaker_closed<R: Runner>(r: &mut R) {
    const G: &str = "circuit_breaker/closed";
    const P: &str = "count-100";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "fetch-add", P), FetchAdd::default);
    r.steady(row(G, "seawall", P), || ours::breaker(Window::Count));
    r.steady(row(G, "seawall-tower", P), || {
        ours::breaker_tower(Window::Count)
    });
    r.steady(row(G, "seawall-metrics", P), ours::breaker_with_metrics);
    r.steady(row(G, "tower-resilience", P), || {
        peers::tr_breaker(Window::Count)
    });
    r.steady(row(G, "failsafe", P), peers::failsafe_consecutive);
    r.steady(row(G, "recloser-async", P), peers::recloser_async);
    r.steady(row(G, "recloser-sync", P), peers::recloser_sync);
}

fn breaker_closed_opaque<R: Runner>(r: &mut R) {
    const G: &str = "circuit_breaker/closed_opaque";
    const P: &str = "count-100";
    r.steady(row(G, "baseline", P), || OpaqueBaseline);
    r.steady(row(G, "seawall", P), || ours::breaker_opaque(Window::Count));
    r.steady(row(G, "tower-resilience", P), || {
        peers::tr_breaker_opaque(Window::Count)
    });
    r.steady(row(G, "recloser-async", P), peers::recloser_async_opaque);
}

fn breaker_slow_calls<R: Runner>(r: &mut R) {
    const G: &str = "circuit_breaker/slow_calls";
    const P: &str = "count-100";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "seawall", P), || {
        ours::breaker(Window::CountWithSlowCalls)
    });
    r.steady(row(G, "seawall-coarse-clock", P), || {
        ours::breaker_coarse(Window::CountWithSlowCalls)
    });
    r.steady(row(G, "tower-resilience", P), || {
        peers::tr_breaker(Window::CountWithSlowCalls)
    });
}

fn breaker_time_window<R: Runner>(r: &mut R) {
    const G: &str = "circuit_breaker/time_window";
    for &(param, fill) in r.window_fills() {
        let chunk = u64::try_from(fill / 10).expect("fits").max(1);
        r.refilled(row(G, "baseline", param), chunk, || Baseline);
        r.refilled(row(G, "seawall", param), chunk, || {
            filled(ours::breaker(Window::Time), fill)
        });
        r.refilled(row(G, "seawall-coarse-clock", param), chunk, || {
            filled(ours::breaker_coarse(Window::Time), fill)
        });
        r.refilled(row(G, "tower-resilience", param), chunk, || {
            filled(peers::tr_breaker(Window::Time), fill)
        });
        r.refilled(row(G, "failsafe", param), chunk, || {
            filled(peers::failsafe_time_window(), fill)
        });
    }
}

fn breaker_open<R: Runner>(r: &mut R) {
    const G: &str = "circuit_breaker/open";
    const P: &str = "count-100";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "baseline-tower", P), tower_baseline);
    r.steady(row(G, "seawall", P), || {
        tripped(ours::breaker(Window::Count))
    });
    r.steady(row(G, "seawall-tower", P), || {
        tripped(ours::breaker_tower(Window::Count))
    });
    r.steady(row(G, "tower-resilience", P), || {
        tripped(peers::tr_breaker(Window::Count))
    });
    r.steady(row(G, "failsafe", P), || {
        tripped(peers::failsafe_consecutive())
    });
    r.steady(row(G, "recloser-async", P), || {
        tripped(peers::recloser_async())
    });
}

fn breaker_threads<R: Runner>(r: &mut R) {
    const G: &str = "circuit_breaker/threads";
    for &(param, threads) in THREADS {
        r.threaded(row(G, "baseline", param), threads, || Baseline);
        r.threaded(row(G, "seawall", param), threads, || {
            ours::breaker(Window::Count)
        });
        r.threaded(row(G, "seawall-time-window", param), threads, || {
            ours::breaker(Window::Time)
        });
        r.threaded(
            row(G, "seawall-striped", param),
            threads,
            ours::breaker_striped,
        );
        r.threaded(row(G, "tower-resilience", param), threads, || {
            peers::tr_breaker(Window::Count)
        });
        r.threaded(
            row(G, "failsafe", param),
            threads,
            peers::failsafe_consecutive,
        );
        r.threaded(
            row(G, "recloser-async", param),
            threads,
            peers::recloser_async,
        );
    }
}

fn bulkhead_permit_free<R: Runner>(r: &mut R) {
    const G: &str = "bulkhead/permit_free";
    const P: &str = "25";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "seawall", P), ours::bulkhead);
    r.steady(row(G, "seawall-tower", P), ours::bulkhead_tower);
    r.steady(row(G, "tower", P), peers::tower_concurrency_limit);
    r.steady(row(G, "tower-resilience", P), || peers::tr_bulkhead(true));
    r.steady(row(G, "tower-resilience-wait", P), || {
        peers::tr_bulkhead(false)
    });
}

fn adaptive_permit_free<R: Runner>(r: &mut R) {
    const G: &str = "adaptive/permit_free";
    const P: &str = "aimd-20";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "seawall", P), ours::adaptive);
    r.steady(row(G, "seawall-coarse-clock", P), ours::adaptive_coarse);
    r.steady(row(G, "seawall-tower", P), ours::adaptive_tower);
    r.steady(row(G, "tower-resilience", P), peers::tr_adaptive);
}

fn timeout_ready<R: Runner>(r: &mut R) {
    const G: &str = "timeout/ready";
    const P: &str = "1s";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "baseline-tower", P), tower_baseline);
    r.steady(row(G, "seawall", P), ours::timeout);
    r.steady(row(G, "seawall-tower", P), ours::timeout_tower);
    r.steady(row(G, "tower", P), peers::tower_timeout);
    r.steady(row(G, "tower-resilience", P), peers::tr_time_limiter);
}

fn hedge_no_hedge<R: Runner>(r: &mut R) {
    const G: &str = "hedge/no_hedge";
    const P: &str = "100ms";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "baseline-tower", P), tower_baseline);
    r.steady(row(G, "seawall", P), ours::hedge);
    r.steady(row(G, "seawall-tower", P), ours::hedge_tower);
    r.steady(row(G, "tower-resilience", P), peers::tr_hedge);
}

fn retry_first_success<R: Runner>(r: &mut R) {
    const G: &str = "retry/first_success";
    const P: &str = "3-attempts";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "baseline-tower", P), tower_baseline);
    r.steady(row(G, "seawall", P), ours::retry);
    r.steady(row(G, "seawall-tower", P), ours::retry_tower);
    r.steady(row(G, "tower", P), peers::tower_retry);
    r.steady(row(G, "tower-resilience", P), peers::tr_retry);
}

fn retry_first_success_opaque<R: Runner>(r: &mut R) {
    const G: &str = "retry/first_success_opaque";
    const P: &str = "3-attempts";
    r.steady(row(G, "baseline", P), || OpaqueBaseline);
    r.steady(row(G, "seawall", P), ours::retry_opaque);
    r.steady(row(G, "seawall-tower", P), ours::retry_tower_opaque);
    r.steady(row(G, "tower-resilience", P), peers::tr_retry_opaque);
}

fn fault_disabled<R: Runner>(r: &mut R) {
    const G: &str = "fault/disabled";
    const P: &str = "off";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "baseline-tower", P), tower_baseline);
    r.steady(row(G, "seawall", P), ours::fault_disabled);
    r.steady(row(G, "seawall-tower", P), ours::fault_disabled_tower);
    r.steady(row(G, "tower-resilience", P), peers::tr_chaos_idle);
}

fn stack_full<R: Runner>(r: &mut R) {
    const G: &str = "stack/full";
    const P: &str = "ready";
    r.steady(row(G, "baseline", P), || Baseline);
    r.steady(row(G, "seawall", P), ours::stack);
    r.steady(row(G, "seawall-tower", P), ours::stack_tower);
    r.steady(row(G, "tower-resilience", P), peers::tr_stack);
    r.steady(row(G, "tower-resilience-no-breaker", P), || {
        peers::tr_stack_without_breaker()
    });
    r.steady(
        row(G, "tower-no-breaker-no-fallback", P),
        peers::tower_stack,
    );
}

fn stack_full_opaque<R: Runner>(r: &mut R) {
    const G: &str = "stack/full_opaque";
    const P: &str = "ready";
    r.steady(row(G, "baseline", P), || OpaqueBaseline);
    r.steady(row(G, "seawall", P), ours::stack_opaque);
    r.steady(row(G, "seawall-tower", P), ours::stack_tower_opaque);
    r.steady(row(G, "tower-resilience", P), peers::tr_stack_opaque);
}

/// How a row is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Runner::steady`].
    Steady,
    /// [`Runner::refilled`].
    Refilled,
    /// [`Runner::threaded`].
    Threaded,
}

/// Every row of the catalogue in order, with how it is run; no contender is built.
pub fn rows() -> Vec<(Row, Kind)> {
    struct Lister(Vec<(Row, Kind)>);

    impl Runner for Lister {
        fn steady<C: Contender>(&mut self, row: Row, _make: impl FnOnce() -> C) {
            self.0.push((row, Kind::Steady));
        }

        fn refilled<C: Contender>(&mut self, row: Row, _chunk: u64, _make: impl FnMut() -> C) {
            self.0.push((row, Kind::Refilled));
        }

        fn threaded<C: Contender + Clone + Send + 'static>(
            &mut self,
            row: Row,
            _threads: usize,
            _make: impl FnOnce() -> C,
        ) {
            self.0.push((row, Kind::Threaded));
        }
    }

    let mut lister = Lister(Vec::new());
    run_all(&mut lister);
    lister.0
}
