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

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row};

use crate::domain::{Money, OrderStatus, PaymentMethod, PaymentStatus};

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

/// A product row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Unit price in minor units.
    pub price: i64,
    /// Units in stock.
    pub stock: i64,
}

/// A payment row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRow {
    /// Id.
    pub id: i64,
    /// Its order.
    pub order_id: i64,
    /// POINT or CARD.
    pub method: String,
    /// Status.
    pub status: PaymentStatus,
    /// Amount in minor units.
    pub amount: i64,
    /// Card type, for card payments.
    pub card_type: Option<String>,
    /// Masked card number.
    pub card_no_masked: Option<String>,
    /// The key sent to the PG.
    pub idempotency_key: Option<String>,
    /// The PG's transaction key, once known.
    pub transaction_key: Option<String>,
    /// Reason of the last status.
    pub reason: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// An order row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    /// Id.
    pub id: i64,
    /// The id the PG sees.
    pub order_ref: String,
    /// Who ordered.
    pub user_id: i64,
    /// Status.
    pub status: OrderStatus,
    /// POINT or CARD.
    pub method: String,
    /// Total in minor units.
    pub total_amount: i64,
    /// The payment that paid it.
    pub paid_payment_id: Option<i64>,
    /// Creation time (ms).
    pub created_at: i64,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Product.
    pub product_id: i64,
    /// Units.
    pub quantity: i64,
    /// Unit price at order time.
    pub unit_price: i64,
}

/// A new payment row.
#[derive(Clone, Debug)]
pub struct NewPayment<'a> {
    /// Its order.
    pub order_id: i64,
    /// Method.
    pub method: PaymentMethod,
    /// Initial status.
    pub status: PaymentStatus,
    /// Amount.
    pub amount: Money,
    /// Card type.
    pub card_type: Option<&'a str>,
    /// Masked card number (never the full one).
    pub card_no_masked: Option<&'a str>,
    /// Idempotency key for the PG.
    pub idempotency_key: Option<&'a str>,
    /// PG transaction key, if already known.
    pub transaction_key: Option<&'a str>,
}

/// An outbox event awaiting delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Id (delivery order).
    pub id: i64,
    /// The order it concerns.
    pub aggregate_id: i64,
    /// Event type, e.g. `OrderPaid`.
    pub event_type: String,
    /// JSON payload.
    pub payload: String,
    /// Failed deliveries so far.
    pub attempts: i64,
    /// When it may be delivered (again).
    pub next_attempt_at: i64,
}

/// One transition of a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    /// Previous status (none for the first).
    pub from_status: Option<String>,
    /// New status.
    pub to_status: String,
    /// request / callback / recovery / admin.
    pub source: String,
    /// What caused it.
    pub detail: Option<String>,
    /// When (ms).
    pub created_at: i64,
}

