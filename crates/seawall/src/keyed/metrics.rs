//! `metrics` output of keyed breakers, with a bounded number of labels (feature `metrics`).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use metrics::{Counter, Gauge, Label, counter, gauge};

use super::{Keyed, KeyedEvent, OTHER_LABEL, lock};
use crate::CircuitBreaker;
use crate::circuit_breaker::State;
use crate::registry::CircuitBreakers;

/// Calls by outcome: successful, failed, ignored, not permitted.
type Totals = [u64; 4];

fn totals(breaker: &CircuitBreaker) -> Totals {
    let totals = &breaker.shared().totals;
    [
        totals.successful.load(Ordering::Relaxed),
        totals.failed.load(Ordering::Relaxed),
        totals.ignored.load(Ordering::Relaxed),
        totals.not_permitted.load(Ordering::Relaxed),
    ]
}

fn add(sum: &mut Totals, more: Totals) {
    for (sum, more) in sum.iter_mut().zip(more) {
        *sum = sum.saturating_add(more);
    }
}

struct LabelHandles {
    calls: [Counter; 4],
    states: [(State, Gauge); 6],
}

impl LabelHandles {
    fn register(name: &str, label: &str) -> Self {
        let base = [
            Label::new("name", name.to_owned()),
            Label::new("key", label.to_owned()),
        ];
        let with = |key: &'static str, value: &'static str| {
            let mut labels = base.to_vec();
            labels.push(Label::new(key, value));
            labels
        };
        let calls = |kind| counter!("seawall_keyed_circuitbreaker_calls", with("kind", kind));
        Self {
            calls: [
                calls("successful"),
                calls("failed"),
                calls("ignored"),
                counter!(
                    "seawall_keyed_circuitbreaker_not_permitted_calls",
                    base.to_vec()
                ),
            ],
            states: State::ALL.map(|state| {
                (
                    state,
                    gauge!(
                        "seawall_keyed_circuitbreaker_state",
                        with("state", state.label())
                    ),
                )
            }),
        }
    }
}

#[derive(Default)]
struct Books {
    /// What evicted breakers counted, by label, so counters never go back.
    retired: HashMap<Arc<str>, Totals>,
    handles: HashMap<Arc<str>, LabelHandles>,
    instances: Option<Gauge>,
}

/// `metrics` output for a [`Keyed`] set of circuit breakers, one series per label: at most
/// [`max_labelled_keys`](super::KeyedConfig::max_labelled_keys) keys and the
/// [`OTHER_LABEL`] bucket, however many keys pass.
///
/// | metric | type | labels | value |
/// |---|---|---|---|
/// | `seawall_keyed_circuitbreaker_calls` | counter | `name`, `key`, `kind` = `successful` / `failed` / `ignored` | calls recorded by the label's breakers, evicted ones included |
/// | `seawall_keyed_circuitbreaker_not_permitted_calls` | counter | `name`, `key` | calls rejected |
/// | `seawall_keyed_circuitbreaker_state` | gauge | `name`, `key`, `state` | how many of the label's live breakers are in that state (0 or 1 for a key of its own) |
/// | `seawall_keyed_instances` | gauge | `name` | keys with an instance of their own |
///
/// `name` is the set's [name](Keyed::name), `key` the key's [label](Keyed::label). Handles are
/// taken from the recorder installed when [`publish`](Self::publish) first sees a label.
///
/// # Examples
///
/// ```
/// use seawall::circuit_breaker::CircuitBreakerConfig;
/// use seawall::keyed::{Keyed, KeyedMetrics};
/// use seawall::registry::CircuitBreakers;
///
/// let breakers = Keyed::<CircuitBreakers>::builder(CircuitBreakerConfig::default()).build()?;
/// let metrics = KeyedMetrics::new(&breakers); // counts calls from now on
/// breakers.get("VISA");
/// metrics.publish(); // before each scrape
/// # Ok::<(), seawall::ConfigError>(())
/// ```
pub struct KeyedMetrics<Q> {
    keyed: Keyed<CircuitBreakers, Q>,
    books: Arc<Mutex<Books>>,
}

impl<Q> Clone for KeyedMetrics<Q> {
    fn clone(&self) -> Self {
        Self {
            keyed: self.keyed.clone(),
            books: self.books.clone(),
        }
    }
}

impl<Q> fmt::Debug for KeyedMetrics<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedMetrics")
            .field("name", &self.keyed.inner.name)
            .finish_non_exhaustive()
    }
}

impl<Q> KeyedMetrics<Q>
where
    Q: Hash + Eq + Clone + fmt::Display + fmt::Debug + Send + Sync + 'static,
{
    /// Counts the calls of every breaker of `keyed` from now on, present and future. This
    /// turns on the breakers' call totals (one atomic add per call).
    pub fn new(keyed: &Keyed<CircuitBreakers, Q>) -> Self {
        let books = Arc::new(Mutex::new(Books::default()));
        let weak: Weak<Mutex<Books>> = Arc::downgrade(&books);
        keyed.on_event(move |event| match event {
            KeyedEvent::Created { instance, .. } => instance.shared().track_totals(),
            KeyedEvent::Evicted {
                label, instance, ..
            } => {
                if let Some(books) = weak.upgrade() {
                    let mut books = lock(&books);
                    add(
                        books.retired.entry(label.clone()).or_default(),
                        totals(instance),
                    );
                }
            }
            _ => {}
        });
        keyed.inner.overflow.shared().track_totals();
        for (_, _, breaker) in keyed.entries() {
            breaker.shared().track_totals();
        }
        Self {
            keyed: keyed.clone(),
            books,
        }
    }

    /// Refreshes every counter and gauge from the live breakers. Call it before each scrape.
    pub fn publish(&self) {
        let other: Arc<str> = OTHER_LABEL.into();
        let mut live: HashMap<Arc<str>, (Totals, [u32; 6])> = HashMap::new();
        let overflow = self.keyed.overflow();
        let breakers = self.keyed.entries();
        let count = breakers.len();
        let all = breakers
            .into_iter()
            .map(|(_, label, breaker)| (label, breaker))
            .chain([(other, overflow)]);
        for (label, breaker) in all {
            let (sum, states) = live.entry(label).or_default();
            add(sum, totals(&breaker));
            let state = breaker.state();
            if let Some(index) = State::ALL.iter().position(|s| *s == state) {
                states[index] += 1;
            }
        }
        let name = self.keyed.name();
        let mut books = lock(&self.books);
        let books = &mut *books;
        books
            .instances
            .get_or_insert_with(|| {
                gauge!(
                    "seawall_keyed_instances",
                    vec![Label::new("name", name.to_owned())]
                )
            })
            .set(count as f64);
        for (label, retired) in &books.retired {
            live.entry(label.clone())
                .or_default()
                .0
                .iter_mut()
                .zip(retired)
                .for_each(|(sum, retired)| *sum = sum.saturating_add(*retired));
        }
        for (label, (sum, states)) in live {
            let handles = books
                .handles
                .entry(label.clone())
                .or_insert_with(|| LabelHandles::register(name, &label));
            for (counter, value) in handles.calls.iter().zip(sum) {
                counter.absolute(value);
            }
            for ((_, gauge), count) in handles.states.iter().zip(states) {
                gauge.set(f64::from(count));
            }
        }
    }
}
