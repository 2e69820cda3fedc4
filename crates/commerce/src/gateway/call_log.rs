//! The PG call log: every attempt on the PG port, written before and after the call.
//!
//! [`LoggedGateway`] wraps one PG's adapter. Before each call it inserts a `pg_calls` row
//! (PG, path, order reference, idempotency key, masked card, transaction key, request time)
//! in a statement of its own, outside any payment transaction, so the row survives a rollback
//! around it; after the call it completes the row (response time, outcome class, transaction
//! key, reason). **If the "before" row cannot be written, the call is not made**: a charge
//! ends as [`ChargeError::NotReached`] (nothing was sent, so nothing was charged), a query or
//! a cancel as a [`QueryError`]. A failed "after" write is logged; the call's result stands.
//!
//! The log is what tells "paid but not saved" from "never paid" when a PG disputes a charge:
//! a charge row without a response time is a call whose outcome the service never learned.

use std::fmt;
use std::sync::Arc;

use super::{BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError};
use crate::persistence::{Db, NewPgCall, PgCallResult, now_ms};

/// A [`PaymentGateway`] whose every call is written to the PG call log first.
pub struct LoggedGateway {
    inner: Arc<dyn PaymentGateway>,
    db: Db,
    pg: Arc<str>,
}

impl LoggedGateway {
    /// Logs the calls to `inner` under the PG name `pg`.
    pub fn new(inner: Arc<dyn PaymentGateway>, db: Db, pg: impl Into<Arc<str>>) -> Self {
        Self {
            inner,
            db,
            pg: pg.into(),
        }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &Arc<dyn PaymentGateway> {
        &self.inner
    }

    async fn before(&self, call: NewPgCall<'_>) -> Result<i64, String> {
        self.db.insert_pg_call(&call).await.map_err(|error| {
            metrics::counter!("commerce_pg_call_log_refused_total", "pg" => self.pg.to_string())
                .increment(1);
            tracing::error!(pg = %self.pg, path = call.path, %error,
                "the PG call log refused the call's row: the call is not made");
            format!("the PG call log could not record the call: {error}")
        })
    }

    async fn after(&self, id: i64, result: PgCallResult<'_>) {
        if let Err(error) = self.db.complete_pg_call(id, &result).await {
            tracing::error!(pg = %self.pg, call = id, %error,
                "could not complete the PG call log row");
        }
    }

    fn call<'a>(&'a self, path: &'a str) -> NewPgCall<'a> {
        NewPgCall {
            pg: &self.pg,
            path,
            order_ref: None,
            idempotency_key: None,
            card_no_masked: None,
            transaction_key: None,
            requested_at: now_ms(),
        }
    }
}

impl fmt::Debug for LoggedGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedGateway")
            .field("pg", &self.pg)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The outcome class and reason of a charge's result.
fn charge_outcome(result: &Result<String, ChargeError>) -> (&'static str, Option<&str>) {
    match result {
        Ok(_) => ("ACCEPTED", None),
        Err(ChargeError::NotReached(reason)) => ("NOT_REACHED", Some(reason)),
        Err(ChargeError::Uncertain(reason)) => ("UNCERTAIN", Some(reason)),
        Err(ChargeError::Rejected(reason)) => ("REJECTED", Some(reason)),
    }
}

fn done<'a>(outcome: &'a str, key: Option<&'a str>, reason: Option<&'a str>) -> PgCallResult<'a> {
    PgCallResult {
        responded_at: now_ms(),
        status_code: None,
        outcome,
        transaction_key: key,
        reason,
    }
}

impl PaymentGateway for LoggedGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            let masked = request.card_no.masked().to_string();
            let id = self
                .before(NewPgCall {
                    order_ref: Some(&request.order_ref),
                    idempotency_key: Some(&request.idempotency_key),
                    card_no_masked: Some(&masked),
                    ..self.call("charge")
                })
                .await
                .map_err(ChargeError::NotReached)?;
            let result = self.inner.charge(request).await;
            let (outcome, reason) = charge_outcome(&result);
            self.after(id, done(outcome, result.as_deref().ok(), reason))
                .await;
            result
        })
    }

    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>> {
        Box::pin(async move {
            let id = self
                .before(NewPgCall {
                    transaction_key: Some(transaction_key),
                    ..self.call("query")
                })
                .await
                .map_err(QueryError)?;
            let result = self.inner.transaction(user_id, transaction_key).await;
            let status;
            let logged = match &result {
                Ok(Some(tx)) => {
                    status = format!("{:?}", tx.status).to_uppercase();
                    done(&status, None, tx.reason.as_deref())
                }
                Ok(None) => done("NOT_FOUND", None, None),
                Err(error) => done("FAILED", None, Some(&error.0)),
            };
            self.after(id, logged).await;
            result
        })
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        Box::pin(async move {
            let id = self
                .before(NewPgCall {
                    order_ref: Some(order_ref),
                    ..self.call("query")
                })
                .await
                .map_err(QueryError)?;
            let result = self.inner.transactions_for_order(user_id, order_ref).await;
            let keys;
            let logged = match &result {
                Ok(found) if found.is_empty() => done("NOT_FOUND", None, None),
                Ok(found) => {
                    keys = found.join(",");
                    done("OK", None, Some(&keys))
                }
                Err(error) => done("FAILED", None, Some(&error.0)),
            };
            self.after(id, logged).await;
            result
        })
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        Box::pin(async move {
            let id = self
                .before(NewPgCall {
                    transaction_key: Some(transaction_key),
                    ..self.call("cancel")
                })
                .await
                .map_err(QueryError)?;
            let result = self.inner.cancel(user_id, transaction_key).await;
            let logged = match &result {
                Ok(()) => done("OK", None, None),
                Err(error) => done("FAILED", None, Some(&error.0)),
            };
            self.after(id, logged).await;
            result
        })
    }

    fn queries_permitted(&self) -> bool {
        self.inner.queries_permitted()
    }

    fn extra_breakers(&self) -> Vec<seawall::CircuitBreaker> {
        self.inner.extra_breakers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_charge_result_has_an_outcome_class() {
        assert_eq!(charge_outcome(&Ok("k".into())), ("ACCEPTED", None));
        assert_eq!(
            charge_outcome(&Err(ChargeError::Uncertain("timeout".into()))),
            ("UNCERTAIN", Some("timeout"))
        );
        assert_eq!(
            charge_outcome(&Err(ChargeError::NotReached("refused".into()))).0,
            "NOT_REACHED"
        );
        assert_eq!(
            charge_outcome(&Err(ChargeError::Rejected("limit".into()))).0,
            "REJECTED"
        );
    }
}