fn parse_payment(row: &AnyRow) -> Result<PaymentRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(PaymentRow {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        method: row.try_get("method")?,
        status: PaymentStatus::from_str(&status).map_err(|e| sqlx::Error::Decode(e.into()))?,
        amount: row.try_get("amount")?,
        card_type: row.try_get("card_type")?,
        card_no_masked: row.try_get("card_no_masked")?,
        idempotency_key: row.try_get("idempotency_key")?,
        transaction_key: row.try_get("transaction_key")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn parse_order(row: &AnyRow) -> Result<OrderRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(OrderRow {
        id: row.try_get("id")?,
        order_ref: row.try_get("order_ref")?,
        user_id: row.try_get("user_id")?,
        status: OrderStatus::from_str(&status).map_err(|e| sqlx::Error::Decode(e.into()))?,
        method: row.try_get("method")?,
        total_amount: row.try_get("total_amount")?,
        paid_payment_id: row.try_get("paid_payment_id")?,
        created_at: row.try_get("created_at")?,
    })
}

const PAYMENT_COLUMNS: &str = "id, order_id, method, status, amount, card_type, card_no_masked, \
     idempotency_key, transaction_key, reason, created_at, updated_at";
const ORDER_COLUMNS: &str =
    "id, order_ref, user_id, status, method, total_amount, paid_payment_id, created_at";

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

    /// Seeds demo users and products when the database has none. Returns whether it seeded.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn seed_demo_data(&self) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin().await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        if users > 0 {
            return Ok(false);
        }
        for (id, name, points) in [
            (1_i64, "Kim", 1_000_000_i64),
            (2, "Lee", 1_000_000),
            (3, "Park", 5_000),
        ] {
            sqlx::query("INSERT INTO users (id, name, points) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(name)
                .bind(points)
                .execute(&mut *tx)
                .await?;
        }
        // Without explicit ids, so a Postgres sequence stays in step (a fresh database gives
        // them ids 1 to 5).
        for (name, price, stock) in [
            ("Mechanical keyboard", 89_000_i64, 1_000_i64),
            ("Wireless mouse", 35_000, 1_000),
            ("27-inch monitor", 329_000, 500),
            ("USB-C hub", 45_000, 1_000),
            ("Laptop stand", 29_000, 1_000),
        ] {
            sqlx::query("INSERT INTO products (name, price, stock) VALUES ($1, $2, $3)")
                .bind(name)
                .bind(price)
                .bind(stock)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Adds a user (tests and the demo).
    ///
    /// # Errors
    ///
    /// A database error (e.g. a duplicate id).
    pub async fn insert_user(&self, id: i64, name: &str, points: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO users (id, name, points) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(points)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Adds a product and returns its id (tests and the demo).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn insert_product(
        &self,
        name: &str,
        price: i64,
        stock: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO products (name, price, stock) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(price)
        .bind(stock)
        .fetch_one(&self.write)
        .await
    }

    // ===== reads (read pool) =====

    /// Every product, by id.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn products(&self) -> Result<Vec<Product>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, name, price, stock FROM products ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(product_from_row).collect()
    }

    /// One product.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn product(&self, id: i64) -> Result<Option<Product>, sqlx::Error> {
        let row = sqlx::query("SELECT id, name, price, stock FROM products WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(product_from_row).transpose()
    }

    /// One order with its items and payments, in one read transaction (a consistent view).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn order_with_details(
        &self,
        id: i64,
    ) -> Result<Option<(OrderRow, Vec<OrderItem>, Vec<PaymentRow>)>, sqlx::Error> {
        let mut tx = self.read.begin().await?;
        let Some(order) = order_by_id(&mut tx, id).await? else {
            return Ok(None);
        };
        let items = sqlx::query(
            "SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY product_id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(OrderItem {
                product_id: r.try_get("product_id")?,
                quantity: r.try_get("quantity")?,
                unit_price: r.try_get("unit_price")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let payments = payments_for_order(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some((order, items, payments)))
    }

    /// A payment's transitions, oldest first.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn payment_history(&self, payment_id: i64) -> Result<Vec<HistoryRow>, sqlx::Error> {
        sqlx::query(
            "SELECT from_status, to_status, source, detail, created_at FROM payment_history \
             WHERE payment_id = $1 ORDER BY id",
        )
        .bind(payment_id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(HistoryRow {
                from_status: r.try_get("from_status")?,
                to_status: r.try_get("to_status")?,
                source: r.try_get("source")?,
                detail: r.try_get("detail")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
    }

    /// A user's points.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn user_points(&self, user_id: i64) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.read)
            .await
    }

    /// Counts of orders by status and of open payments (metrics, tests, the demo).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn order_status_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY status")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// Every order id with its status (tests and the demo).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn all_orders(&self) -> Result<Vec<OrderRow>, sqlx::Error> {
        sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id"))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(parse_order)
            .collect()
    }

    /// Every payment (tests and the demo).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn all_payments(&self) -> Result<Vec<PaymentRow>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments ORDER BY id"
        ))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(parse_payment)
        .collect()
    }

    /// Units reserved by orders whose stock is still held (not released).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn units_held(&self, product_id: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i \
             JOIN orders o ON o.id = i.order_id WHERE i.product_id = $1 AND o.stock_released = 0",
        )
        .bind(product_id)
        .fetch_one(&self.read)
        .await
    }

    /// Open card payments (REQUESTED / PENDING / UNKNOWN): how many, and the oldest one's
    /// creation time — the "oldest pending age" alert of the runbook.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn open_payments_summary(&self) -> Result<(i64, Option<i64>), sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM payments \
             WHERE status IN ('REQUESTED', 'PENDING', 'UNKNOWN')",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    // ===== recovery (write pool, short statements) =====

    /// Open payments (REQUESTED / PENDING / UNKNOWN) last changed before `cutoff`, oldest
    /// first, after `after_id`.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn open_payments_page(
        &self,
        cutoff: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments \
             WHERE status IN ('REQUESTED', 'PENDING', 'UNKNOWN') AND method = 'CARD' \
               AND updated_at <= $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(cutoff)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.write)
        .await?
        .iter()
        .map(parse_payment)
        .collect()
    }

    /// SUCCESS payments that are not the one that paid their order: charges to reverse.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn extra_successful_payments(
        &self,
        limit: i64,
    ) -> Result<Vec<(PaymentRow, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT p.id, p.order_id, p.method, p.status, p.amount, p.card_type, p.card_no_masked, \
                    p.idempotency_key, p.transaction_key, p.reason, p.created_at, p.updated_at, \
                    o.user_id AS user_id \
             FROM payments p JOIN orders o ON o.id = p.order_id \
             WHERE p.status = 'SUCCESS' AND o.paid_payment_id IS NOT NULL \
               AND o.paid_payment_id <> p.id ORDER BY p.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| Ok((parse_payment(r)?, r.try_get("user_id")?)))
            .collect()
    }

    /// Takes (or renews) the lease `name` for `owner` until `now + ttl`. Only one owner holds
    /// an unexpired lease: the single-runner guard of the recovery job across instances.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        ttl: Duration,
    ) -> Result<bool, sqlx::Error> {
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let done = sqlx::query(
            "UPDATE job_leases SET owner = $1, expires_at = $2 \
             WHERE name = $3 AND (owner IS NULL OR owner = $1 OR expires_at < $4)",
        )
        .bind(owner)
        .bind(until)
        .bind(name)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease back if `owner` holds it.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE job_leases SET owner = NULL, expires_at = 0 WHERE name = $1 AND owner = $2",
        )
        .bind(name)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records that recovery looked at a payment (no status change).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn touch_payment_checked(&self, id: i64, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE payments SET last_checked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ===== outbox =====

    /// The oldest undelivered (and not dead) events, in id order.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn pending_outbox_events(&self, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
        sqlx::query(
            "SELECT id, aggregate_id, event_type, payload, attempts, next_attempt_at FROM outbox_events \
             WHERE published_at IS NULL AND dead = 0 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.write)
        .await?
        .iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                aggregate_id: r.try_get("aggregate_id")?,
                event_type: r.try_get("event_type")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
            })
        })
        .collect()
    }

    /// Marks an event delivered.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn mark_outbox_published(&self, id: i64, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox_events SET published_at = $1 WHERE id = $2 AND published_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a failed delivery: the next try is at `next_attempt_at`, or never when `dead`.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn mark_outbox_failed(
        &self,
        id: i64,
        next_attempt_at: i64,
        dead: bool,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox_events SET attempts = attempts + 1, next_attempt_at = $1, dead = $2, \
             last_error = $3 WHERE id = $4",
        )
        .bind(next_attempt_at)
        .bind(i64::from(dead))
        .bind(error)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Undelivered events (delivery lag) and the oldest one's creation time.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<i64>), sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox_events \
             WHERE published_at IS NULL AND dead = 0",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }
}

