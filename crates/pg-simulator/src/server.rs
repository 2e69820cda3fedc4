//! Builder, listeners and the handle: how a simulator is started, observed, perturbed and
//! stopped.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

mod handle;

pub use self::handle::{CallbackReport, SimulatorHandle};
use crate::api::{self, AbortConnection};
use crate::callback;
use crate::clock;
use crate::config::{CallbackRetry, ConfigError, FaultConfig, Latency, SimConfig};
use crate::fault::{Fault, FaultContext, Trigger};
use crate::key::{KeyGenerator, RandomKeys};
use crate::ledger::{Ledger, Restored, Transaction, TransitionError};
use crate::model::{CardType, Outcome, TransactionStatus};
use crate::processing;
use crate::rng::entropy_seed;
use crate::state::Shared;
use crate::stats::Stats;

/// Entry point: `Simulator::builder()...spawn().await`.
#[derive(Debug)]
pub struct Simulator(());

impl Simulator {
    /// A builder starting from the canonical gateway on an ephemeral loopback port (the binary
    /// uses 8082).
    pub fn builder() -> SimulatorBuilder {
        let mut config = SimConfig::canonical();
        config.server.port = 0;
        config.control.port = 0;
        SimulatorBuilder { config, keys: None }
    }
}

/// Configures and starts a simulator. Every method changes one knob of [`SimConfig`].
#[derive(Debug)]
#[must_use]
pub struct SimulatorBuilder {
    config: SimConfig,
    keys: Option<Arc<dyn KeyGenerator>>,
}

