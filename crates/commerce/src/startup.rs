//! Building and running the application: pools, gateway, jobs, server, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use seawall::metrics::RegistryMetrics;
use seawall::registry::Registries;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::configuration::Settings;
use crate::gateway::PaymentGateway;
use crate::gateway::call_log::PgCallLog;
use crate::gateway::pg::PgWiring;
use crate::gateway::routing::{PgRoute, PgRouter};
use crate::orders::OrderService;
use crate::outbox::{AlertLog, OutboxRelay, Subscriber};
use crate::payments::PaymentService;
use crate::persistence;
use crate::persistence::{Db, now_ms};
use crate::recovery::RecoveryJob;
use crate::retention::RetentionJob;
use crate::routes::{self, AppState};
use crate::subscriptions::BillingClock;
use pg_client::callback::CallbackVerifier;

/// The primary PG's name in the call log and on payments.
pub const PRIMARY_PG: &str = "A";

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Invalid settings.
    #[error("invalid configuration: {0}")]
    Config(#[from] seawall::ConfigError),
    /// Database unreachable or migration failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The port could not be bound.
    #[error("binding the HTTP port: {0}")]
    Bind(#[from] std::io::Error),
}

/// A built application, bound to its port, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    settings: Settings,
    shutdown: CancellationToken,
}

/// Controls a running application from outside (tests, `main`, the demo). Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppHandle {
    /// The shared state (database, services, jobs).
    pub state: AppState,
    shutdown: CancellationToken,
}

impl AppHandle {
    /// Starts a graceful shutdown: the server stops accepting, in-flight requests finish,
    /// jobs finish their current round and stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// Builds an [`Application`]; see [`Application::builder`].
#[derive(Debug)]
pub struct ApplicationBuilder {
    settings: Settings,
    gateway: Option<Arc<dyn PaymentGateway>>,
    registries: Option<Registries>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    billing_clock: BillingClock,
}

impl ApplicationBuilder {
    /// Bills subscriptions by this clock instead of wall time (tests move a manual one by
    /// days).
    #[must_use]
    pub fn billing_clock(mut self, clock: BillingClock) -> Self {
        self.billing_clock = clock;
        self
    }

