//! A charge's first attempt, claimed once, and the sealed card kept until then.

use sqlx::AnyConnection;

use crate::domain::PaymentId;

/// What [`claim_charge_attempt`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This caller sends the charge: the attempt is recorded and the sealed card deleted.
    Claimed,
    /// Another path (the request, or recovery) already sent it: do not send it again.
    AlreadyAttempted,
    /// No payment has this idempotency key (a charge the service's tables do not track).
    Untracked,
}

/// Keeps the sealed card of a payment not yet sent (same transaction as the payment).
///
/// # Errors
///
/// A database error.
pub async fn keep_sealed_card(
    conn: &mut AnyConnection,
    payment_id: PaymentId,
    sealed: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO payment_cards (payment_id, sealed, created_at) VALUES ($1, $2, $3)")
        .bind(payment_id)
        .bind(sealed)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Claims the attempt of the charge whose PG idempotency key is `key`, just before the PG
/// is called: `attempted_at` is set. Run it in its own transaction from
/// [`Db::begin`](super::Db::begin) (the write lock from the first statement), committed
/// before the PG is called. Only one caller gets [`Claim::Claimed`] for a payment, except
/// that a payment still REQUESTED whose charge never reached the PG call log (its claimer
/// died between the claim and the first HTTP attempt, whose "before" row is written ahead
/// of sending) can be claimed again, by recovery after its send grace, with the same
/// idempotency key (the PG deduplicates it should the first one still arrive). The sealed
/// card stays until the payment leaves REQUESTED
/// ([`transition_payment`](super::transition_payment) deletes it), so that resend is
/// possible.
///
/// # Errors
///
/// A database error (nothing was claimed: the charge must not be sent).
pub async fn claim_charge_attempt(
    conn: &mut AnyConnection,
    key: &str,
    now: i64,
) -> Result<Claim, sqlx::Error> {
    let claimed: Option<PaymentId> = sqlx::query_scalar(
        "UPDATE payments SET attempted_at = $1 \
         WHERE idempotency_key = $2 AND (attempted_at IS NULL OR (status = 'REQUESTED' \
           AND NOT EXISTS (SELECT 1 FROM pg_calls c \
             WHERE c.idempotency_key = $2 AND c.path = 'charge'))) \
         RETURNING id",
    )
    .bind(now)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let claim = match claimed {
        Some(_) => Claim::Claimed,
        None => {
            let known: Option<PaymentId> =
                sqlx::query_scalar("SELECT id FROM payments WHERE idempotency_key = $1")
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await?;
            if known.is_some() {
                Claim::AlreadyAttempted
            } else {
                Claim::Untracked
            }
        }
    };
    Ok(claim)
}

/// The sealed card of payment `id` while it is REQUESTED and its charge never reached the
/// PG call log (never claimed, or claimed by a process that died before its first HTTP
/// attempt); `None` once an attempt was logged or the payment moved on (or when no card
/// was kept).
///
/// # Errors
///
/// A database error.
pub async fn unsent_card(
    conn: &mut AnyConnection,
    id: PaymentId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT c.sealed FROM payment_cards c JOIN payments p ON p.id = c.payment_id \
         WHERE c.payment_id = $1 AND p.status = 'REQUESTED' AND (p.attempted_at IS NULL \
           OR NOT EXISTS (SELECT 1 FROM pg_calls k \
             WHERE k.idempotency_key = p.idempotency_key AND k.path = 'charge'))",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}
