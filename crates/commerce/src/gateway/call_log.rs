//! The PG call log: every HTTP attempt on a PG, written before and after it.
//!
//! [`PgCallLog`] is pg-client's [attempt hook](pg_client::observer) for one PG: pg-client
//! calls it around **each HTTP attempt**, below its retry and its hedge, so a charge retried
//! after a refused connection, or a query whose hedge sent a second request, is one row per
//! request actually sent, with its HTTP status. Before each attempt it inserts a `pg_calls`
//! row (PG, path, order reference, idempotency key, masked card, transaction key, request
//! time) in a statement of its own, outside any payment transaction, so the row survives a
//! rollback around it; after the attempt it completes the row (response time, status code,
//! outcome class, transaction key, reason). **If the "before" row cannot be written, the
//! attempt is vetoed**: nothing is sent, and pg-client fails it as refused by the client
//! (a charge ends as [`ChargeError::NotReached`](super::ChargeError::NotReached), so nothing
//! was charged). A failed "after" write is logged; the attempt's result stands.
//!
//! A call refused by pg-client's own protection (an open breaker, a full bulkhead) sends no
//! request and so writes no row.
//!
//! The log is what tells "paid but not saved" from "never paid" when a PG disputes a charge:
//! a charge row without a response time is an attempt whose outcome the service never
//! learned.

use std::sync::Arc;

use pg_client::observer::{
    AttemptId, AttemptInfo, AttemptObserver, AttemptOutcome, AttemptPath, BoxFuture, Veto,
};

use crate::persistence;
use crate::persistence::{Db, NewPgCall, PgCallResult, now_ms};

/// The call log of one PG, as pg-client's attempt observer.
#[derive(Clone, Debug)]
pub struct PgCallLog {
    db: Db,
    pg: Arc<str>,
}

impl PgCallLog {
    /// Logs the attempts of the PG named `pg` into `db`'s `pg_calls`.
    pub fn new(db: Db, pg: impl Into<Arc<str>>) -> Self {
        Self { db, pg: pg.into() }
    }

    /// The PG's name.
    pub fn pg(&self) -> &str {
        &self.pg
    }
}

/// The row's outcome class: `ACCEPTED` for an answered charge, `NOT_FOUND` for a lookup the
/// PG answered 404, else pg-client's class (`OK`, `NOT_REACHED`, `UNCERTAIN`, `BUSINESS`,
/// `THROTTLED`, `REJECTED`).
fn outcome_class(outcome: &AttemptOutcome<'_>) -> &'static str {
    match (outcome.path, outcome.failure, outcome.status) {
        (AttemptPath::Charge, None, _) => "ACCEPTED",
        (AttemptPath::Query, None, Some(404)) => "NOT_FOUND",
        _ => outcome.class(),
    }
}

impl AttemptObserver for PgCallLog {
    fn before<'a>(&'a self, info: &'a AttemptInfo<'a>) -> BoxFuture<'a, Result<AttemptId, Veto>> {
        Box::pin(async move {
            let path = info.path.as_str();
            let call = NewPgCall {
                pg: &self.pg,
                path,
                order_ref: info.order_id,
                idempotency_key: info.idempotency_key,
                card_no_masked: info.card.map(pg_client::model::MaskedCardNumber::as_str),
                transaction_key: info.transaction_key,
                requested_at: now_ms(),
            };
            let inserted = async {
                let mut conn = self.db.writer().await?;
                persistence::insert_pg_call(&mut conn, &call).await
            };
            match inserted.await {
                Ok(id) => Ok(AttemptId(id.cast_unsigned())),
                Err(error) => {
                    metrics::counter!("commerce_pg_call_log_refused_total", "pg" => self.pg.to_string())
                        .increment(1);
                    tracing::error!(pg = %self.pg, path, %error,
                        "the PG call log refused the attempt's row: the attempt is not sent");
                    Err(Veto::new(format!(
                        "the PG call log could not record the attempt: {error}"
                    )))
                }
            }
        })
    }

    fn after<'a>(&'a self, id: AttemptId, outcome: &'a AttemptOutcome<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let class = outcome_class(outcome);
            let row = id.0.cast_signed();
            let result = PgCallResult {
                responded_at: now_ms(),
                status_code: outcome.status.map(i64::from),
                outcome: class,
                transaction_key: outcome.transaction_key,
                reason: outcome.reason,
            };
            let completed = async {
                let mut conn = self.db.writer().await?;
                persistence::complete_pg_call(&mut conn, row, &result).await
            };
            if let Err(error) = completed.await {
                tracing::error!(pg = %self.pg, call = row, %error,
                    "could not complete the PG call log row");
            }
        })
    }
}