impl SimulatorBuilder {
    /// Replaces the whole config (e.g. [`SimConfig::instant`] or one read from a file).
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// Interface of the payment API.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.server.host = host.into();
        self
    }

    /// Port of the payment API (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.config.server.port = port;
        self
    }

    /// Seed of every random decision (and of the key generator).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Latency of payment requests.
    pub fn latency(mut self, latency: Latency) -> Self {
        self.config.request.latency = latency;
        self
    }

    /// Latency of queries.
    pub fn query_latency(mut self, latency: Latency) -> Self {
        self.config.query.latency = latency;
        self
    }

    /// Probability of the canonical pre-create 500.
    pub fn request_fail_rate(mut self, rate: f64) -> Self {
        self.config.request.fail_rate = rate;
        self
    }

    /// Uniform processing delay range.
    pub fn processing_delay(mut self, range: RangeInclusive<Duration>) -> Self {
        self.config.processing.delay = Latency::uniform(range);
        self
    }

    /// Processing delay as any distribution.
    pub fn processing_latency(mut self, delay: Latency) -> Self {
        self.config.processing.delay = delay;
        self
    }

    /// Transactions processed (and callbacks sent) at once.
    pub fn processing_concurrency(mut self, permits: usize) -> Self {
        self.config.processing.concurrency = permits;
        self
    }

    /// Relative outcome weights (success, limit exceeded, invalid card).
    pub fn outcome_weights(mut self, success: u32, limit_exceeded: u32, invalid_card: u32) -> Self {
        self.config.processing.outcomes = crate::config::OutcomeWeights {
            success,
            limit_exceeded,
            invalid_card,
        };
        self
    }

    /// The allowed callback target: a `callbackUrl` must have its scheme, host and port.
    pub fn callback_url_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.callback.url_prefix = prefix.into();
        self
    }

    /// Accept any `http://` loopback callback URL (tests with receivers on random ports).
    pub fn allow_any_loopback_callback(mut self) -> Self {
        self.config.callback.allow_any_loopback = true;
        self
    }

    /// Timeout of one callback attempt (canonical: none).
    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.config.callback.timeout = Some(timeout);
        self
    }

    /// Adds a signing secret; several secrets produce several `v1=` entries (rotation).
    pub fn callback_secret(mut self, secret: impl Into<String>) -> Self {
        self.config.callback.secrets.push(secret.into());
        self
    }

    /// Callback redelivery policy.
    pub fn callback_retry(mut self, retry: CallbackRetry) -> Self {
        self.config.callback.retry = retry;
        self
    }

    /// The `Idempotency-Key` extension.
    pub fn idempotency(mut self, enabled: bool) -> Self {
        self.config.idempotency.enabled = enabled;
        self
    }

    /// The cancel endpoint extension.
    pub fn cancel_endpoint(mut self, enabled: bool) -> Self {
        self.config.extensions.cancel = enabled;
        self
    }

    /// One transaction per (user, order): later POSTs return the first transaction.
    pub fn one_tx_per_order(mut self, enabled: bool) -> Self {
        self.config.extensions.one_tx_per_order = enabled;
        self
    }

    /// Mask card numbers in query responses and callbacks.
    pub fn mask_pan_in_responses(mut self, enabled: bool) -> Self {
        self.config.mask_pan_in_responses = enabled;
        self
    }

    /// Most transactions kept in memory.
    pub fn ledger_retention(mut self, max_transactions: usize) -> Self {
        self.config.ledger.retention = max_transactions;
        self
    }

    /// Probability of `fault` per payment request.
    pub fn fault_rate(mut self, fault: Fault, rate: f64) -> Self {
        self.config.faults.rates.insert(fault, rate);
        self
    }

    /// Probability of `fault` per query.
    pub fn query_fault_rate(mut self, fault: Fault, rate: f64) -> Self {
        self.config.faults.query_rates.insert(fault, rate);
        self
    }

    /// Probability of a pre-create 500 for one card type (F19).
    pub fn card_outage(mut self, card_type: CardType, rate: f64) -> Self {
        self.config.faults.card_outages.insert(card_type, rate);
        self
    }

    /// Replaces the fault section (rates and parameters).
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.config.faults = faults;
        self
    }

    /// Changes fault parameters in place, e.g. `|f| f.charge_but_timeout_delay = ms(300)`.
    pub fn fault_params(mut self, edit: impl FnOnce(&mut FaultConfig)) -> Self {
        edit(&mut self.config.faults);
        self
    }

    /// Enables the control plane on its own listener (port from the config, 0 by default).
    pub fn control_plane(mut self, enabled: bool) -> Self {
        self.config.control.enabled = enabled;
        self
    }

    /// Honour `X-Sim-Fault` (on by default).
    pub fn header_triggers(mut self, enabled: bool) -> Self {
        self.config.triggers.header = enabled;
        self
    }

    /// Honour magic card numbers (off by default: they let the card number pick the outcome).
    pub fn magic_cards(mut self, enabled: bool) -> Self {
        self.config.triggers.magic_cards = enabled;
        self
    }

    /// Keeps the ledger in this file as well as in memory, and loads it at start: a simulator
    /// restarted on the same file still knows every transaction (see the README for the
    /// format). The file holds full card numbers.
    pub fn ledger_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.ledger.file = Some(path.into());
        self
    }

    /// Replaces the transaction key generator (e.g. [`crate::ScriptedKeys`] to force
    /// collisions).
    pub fn key_generator(mut self, keys: impl KeyGenerator) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Binds the listeners and starts serving.
    ///
    /// # Errors
    ///
    /// An invalid config, an address that cannot be bound, or an HTTP client that cannot be
    /// built.
    pub async fn spawn(self) -> Result<SimulatorHandle, SpawnError> {
        let config = self.config;
        config.validate()?;
        let seed = config.seed.unwrap_or_else(entropy_seed);
        let (ledger, restored) = match &config.ledger.file {
            Some(path) => {
                Ledger::open(config.ledger.retention, path).map_err(|e| SpawnError::Ledger {
                    path: e.path,
                    reason: e.reason,
                })?
            }
            None => (Ledger::new(config.ledger.retention), Vec::new()),
        };
        // A restart with the same seed would otherwise draw the keys it already handed out.
        let restarts = u64::try_from(restored.len()).unwrap_or(u64::MAX);
        let keys = self.keys.unwrap_or_else(|| {
            Arc::new(RandomKeys::new(
                seed ^ 0x4B45_5953_u64.rotate_left(17)
                    ^ restarts.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                config.keys.suffix_len,
            ))
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| SpawnError::Client(e.to_string()))?;
        let shared = Arc::new(Shared::new(config.clone(), seed, keys, http, ledger));
        resume(&shared, &config, restored);
        let api = Api {
            router: api::payments::router(Arc::clone(&shared)),
            shared,
        };
        let addr = resolve(&config.server.host, config.server.port).await?;
        let listener = bind(addr)?;
        let addr = listener
            .local_addr()
            .map_err(|e| SpawnError::bind(&addr, e))?;
        api.start(listener, addr).await;
        let control_addr = if config.control.enabled {
            let want = resolve(&config.control.host, config.control.port).await?;
            let listener = bind(want)?;
            let got = listener
                .local_addr()
                .map_err(|e| SpawnError::bind(&want, e))?;
            let router = api::control::router(api.clone());
            let token = CancellationToken::new();
            api.shared.tracker.spawn(accept_loop(
                listener,
                router,
                Arc::clone(&api.shared),
                token,
                Kind::Control,
            ));
            Some(got)
        } else {
            None
        };
        tracing::info!(%addr, control = ?control_addr, seed, "pg-simulator listening");
        Ok(SimulatorHandle::new(api, addr, control_addr, seed))
    }
}

