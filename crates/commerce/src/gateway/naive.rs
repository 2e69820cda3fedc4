//! An unprotected adapter, as services are often first written ("before"), kept only for the `demo`
//! comparison. Do not use it for anything else.
//!
//! No timeouts (a hanging PG hangs the order), no circuit breaker (a dead PG is called for
//! every order), retries on *any* failure with a fixed 1 s wait and **no idempotency key**
//! (a retry after a lost answer can charge twice), and every failure is reported as
//! "not reached", so the service fails the order even when the PG may have charged it.

use std::time::Duration;

use seawall::Clock;

use super::wire;
use super::{BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError};

/// A plain HTTP client for the PG: see the module docs for what it gets wrong.
#[derive(Debug)]
pub struct NaiveGateway {
    http: reqwest::Client,
    base_url: String,
    attempts: u32,
    retry_wait: Duration,
    clock: Clock,
}

impl NaiveGateway {
    /// A naive client: 3 attempts, 1 s apart.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            attempts: 3,
            retry_wait: Duration::from_secs(1),
            clock: Clock::default(),
        }
    }
}

impl PaymentGateway for NaiveGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            let mut last = String::new();
            for attempt in 1..=self.attempts {
                match wire::post_payment(&self.http, &self.base_url, &request, None).await {
                    Ok(key) => return Ok(key),
                    Err(e) => last = e.to_string(),
                }
                if attempt < self.attempts {
                    self.clock.sleep(self.retry_wait).await;
                }
            }
            Err(ChargeError::NotReached(last))
        })
    }

    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>> {
        Box::pin(async move {
            wire::get_transaction(&self.http, &self.base_url, user_id, transaction_key)
                .await
                .map_err(|e| QueryError(e.to_string()))
        })
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        Box::pin(async move {
            wire::list_for_order(&self.http, &self.base_url, user_id, order_ref)
                .await
                .map_err(|e| QueryError(e.to_string()))
        })
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        Box::pin(async move {
            wire::cancel(&self.http, &self.base_url, user_id, transaction_key)
                .await
                .map_err(|e| QueryError(e.to_string()))
        })
    }

    fn queries_permitted(&self) -> bool {
        true
    }
}