fn product_from_row(row: &AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        price: row.try_get("price")?,
        stock: row.try_get("stock")?,
    })
}

// ===== statements inside a transaction =====

/// The user's points, `None` if the user does not exist.
///
/// # Errors
///
/// A database error.
pub async fn user_points_in(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// A product's price, `None` if it does not exist.
///
/// # Errors
///
/// A database error.
pub async fn product_price(
    conn: &mut AnyConnection,
    product_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT price FROM products WHERE id = $1")
        .bind(product_id)
        .fetch_optional(conn)
        .await
}

/// Takes `quantity` units if that many are in stock. Returns whether it did.
///
/// # Errors
///
/// A database error.
pub async fn take_stock(
    conn: &mut AnyConnection,
    product_id: i64,
    quantity: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1")
        .bind(quantity)
        .bind(product_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deducts points if the user has enough. Returns whether it did.
///
/// # Errors
///
/// A database error.
pub async fn take_points(
    conn: &mut AnyConnection,
    user_id: i64,
    amount: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET points = points - $1 WHERE id = $2 AND points >= $1")
        .bind(amount)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives an order's units back to stock, once: returns false if they were already released.
///
/// # Errors
///
/// A database error.
pub async fn release_stock(
    conn: &mut AnyConnection,
    order_id: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE orders SET stock_released = 1, updated_at = $1 WHERE id = $2 AND stock_released = 0",
    )
    .bind(now)
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE products SET stock = stock + \
           (SELECT i.quantity FROM order_items i WHERE i.order_id = $1 AND i.product_id = products.id) \
         WHERE id IN (SELECT product_id FROM order_items WHERE order_id = $1)",
    )
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(true)
}

/// The order an idempotency key already names, with the stored request hash.
///
/// # Errors
///
/// A database error.
pub async fn idempotent_order(
    conn: &mut AnyConnection,
    user_id: i64,
    key: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get("request_hash")?, r.try_get("order_id")?)))
        .transpose()
}

