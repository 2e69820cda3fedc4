//! What a tuner outside the client needs from the charge path while it runs: the latency of
//! every charge attempt the gateway accepted, and a read timeout that can be changed live.
//!
//! The client does not tune anything itself: a service that wants its charge path to follow a
//! gateway that is slow but working (for example commerce's `gateway::tuning`) observes the
//! accepted attempts through [`PgClientBuilder::on_charge_accepted`] and sets the timeout with
//! [`PgClient::set_charge_read_timeout`]; the breaker and the bulkhead already reconfigure live.
//! Only accepted attempts are observed: a timeout, a refusal or a lost connection says nothing
//! about how long a working gateway takes, so a hanging gateway never feeds the observer.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seawall::{Clock, ConfigError};

use crate::builder::PgClientBuilder;
use crate::client::PgClient;

/// Called with the duration of each charge attempt that the gateway accepted (2xx, a
/// transaction created or replayed), from start of the request to the last byte of the answer.
pub type ChargeObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// A [`ChargeObserver`] that the builder can show in `Debug`.
#[derive(Clone)]
pub(crate) struct Observer(pub(crate) ChargeObserver);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChargeObserver")
    }
}

/// The charge path's live parts: its current read timeout and its observer.
pub(crate) struct ChargeLive {
    read_timeout_nanos: AtomicU64,
    observer: Option<Observer>,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl ChargeLive {
    pub(crate) fn new(read_timeout: Duration, observer: Option<Observer>) -> Self {
        Self {
            read_timeout_nanos: AtomicU64::new(nanos(read_timeout)),
            observer,
        }
    }

    /// The read timeout of the next charge attempt.
    pub(crate) fn read_timeout(&self) -> Duration {
        Duration::from_nanos(self.read_timeout_nanos.load(Ordering::Relaxed))
    }

    /// Runs `attempt`, timed from its first poll, and reports it if it was accepted.
    pub(crate) async fn observe<T, E>(
        &self,
        clock: &Clock,
        attempt: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = clock.now();
        let result = attempt.await;
        if result.is_ok() {
            self.accepted(clock.now().saturating_duration_since(started));
        }
        result
    }

    /// Reports an accepted attempt that took `took`.
    pub(crate) fn accepted(&self, took: Duration) {
        if let Some(Observer(observer)) = &self.observer {
            observer(took);
        }
    }
}

impl fmt::Debug for ChargeLive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChargeLive")
            .field("read_timeout", &self.read_timeout())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl PgClientBuilder {
    /// Calls `observer` with the duration of every charge attempt the gateway accepted (not
    /// of failed or timed-out ones): the latency sample a tuner follows. It runs on the
    /// charge's task, so it must be quick and must not block.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use pg_client::{PgClient, PgClientConfig};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let client = PgClient::builder(PgClientConfig::default())
    ///     .on_charge_accepted(move |took| sink.lock().unwrap().push(took))
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), pg_client::BuildError>(())
    /// ```
    #[must_use]
    pub fn on_charge_accepted(
        mut self,
        observer: impl Fn(Duration) + Send + Sync + 'static,
    ) -> Self {
        self.set_charge_observer(Observer(Arc::new(observer)));
        self
    }
}

impl PgClient {
    /// The read timeout of the next charge attempt: `charge.read_timeout` until
    /// [`set_charge_read_timeout`](Self::set_charge_read_timeout) changes it.
    pub fn charge_read_timeout(&self) -> Duration {
        self.charge_live().read_timeout()
    }

    /// Changes the read timeout of the charge attempts that start from now on (attempts in
    /// flight keep theirs); cancels keep `charge.read_timeout`. Clones of the client share it.
    ///
    /// # Errors
    ///
    /// Zero, or more than 365 days: `charge.read_timeout` names the rule.
    pub fn set_charge_read_timeout(&self, read_timeout: Duration) -> Result<(), ConfigError> {
        if read_timeout.is_zero() {
            return Err(ConfigError::new("charge.read_timeout", "must be > 0"));
        }
        if read_timeout > seawall::config::MAX_DURATION {
            return Err(ConfigError::new(
                "charge.read_timeout",
                format!("must be <= 365 days, got {read_timeout:?}"),
            ));
        }
        self.charge_live()
            .read_timeout_nanos
            .store(nanos(read_timeout), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PgClientConfig;

    #[test]
    fn the_charge_read_timeout_starts_at_the_config_and_changes_live() {
        let client = PgClient::new(PgClientConfig::default()).unwrap();
        assert_eq!(client.charge_read_timeout(), Duration::from_secs(3));
        let clone = client.clone();
        client
            .set_charge_read_timeout(Duration::from_secs(5))
            .unwrap();
        assert_eq!(clone.charge_read_timeout(), Duration::from_secs(5));
        assert_eq!(
            client.config().charge.read_timeout,
            Duration::from_secs(3),
            "the config is what was built"
        );
    }

    #[test]
    fn a_zero_or_huge_charge_read_timeout_is_refused() {
        let client = PgClient::new(PgClientConfig::default()).unwrap();
        let error = client.set_charge_read_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(error.key(), "charge.read_timeout");
        assert!(
            client
                .set_charge_read_timeout(Duration::from_secs(400 * 86_400))
                .is_err()
        );
        assert_eq!(client.charge_read_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn the_observer_sees_what_it_is_given() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let live = ChargeLive::new(
            Duration::from_secs(1),
            Some(Observer(Arc::new(move |took| {
                sink.lock().unwrap().push(took);
            }))),
        );
        live.accepted(Duration::from_millis(2_500));
        assert_eq!(*seen.lock().unwrap(), vec![Duration::from_millis(2_500)]);
        ChargeLive::new(Duration::from_secs(1), None).accepted(Duration::ZERO);
    }
}
