//! Placing orders: validation, the idempotency key, the POINT and CARD flows.
//!
//! A CARD order is written (stock reserved, order PAYMENT_PENDING, payment REQUESTED) and
//! committed **before** the PG is called, so a crash loses nothing: the recovery job finds
//! the REQUESTED payment. The PG call holds no database connection. Its outcome goes through
//! [`PaymentService::apply`] like every other observation.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tracing::Instrument;

use crate::domain::{
    CardNumber, CardType, Money, Observation, OrderStatus, PaymentMethod, PaymentStatus, Source,
};
use crate::error::ApiError;
use crate::gateway::{ChargeError, ChargeRequest};
use crate::payments::{NOT_REACHED_REASON, PaymentService, Target};
use crate::persistence::{self as db, NewPayment, OrderItem};

/// Most lines in one order.
pub const MAX_ITEMS: usize = 50;
/// Most units of one product in one order.
pub const MAX_QUANTITY: i64 = 1_000;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 100;

/// `POST /api/v1/orders` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// What to buy.
    pub items: Vec<ItemRequest>,
    /// How to pay.
    pub payment: PaymentRequest,
}

/// One line of an order request.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRequest {
    /// Product id.
    pub product_id: i64,
    /// Units.
    pub quantity: i64,
}

/// The payment part of an order request: `{"method": "POINT"}` or
/// `{"method": "CARD", "cardType": "SAMSUNG", "cardNo": "1234-5678-9012-3456"}`. A flat
/// struct rather than a tagged enum, so an unknown field (a `cvv`) is refused for every
/// method.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentRequest {
    /// `POINT` or `CARD`.
    pub method: PaymentMethod,
    /// `SAMSUNG`, `KB` or `HYUNDAI` (CARD only).
    #[serde(default)]
    pub card_type: Option<String>,
    /// `dddd-dddd-dddd-dddd` (CARD only).
    #[serde(default)]
    pub card_no: Option<String>,
}

impl std::fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("method", &self.method)
            .field("card_type", &self.card_type)
            .field(
                "card_no",
                &self.card_no.as_deref().map(crate::domain::mask_pan),
            )
            .finish()
    }
}

/// A validated payment choice.
#[derive(Clone, Debug)]
enum Payment {
    Point,
    Card(CardType, CardNumber),
}

/// What placing an order produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// A new order, with the status of its payment after the request's own PG call.
    New {
        /// The order.
        order_id: i64,
        /// The payment's status.
        payment: PaymentStatus,
    },
    /// The idempotency key named an existing order.
    Replayed {
        /// The order.
        order_id: i64,
    },
}