    /// Uses this gateway instead of building one from the settings.
    #[must_use]
    pub fn gateway(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Uses these registries (holding the gateway's circuit breakers) instead of fresh ones;
    /// pair it with [`gateway`](Self::gateway) when the gateway's breakers live there.
    #[must_use]
    pub fn registries(mut self, registries: Registries) -> Self {
        self.registries = Some(registries);
        self
    }

    /// Adds an outbox subscriber (the alert log is always there).
    #[must_use]
    pub fn subscriber(mut self, subscriber: Arc<dyn Subscriber>) -> Self {
        self.subscribers.push(subscriber);
        self
    }

    /// Validates the settings, opens the database (migrations, demo seed), builds the
    /// gateway and binds the port.
    ///
    /// # Errors
    ///
    /// See [`StartupError`].
    pub async fn build(self) -> Result<Application, StartupError> {
        let settings = self.settings;
        settings.validate()?;
        let db = connect_waiting_out_locks(&settings.database.options()).await?;
        if settings.application.seed_demo_data {
            let mut tx = db.begin().await?;
            if persistence::seed_demo_data(&mut tx, db.engine()).await? {
                tracing::info!("seeded demo users and products");
            }
            tx.commit().await?;
        }
        // The recorder first, then the registry's metrics, then the instances (bound on
        // creation).
        let metrics = crate::telemetry::metrics_handle();
        let registries = self.registries.unwrap_or_default();
        let registry_metrics = RegistryMetrics::new(&registries);
        let gateway: Arc<dyn PaymentGateway> = match self.gateway {
            Some(gateway) => gateway,
            None => {
                let base_url =
                    settings.gateway.base_url.clone().ok_or_else(|| {
                        seawall::ConfigError::new("gateway.base_url", "must be set")
                    })?;
                // Every HTTP attempt on the PG is written to the call log before and after
                // it (a refused "before" write vetoes the attempt).
                Arc::new(crate::gateway::pg::gateway_with_registry(
                    settings.gateway.client_config(&base_url),
                    &settings.gateway.charge_tuning,
                    settings.gateway.charge_breakers_by_card_type,
                    &registries,
                    &PgWiring::primary().observed_by(Arc::new(PgCallLog::new(
                        db.clone(),
                        settings.gateway.name.as_str(),
                    ))),
                )?)
            }
        };
        // Game-day fault injection in front of whichever gateway: off unless configured, and
        // switched live through the admin API.
        let gateway: Arc<dyn PaymentGateway> =
            Arc::new(crate::gateway::fault::FaultyGateway::wrap(
                gateway,
                &settings.gateway.fault,
                &registries,
            )?);
        let listener = TcpListener::bind((
            settings.application.host.as_str(),
            settings.application.port,
        ))
        .await?;
        let port = listener.local_addr()?.port();
        let base = settings
            .application
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{port}", settings.application.host));
        let callback_url = format!("{}/api/v1/payments/callback", base.trim_end_matches('/'));
        settings.callback.check_authentication()?;
        if settings.callback.secret.is_none() {
            tracing::warn!(
                setting = "callback.allow_unsigned",
                "callback.allow_unsigned is on: PG callbacks are not authenticated; each is \
                 trusted only after re-querying the PG (set callback.secret to verify them)"
            );
        }
        let callback_limiter = seawall::RateLimiter::builder()
            .name("callbacks")
            .limit_for_period(settings.callback.rate_limit)
            .limit_refresh_period(Duration::from_millis(
                settings.callback.rate_limit_period_ms,
            ))
            // A callback over the rate is answered 429 at once, never parked.
            .timeout(Duration::ZERO)
            .build()
            .map_err(|e| e.under("callback"))?;
        let fingerprint_key = match &settings.idempotency.fingerprint_key {
            Some(key) => key.clone(),
            None => {
                tracing::info!(
                    "idempotency fingerprints are keyed with a key kept in the database; set \
                     idempotency.fingerprint_key to keep it out of it"
                );
                let candidate = crate::secrets::random_hex(32).map_err(|e| {
                    seawall::ConfigError::new("idempotency.fingerprint_key", e.to_string())
                })?;
                persistence::service_secret(
                    &mut *db.writer().await?,
                    "idempotency.fingerprint_key",
                    &candidate,
                    now_ms(),
                )
                .await?
            }
        };
        // A process that is only starting runs no round: a recovery lease held under this
        // instance's name was left by its previous process, killed in the middle of a round.
        let instance_id = crate::instance::instance_id(&settings)?;
        if persistence::reclaim_own_lease(
            &mut *db.writer().await?,
            crate::recovery::LEASE_NAME,
            &instance_id,
            now_ms(),
        )
        .await?
        {
            tracing::info!(%instance_id, "took back the recovery lease a crash left held");
        }
        let card_key = match &settings.recovery.card_key {
            Some(key) => key.clone(),
            None => {
                let candidate = crate::secrets::random_hex(32)
                    .map_err(|e| seawall::ConfigError::new("recovery.card_key", e.to_string()))?;
                persistence::service_secret(
                    &mut *db.writer().await?,
                    "recovery.card_key",
                    &candidate,
                    now_ms(),
                )
                .await?
            }
        };
        let subscriptions = crate::subscriptions::wiring::service(
            &settings,
            &db,
            &registries,
            &gateway,
            self.billing_clock,
            &callback_url,
        )
        .await?;
        let callback_verifier = match &settings.callback.secret {
            Some(secret) => Some(verifier(secret, &settings, "callback.secret")?),
            None => None,
        };
        let router = pg_router(
            &settings,
            &db,
            &registries,
            gateway,
            callback_verifier.clone(),
        )?;
        let payments = PaymentService::with_router(db.clone(), router)
            .with_card_vault(crate::vault::CardVault::new(card_key.as_bytes()));
        let mut subscribers: Vec<Arc<dyn Subscriber>> = vec![Arc::new(AlertLog::default())];
        subscribers.extend(self.subscribers);
        let mut outbox = OutboxRelay::new(db.clone(), subscribers, settings.outbox.clone())
            .claiming_as(&instance_id);
        if settings.outbox.sink == crate::configuration::SinkKind::Nats {
            let sink = crate::sink::NatsSink::connect(&settings.outbox.nats).await?;
            outbox = outbox.with_sink(Arc::new(sink));
        }
        let state = AppState {
            db: db.clone(),
            orders: OrderService::new(
                payments.clone(),
                callback_url.clone(),
                fingerprint_key.as_bytes(),
            ),
            outbox,
            recovery: RecoveryJob::new(payments.clone(), settings.recovery.clone(), instance_id)
                .sending_to(callback_url.clone()),
            payments,
            retention: RetentionJob::new(db.clone(), settings.retention.clone()),
            subscriptions,
            callback_verifier,
            callback_limiter,
            admin_token: settings.admin.token.as_deref().map(Arc::from),
            metrics,
            registries,
            registry_metrics,
        };
        Ok(Application {
            listener,
            port,
            state,
            settings,
            shutdown: CancellationToken::new(),
        })
    }
}

/// A callback verifier for `secret` (`key` names the setting in errors).
fn verifier(
    secret: &str,
    settings: &Settings,
    key: &str,
) -> Result<Arc<CallbackVerifier>, seawall::ConfigError> {
    Ok(Arc::new(
        CallbackVerifier::new([secret.as_bytes()])
            .map_err(|e| seawall::ConfigError::new(key.to_owned(), e.to_string()))?
            .tolerance(Duration::from_secs(
                u64::try_from(settings.callback.tolerance_secs).unwrap_or(300),
            )),
    ))
}

/// The PGs in charge order: the primary (`gateway`) and `gateway.others`, each of those with
/// its own pg-client built like the primary's (breakers from the registries under their
/// configured names, charge tuning, its own call log as the attempt hook).
fn pg_router(
    settings: &Settings,
    db: &Db,
    registries: &Registries,
    primary: Arc<dyn PaymentGateway>,
    primary_verifier: Option<Arc<CallbackVerifier>>,
) -> Result<PgRouter, seawall::ConfigError> {
    let mut routes = vec![(
        settings.gateway.priority,
        PgRoute {
            name: Arc::from(settings.gateway.name.as_str()),
            gateway: primary,
            callback_verifier: primary_verifier,
        },
    )];
    for (i, other) in settings.gateway.others.iter().enumerate() {
        let key = format!("gateway.others[{i}]");
        let base_url = other
            .base_url
            .as_deref()
            .ok_or_else(|| seawall::ConfigError::new(format!("{key}.base_url"), "must be set"))?;
        // The same builder as the primary's: breakers by name, charge tuning, the adaptive
        // limit and breakers by card type as configured, and its own call log.
        let wiring = PgWiring::named(other.charge_breaker_name(), other.query_breaker_name())
            .observed_by(Arc::new(PgCallLog::new(db.clone(), other.name.as_str())));
        let gateway: Arc<dyn PaymentGateway> = Arc::new(
            crate::gateway::pg::gateway_with_registry(
                settings.gateway.client_config(base_url),
                &settings.gateway.charge_tuning,
                settings.gateway.charge_breakers_by_card_type,
                registries,
                &wiring,
            )
            .map_err(|e| e.under(&key))?,
        );
        let callback_verifier = match &other.callback_secret {
            Some(secret) => Some(verifier(
                secret,
                settings,
                &format!("{key}.callback_secret"),
            )?),
            None => None,
        };
        routes.push((
            other.priority,
            PgRoute {
                name: Arc::from(other.name.as_str()),
                gateway,
                callback_verifier,
            },
        ));
    }
    // Stable: the primary first among equal priorities.
    routes.sort_by_key(|(priority, _)| *priority);
    PgRouter::new(
        routes.into_iter().map(|(_, route)| route).collect(),
        &settings.gateway.name,
    )
}

impl Application {
    /// Starts building an application from settings.
    pub fn builder(settings: Settings) -> ApplicationBuilder {
        ApplicationBuilder {
            settings,
            gateway: None,
            registries: None,
            subscribers: Vec::new(),
            billing_clock: BillingClock::system(),
        }
    }

    /// Builds an application from settings alone.
    ///
    /// # Errors
    ///
    /// See [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::builder(settings).build().await
    }

    /// The bound port (the real one when 0 was asked).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to control the application once it runs.
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            state: self.state.clone(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Serves until ctrl-c, SIGTERM or [`AppHandle::shutdown`]; then stops gracefully:
    /// in-flight requests finish, the jobs finish their round, the pools close.
    ///
    /// # Errors
    ///
    /// The server failed.
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let shutdown = self.shutdown.clone();
        let mut jobs: Vec<JoinHandle<()>> = Vec::new();
        jobs.push(tokio::spawn(
            self.state.outbox.clone().run(shutdown.clone()),
        ));
        jobs.push(tokio::spawn(
            self.state.retention.clone().run(shutdown.clone()),
        ));
        if self.settings.subscriptions.enabled {
            jobs.push(tokio::spawn(
                self.state
                    .subscriptions
                    .billing()
                    .clone()
                    .run(shutdown.clone()),
            ));
        }
        if self.settings.recovery.enabled {
            jobs.push(tokio::spawn(
                self.state.recovery.clone().run(shutdown.clone()),
            ));
        }
        let signals = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = os_signal() => {
                        tracing::info!("shutdown signal received");
                        shutdown.cancel();
                    }
                }
            })
        };
        let app = routes::router(
            self.state.clone(),
            Duration::from_millis(self.settings.application.request_timeout_ms),
        )
        .nest(
            routes::DASHBOARD_PATH,
            routes::dashboard(&self.state, shutdown.clone()),
        );
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await;
        shutdown.cancel();
        for job in jobs {
            let _ = job.await;
        }
        let _ = signals.await;
        self.state.db.close().await;
        tracing::info!("stopped");
        served
    }
}

async fn os_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Opens the database, trying again while it is locked, until the lock timeout. Instances
/// opening one fresh SQLite file together can meet a lock that SQLite's busy handler does not
/// wait for (the switch to WAL, the WAL's recovery); the open is idempotent (the migrations
/// run under `BEGIN IMMEDIATE`), so a retry is safe.
async fn connect_waiting_out_locks(
    options: &crate::persistence::DbOptions,
) -> Result<Db, sqlx::Error> {
    const PAUSE: Duration = Duration::from_millis(50);
    let mut tries_left = options.lock_timeout.as_millis() / PAUSE.as_millis();
    loop {
        match Db::connect(options).await {
            Err(error) if crate::error::is_busy(&error) && tries_left > 0 => {
                tries_left -= 1;
                tracing::info!(%error, "the database was locked while opening; trying again");
                seawall::Clock::default().sleep(PAUSE).await;
            }
            other => return other,
        }
    }
}
