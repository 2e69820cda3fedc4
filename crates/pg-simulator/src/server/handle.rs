//! The handle of a running simulator: observe it, perturb it, stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Api;
use crate::clock;
use crate::config::{ConfigError, FaultConfig, SimConfig};
use crate::fault::{Fault, FaultRecord};
use crate::ledger::{LedgerSnapshot, Transaction, TransitionError};
use crate::model::{CardType, Outcome};
use crate::state::Shared;
use crate::stats::StatsSnapshot;

/// The result of replaying a callback.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CallbackReport {
    /// HTTP status the receiver answered, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Transport error, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A running simulator. Dropping the last clone stops it abruptly; [`shutdown`] stops it
/// gracefully.
///
/// # Clone
///
/// Clones share the same simulator (ledger, counters, faults); the simulator stops when the
/// last clone is dropped or when any clone calls [`shutdown`].
///
/// [`shutdown`]: SimulatorHandle::shutdown
#[derive(Clone, Debug)]
pub struct SimulatorHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    api: Api,
    addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    seed: u64,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.api.shared.shutdown.cancel();
    }
}

impl SimulatorHandle {
    pub(super) fn new(
        api: Api,
        addr: SocketAddr,
        control_addr: Option<SocketAddr>,
        seed: u64,
    ) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                api,
                addr,
                control_addr,
                seed,
            }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.api.shared
    }

    /// Address of the payment API (the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://{addr}`, ready for `{base_url}/api/v1/payments`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Address of the control plane, if enabled.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.inner.control_addr
    }

    /// `http://{control_addr}`, if the control plane is enabled.
    pub fn control_url(&self) -> Option<String> {
        self.inner.control_addr.map(|a| format!("http://{a}"))
    }

    /// The seed in use (the configured one, or the one picked at start).
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// A copy of the config in force.
    pub fn config(&self) -> SimConfig {
        (*self.shared().config()).clone()
    }

    /// A consistent copy of every retained transaction.
    pub fn ledger(&self) -> LedgerSnapshot {
        self.shared().ledger.snapshot()
    }

    /// One transaction, whoever owns it.
    pub fn transaction(&self, transaction_key: &str) -> Option<Transaction> {
        self.shared().ledger.get(transaction_key).map(|v| v.tx)
    }

    /// Request and callback counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared().stats.snapshot()
    }

    /// The retained fault log, oldest first.
    pub fn fault_log(&self) -> Vec<FaultRecord> {
        self.shared().fault_log.records()
    }

    /// How many retained fault records name `fault`.
    pub fn faults_injected(&self, fault: Fault) -> usize {
        self.fault_log().iter().filter(|r| r.fault == fault).count()
    }

    /// Empties the fault log.
    pub fn clear_fault_log(&self) {
        self.shared().fault_log.clear();
    }

    /// Replaces the fault section at run time.
    ///
    /// # Errors
    ///
    /// An invalid value, or a change of `log_capacity` (read at start only).
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), ConfigError> {
        self.inner.api.set_faults(faults)
    }

    /// Sets one payment fault probability at run time (0 removes it).
    ///
    /// # Errors
    ///
    /// A probability outside `[0, 1]` or a fault that does not apply to payments.
    pub fn set_fault_rate(&self, fault: Fault, rate: f64) -> Result<(), ConfigError> {
        self.update_config(|c| {
            if rate == 0.0 {
                c.faults.rates.remove(&fault);
            } else {
                c.faults.rates.insert(fault, rate);
            }
        })
    }

    /// F19: sets the probability that a payment with `card_type` fails with a 500 before
    /// anything is created (`faults.card_outages`; 0 removes it), so one issuer's path fails
    /// while the others work.
    ///
    /// # Errors
    ///
    /// A probability outside `[0, 1]`.
    pub fn set_card_outage(&self, card_type: CardType, rate: f64) -> Result<(), ConfigError> {
        self.update_config(|c| {
            if rate == 0.0 {
                c.faults.card_outages.remove(&card_type);
            } else {
                c.faults.card_outages.insert(card_type, rate);
            }
        })
    }

    /// Edits the config at run time. Latency, rates, outcomes, callback policy, extensions and
    /// faults take effect for the next request.
    ///
    /// # Errors
    ///
    /// An invalid result, or a change to a start-only field (`server`, `control`, `seed`,
    /// `processing.concurrency`, `ledger`, `keys`, `faults.log_capacity`).
    pub fn update_config(&self, edit: impl FnOnce(&mut SimConfig)) -> Result<(), ConfigError> {
        self.inner.api.update_config(edit)
    }

    /// F1: closes the listener and every open connection; new connections are refused until
    /// [`come_back`](Self::come_back). Processing and callbacks go on.
    pub async fn go_down(&self) {
        self.inner.api.go_down().await;
    }

    /// Listens again on the same port, with the ledger intact.
    ///
    /// # Errors
    ///
    /// The port could not be bound again (another process took it).
    pub async fn come_back(&self) -> std::io::Result<()> {
        self.inner.api.come_back().await
    }

    /// Whether the listener is down.
    pub async fn is_down(&self) -> bool {
        self.inner.api.is_down().await
    }

    /// F2 for everything: new connections are accepted and never answered, and requests on
    /// open connections hang. Connections held so far stay held after turning it off.
    pub fn set_black_hole(&self, on: bool) {
        self.inner.api.set_black_hole(on);
    }

    /// Completes a PENDING transaction now with `outcome` and sends its callback(s) (with its
    /// callback faults). The scheduled processing then finds it terminal and does nothing.
    ///
    /// # Errors
    ///
    /// Unknown key, or the transaction is already terminal.
    pub fn force_complete(
        &self,
        transaction_key: &str,
        outcome: Outcome,
    ) -> Result<Transaction, TransitionError> {
        self.inner.api.force_complete(transaction_key, outcome)
    }

    /// Sends one callback with the transaction's current state (no faults, no retry) and
    /// reports the receiver's answer.
    ///
    /// # Errors
    ///
    /// Unknown key.
    pub async fn replay_callback(
        &self,
        transaction_key: &str,
    ) -> Result<CallbackReport, TransitionError> {
        self.inner.api.replay_callback(transaction_key).await
    }

    /// Waits until `condition` holds, re-checking on every ledger or callback change (and every
    /// 20 ms). Returns whether it held before `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = clock::now() + timeout;
        let mut changes = self.shared().ledger.subscribe();
        loop {
            if condition(self) {
                return true;
            }
            let now = clock::now();
            if now >= deadline {
                return false;
            }
            let step = (deadline - now).min(Duration::from_millis(20));
            tokio::select! {
                _ = changes.changed() => {}
                () = clock::sleep(step) => {}
            }
        }
    }

    /// Waits until the transaction is terminal; returns it, or `None` on timeout.
    pub async fn wait_for_terminal(
        &self,
        transaction_key: &str,
        timeout: Duration,
    ) -> Option<Transaction> {
        let done = self
            .wait_until(timeout, |h| {
                h.transaction(transaction_key)
                    .is_some_and(|t| t.status.is_terminal())
            })
            .await;
        if done {
            self.transaction(transaction_key)
        } else {
            None
        }
    }

    /// Stops gracefully: stops accepting, lets idle connections close, aborts hanging
    /// requests (black hole, charge-but-timeout), stops processing (PENDING transactions stay
    /// PENDING) and waits up to 5 s for every task.
    pub async fn shutdown(self) {
        let shared = Arc::clone(self.shared());
        shared.shutdown.cancel();
        shared.tracker.close();
        tokio::select! {
            () = shared.tracker.wait() => {}
            () = clock::sleep(Duration::from_secs(5)) => {
                tracing::warn!("some simulator tasks did not stop within 5 s");
            }
        }
    }
}
