//! The dependency model: pure decisions as functions of `(state, request time, draws)`.
//!
//! The dependency is a FIFO queue in front of `workers` workers. A request arriving at `now`
//! starts when the earliest worker is free (or at once with unlimited workers) and finishes a
//! sampled latency later; the answer, an error kind drawn from the phase's rates, is given at
//! the finish. Like a thread-pool server (the canonical PG's 8 threads and unbounded backlog),
//! the dependency does not notice a caller that gave up: queued work still runs. Because of
//! that, a request's start and finish are known when it arrives, and no task runs the server.
//!
//! Outages: `hang` swallows requests (they neither answer nor take a worker), `refuse`
//! answers at once with an error, `slow` multiplies the latency, `flap` alternates healthy and
//! down stretches, counted from the start of its phase.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;

use crate::rng::Rng;
use crate::scenario::{Dependency, Dur, FlapMode, Latency, Outage, Phase};

/// Nanoseconds since the start of the run.
pub type Nanos = u64;

/// Converts a duration to nanoseconds (saturating).
pub fn nanos(duration: Duration) -> Nanos {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// What the dependency does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Never answers.
    Hang,
    /// Refused at once (outage `refuse`).
    Refused,
    /// Refused at once: the queue is full.
    QueueFull,
    /// Answers at `finish`, after starting the work at `start`; `error` is an index into
    /// the error kinds, `None` for a success.
    Answer {
        /// When a worker picks the request up.
        start: Nanos,
        /// When the answer arrives.
        finish: Nanos,
        /// The error kind, if the answer is an error.
        error: Option<u16>,
    },
}

/// A latency distribution ready to draw from.
#[derive(Clone, Debug)]
pub enum Sampler {
    /// Always this.
    Fixed(Nanos),
    /// Uniform in `[min, max]`.
    Uniform(Nanos, Nanos),
    /// `exp(mu + sigma·z)` seconds.
    Lognormal {
        /// The log of the median, in seconds.
        mu: f64,
        /// The spread.
        sigma: f64,
    },
    /// An inverse CDF: `(quantile, nanos)` points, quantiles from 0 to 1.
    Table(Vec<(f64, f64)>),
}

/// The z-score of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

impl Sampler {
    /// The sampler for `latency` (already validated).
    pub fn new(latency: &Latency) -> Self {
        match latency {
            Latency::Fixed(d) => Self::Fixed(nanos(d.0)),
            Latency::Uniform { min, max } => Self::Uniform(nanos(min.0), nanos(max.0)),
            Latency::Lognormal { median, p99 } => {
                let median = median.0.as_secs_f64();
                Self::Lognormal {
                    mu: median.ln(),
                    sigma: (p99.0.as_secs_f64() / median).ln() / Z99,
                }
            }
            Latency::Percentiles(table) => {
                Self::Table(percentile_points(table).unwrap_or_default())
            }
        }
    }

    /// One latency draw.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn sample(&self, rng: &mut Rng) -> Nanos {
        match self {
            Self::Fixed(n) => *n,
            Self::Uniform(min, max) => min + ((max - min) as f64 * rng.unit()) as u64,
            Self::Lognormal { mu, sigma } => {
                let secs = (mu + sigma * rng.normal()).exp();
                (secs * 1e9).min(3.6e12) as u64
            }
            Self::Table(points) => {
                let u = rng.unit();
                let at = points
                    .partition_point(|(q, _)| *q <= u)
                    .clamp(1, points.len() - 1);
                let (q0, v0) = points[at - 1];
                let (q1, v1) = points[at];
                let t = if q1 > q0 { (u - q0) / (q1 - q0) } else { 0.0 };
                (v0 + (v1 - v0) * t) as u64
            }
        }
    }
}

