//! The production adapter: the PG's HTTP API behind seawall policies.
//!
//! ```text
//! charge: timeout(total) ─▶ retry(not-reached only, same Idempotency-Key) ─▶ breaker "pg-charge"
//!         ─▶ bulkhead ─▶ timeout(per attempt) ─▶ POST /api/v1/payments
//! query:  timeout(total) ─▶ retry(transient) ─▶ breaker "pg-query" ─▶ timeout(per attempt) ─▶ GET
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
use seawall::{Backoff, Bulkhead, CircuitBreaker, ConfigError, Error, Policy, Retry, Timeout};

use super::wire::{self, CallError};
use super::{BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError};

/// Name of the charge breaker.
pub const CHARGE_BREAKER: &str = "pg-charge";
/// Name of the query breaker.
pub const QUERY_BREAKER: &str = "pg-query";

/// Knobs of the protected adapter (see `configuration` for their documented defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct ProtectedGatewayConfig {
    /// PG base URL, e.g. `http://127.0.0.1:8082`.
    pub base_url: String,
    /// TCP connect timeout (a connect failure provably sent nothing).
    pub connect_timeout: Duration,
    /// Per-attempt timeout of a charge (read timeout; past it the outcome is unknown).
    pub charge_attempt_timeout: Duration,
    /// The charge's whole budget, retries and waits included.
    pub charge_total_timeout: Duration,
    /// Attempts of a charge (only not-reached failures are retried).
    pub charge_max_attempts: u32,
    /// First retry delay (exponential ×2, full jitter).
    pub charge_retry_backoff: Duration,
    /// Charges in flight at most; more are rejected at once (not reached).
    pub charge_max_concurrent: usize,
    /// Per-attempt timeout of a query.
    pub query_attempt_timeout: Duration,
    /// Attempts of a query.
    pub query_max_attempts: u32,
    /// The charge breaker's configuration.
    pub charge_breaker: CircuitBreakerConfig,
    /// The query breaker's configuration.
    pub query_breaker: CircuitBreakerConfig,
}

impl ProtectedGatewayConfig {
    /// Breaker defaults sized for the canonical PG's 40 % baseline failure rate: a count
    /// window of 20 at 70 % (a healthy PG trips it with < 1 % odds), slow calls over 1 s,
    /// 5 s open, 3 half-open probes.
    ///
    /// # Errors
    ///
    /// Never for these values; kept fallible because the builder is.
    pub fn default_breaker() -> Result<CircuitBreakerConfig, ConfigError> {
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(20))
            .minimum_number_of_calls(10)
            .failure_rate_threshold(70.0)
            .slow_call_duration_threshold(Duration::from_secs(1))
            .slow_call_rate_threshold(80.0)
            .wait_in_open(Duration::from_secs(5))
            .permitted_calls_in_half_open(3)
            .build()
    }
}

/// The PG behind seawall: see the module docs.
#[derive(Debug)]
pub struct ProtectedGateway {
    http: reqwest::Client,
    base_url: String,
    charge_total: Timeout,
    charge_retry: Retry,
    charge_breaker: CircuitBreaker,
    charge_bulkhead: Bulkhead,
    charge_attempt: Timeout,
    query_total: Timeout,
    query_retry: Retry,
    query_breaker: CircuitBreaker,
    query_attempt: Timeout,
}

impl ProtectedGateway {
    /// Builds the adapter.
    ///
    /// # Errors
    ///
    /// An invalid policy value (named), or an HTTP client that cannot be built.
    pub fn new(config: &ProtectedGatewayConfig) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ConfigError::new("gateway.http_client", e.to_string()))?;
        let charge_retry = Retry::builder()
            .name("pg-charge")
            .max_attempts(config.charge_max_attempts)
            .backoff(Backoff::exponential(config.charge_retry_backoff).full_jitter())
            .build()
            .map_err(|e| e.under("gateway.charge"))?;
        let query_retry = Retry::builder()
            .name("pg-query")
            .max_attempts(config.query_max_attempts)
            .backoff(Backoff::exponential(Duration::from_millis(50)).full_jitter())
            .build()
            .map_err(|e| e.under("gateway.query"))?;
        let charge_bulkhead = Bulkhead::builder()
            .name("pg-charge")
            .max_concurrent_calls(config.charge_max_concurrent)
            .build()
            .map_err(|e| e.under("gateway.charge"))?;
        let query_total = config.query_attempt_timeout * config.query_max_attempts.max(1)
            + Duration::from_millis(500);
        Ok(Self {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            charge_total: Timeout::new(config.charge_total_timeout),
            charge_retry,
            charge_breaker: CircuitBreaker::new(CHARGE_BREAKER, config.charge_breaker.clone()),
            charge_bulkhead,
            charge_attempt: Timeout::new(config.charge_attempt_timeout),
            query_total: Timeout::new(query_total),
            query_retry,
            query_breaker: CircuitBreaker::new(QUERY_BREAKER, config.query_breaker.clone()),
            query_attempt: Timeout::new(config.query_attempt_timeout),
        })
    }

    async fn query<T, F, Fut>(&self, call: F) -> Result<T, QueryError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let policy = Policy::builder()
            .timeout(self.query_total.clone())
            .retry(self.query_retry.clone().retry_error_if(
                |e: &Error<CallError>| match e.inner() {
                    Some(inner) => !matches!(inner, CallError::Rejected(_)),
                    None => e.is_timeout(),
                },
            ))
            .circuit_breaker(
                self.query_breaker
                    .clone()
                    .ignore_if(|e: &CallError| matches!(e, CallError::Rejected(_))),
            )
            .timeout(self.query_attempt.clone())
            .build();
        policy
            .call(call)
            .await
            .map_err(|e| QueryError(e.to_string()))
    }
}

