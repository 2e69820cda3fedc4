//! Step one of placing an order: one write transaction that checks the idempotency key,
//! takes the stock (and the points of a POINT order), writes the order, its lines, its
//! payment, the payment's first history row and the outbox event, and binds the key. It
//! commits before the PG is called, so a crash after it loses nothing.
//!
//! The transaction holds SQLite's one write lock from its first statement, so its length is
//! the service's write throughput: it sends as few statements as it can. A POINT order of one
//! line without a key is `BEGIN`, 8 statements and `COMMIT` (it was 11): the stock is taken and
//! priced in one `UPDATE … RETURNING`, the points taken without looking the user up first, the
//! lines inserted in one statement, and the reference set in the row's one update. The
//! questions only a refusal needs (which product, which user) are asked on the refusal's path.

use super::validate::Payment;
use super::{OrderRequest, PlaceError};
use crate::domain::{
    Money, OrderId, OrderStatus, PaymentId, PaymentMethod, PaymentStatus, Source, UserId,
};
use crate::payments::{NOT_REACHED_REASON, PaymentService};
use crate::persistence::{self as db, Db, NewPayment, OrderItem, Tx};

/// What the reservation produced.
#[derive(Debug)]
pub(super) enum Reservation {
    /// The key names an earlier order: answer with it.
    Replayed(OrderId),
    /// A new order, committed.
    Reserved(Reserved),
}

/// A committed new order.
#[derive(Debug)]
pub(super) struct Reserved {
    pub(super) order_id: OrderId,
    pub(super) order_ref: String,
    pub(super) payment_id: PaymentId,
    pub(super) total: Money,
    /// The payment's `Idempotency-Key` at the PG (CARD orders).
    pub(super) pg_key: String,
}

/// What the key says before anything is written.
enum KeyState {
    /// No key, or a key not seen before.
    Fresh,
    /// The key's order stands: replay it.
    Replay(OrderId),
    /// The key's order failed without ever reaching the PG: this request places the order
    /// that one could not (the 503 told the client to send it again).
    RetryOf(OrderId),
}

/// The request as the transaction needs it.
pub(super) struct Ask<'a> {
    pub(super) user_id: UserId,
    pub(super) key: Option<&'a str>,
    pub(super) request_hash: &'a str,
    pub(super) request: &'a OrderRequest,
    pub(super) payment: &'a Payment,
}

/// Runs the write transaction of a new order.
///
/// # Errors
///
/// Every [`PlaceError`] but the payment ones.
pub(super) async fn reserve(
    payments: &PaymentService,
    ask: &Ask<'_>,
) -> Result<Reservation, PlaceError> {
    let database = payments.db();
    let now = db::now_ms();
    let mut tx = database.begin().await?;
    let retry_of = match key_state(&mut tx, ask).await? {
        KeyState::Replay(order_id) => return Ok(Reservation::Replayed(order_id)),
        KeyState::Fresh => None,
        KeyState::RetryOf(order_id) => Some(order_id),
    };
    // A POINT order learns that its user exists from taking the points; a CARD order takes
    // nothing from the user, so it asks. Every error path below asks first, so an unknown
    // user is reported before anything else either way.
    if matches!(ask.payment, Payment::Card(..)) && !user_exists(&mut tx, ask.user_id).await? {
        return Err(PlaceError::UserNotFound);
    }
    let (items, total) = take_stock(&mut tx, ask).await?;
    if matches!(ask.payment, Payment::Point)
        && !db::take_points(&mut tx, ask.user_id, total.minor_units()).await?
    {
        return Err(unless_no_user(&mut tx, ask.user_id, PlaceError::InsufficientPoints).await?);
    }
    let reserved = write_order(&mut tx, ask, &items, total, now).await?;
    // The card stays sealed until its charge is first attempted, so recovery can send a
    // charge this instance committed but never sent.
    if let Payment::Card(_, card) = ask.payment {
        payments
            .keep_card_until_sent(&mut tx, reserved.payment_id, &reserved.pg_key, card, now)
            .await?;
    }
    if !bind_key(&mut tx, ask, retry_of, reserved.order_id, now).await? {
        // Taken (or moved) by a concurrent request between our check and now (not possible
        // under SQLite's write lock; Postgres row locks): its order wins.
        drop(tx);
        return replay_winner(database, ask).await;
    }
    tx.commit().await?;
    Ok(Reservation::Reserved(reserved))
}

async fn key_state(tx: &mut Tx, ask: &Ask<'_>) -> Result<KeyState, PlaceError> {
    let Some(key) = ask.key else {
        return Ok(KeyState::Fresh);
    };
    let Some((hash, order_id)) = db::idempotent_order(tx, ask.user_id, key).await? else {
        return Ok(KeyState::Fresh);
    };
    if hash != ask.request_hash {
        return Err(PlaceError::KeyReused);
    }
    if never_reached_the_pg(tx, order_id).await? {
        Ok(KeyState::RetryOf(order_id))
    } else {
        Ok(KeyState::Replay(order_id))
    }
}

/// Whether an order failed only because its charge provably never reached the PG: FAILED,
/// and every payment FAILED as not reached, with no PG transaction.
async fn never_reached_the_pg(tx: &mut Tx, order_id: OrderId) -> Result<bool, sqlx::Error> {
    let Some(order) = db::order_by_id(tx, order_id).await? else {
        return Ok(false);
    };
    if order.status != OrderStatus::Failed {
        return Ok(false);
    }
    let payments = db::payments_for_order(tx, order_id).await?;
    Ok(!payments.is_empty()
        && payments.iter().all(|p| {
            p.status == PaymentStatus::Failed
                && p.transaction_key.is_none()
                && p.reason.as_deref() == Some(NOT_REACHED_REASON)
        }))
}