/// Why the simulator did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The config failed validation.
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The callback HTTP client could not be built.
    #[error("cannot build the callback client: {0}")]
    Client(String),
    /// The ledger file could not be read or rewritten.
    #[error("ledger file {path}: {reason}")]
    Ledger {
        /// The file.
        path: String,
        /// What went wrong (for a bad line, its number).
        reason: String,
    },
}

/// Takes up the transactions read back from the ledger file: their idempotency keys answer
/// again, and PENDING ones are processed to the outcome decided before the restart, at the
/// time it was due (at once if that has passed).
fn resume(shared: &Arc<Shared>, config: &SimConfig, restored: Vec<Restored>) {
    let now_ms = clock::unix_millis();
    for r in restored {
        let tx = r.tx;
        if let Some(idem) = r.idempotency {
            shared.idempotency.restore(
                &tx.user_id,
                &idem.key,
                idem.fingerprint,
                api::payments::created_body(&tx.transaction_key),
                Duration::from_millis(now_ms.saturating_sub(tx.created_at_unix_ms)),
                &config.idempotency,
            );
        }
        if tx.status == TransactionStatus::Pending && !r.stuck {
            let due = Duration::from_millis(r.process_at_unix_ms.saturating_sub(now_ms));
            processing::schedule(shared, tx.transaction_key, due, r.outcome);
        }
    }
}

impl SpawnError {
    fn bind(addr: &dyn std::fmt::Display, source: std::io::Error) -> Self {
        Self::Bind {
            addr: addr.to_string(),
            source,
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, SpawnError> {
    let target = format!("{host}:{port}");
    tokio::net::lookup_host(&target)
        .await
        .map_err(|e| SpawnError::bind(&target, e))?
        .next()
        .ok_or_else(|| SpawnError::bind(&target, std::io::ErrorKind::NotFound.into()))
}

fn bind(addr: SocketAddr) -> Result<TcpListener, SpawnError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| SpawnError::bind(&addr, e))?;
    // Reuse lets `come_back` rebind the same port right after `go_down`.
    socket
        .set_reuseaddr(true)
        .map_err(|e| SpawnError::bind(&addr, e))?;
    socket.bind(addr).map_err(|e| SpawnError::bind(&addr, e))?;
    socket.listen(1_024).map_err(|e| SpawnError::bind(&addr, e))
}

// ===== listeners =====

/// The up/down state of the payment API listener.
#[derive(Debug, Default)]
pub(crate) struct ListenerControl {
    up: Option<(CancellationToken, JoinHandle<()>)>,
    addr: Option<SocketAddr>,
}

/// The payment API: the shared state plus its router (kept to restart the listener).
#[derive(Clone, Debug)]
pub(crate) struct Api {
    pub(crate) shared: Arc<Shared>,
    router: Router,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Payments,
    Control,
}

impl Api {
    async fn start(&self, listener: TcpListener, addr: SocketAddr) {
        let token = CancellationToken::new();
        let task = self.shared.tracker.spawn(accept_loop(
            listener,
            self.router.clone(),
            Arc::clone(&self.shared),
            token.clone(),
            Kind::Payments,
        ));
        let mut control = self.shared.listener.lock().await;
        control.up = Some((token, task));
        control.addr = Some(addr);
    }

    /// Closes the listener and every open connection: new connections are refused.
    pub(crate) async fn go_down(&self) {
        let mut control = self.shared.listener.lock().await;
        if let Some((token, task)) = control.up.take() {
            token.cancel();
            let _ = task.await;
            self.shared
                .record(Fault::Down, Trigger::Control, &FaultContext::default());
        }
    }