use std::future::Future;

impl PaymentGateway for ProtectedGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            // Set when an attempt may have created a transaction: from then on, a failure is
            // uncertain even if a later attempt provably reached nothing.
            let maybe_created = Arc::new(AtomicBool::new(false));
            let policy = Policy::builder()
                .timeout(self.charge_total.clone())
                .retry(self.charge_retry.clone().retry_error_if(
                    // Only failures that created nothing, never a timeout or an open breaker.
                    |e: &Error<CallError>| {
                        matches!(
                            e.inner(),
                            Some(
                                CallError::Connect(_)
                                    | CallError::Throttled(_)
                                    | CallError::Server(_)
                            )
                        )
                    },
                ))
                .circuit_breaker(
                    self.charge_breaker
                        .clone()
                        .ignore_if(|e: &CallError| matches!(e, CallError::Rejected(_))),
                )
                .bulkhead(self.charge_bulkhead.clone())
                .timeout(self.charge_attempt.clone())
                .build();
            let request = &request;
            let result = policy
                .call(|| {
                    let maybe_created = Arc::clone(&maybe_created);
                    async move {
                        let outcome = wire::post_payment(
                            &self.http,
                            &self.base_url,
                            request,
                            Some(&request.idempotency_key),
                        )
                        .await;
                        if matches!(outcome, Err(CallError::Server(_) | CallError::Uncertain(_))) {
                            maybe_created.store(true, Ordering::Relaxed);
                        }
                        outcome
                    }
                })
                .await;
            match result {
                Ok(key) => Ok(key),
                Err(error) => Err(classify_charge_failure(
                    &error,
                    maybe_created.load(Ordering::Relaxed),
                )),
            }
        })
    }

    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>> {
        Box::pin(self.query(move || {
            wire::get_transaction(&self.http, &self.base_url, user_id, transaction_key)
        }))
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        Box::pin(
            self.query(move || {
                wire::list_for_order(&self.http, &self.base_url, user_id, order_ref)
            }),
        )
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        // A cancel is idempotent at the PG (CANCELED → 200 again), so the query policy fits.
        Box::pin(
            self.query(move || wire::cancel(&self.http, &self.base_url, user_id, transaction_key)),
        )
    }

    fn queries_permitted(&self) -> bool {
        self.query_breaker.is_call_permitted()
    }

    fn circuit_breakers(&self) -> Vec<CircuitBreaker> {
        vec![self.charge_breaker.clone(), self.query_breaker.clone()]
    }
}

/// Maps the policy's final error to what the service may conclude.
fn classify_charge_failure(error: &Error<CallError>, maybe_created: bool) -> ChargeError {
    let message = error.to_string();
    if let Some(CallError::Rejected(reason)) = error.inner() {
        return ChargeError::Rejected(reason.clone());
    }
    let provably_nothing = match error.inner() {
        Some(CallError::Connect(_) | CallError::Throttled(_)) => true,
        Some(_) => false,
        // Rejected by the breaker or the bulkhead before sending.
        None => error.is_circuit_open() || error.is_bulkhead_full(),
    };
    if provably_nothing && !maybe_created {
        ChargeError::NotReached(message)
    } else {
        ChargeError::Uncertain(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_not_reached_unless_an_earlier_attempt_may_have_created() {
        let refused = Error::from_inner(CallError::Connect("refused".into()));
        assert!(matches!(
            classify_charge_failure(&refused, false),
            ChargeError::NotReached(_)
        ));
        assert!(matches!(
            classify_charge_failure(&refused, true),
            ChargeError::Uncertain(_)
        ));
    }

    #[test]
    fn a_final_server_error_or_a_lost_answer_is_uncertain() {
        for e in [
            CallError::Server("500".into()),
            CallError::Uncertain("reset".into()),
        ] {
            assert!(matches!(
                classify_charge_failure(&Error::from_inner(e), false),
                ChargeError::Uncertain(_)
            ));
        }
    }

    #[test]
    fn a_business_refusal_is_rejected() {
        let e = Error::from_inner(CallError::Rejected("bad card".into()));
        assert_eq!(
            classify_charge_failure(&e, false),
            ChargeError::Rejected("bad card".into())
        );
    }
}
