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
//!
//! # One statement style
//!
//! - **Every statement is a free function over `&mut AnyConnection`** (its first argument:
//!   where it runs), in the file of the aggregate whose table it changes or reads: `orders`
//!   (orders, their lines, idempotency keys and their pruning), `payments` (payments, their
//!   history, recovery's pages), `attempts` (a charge's first-attempt claim and the sealed
//!   card), `catalogue` (users, products, stock, points, the demo seed), `outbox` (events,
//!   the relay's claims, pruning published events), `pg_calls`, `leases`, `subscriptions`,
//!   `service` (shared secrets). A job's statements live with the aggregate they touch, not
//!   with the job. All SQL of the service is here.
//! - [`Db`] runs no SQL of its own: it owns the pools and hands out where statements run —
//!   [`Db::begin`] (a write transaction holding SQLite's write lock from its first statement),
//!   [`Db::writer`] (a write-pool connection: each statement commits by itself), and
//!   [`Db::reader`] (a read-only connection). So a call reads
//!   `persistence::products(&mut *db.reader().await?)`, or `persistence::lock_order(&mut tx, id)`
//!   inside a transaction.
//! - A function never commits the caller's transaction. One whose statements must be atomic
//!   but that is never part of a larger change opens its own (nested: a savepoint) on the
//!   connection it is given (`order_with_details`, `claim_outbox_batch`); one that must hold
//!   SQLite's write lock from its first statement says so and expects a [`Db::begin`]
//!   transaction from its caller (`claim_charge_attempt`, `seed_demo_data`).
//! - Row types and their decoding are in `rows.rs`; ids are the domain's newtypes
//!   ([`crate::domain::OrderId`], …), bound and decoded as the plain integer.

mod attempts;
mod catalogue;
mod leases;
mod orders;
mod outbox;
mod payments;
mod pg_calls;
mod rows;
mod service;
pub mod subscriptions;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

pub use self::attempts::*;
pub use self::catalogue::*;
pub use self::leases::*;
pub use self::orders::*;
pub use self::outbox::*;
pub use self::payments::*;
pub use self::pg_calls::*;
pub use self::rows::{HistoryRow, NewPayment, OrderItem, OrderRow, OutboxRow, PaymentRow, Product};
pub use self::service::*;

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
    /// Connections of the write pool on Postgres. On SQLite the write pool has one
    /// connection whatever this says ([`SQLITE_WRITE_CONNECTIONS`]).
    pub write_connections: u32,
    /// Connections of the read pool.
    pub read_connections: u32,
    /// How long a request waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// How long a statement waits for a lock another connection holds (at most
    /// [`MAX_LOCK_TIMEOUT_MS`]).
    pub lock_timeout: Duration,
}

/// The longest lock timeout both engines take: SQLite's `busy_timeout` and Postgres's
/// `lock_timeout` are 32-bit counts of milliseconds (about 24.8 days).
pub const MAX_LOCK_TIMEOUT_MS: u64 = i32::MAX as u64;

/// The SQLite write pool's size. SQLite lets one writer in at a time; with more connections
/// the others wait in SQLite's busy handler, which polls with sleeps of up to 100 ms and no
/// queue order. With one connection writers wait in the pool's queue instead, first come first
/// served, and are woken the moment the connection is free: with 4 closed-loop clients of
/// POINT orders, p99 fell from 890 ms to 48 ms (`docs/service-load.md` has the loaded figures).
pub const SQLITE_WRITE_CONNECTIONS: u32 = 1;

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

/// Per-connection SQLite settings: wait up to `lock_ms` for the write lock instead of failing
/// at once, enforce foreign keys, and fsync less often (safe with WAL).
async fn sqlite_pragmas(conn: &mut AnyConnection, lock_ms: u64) -> Result<(), sqlx::Error> {
    conn.execute(format!("PRAGMA busy_timeout = {lock_ms}").as_str())
        .await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    Ok(())
}

/// Applies the SQLite migrations holding the database's write lock (`BEGIN IMMEDIATE`) from
/// the first check to the last migration: sqlx takes no lock on SQLite, so two processes
/// starting together on a fresh file would both create the tables. Each migration's own
/// transaction becomes a savepoint inside this one; a process that waited finds them applied.
async fn migrate_sqlite(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    SQLITE_MIGRATOR.run_direct(&mut *tx).await?;
    tx.commit().await
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
        // Both engines take the lock timeout as a 32-bit count of milliseconds.
        let lock_ms = u64::try_from(options.lock_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_LOCK_TIMEOUT_MS);
        let pool = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections.max(1))
                .acquire_timeout(options.acquire_timeout)
        };
        let (write, read) = match engine {
            Engine::Sqlite => {
                let write = pool(SQLITE_WRITE_CONNECTIONS)
                    .after_connect(move |conn, _| Box::pin(sqlite_pragmas(conn, lock_ms)))
                    .connect(&with_param(&options.url, "mode=rwc"))
                    .await?;
                // Readers never block the writer, nor the writer them (persistent per file).
                sqlx::query("PRAGMA journal_mode = WAL")
                    .fetch_optional(&write)
                    .await?;
                migrate_sqlite(&write).await?;
                let read = pool(options.read_connections)
                    .after_connect(move |conn, _| Box::pin(sqlite_pragmas(conn, lock_ms)))
                    .connect(&with_param(&options.url, "mode=ro"))
                    .await?;
                (write, read)
            }
            Engine::Postgres => {
                // A lock held elsewhere fails the statement after `lock_ms` (55P03), which
                // the API answers 503, rather than queueing requests behind it for ever.
                let write = pool(options.write_connections)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute(format!("SET lock_timeout = {lock_ms}").as_str())
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&options.url)
                    .await?;
                // sqlx's migrator holds `pg_advisory_lock` (keyed by the database's name)
                // from before it creates its table until every migration is applied: many
                // instances starting together on a fresh database migrate it once.
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

    /// A connection of the write pool, for statements run on their own (each commits by
    /// itself) or by functions that open their own transaction on it.
    ///
    /// # Errors
    ///
    /// No connection within the acquire timeout.
    pub async fn writer(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.write.acquire().await
    }

    /// A read-only connection (the catalogue and order reads), so reads never queue
    /// behind writers.
    ///
    /// # Errors
    ///
    /// No connection within the acquire timeout.
    pub async fn reader(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.read.acquire().await
    }
}