async fn user_exists(tx: &mut Tx, user_id: UserId) -> Result<bool, sqlx::Error> {
    Ok(db::user_points_in(tx, user_id).await?.is_some())
}

/// `error`, or [`PlaceError::UserNotFound`] when the user does not exist (an unknown user is
/// the first thing an order is refused for).
async fn unless_no_user(
    tx: &mut Tx,
    user_id: UserId,
    error: PlaceError,
) -> Result<PlaceError, sqlx::Error> {
    Ok(if user_exists(tx, user_id).await? {
        error
    } else {
        PlaceError::UserNotFound
    })
}

/// Takes every line's units from stock and prices it (one statement a line); returns the
/// lines and the total.
async fn take_stock(tx: &mut Tx, ask: &Ask<'_>) -> Result<(Vec<OrderItem>, Money), PlaceError> {
    let request = ask.request;
    let mut items = Vec::with_capacity(request.items.len());
    let mut total = Money::new(0);
    for line in &request.items {
        let Some(price) = db::take_stock_priced(tx, line.product_id, line.quantity).await? else {
            let why = if db::product_price(tx, line.product_id).await?.is_none() {
                PlaceError::ProductNotFound(line.product_id)
            } else {
                PlaceError::OutOfStock {
                    product_id: line.product_id,
                    quantity: line.quantity,
                }
            };
            return Err(unless_no_user(tx, ask.user_id, why).await?);
        };
        let Some(sum) = Money::new(price)
            .checked_mul(line.quantity)
            .and_then(|amount| total.checked_add(amount))
        else {
            let why = PlaceError::invalid("INVALID_REQUEST", "order total too large");
            return Err(unless_no_user(tx, ask.user_id, why).await?);
        };
        total = sum;
        items.push(OrderItem {
            product_id: line.product_id,
            quantity: line.quantity,
            unit_price: price,
        });
    }
    Ok((items, total))
}

/// Writes the order, its lines (one statement), its payment with its first history row, and
/// the outbox event. The order's reference goes in with the row's one update: with the paying
/// payment for a POINT order, alone for a CARD order (whose payment then gets its PG key).
async fn write_order(
    tx: &mut Tx,
    ask: &Ask<'_>,
    items: &[OrderItem],
    total: Money,
    now: i64,
) -> Result<Reserved, sqlx::Error> {
    let (method, status, payment_status, card) = match ask.payment {
        Payment::Point => (
            PaymentMethod::Point,
            OrderStatus::Paid,
            PaymentStatus::Success,
            None,
        ),
        Payment::Card(card_type, card_no) => (
            PaymentMethod::Card,
            OrderStatus::PaymentPending,
            PaymentStatus::Requested,
            Some((card_type.as_str(), card_no.masked())),
        ),
    };
    let order_id = db::insert_order_row(tx, ask.user_id, status, method, total, now).await?;
    let order_ref = db::order_ref_of(order_id);
    tracing::Span::current().record("order_id", order_id.get());
    db::insert_order_items(tx, order_id, items).await?;
    let payment = NewPayment {
        order_id,
        method,
        status: payment_status,
        amount: total,
        card_type: card.as_ref().map(|(card_type, _)| *card_type),
        card_no_masked: card.as_ref().map(|(_, masked)| masked.as_str()),
        idempotency_key: None,
        transaction_key: None,
    };
    let payment_id = db::insert_payment(tx, &payment, now).await?;
    let pg_key = format!("{order_ref}-P{payment_id}");
    let placed = Source::Request.as_str();
    db::insert_history(
        tx,
        payment_id,
        None,
        payment_status,
        placed,
        Some("order placed"),
        now,
    )
    .await?;
    let event = if status == OrderStatus::Paid {
        db::finish_point_order(tx, order_id, payment_id, now).await?;
        "OrderPaid"
    } else {
        db::set_order_ref(tx, order_id).await?;
        db::set_payment_idempotency_key(tx, payment_id, &pg_key).await?;
        "OrderPlaced"
    };
    let body = serde_json::json!({"orderId": order_id, "orderRef": order_ref,
        "status": status.as_str(), "totalAmount": total.minor_units(), "method": method.as_str()});
    db::insert_outbox(tx, order_id.get(), event, &body, now).await?;
    Ok(Reserved {
        order_id,
        order_ref,
        payment_id,
        total,
        pg_key,
    })
}

/// Binds the key to the new order. False when a concurrent request took it first.
async fn bind_key(
    tx: &mut Tx,
    ask: &Ask<'_>,
    retry_of: Option<OrderId>,
    order_id: OrderId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (user_id, hash) = (ask.user_id, ask.request_hash);
    match (ask.key, retry_of) {
        (None, _) => Ok(true),
        (Some(key), None) => {
            db::insert_idempotency_key(tx, user_id, key, hash, order_id, now).await
        }
        (Some(key), Some(failed)) => {
            db::rebind_idempotency_key(tx, user_id, key, failed, hash, order_id, now).await
        }
    }
}

/// The order of the concurrent request that bound the key first.
async fn replay_winner(database: &Db, ask: &Ask<'_>) -> Result<Reservation, PlaceError> {
    let key = ask.key.unwrap_or_default();
    let mut tx = database.begin().await?;
    match db::idempotent_order(&mut tx, ask.user_id, key).await? {
        Some((_, existing)) => Ok(Reservation::Replayed(existing)),
        None => Err(PlaceError::KeyInProgress),
    }
}
