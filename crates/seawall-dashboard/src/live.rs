//! The live feed: a registry's events turned into pushes, and the Server-Sent Events stream
//! each open page reads (state changes at once, a full snapshot on every tick).

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::response::sse::Event;
use futures_util::Stream;
use seawall::CircuitBreaker;
use seawall::Clock;
use seawall::circuit_breaker::CircuitBreakerEvent;
use seawall::clock::Instant;
use seawall::registry::{Registries, RegistryEvent};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::snapshot::{self, Previous};

/// How many pushes a slow page may fall behind before it skips to the next snapshot.
const BACKLOG: usize = 256;

/// What the registry told us, for every open page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum Push {
    /// A breaker changed state.
    State {
        name: String,
        from: &'static str,
        to: &'static str,
    },
    /// An instance was added, removed, replaced or reconfigured: a new snapshot is due.
    Changed,
}

/// One registry the dashboard shows, and the pushes its listeners send.
#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) name: String,
    pub(crate) registries: Registries,
    pushes: broadcast::Sender<Push>,
}

impl Hub {
    /// Listens to `registries`: every breaker's state changes (those of breakers created later
    /// too) and every registry's changes.
    pub(crate) fn new(name: String, registries: Registries) -> Arc<Self> {
        let (pushes, _) = broadcast::channel(BACKLOG);
        let hub = Arc::new(Self {
            name,
            registries,
            pushes,
        });
        // Listeners hold the hub weakly: the registries outlive a dashboard without a cycle.
        let weak = Arc::downgrade(&hub);
        hub.registries.circuit_breakers().on_event(move |event| {
            let Some(hub) = weak.upgrade() else { return };
            match event {
                RegistryEvent::Added { name, .. } | RegistryEvent::Replaced { name, .. } => {
                    if let Some(breaker) = hub.registries.circuit_breakers().find(name) {
                        watch(&Arc::downgrade(&hub), &breaker);
                    }
                }
                _ => {}
            }
            hub.send(Push::Changed);
        });
        macro_rules! on_change {
            ($($registry:ident),*) => {$({
                let weak = Arc::downgrade(&hub);
                hub.registries.$registry().on_event(move |_| {
                    if let Some(hub) = weak.upgrade() {
                        hub.send(Push::Changed);
                    }
                });
            })*};
        }
        on_change!(
            bulkheads,
            adaptive_limiters,
            rate_limiters,
            retries,
            timeouts,
            hedges
        );
        for (_, breaker) in hub.registries.circuit_breakers().all() {
            watch(&Arc::downgrade(&hub), &breaker);
        }
        hub
    }

    fn send(&self, push: Push) {
        // No page open: nobody to tell.
        let _ = self.pushes.send(push);
    }

    /// A stream for one page: a full snapshot at once, then every push as it comes and a
    /// snapshot every `tick`, until `shutdown`.
    pub(crate) fn stream(
        self: &Arc<Self>,
        tick: Duration,
        shutdown: CancellationToken,
    ) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let feed = Feed {
            hub: self.clone(),
            pushes: self.pushes.subscribe(),
            ticks,
            previous: Previous::default(),
            clock: Clock::default(),
            last: None,
            shutdown,
        };
        futures_util::stream::unfold(feed, |mut feed| async move {
            let event = feed.next().await?;
            Some((Ok(event), feed))
        })
    }
}

/// Sends `breaker`'s state changes to the hub.
fn watch(hub: &Weak<Hub>, breaker: &CircuitBreaker) {
    let hub = hub.clone();
    breaker.on_event(move |event| {
        if let (CircuitBreakerEvent::StateTransition { name, from, to, .. }, Some(hub)) =
            (event, hub.upgrade())
        {
            hub.send(Push::State {
                name: name.to_string(),
                from: from.as_str(),
                to: to.as_str(),
            });
        }
    });
}

/// One page's position in the feed.
struct Feed {
    hub: Arc<Hub>,
    pushes: broadcast::Receiver<Push>,
    ticks: tokio::time::Interval,
    previous: Previous,
    clock: Clock,
    last: Option<Instant>,
    shutdown: CancellationToken,
}

impl Feed {
    /// The next event to send, or `None` once the host shuts down.
    async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            push = self.pushes.recv() => match push {
                Ok(Push::Changed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    Some(self.snapshot())
                }
                Ok(push @ Push::State { .. }) => Some(json_event("state", &push)),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = self.ticks.tick() => Some(self.snapshot()),
        }
    }

    fn snapshot(&mut self) -> Event {
        let now = self.clock.now();
        let mut snapshot = snapshot::read(&self.hub.name, &self.hub.registries);
        let elapsed = self.last.map(|last| now.saturating_duration_since(last));
        snapshot::fill_rates(&mut snapshot, &self.previous, elapsed);
        self.previous.remember(&snapshot);
        self.last = Some(now);
        json_event("snapshot", &snapshot)
    }
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    // Serialising our own plain structs cannot fail; an empty object keeps the stream going.
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Event::default().event(name).data(data)
}