/// Places orders. Cheap to clone.
#[derive(Clone)]
pub struct OrderService {
    payments: PaymentService,
    callback_url: String,
    fingerprint_key: Arc<[u8]>,
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService")
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl OrderService {
    /// A service whose card payments report to `callback_url`, and whose idempotency
    /// fingerprints are keyed with `fingerprint_key`.
    pub fn new(payments: PaymentService, callback_url: String, fingerprint_key: &[u8]) -> Self {
        Self {
            payments,
            callback_url,
            fingerprint_key: Arc::from(fingerprint_key),
        }
    }

    /// Places an order for `user_id`.
    ///
    /// # Errors
    ///
    /// 400 invalid input, 404 unknown user or product, 409 out of stock / not enough points
    /// / key reused with another request, 422 card rejected by the PG, 503 PG unavailable
    /// (nothing charged, stock released), 500 database trouble.
    #[tracing::instrument(
        name = "order.place",
        skip_all,
        fields(user_id, order_id, transaction_key)
    )]
    pub async fn place(
        &self,
        user_id: i64,
        idempotency_key: Option<&str>,
        request: OrderRequest,
    ) -> Result<Placed, ApiError> {
        let payment = validate(&request, idempotency_key)?;
        let request_hash = fingerprint(&self.fingerprint_key, &request, &payment);
        let now = db::now_ms();
        let database = self.payments.db();
        let mut tx = database.begin().await?;

        // The key's earlier order, when it failed without ever reaching the PG: this request
        // places the order that one could not (the 503 told the client to send it again).
        let mut retry_of = None;
        if let Some(key) = idempotency_key
            && let Some((hash, order_id)) = db::idempotent_order(&mut tx, user_id, key).await?
        {
            if hash != request_hash {
                return Err(ApiError::Conflict {
                    code: "IDEMPOTENCY_KEY_REUSED",
                    message: "this Idempotency-Key was used for a different order".to_owned(),
                });
            }
            if !never_reached_the_pg(&mut tx, order_id).await? {
                return Ok(Placed::Replayed { order_id });
            }
            retry_of = Some(order_id);
        }
        if db::user_points_in(&mut tx, user_id).await?.is_none() {
            return Err(ApiError::NotFound {
                code: "USER_NOT_FOUND",
                message: "no such user".to_owned(),
            });
        }

        let mut items = Vec::with_capacity(request.items.len());
        let mut total = Money::new(0);
        for line in &request.items {
            let Some(price) = db::product_price(&mut tx, line.product_id).await? else {
                return Err(ApiError::NotFound {
                    code: "PRODUCT_NOT_FOUND",
                    message: format!("product {} does not exist", line.product_id),
                });
            };
            if !db::take_stock(&mut tx, line.product_id, line.quantity).await? {
                return Err(ApiError::Conflict {
                    code: "OUT_OF_STOCK",
                    message: format!(
                        "product {} has fewer than {} units in stock",
                        line.product_id, line.quantity
                    ),
                });
            }
            total = Money::new(price)
                .checked_mul(line.quantity)
                .and_then(|amount| total.checked_add(amount))
                .ok_or_else(|| ApiError::bad_request("INVALID_REQUEST", "order total too large"))?;
            items.push(OrderItem {
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price: price,
            });
        }

        let (method, status) = match payment {
            Payment::Point => (PaymentMethod::Point, OrderStatus::Paid),
            Payment::Card(..) => (PaymentMethod::Card, OrderStatus::PaymentPending),
        };
        let (order_id, order_ref) =
            db::insert_order(&mut tx, user_id, status, method, total, now).await?;
        tracing::Span::current().record("order_id", order_id);
        for item in &items {
            db::insert_order_item(&mut tx, order_id, item).await?;
        }
        let masked = match &payment {
            Payment::Card(_, card) => Some(card.masked()),
            Payment::Point => None,
        };
        let card_type = match &payment {
            Payment::Card(card_type, _) => Some(card_type.as_str()),
            Payment::Point => None,
        };
        let payment_status = match payment {
            Payment::Point => PaymentStatus::Success,
            Payment::Card(..) => PaymentStatus::Requested,
        };
        if matches!(payment, Payment::Point)
            && !db::take_points(&mut tx, user_id, total.minor_units()).await?
        {
            return Err(ApiError::Conflict {
                code: "INSUFFICIENT_POINTS",
                message: "not enough points for this order".to_owned(),
            });
        }
        let payment_id = db::insert_payment(
            &mut tx,
            &NewPayment {
                order_id,
                method,
                status: payment_status,
                amount: total,
                card_type,
                card_no_masked: masked.as_deref(),
                idempotency_key: None,
                transaction_key: None,
            },
            now,
        )
        .await?;
        let pg_key = format!("{order_ref}-P{payment_id}");
        db::insert_history(
            &mut tx,
            payment_id,
            None,
            payment_status,
            Source::Request.as_str(),
            Some("order placed"),
            now,
        )
        .await?;
        let event = if status == OrderStatus::Paid {
            db::transition_order(&mut tx, order_id, status, status, Some(payment_id), now).await?;
            "OrderPaid"
        } else {
            db::set_payment_idempotency_key(&mut tx, payment_id, &pg_key).await?;
            if let Payment::Card(_, card) = &payment {
                (self.payments)
                    .keep_card_until_sent(&mut tx, payment_id, &pg_key, card, now)
                    .await?;
            }
            "OrderPlaced"
        };
        db::insert_outbox(
            &mut tx,
            order_id,
            event,
            &serde_json::json!({"orderId": order_id, "orderRef": order_ref, "status": status.as_str(),
                                "totalAmount": total.minor_units(), "method": method.as_str()}),
            now,
        )
        .await?;
        let bound = match (idempotency_key, retry_of) {
            (None, _) => true,
            (Some(key), None) => {
                db::insert_idempotency_key(&mut tx, user_id, key, &request_hash, order_id, now)
                    .await?
            }
            (Some(key), Some(failed)) => {
                db::rebind_idempotency_key(
                    &mut tx,
                    user_id,
                    key,
                    failed,
                    &request_hash,
                    order_id,
                    now,
                )
                .await?
            }
        };
        if let Some(key) = idempotency_key
            && !bound
        {
            // Taken (or moved) by a concurrent request between our check and now (not possible
            // under SQLite's write lock; Postgres row locks): its order wins.
            drop(tx);
            let mut tx = database.begin().await?;
            if let Some((_, existing)) = db::idempotent_order(&mut tx, user_id, key).await? {
                return Ok(Placed::Replayed { order_id: existing });
            }
            return Err(ApiError::Conflict {
                code: "IDEMPOTENCY_KEY_IN_PROGRESS",
                message: "a request with this Idempotency-Key is in progress".to_owned(),
            });
        }
        tx.commit().await?;
        metrics::counter!("commerce_orders_placed_total", "method" => method.as_str()).increment(1);

        let Payment::Card(card_type, card_no) = payment else {
            tracing::info!(order_id, "point order paid");
            return Ok(Placed::New {
                order_id,
                payment: PaymentStatus::Success,
            });
        };
        let charge = ChargeRequest {
            user_id: user_id.to_string(),
            order_ref,
            card_type,
            card_no,
            amount: total,
            callback_url: self.callback_url.clone(),
            idempotency_key: pg_key,
        };
        // The call and its recording run in their own task: a client that hangs up does not
        // cancel a charge halfway, and graceful shutdown waits for it.
        let payments = self.payments.clone();
        let outcome = tokio::spawn(
            async move {
                let observation = match payments.gateway().charge(charge).await {
                    Ok(transaction_key) => {
                        tracing::Span::current()
                            .record("transaction_key", transaction_key.as_str());
                        Observation::Accepted { transaction_key }
                    }
                    Err(ChargeError::NotReached(reason)) => Observation::NotReached { reason },
                    Err(ChargeError::Uncertain(reason)) => Observation::Uncertain { reason },
                    Err(ChargeError::Rejected(reason)) => Observation::Rejected { reason },
                };
                let rejected = matches!(observation, Observation::Rejected { .. });
                let applied = payments
                    .apply(Target::Payment(payment_id), observation, Source::Request)
                    .await;
                (applied, rejected)
            }
            .instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| {
            ApiError::Internal(crate::error::anyhow_like::Internal::new("charge task", e))
        })?;
        let (applied, rejected) = outcome;
        let applied = applied?;
        let status = applied.to.unwrap_or(PaymentStatus::Requested);
        tracing::info!(
            order_id,
            payment_id,
            status = status.as_str(),
            "card order placed"
        );
        match status {
            PaymentStatus::Failed if rejected => Err(ApiError::Unprocessable {
                code: "PAYMENT_REJECTED",
                message: "the card payment was rejected; check the card details".to_owned(),
            }),
            PaymentStatus::Failed => Err(ApiError::PaymentUnavailable(None)),
            status => Ok(Placed::New {
                order_id,
                payment: status,
            }),
        }
    }
}

