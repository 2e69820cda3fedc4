//! Every SQL statement of the service, and the database pools.
//!
//! One set of portable statements (`$1` placeholders, `RETURNING`, `ON CONFLICT DO NOTHING`,
//! `CAST`, no engine-specific functions) runs on **SQLite** (embedded, the default:
//! `sqlite://file.db`) and **Postgres** (`postgres://…`) through sqlx's `Any` driver; only the
//! migrations (`migrations/sqlite`, `migrations/postgres`) and the connection set-up differ.
//!
//! Concurrency: every status change is a conditional `UPDATE … WHERE status = $from`, so a
//! losing racer changes nothing. On SQLite, write transactions are `BEGIN IMMEDIATE` (the
//! write lock from the first statement, so two writers never deadlock on a lock upgrade); on
//! Postgres, [`lock_order`] takes the order's row lock first, so two observations about the
//! same order are applied one after the other.
//!
//! Two pools: `write` for transactions, `read` (read-only connections) for the catalogue and
//! order reads, so reads never queue behind writers — and no pool connection is ever held
//! while the PG is called.

mod catalogue;
mod jobs;
mod orders;
mod payments;
mod rows;
mod service;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Executor};

pub use self::catalogue::{product_price, release_stock, take_points, take_stock, user_points_in};
pub use self::jobs::insert_outbox;
pub use self::orders::{
    idempotent_order, insert_idempotency_key, insert_order, insert_order_item, lock_order,
    order_by_id, order_by_ref, rebind_idempotency_key, transition_order,
};
pub use self::payments::{
    attach_transaction_key, insert_history, insert_payment, payment_by_id,
    payment_by_transaction_key, payments_for_order, set_payment_idempotency_key,
    transition_payment,
};
pub use self::rows::{HistoryRow, NewPayment, OrderItem, OrderRow, OutboxRow, PaymentRow, Product};

/// A write transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The database engine behind a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite:` URLs: an embedded file.
    Sqlite,
    /// `postgres:` / `postgresql:` URLs.
    Postgres,
}

impl Engine {
    /// The engine of `url`, if supported.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Milliseconds since the Unix epoch, the service's stored time.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Database settings the pools are built from.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// `sqlite://path/to/file.db` (created when missing) or `postgres://user:pw@host/db`.
    pub url: String,
    /// Connections of the write pool.
    pub write_connections: u32,
    /// Connections of the read pool.
    pub read_connections: u32,
    /// How long a request waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
}

/// The two pools.
#[derive(Clone, Debug)]
pub struct Db {
    engine: Engine,
    write: AnyPool,
    read: AnyPool,
}

/// The SQLite migrations, embedded in the binary.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The Postgres migrations, embedded in the binary.
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Per-connection SQLite settings: wait for the write lock instead of failing at once, enforce
/// foreign keys, and fsync less often (safe with WAL).
fn sqlite_pragmas(
    conn: &mut AnyConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        Ok(())
    })
}

/// `url` with `param` added to its query string.
fn with_param(url: &str, param: &str) -> String {
    if url.contains('?') {
        format!("{url}&{param}")
    } else {
        format!("{url}?{param}")
    }
}

impl Db {
    /// Opens both pools (creating an SQLite file if needed) and applies the migrations.
    ///
    /// # Errors
    ///
    /// An unsupported or bad URL, an unreachable database, or a failed migration.
    pub async fn connect(options: &DbOptions) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(&options.url).ok_or_else(|| {
            sqlx::Error::Configuration("database.url must start with sqlite: or postgres:".into())
        })?;
        let pool = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections.max(1))
                .acquire_timeout(options.acquire_timeout)
        };
        let (write, read) = match engine {
            Engine::Sqlite => {
                let write = pool(options.write_connections)
                    .after_connect(sqlite_pragmas)
                    .connect(&with_param(&options.url, "mode=rwc"))
                    .await?;
                // Readers never block the writer, nor the writer them (persistent per file).
                sqlx::query("PRAGMA journal_mode = WAL")
                    .fetch_optional(&write)
                    .await?;
                SQLITE_MIGRATOR.run(&write).await?;
                let read = pool(options.read_connections)
                    .after_connect(sqlite_pragmas)
                    .connect(&with_param(&options.url, "mode=ro"))
                    .await?;
                (write, read)
            }
            Engine::Postgres => {
                let write = pool(options.write_connections)
                    .connect(&options.url)
                    .await?;
                POSTGRES_MIGRATOR.run(&write).await?;
                let read = pool(options.read_connections)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET default_transaction_read_only = on")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&options.url)
                    .await?;
                (write, read)
            }
        };
        Ok(Self {
            engine,
            write,
            read,
        })
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes both pools (waits for connections in use to come back).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Starts a write transaction that holds the write lock from its first statement.
    ///
    /// # Errors
    ///
    /// No connection within the acquire timeout, or the lock not obtained within the busy
    /// timeout.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.write.begin().await,
        }
    }

    /// A read-only connection (for lookups made with the statement functions below).
    ///
    /// # Errors
    ///
    /// No connection within the acquire timeout.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.read.acquire().await
    }
}
