//! The rows the statements read and write, and how they are decoded.

use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{
    Money, OrderId, OrderStatus, PaymentId, PaymentMethod, PaymentStatus, ProductId, UserId,
};

/// A product row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// Id.
    pub id: ProductId,
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
    pub id: PaymentId,
    /// Its order.
    pub order_id: OrderId,
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
    pub id: OrderId,
    /// The id the PG sees.
    pub order_ref: String,
    /// Who ordered.
    pub user_id: UserId,
    /// Status.
    pub status: OrderStatus,
    /// POINT or CARD.
    pub method: String,
    /// Total in minor units.
    pub total_amount: i64,
    /// The payment that paid it.
    pub paid_payment_id: Option<PaymentId>,
    /// Creation time (ms).
    pub created_at: i64,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Product.
    pub product_id: ProductId,
    /// Units.
    pub quantity: i64,
    /// Unit price at order time.
    pub unit_price: i64,
}

/// A new payment row.
#[derive(Clone, Debug)]
pub struct NewPayment<'a> {
    /// Its order.
    pub order_id: OrderId,
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

pub(super) fn parse_payment(row: &AnyRow) -> Result<PaymentRow, sqlx::Error> {
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

pub(super) fn parse_order(row: &AnyRow) -> Result<OrderRow, sqlx::Error> {
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

pub(super) const PAYMENT_COLUMNS: &str = "id, order_id, method, status, amount, card_type, card_no_masked, \
     idempotency_key, transaction_key, reason, created_at, updated_at";
pub(super) const ORDER_COLUMNS: &str =
    "id, order_ref, user_id, status, method, total_amount, paid_payment_id, created_at";