/// Whether an order failed only because its charge provably never reached the PG: FAILED,
/// and every payment FAILED as not reached, with no PG transaction.
async fn never_reached_the_pg(tx: &mut db::Tx, order_id: i64) -> Result<bool, sqlx::Error> {
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

fn validate(request: &OrderRequest, idempotency_key: Option<&str>) -> Result<Payment, ApiError> {
    if let Some(key) = idempotency_key
        && (key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::bad_request(
            "INVALID_IDEMPOTENCY_KEY",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
        ));
    }
    if request.items.is_empty() || request.items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            format!("items must hold 1 to {MAX_ITEMS} lines"),
        ));
    }
    for (i, item) in request.items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                format!("items[{i}].quantity must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if item.product_id <= 0 {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                format!("items[{i}].productId must be positive"),
            ));
        }
        if request.items[..i]
            .iter()
            .any(|o| o.product_id == item.product_id)
        {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                format!("items[{i}].productId repeats an earlier line"),
            ));
        }
    }
    let payment = &request.payment;
    match (payment.method, &payment.card_type, &payment.card_no) {
        (PaymentMethod::Point, None, None) => Ok(Payment::Point),
        (PaymentMethod::Point, ..) => Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "payment.cardType and payment.cardNo are only for CARD payments",
        )),
        (PaymentMethod::Card, Some(card_type), Some(card_no)) => {
            let card_type: CardType = card_type
                .parse()
                .map_err(|e: &str| ApiError::bad_request("INVALID_CARD", format!("payment.{e}")))?;
            let card_no = CardNumber::parse(card_no)
                .map_err(|e| ApiError::bad_request("INVALID_CARD", format!("payment.{e}")))?;
            Ok(Payment::Card(card_type, card_no))
        }
        (PaymentMethod::Card, ..) => Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "payment.cardType and payment.cardNo are required for a CARD payment",
        )),
    }
}

/// A fingerprint of the request, to tell a replay from a reuse of the key. It covers the
/// full card number (two cards that mask alike are two requests), so it is an HMAC with a
/// server key: without the key, the stored value does not give the middle digits away to a
/// search of the few million numbers that share a BIN and last four.
fn fingerprint(key: &[u8], request: &OrderRequest, payment: &Payment) -> String {
    let payment = match payment {
        Payment::Point => "POINT".to_owned(),
        Payment::Card(card_type, card) => {
            format!("CARD {} {}", card_type.as_str(), card.expose_for_gateway())
        }
    };
    let canonical = serde_json::json!({"items": request.items, "payment": payment});
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(canonical.to_string().as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}