/// The points of a percentile table (`p50`, `p99.9`, …), sorted, from `p0` to `p100`.
///
/// # Errors
///
/// A key that is not `p` and a number in `[0, 100]`, latencies that fall as the percentile
/// rises, or an empty table.
#[allow(clippy::cast_precision_loss)]
pub fn percentile_points(table: &BTreeMap<String, Dur>) -> Result<Vec<(f64, f64)>, String> {
    let mut points = Vec::with_capacity(table.len() + 2);
    for (key, value) in table {
        let q: f64 = key
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .filter(|q: &f64| (0.0..=100.0).contains(q))
            .ok_or_else(|| {
                format!("`{key}`: keys are `p` and a percentile in [0, 100], e.g. p99")
            })?;
        points.push((q / 100.0, value.0.as_nanos() as f64));
    }
    if points.is_empty() {
        return Err("give at least one percentile".to_owned());
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if points.windows(2).any(|w| w[1].1 < w[0].1) {
        return Err("latencies must not fall as the percentile rises".to_owned());
    }
    if points[0].0 > 0.0 {
        points.insert(0, (0.0, 0.0));
    }
    if let Some(&(q, v)) = points.last()
        && q < 1.0
    {
        points.push((1.0, v));
    }
    Ok(points)
}

/// One phase's dependency, ready to answer requests.
#[derive(Clone, Debug)]
pub struct PhaseModel {
    /// When the phase starts.
    pub start: Nanos,
    /// When it ends.
    pub end: Nanos,
    /// The phase's label.
    pub name: String,
    /// Open loop: calls per second.
    pub rate: Option<f64>,
    latency: Sampler,
    /// Cumulative error probabilities, with their kind index.
    errors: Vec<(f64, u16)>,
    outage: Option<Outage>,
}

impl PhaseModel {
    /// The models of all phases, and the error kinds they name (indexed by `Reply::error`).
    pub fn build(
        dependency: &Dependency,
        phases: &[Phase],
        base_rate: Option<f64>,
    ) -> (Vec<Self>, Vec<String>) {
        let mut kinds: Vec<String> = Vec::new();
        let mut models = Vec::with_capacity(phases.len());
        let mut start = 0;
        for (index, phase) in phases.iter().enumerate() {
            let errors = phase.errors.as_ref().unwrap_or(&dependency.errors);
            let mut cumulative = 0.0;
            let mut table = Vec::new();
            for (kind, rate) in errors {
                let at = kinds.iter().position(|k| k == kind).unwrap_or_else(|| {
                    kinds.push(kind.clone());
                    kinds.len() - 1
                });
                cumulative += rate;
                table.push((cumulative, u16::try_from(at).unwrap_or(u16::MAX)));
            }
            let end = start + nanos(phase.duration.0);
            models.push(Self {
                start,
                end,
                name: phase
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("phase {}", index + 1)),
                rate: phase.rate.or(base_rate),
                latency: Sampler::new(phase.latency.as_ref().unwrap_or(&dependency.latency)),
                errors: table,
                outage: phase.outage.clone(),
            });
            start = end;
        }
        (models, kinds)
    }

    /// What the phase's outage does to a request at `now`: `Some(reply)` short-circuits it,
    /// `None` lets it through with the latency multiplied by the returned factor.
    fn outage_at(&self, now: Nanos) -> Result<f64, Reply> {
        match &self.outage {
            None => Ok(1.0),
            Some(Outage::Hang) => Err(Reply::Hang),
            Some(Outage::Refuse) => Err(Reply::Refused),
            Some(Outage::Slow { factor }) => Ok(*factor),
            Some(Outage::Flap { up, down, mode }) => {
                let up = nanos(up.0);
                let period = up + nanos(down.0);
                if (now - self.start) % period < up {
                    Ok(1.0)
                } else {
                    Err(match mode {
                        FlapMode::Hang => Reply::Hang,
                        FlapMode::Refuse => Reply::Refused,
                    })
                }
            }
        }
    }

    /// Whether the dependency is down (hang or refuse) at `now`.
    pub fn is_down_at(&self, now: Nanos) -> bool {
        self.outage_at(now).is_err()
    }
}

/// The dependency's capacity: the workers' free times and the queue.
#[derive(Clone, Debug)]
pub struct Server {
    /// When each worker is next free (`None`: unlimited workers).
    free: Option<BinaryHeap<Reverse<Nanos>>>,
    /// Start times of requests accepted and not yet started, in order.
    waiting: VecDeque<Nanos>,
    queue: Option<usize>,
}

impl Server {
    /// A server with `workers` workers (absent: unlimited) and room for `queue` waiting
    /// requests (absent: unbounded).
    pub fn new(workers: Option<u32>, queue: Option<u32>) -> Self {
        Self {
            free: workers.map(|n| (0..n).map(|_| Reverse(0)).collect()),
            waiting: VecDeque::new(),
            queue: queue.map(|q| q as usize),
        }
    }

    /// Requests waiting for a worker at `now`.
    pub fn queued(&mut self, now: Nanos) -> usize {
        while self.waiting.front().is_some_and(|&start| start <= now) {
            self.waiting.pop_front();
        }
        self.waiting.len()
    }

