//! Orders, their lines and the idempotency keys that name them.

use sqlx::{AnyConnection, Connection, Row};

use super::rows::{ORDER_COLUMNS, parse_order};
use super::{OrderItem, OrderRow, PaymentRow, payments_for_order};
use crate::domain::{Money, OrderId, OrderStatus, PaymentId, PaymentMethod, UserId};

/// One order with its items and payments, in one read transaction (a consistent view).
///
/// # Errors
///
/// A database error.
pub async fn order_with_details(
    conn: &mut AnyConnection,
    id: OrderId,
) -> Result<Option<(OrderRow, Vec<OrderItem>, Vec<PaymentRow>)>, sqlx::Error> {
    let mut tx = conn.begin().await?;
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

/// Counts of orders by status and of open payments (metrics, tests, the demo).
///
/// # Errors
///
/// A database error.
pub async fn order_status_counts(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY status")
        .fetch_all(&mut *conn)
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
pub async fn all_orders(conn: &mut AnyConnection) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id"))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(parse_order)
        .collect()
}

/// The order an idempotency key already names, with the stored request hash.
///
/// # Errors
///
/// A database error.
pub async fn idempotent_order(
    conn: &mut AnyConnection,
    user_id: UserId,
    key: &str,
) -> Result<Option<(String, OrderId)>, sqlx::Error> {
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
    user_id: UserId,
    key: &str,
    request_hash: &str,
    order_id: OrderId,
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

/// Moves `key` from `old_order_id` to `order_id` (a new request fingerprint and time), if it
/// still names `old_order_id`. Returns false when another request moved it first.
///
/// # Errors
///
/// A database error.
pub async fn rebind_idempotency_key(
    conn: &mut AnyConnection,
    user_id: UserId,
    key: &str,
    old_order_id: OrderId,
    request_hash: &str,
    order_id: OrderId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET order_id = $1, request_hash = $2, created_at = $3 \
         WHERE user_id = $4 AND key = $5 AND order_id = $6",
    )
    .bind(order_id)
    .bind(request_hash)
    .bind(now)
    .bind(user_id)
    .bind(key)
    .bind(old_order_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The PG-facing reference of order `id`: `ORD-000042`.
pub fn order_ref_of(id: OrderId) -> String {
    let id = id.get();
    format!("ORD-{id:06}")
}

/// Inserts an order without its reference (one statement; the write path sets the reference
/// with its next update of the row: [`set_order_ref`] or [`finish_point_order`]). Returns its
/// id.
///
/// # Errors
///
/// A database error.
pub async fn insert_order_row(
    conn: &mut AnyConnection,
    user_id: UserId,
    status: OrderStatus,
    method: PaymentMethod,
    total: Money,
    now: i64,
) -> Result<OrderId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO orders (user_id, status, method, total_amount, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(status.as_str())
    .bind(method.as_str())
    .bind(total.minor_units())
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Sets an order's reference ([`order_ref_of`]).
///
/// # Errors
///
/// A database error.
pub async fn set_order_ref(conn: &mut AnyConnection, id: OrderId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET order_ref = $1 WHERE id = $2")
        .bind(order_ref_of(id))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Completes a new POINT order (inserted PAID) in one statement: its reference and the
/// payment that paid it.
///
/// # Errors
///
/// A database error.
pub async fn finish_point_order(
    conn: &mut AnyConnection,
    id: OrderId,
    payment_id: PaymentId,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET order_ref = $1, paid_payment_id = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(order_ref_of(id))
    .bind(payment_id)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts every line of an order in one statement.
///
/// # Errors
///
/// A database error.
pub async fn insert_order_items(
    conn: &mut AnyConnection,
    order_id: OrderId,
    items: &[OrderItem],
) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ",
    );
    for i in 0..items.len() {
        let n = i * 4;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
    }
    let mut query = sqlx::query(&sql);
    for item in items {
        query = query
            .bind(order_id)
            .bind(item.product_id)
            .bind(item.quantity)
            .bind(item.unit_price);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Takes the order's row lock (Postgres) for the rest of the transaction, so observations
/// about one order are applied one at a time; on SQLite the transaction already holds the
/// database's write lock. Returns false if the order does not exist.
///
/// # Errors
///
/// A database error.
pub async fn lock_order(conn: &mut AnyConnection, order_id: OrderId) -> Result<bool, sqlx::Error> {
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
    id: OrderId,
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

/// Moves an order from `from` to `to` if it is still in `from` (and records the paying
/// payment when given). Returns whether it moved.
///
/// # Errors
///
/// A database error.
pub async fn transition_order(
    conn: &mut AnyConnection,
    id: OrderId,
    from: OrderStatus,
    to: OrderStatus,
    paid_payment_id: Option<PaymentId>,
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

/// Deletes up to `limit` idempotency keys made before `cutoff`; returns how many.
///
/// # Errors
///
/// A database error.
pub async fn prune_idempotency_keys(
    conn: &mut AnyConnection,
    cutoff: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
           (SELECT user_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Idempotency keys held now (tests, the retention report).
///
/// # Errors
///
/// A database error.
pub async fn idempotency_key_count(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(conn)
        .await
}