    /// Listens again on the same address; the ledger is untouched.
    pub(crate) async fn come_back(&self) -> std::io::Result<()> {
        let mut control = self.shared.listener.lock().await;
        if control.up.is_some() {
            return Ok(());
        }
        let addr = control
            .addr
            .ok_or_else(|| std::io::Error::other("never listened"))?;
        let listener = bind(addr).map_err(|e| match e {
            SpawnError::Bind { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })?;
        let token = CancellationToken::new();
        let task = self.shared.tracker.spawn(accept_loop(
            listener,
            self.router.clone(),
            Arc::clone(&self.shared),
            token.clone(),
            Kind::Payments,
        ));
        control.up = Some((token, task));
        Ok(())
    }

    pub(crate) async fn is_down(&self) -> bool {
        self.shared.listener.lock().await.up.is_none()
    }

    pub(crate) fn set_black_hole(&self, on: bool) {
        let was = self.shared.black_hole.swap(on, Ordering::SeqCst);
        if on && !was {
            self.shared.record(
                Fault::BlackHoleMode,
                Trigger::Control,
                &FaultContext::default(),
            );
        }
    }

    pub(crate) fn force_complete(
        &self,
        key: &str,
        outcome: Outcome,
    ) -> Result<Transaction, TransitionError> {
        let view = self.shared.ledger.complete(key, outcome)?;
        let tx = view.tx.clone();
        let shared = Arc::clone(&self.shared);
        self.shared.tracker.spawn(async move {
            tokio::select! {
                () = callback::dispatch(&shared, view) => {}
                () = shared.shutdown.cancelled() => {}
            }
        });
        Ok(tx)
    }

    pub(crate) async fn replay_callback(
        &self,
        key: &str,
    ) -> Result<CallbackReport, TransitionError> {
        let view = self
            .shared
            .ledger
            .get(key)
            .ok_or(TransitionError::NotFound)?;
        let config = self.shared.config();
        let body = callback::current_body(&view.tx, config.mask_pan_in_responses);
        let result =
            callback::send_once(&self.shared, &config, &view.tx.callback_url, body, 0).await;
        Ok(match result {
            Ok(status) => CallbackReport {
                status: Some(status),
                error: None,
            },
            Err(e) => CallbackReport {
                status: None,
                error: Some(e),
            },
        })
    }

    pub(crate) fn set_faults(&self, faults: FaultConfig) -> Result<(), ConfigError> {
        self.update_config(|c| c.faults = faults)
    }

    pub(crate) fn update_config(
        &self,
        edit: impl FnOnce(&mut SimConfig),
    ) -> Result<(), ConfigError> {
        let current = self.shared.config();
        let mut next = (*current).clone();
        edit(&mut next);
        next.validate()?;
        let start_only: [(&str, bool); 7] = [
            ("server", next.server != current.server),
            ("control", next.control != current.control),
            ("seed", next.seed != current.seed),
            (
                "processing.concurrency",
                next.processing.concurrency != current.processing.concurrency,
            ),
            ("ledger", next.ledger != current.ledger),
            ("keys", next.keys != current.keys),
            (
                "faults.log_capacity",
                next.faults.log_capacity != current.faults.log_capacity,
            ),
        ];
        if let Some((field, _)) = start_only.iter().find(|(_, changed)| *changed) {
            return Err(ConfigError::new(*field, "read at start only"));
        }
        self.shared.replace_config(next);
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    kill: CancellationToken,
    kind: Kind,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = kill.cancelled() => return,
            () = shared.shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // e.g. too many open files: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                clock::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if kind == Kind::Payments {
            Stats::bump(&shared.stats.connections);
        }
        shared.tracker.spawn(serve_connection(
            stream,
            router.clone(),
            Arc::clone(&shared),
            kill.clone(),
            kind,
        ));
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    shared: Arc<Shared>,
    kill: CancellationToken,
    kind: Kind,
) {
    let payments = kind == Kind::Payments;
    if payments && shared.black_hole.load(Ordering::SeqCst) {
        // Accept and never answer; hold the socket open until down or shutdown.
        tokio::select! {
            () = kill.cancelled() => {}
            () = shared.shutdown.cancelled() => {}
        }
        drop(stream);
        return;
    }
    let svc_shared = Arc::clone(&shared);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        let shared = Arc::clone(&svc_shared);
        async move {
            if payments && shared.black_hole.load(Ordering::SeqCst) {
                shared.shutdown.cancelled().await;
                return Err(AbortConnection);
            }
            let response = router
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            if response.extensions().get::<AbortConnection>().is_some() {
                Err(AbortConnection)
            } else {
                Ok(response)
            }
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = kill.cancelled() => {}
        () = shared.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection.as_mut() => {}
                () = clock::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
