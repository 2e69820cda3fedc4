//! The result callback: a raw (un-enveloped) JSON POST to the stored `callbackUrl`, with the
//! callback faults (drop, delay, duplicate, reorder, conflicting, stale PENDING), optional
//! signature and optional retries.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::clock;
use crate::config::SimConfig;
use crate::fault::Fault;
use crate::ledger::{EntryView, Transaction};
use crate::model::{CardType, Outcome, TransactionStatus};
use crate::signature::{self, SIGNATURE_HEADER};
use crate::state::{Delivered, Shared};
use crate::stats::Stats;

/// A transaction on the wire: the canonical callback body (no envelope) and a detail answer's
/// `data` have the same shape. `reason` is omitted when absent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionBody<'a> {
    transaction_key: &'a str,
    order_id: &'a str,
    card_type: CardType,
    card_no: String,
    amount: i64,
    status: TransactionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl<'a> TransactionBody<'a> {
    /// `tx` as reported with this status and reason, its card number already as shown.
    pub(crate) fn new(
        tx: &'a Transaction,
        card_no: String,
        status: TransactionStatus,
        reason: Option<&'a str>,
    ) -> Self {
        Self {
            transaction_key: &tx.transaction_key,
            order_id: &tx.order_id,
            card_type: tx.card_type,
            card_no,
            amount: tx.amount,
            status,
            reason,
        }
    }
}

fn body(tx: &Transaction, mask: bool, status: TransactionStatus, reason: Option<&str>) -> Bytes {
    let card_no = if mask {
        tx.card_no.masked()
    } else {
        tx.card_no.expose().to_owned()
    };
    let body = TransactionBody::new(tx, card_no, status, reason);
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// The body of the current state of `tx`.
pub(crate) fn current_body(tx: &Transaction, mask: bool) -> Bytes {
    body(tx, mask, tx.status, tx.reason.as_deref())
}

/// Sends the callback(s) of a transaction that just reached a terminal state, honouring its
/// callback faults. Returns when every copy has been delivered or given up.
pub(crate) async fn dispatch(shared: &Arc<Shared>, view: EntryView) {
    let config = shared.config();
    let faults = &view.faults;
    let tx = &view.tx;
    if faults.contains(Fault::DropCallback) {
        tracing::info!(transaction_key = %tx.transaction_key, "callback dropped (fault)");
        return;
    }
    if faults.contains(Fault::DelayCallback) {
        let delay = faults
            .param(Fault::DelayCallback)
            .map_or(config.faults.callback_delay, Duration::from_millis);
        clock::sleep(delay).await;
    }
    if faults.contains(Fault::ReorderCallback) {
        let hold = faults
            .param(Fault::ReorderCallback)
            .map_or(config.faults.reorder_hold, Duration::from_millis);
        hold_until_sibling_delivered(shared, tx, hold).await;
    }
    let mask = config.mask_pan_in_responses;
    let mut bodies = vec![current_body(tx, mask)];
    if faults.contains(Fault::ConflictingCallback) {
        let opposite = if tx.status == TransactionStatus::Success {
            Outcome::LimitExceeded
        } else {
            Outcome::Success
        };
        bodies.push(body(tx, mask, opposite.status(), Some(opposite.reason())));
    }
    if faults.contains(Fault::PendingCallback) {
        bodies.push(body(tx, mask, TransactionStatus::Pending, None));
    }
    let copies = if faults.contains(Fault::DuplicateCallback) {
        faults
            .param(Fault::DuplicateCallback)
            .map_or(config.faults.duplicate_callback_copies, |n| {
                u32::try_from(n).unwrap_or(u32::MAX)
            })
            .clamp(1, 100)
    } else {
        1
    };
    let skew = if faults.contains(Fault::SignatureSkew) {
        config.faults.signature_skew_secs
    } else {
        0
    };
    for (i, bytes) in bodies.into_iter().enumerate() {
        let sends = (0..copies).map(|_| send_with_retry(shared, &config, tx, bytes.clone(), skew));
        futures_util::future::join_all(sends).await;
        if i == 0 {
            let _ = shared.delivered.send(Delivered {
                user_id: tx.user_id.clone(),
                order_id: tx.order_id.clone(),
                transaction_key: tx.transaction_key.clone(),
            });
        }
    }
}

/// One callback of the current state, no faults (cancel notifications).
pub(crate) async fn send_plain(shared: &Arc<Shared>, tx: &Transaction) {
    let config = shared.config();
    let bytes = current_body(tx, config.mask_pan_in_responses);
    // Failures are logged inside; a cancel notification is best effort like every callback.
    let _ = send_with_retry(shared, &config, tx, bytes, 0).await;
}

async fn hold_until_sibling_delivered(shared: &Shared, tx: &Transaction, hold: Duration) {
    let mut rx = shared.delivered.subscribe();
    let deadline = clock::sleep(hold);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            event = rx.recv() => match event {
                Ok(d) if d.user_id == tx.user_id
                    && d.order_id == tx.order_id
                    && d.transaction_key != tx.transaction_key => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Sends one body, retrying by the configured policy. Returns the last HTTP status, or the
/// transport error.
async fn send_with_retry(
    shared: &Arc<Shared>,
    config: &SimConfig,
    tx: &Transaction,
    bytes: Bytes,
    skew_secs: i64,
) -> Result<u16, String> {
    let mut retry = 0;
    loop {
        let result = send_once(shared, config, &tx.callback_url, bytes.clone(), skew_secs).await;
        match &result {
            Ok(status) if (200..300).contains(status) => return result,
            Ok(status) => tracing::warn!(
                transaction_key = %tx.transaction_key, status, attempt = retry + 1,
                "콜백 호출을 실패했습니다."
            ),
            Err(e) => tracing::warn!(
                transaction_key = %tx.transaction_key, error = %e, attempt = retry + 1,
                "콜백 호출을 실패했습니다."
            ),
        }
        let Some(wait) = config.callback.retry.delay_before(retry) else {
            return result;
        };
        clock::sleep(wait).await;
        retry += 1;
    }
}

/// One HTTP attempt, holding a processing permit like the canonical pool thread.
pub(crate) async fn send_once(
    shared: &Shared,
    config: &SimConfig,
    url: &str,
    bytes: Bytes,
    skew_secs: i64,
) -> Result<u16, String> {
    let _permit = Arc::clone(&shared.processing)
        .acquire_owned()
        .await
        .map_err(|e| e.to_string())?;
    Stats::bump(&shared.stats.callbacks_attempted);
    let mut request = shared
        .http
        .post(url)
        .header("content-type", "application/json");
    if !config.callback.secrets.is_empty() {
        let t = clock::unix_seconds().saturating_add(skew_secs);
        request = request.header(
            SIGNATURE_HEADER,
            signature::sign(&config.callback.secrets, t, &bytes),
        );
    }
    if let Some(timeout) = config.callback.timeout {
        request = request.timeout(timeout);
    }
    let result = match request.body(bytes).send().await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(e) => Err(error_chain(&e)),
    };
    let delivered = matches!(result, Ok(s) if (200..300).contains(&s));
    Stats::bump(if delivered {
        &shared.stats.callbacks_delivered
    } else {
        &shared.stats.callbacks_failed
    });
    shared.ledger.touch();
    result
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
