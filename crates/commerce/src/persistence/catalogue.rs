//! Users, products and stock: the demo seed, the catalogue reads, and the stock and points
//! statements of an order's transaction.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Engine, Product};
use crate::domain::{OrderId, ProductId, UserId};

/// The Postgres advisory lock key of the demo seed (any constant other holders do not use).
const SEED_LOCK: i64 = 0x636f_6d6d_7365_6564; // "commseed"

/// Seeds demo users and products when the database has none. Returns whether it seeded.
/// Run it in its own transaction from [`Db::begin`](super::Db::begin), committed after.
///
/// # Errors
///
/// A database error.
pub async fn seed_demo_data(conn: &mut AnyConnection, engine: Engine) -> Result<bool, sqlx::Error> {
    // Instances starting together on a fresh database seed it once: SQLite's write
    // transactions are serialised from their first statement (`BEGIN IMMEDIATE`); on
    // Postgres a transaction-scoped advisory lock serialises the count and the inserts.
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEED_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *conn)
        .await?;
    if users > 0 {
        return Ok(false);
    }
    for (id, name, points) in [
        (UserId::new(1), "Kim", 1_000_000_i64),
        (UserId::new(2), "Lee", 1_000_000),
        (UserId::new(3), "Park", 5_000),
    ] {
        sqlx::query(
            "INSERT INTO users (id, name, points) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(points)
        .execute(&mut *conn)
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
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// Adds a user (tests and the demo).
///
/// # Errors
///
/// A database error (e.g. a duplicate id).
pub async fn insert_user(
    conn: &mut AnyConnection,
    id: UserId,
    name: &str,
    points: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (id, name, points) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(points)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds a product and returns its id (tests and the demo).
///
/// # Errors
///
/// A database error.
pub async fn insert_product(
    conn: &mut AnyConnection,
    name: &str,
    price: i64,
    stock: i64,
) -> Result<ProductId, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO products (name, price, stock) VALUES ($1, $2, $3) RETURNING id")
        .bind(name)
        .bind(price)
        .bind(stock)
        .fetch_one(&mut *conn)
        .await
}

/// Every product, by id.
///
/// # Errors
///
/// A database error.
pub async fn products(conn: &mut AnyConnection) -> Result<Vec<Product>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, name, price, stock FROM products ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(product_from_row).collect()
}

/// One product.
///
/// # Errors
///
/// A database error.
pub async fn product(
    conn: &mut AnyConnection,
    id: ProductId,
) -> Result<Option<Product>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, price, stock FROM products WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(product_from_row).transpose()
}

/// A user's points.
///
/// # Errors
///
/// A database error.
pub async fn user_points(
    conn: &mut AnyConnection,
    user_id: UserId,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
}

/// Units reserved by orders whose stock is still held (not released).
///
/// # Errors
///
/// A database error.
pub async fn units_held(
    conn: &mut AnyConnection,
    product_id: ProductId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i \
         JOIN orders o ON o.id = i.order_id WHERE i.product_id = $1 AND o.stock_released = 0",
    )
    .bind(product_id)
    .fetch_one(&mut *conn)
    .await
}

/// The user's points, `None` if the user does not exist.
///
/// # Errors
///
/// A database error.
pub async fn user_points_in(
    conn: &mut AnyConnection,
    user_id: UserId,
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
    product_id: ProductId,
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
    product_id: ProductId,
    quantity: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1")
        .bind(quantity)
        .bind(product_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes `quantity` units if that many are in stock and returns the product's price, in one
/// statement; `None` when the product does not exist or has too few units (the write path
/// asks which only then, with [`product_price`]).
///
/// # Errors
///
/// A database error.
pub async fn take_stock_priced(
    conn: &mut AnyConnection,
    product_id: ProductId,
    quantity: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1 RETURNING price",
    )
    .bind(quantity)
    .bind(product_id)
    .fetch_optional(conn)
    .await
}

/// Deducts points if the user has enough. Returns whether it did.
///
/// # Errors
///
/// A database error.
pub async fn take_points(
    conn: &mut AnyConnection,
    user_id: UserId,
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
    order_id: OrderId,
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

fn product_from_row(row: &AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        price: row.try_get("price")?,
        stock: row.try_get("stock")?,
    })
}