    /// The reply to a request arriving at `now` in `phase`.
    pub fn request(&mut self, now: Nanos, phase: &PhaseModel, rng: &mut Rng) -> Reply {
        let factor = match phase.outage_at(now) {
            Ok(factor) => factor,
            Err(reply) => return reply,
        };
        let queued = self.queued(now);
        let Some(free) = &mut self.free else {
            return Self::answer(now, now, factor, phase, rng);
        };
        let Some(Reverse(earliest)) = free.peek().copied() else {
            return Reply::QueueFull;
        };
        let start = earliest.max(now);
        if start > now && self.queue.is_some_and(|cap| queued >= cap) {
            return Reply::QueueFull;
        }
        let reply = Self::answer(now, start, factor, phase, rng);
        if let Reply::Answer { finish, .. } = reply {
            free.pop();
            free.push(Reverse(finish));
            if start > now {
                self.waiting.push_back(start);
            }
        }
        reply
    }

    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    fn answer(_now: Nanos, start: Nanos, factor: f64, phase: &PhaseModel, rng: &mut Rng) -> Reply {
        let mut latency = phase.latency.sample(rng);
        if (factor - 1.0).abs() > f64::EPSILON {
            latency = (latency as f64 * factor) as u64;
        }
        let error = if phase.errors.is_empty() {
            None
        } else {
            let u = rng.unit();
            phase
                .errors
                .iter()
                .find(|(cum, _)| u < *cum)
                .map(|(_, kind)| *kind)
        };
        Reply::Answer {
            start,
            finish: start.saturating_add(latency),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;

    fn phase(latency: Latency, outage: Option<Outage>) -> PhaseModel {
        let dependency = Dependency {
            workers: None,
            queue: None,
            latency,
            errors: BTreeMap::new(),
        };
        let phases = [Phase {
            name: None,
            duration: Dur(Duration::from_secs(60)),
            rate: None,
            latency: None,
            errors: None,
            outage,
        }];
        PhaseModel::build(&dependency, &phases, Some(1.0))
            .0
            .remove(0)
    }

    const MS: Nanos = 1_000_000;

    #[test]
    fn eight_workers_queue_the_ninth_request_until_the_first_is_done() {
        let p = phase(Latency::Fixed(Dur(Duration::from_millis(100))), None);
        let mut server = Server::new(Some(8), None);
        let mut rng = Rng::new(1);
        for _ in 0..8 {
            assert!(matches!(
                server.request(0, &p, &mut rng),
                Reply::Answer { start: 0, .. }
            ));
        }
        assert_eq!(
            server.request(MS, &p, &mut rng),
            Reply::Answer {
                start: 100 * MS,
                finish: 200 * MS,
                error: None
            }
        );
        assert_eq!(server.queued(MS), 1);
        assert_eq!(server.queued(100 * MS), 0);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let p = phase(Latency::Fixed(Dur(Duration::from_millis(100))), None);
        let mut server = Server::new(Some(1), Some(1));
        let mut rng = Rng::new(1);
        assert!(matches!(
            server.request(0, &p, &mut rng),
            Reply::Answer { .. }
        ));
        assert!(matches!(
            server.request(0, &p, &mut rng),
            Reply::Answer {
                start: 100_000_000,
                ..
            }
        ));
        assert_eq!(server.request(0, &p, &mut rng), Reply::QueueFull);
    }

    #[test]
    fn a_flapping_dependency_alternates_up_and_down() {
        let flap = Outage::Flap {
            up: Dur(Duration::from_secs(2)),
            down: Dur(Duration::from_secs(1)),
            mode: FlapMode::Refuse,
        };
        let p = phase(Latency::Fixed(Dur(Duration::from_millis(1))), Some(flap));
        assert!(!p.is_down_at(1_999 * MS));
        assert!(p.is_down_at(2_000 * MS));
        assert!(!p.is_down_at(3_000 * MS));
    }

    #[test]
    fn a_percentile_table_is_interpolated_between_its_points() {
        let table: BTreeMap<String, Dur> = [
            ("p50".to_owned(), Dur(Duration::from_millis(100))),
            ("p100".to_owned(), Dur(Duration::from_millis(300))),
        ]
        .into_iter()
        .collect();
        let sampler = Sampler::new(&Latency::Percentiles(table));
        let mut rng = Rng::new(3);
        let mut draws: Vec<Nanos> = (0..10_000).map(|_| sampler.sample(&mut rng)).collect();
        draws.sort_unstable();
        let median = draws[5_000];
        assert!((95 * MS..=105 * MS).contains(&median), "median {median}");
        assert!(draws[9_999] <= 300 * MS);
    }

    #[test]
    fn a_lognormal_latency_has_the_median_and_p99_it_was_given() {
        let sampler = Sampler::new(&Latency::Lognormal {
            median: Dur(Duration::from_millis(200)),
            p99: Dur(Duration::from_secs(1)),
        });
        let mut rng = Rng::new(9);
        let mut draws: Vec<Nanos> = (0..20_000).map(|_| sampler.sample(&mut rng)).collect();
        draws.sort_unstable();
        assert!((190 * MS..=210 * MS).contains(&draws[10_000]));
        assert!((900 * MS..=1_100 * MS).contains(&draws[19_800]));
    }
}
