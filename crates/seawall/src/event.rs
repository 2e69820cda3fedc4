//! Event listeners: the hook every decorator offers for logging, metrics and tests.
//!
//! Events are emitted on the unusual paths only (a retry, a rejection, a timeout, a fallback),
//! never for an ordinary successful call, so a listener never costs the happy path anything.
//! With no listener registered an event is not even constructed. With the `tracing` feature,
//! each event is also logged under a stable target (`seawall::retry`, `seawall::bulkhead`, …).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// An event a decorator emits.
pub(crate) trait Event: fmt::Debug + Send + Sync + 'static {
    /// Logs the event with `tracing` (feature `tracing`).
    #[cfg(feature = "tracing")]
    fn trace(&self);
}

type Listener<Ev> = Arc<dyn Fn(&Ev) + Send + Sync>;

/// The listeners of one decorator instance, shared by its clones.
pub(crate) struct Listeners<Ev> {
    any: AtomicBool,
    list: RwLock<Vec<Listener<Ev>>>,
}

impl<Ev: Event> Listeners<Ev> {
    pub(crate) fn new() -> Self {
        Self {
            any: AtomicBool::new(false),
            list: RwLock::new(Vec::new()),
        }
    }

    pub(crate) fn add(&self, listener: impl Fn(&Ev) + Send + Sync + 'static) {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        list.push(Arc::new(listener));
        self.any.store(true, Ordering::Release);
    }

    /// Whether an event would reach anyone (a listener, or `tracing`).
    #[inline]
    pub(crate) fn is_observed(&self) -> bool {
        cfg!(feature = "tracing") || self.any.load(Ordering::Acquire)
    }

    /// Builds the event only if someone observes it, then delivers it. A panicking listener is
    /// contained: it must not turn a handled failure into a crash of the caller's task.
    pub(crate) fn emit(&self, make: impl FnOnce() -> Ev) {
        if !self.is_observed() {
            return;
        }
        let event = make();
        #[cfg(feature = "tracing")]
        event.trace();
        self.deliver(&event);
    }

    /// Like [`emit`](Self::emit) for an event that is never traced (a per-call event): built
    /// only when a listener is registered.
    pub(crate) fn emit_to_listeners(&self, make: impl FnOnce() -> Ev) {
        if self.any.load(Ordering::Acquire) {
            self.deliver(&make());
        }
    }

    fn deliver(&self, event: &Ev) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let list = self.list.read().unwrap_or_else(PoisonError::into_inner);
        for listener in list.iter() {
            let _ = catch_unwind(AssertUnwindSafe(|| listener(event)));
        }
    }
}

impl<Ev> fmt::Debug for Listeners<Ev> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.list.read().map_or(0, |list| list.len());
        f.debug_struct("Listeners").field("count", &count).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug)]
    struct Ping(u32);

    impl Event for Ping {
        #[cfg(feature = "tracing")]
        fn trace(&self) {}
    }

    #[test]
    fn events_are_not_built_without_listeners() {
        let listeners = Listeners::<Ping>::new();
        let mut built = false;
        listeners.emit(|| {
            built = true;
            Ping(1)
        });
        assert_eq!(built, cfg!(feature = "tracing"));
    }

    #[test]
    fn a_panicking_listener_does_not_stop_the_others() {
        let listeners = Listeners::<Ping>::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        listeners.add(|_| panic!("listener bug"));
        let sink = seen.clone();
        listeners.add(move |ping: &Ping| sink.lock().unwrap().push(ping.0));
        listeners.emit(|| Ping(7));
        assert_eq!(*seen.lock().unwrap(), vec![7]);
    }
}