/// Records that `key` made `order_id`. Returns false if the key was taken meanwhile.
///
/// # Errors
///
/// A database error.
pub async fn insert_idempotency_key(
    conn: &mut AnyConnection,
    user_id: i64,
    key: &str,
    request_hash: &str,
    order_id: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(request_hash)
    .bind(order_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts an order and gives it its PG-facing reference (`ORD-000042`). Returns (id, ref).
///
/// # Errors
///
/// A database error.
pub async fn insert_order(
    conn: &mut AnyConnection,
    user_id: i64,
    status: OrderStatus,
    method: PaymentMethod,
    total: Money,
    now: i64,
) -> Result<(i64, String), sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (user_id, status, method, total_amount, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(status.as_str())
    .bind(method.as_str())
    .bind(total.minor_units())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let order_ref = format!("ORD-{id:06}");
    sqlx::query("UPDATE orders SET order_ref = $1 WHERE id = $2")
        .bind(&order_ref)
        .bind(id)
        .execute(conn)
        .await?;
    Ok((id, order_ref))
}

/// Inserts one order line.
///
/// # Errors
///
/// A database error.
pub async fn insert_order_item(
    conn: &mut AnyConnection,
    order_id: i64,
    item: &OrderItem,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, $4)",
    )
    .bind(order_id)
    .bind(item.product_id)
    .bind(item.quantity)
    .bind(item.unit_price)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts a payment; returns its id.
///
/// # Errors
///
/// A database error.
pub async fn insert_payment(
    conn: &mut AnyConnection,
    payment: &NewPayment<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO payments (order_id, method, status, amount, card_type, card_no_masked, \
           idempotency_key, transaction_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(payment.order_id)
    .bind(payment.method.as_str())
    .bind(payment.status.as_str())
    .bind(payment.amount.minor_units())
    .bind(payment.card_type)
    .bind(payment.card_no_masked)
    .bind(payment.idempotency_key)
    .bind(payment.transaction_key)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Sets the idempotency key of a payment (derived from its id).
///
/// # Errors
///
/// A database error.
pub async fn set_payment_idempotency_key(
    conn: &mut AnyConnection,
    payment_id: i64,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET idempotency_key = $1 WHERE id = $2")
        .bind(key)
        .bind(payment_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a transition.
///
/// # Errors
///
/// A database error.
pub async fn insert_history(
    conn: &mut AnyConnection,
    payment_id: i64,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
    source: &str,
    detail: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_history (payment_id, from_status, to_status, source, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(payment_id)
    .bind(from.map(PaymentStatus::as_str))
    .bind(to.as_str())
    .bind(source)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends an event to the outbox (same transaction as the change it announces).
///
/// # Errors
///
/// A database error.
pub async fn insert_outbox(
    conn: &mut AnyConnection,
    aggregate_id: i64,
    event_type: &str,
    payload: &serde_json::Value,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outbox_events (aggregate_id, event_type, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(aggregate_id)
    .bind(event_type)
    .bind(payload.to_string())
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Takes the order's row lock (Postgres) for the rest of the transaction, so observations
/// about one order are applied one at a time; on SQLite the transaction already holds the
/// database's write lock. Returns false if the order does not exist.
///
/// # Errors
///
/// A database error.
pub async fn lock_order(conn: &mut AnyConnection, order_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE orders SET updated_at = updated_at WHERE id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One order.
///
/// # Errors
///
/// A database error.
pub async fn order_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(parse_order)
        .transpose()
}

/// The order the PG knows as `order_ref`.
///
/// # Errors
///
/// A database error.
pub async fn order_by_ref(
    conn: &mut AnyConnection,
    order_ref: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_ref = $1"
    ))
    .bind(order_ref)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(parse_order)
    .transpose()
}

/// One payment.
///
/// # Errors
///
/// A database error.
pub async fn payment_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(parse_payment)
    .transpose()
}

/// The payment holding a PG transaction key.
///
/// # Errors
///
/// A database error.
pub async fn payment_by_transaction_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE transaction_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(parse_payment)
    .transpose()
}

/// Every payment of an order, oldest first.
///
/// # Errors
///
/// A database error.
pub async fn payments_for_order(
    conn: &mut AnyConnection,
    order_id: i64,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(parse_payment)
    .collect()
}

/// Moves a payment from `from` to `to` if it is still in `from`. Sets the transaction key
/// and reason when given. Returns whether it moved.
///
/// # Errors
///
/// A database error (e.g. a transaction key already held by another payment).
pub async fn transition_payment(
    conn: &mut AnyConnection,
    id: i64,
    from: PaymentStatus,
    to: PaymentStatus,
    transaction_key: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET status = $1, transaction_key = COALESCE($2, transaction_key), \
           reason = COALESCE($3, reason), updated_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(to.as_str())
    .bind(transaction_key)
    .bind(reason)
    .bind(now)
    .bind(id)
    .bind(from.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Attaches a transaction key to a payment that has none, without changing its status.
///
/// # Errors
///
/// A database error.
pub async fn attach_transaction_key(
    conn: &mut AnyConnection,
    id: i64,
    key: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET transaction_key = $1, updated_at = $2 WHERE id = $3 AND transaction_key IS NULL",
    )
    .bind(key)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves an order from `from` to `to` if it is still in `from` (and records the paying
/// payment when given). Returns whether it moved.
///
/// # Errors
///
/// A database error.
pub async fn transition_order(
    conn: &mut AnyConnection,
    id: i64,
    from: OrderStatus,
    to: OrderStatus,
    paid_payment_id: Option<i64>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE orders SET status = $1, paid_payment_id = COALESCE($2, paid_payment_id), updated_at = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(paid_payment_id)
    .bind(now)
    .bind(id)
    .bind(from.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
