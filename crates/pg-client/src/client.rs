//! [`PgClient`]: the gateway client over HTTP (reqwest), each call through its path's policy.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, Url};
use seawall::keyed::Keyed;

use seawall::policy::Attempt;
use seawall::registry::CircuitBreakers;
use seawall::{AdaptiveLimiter, Bulkhead, CircuitBreaker, Clock, Retry};
use serde::Serialize;
use tracing::Instrument;

use crate::builder::{BuildError, PgClientBuilder};
use crate::config::PgClientConfig;
use crate::error::{CallPath, FailureClass, Kind, PgError};
use crate::gateway::{Accepted, BoxFuture, ChargeOutcome, PathBreaker, PaymentGateway, Uncertain};
use crate::live::ChargeLive;
use crate::model::{
    CardType, OrderId, OrderTransactions, PaymentRequest, TransactionDetail, TransactionKey, UserId,
};
use crate::observer::{
    AttemptId, AttemptInfo, AttemptObserver, AttemptOutcome, AttemptPath, Observed,
};
use crate::policy::{
    ChargeRetry, LimitSignals, PathPolicy, QueryAnswers, QueryRetry, QueryStack, SystemFailures,
};
use crate::telemetry::{self, Operation, Outcome};
use crate::wire::{self, RawAnswer};

const USER_HEADER: &str = "x-user-id";
const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A payment gateway client over HTTP that classifies every failure and never charges twice
/// by itself.
///
/// Two policies, separately configured: the **charge path** (charges and cancels) retries only
/// failures that provably created nothing and sends the request's idempotency key with every
/// attempt; the **query path** (lookups) retries every system failure with backoff and
/// jitter. Each has its own circuit breaker (counting system failures only) and bulkhead, so
/// reconciliation queries keep working while charges are cut off.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use pg_client::{
///     CardNumber, CardType, ChargeOutcome, IdempotencyKey, Money, OrderId, PaymentGateway,
///     PaymentRequest, PgClient, PgClientConfig, UserId,
/// };
///
/// let client = PgClient::new(PgClientConfig::with_base_url("http://localhost:8082"))?;
/// let order = OrderId::parse("000123")?;
/// let request = PaymentRequest {
///     idempotency_key: IdempotencyKey::for_attempt(&order, 1)?,
///     order_id: order,
///     card_type: CardType::Samsung,
///     card_number: CardNumber::parse("1234-5678-9012-3456")?,
///     amount: Money::krw(5000)?,
///     callback_url: "http://localhost:8080/api/v1/payments/callback".to_owned(),
/// };
/// let user = UserId::parse("135135")?;
/// match client.request_payment(&user, &request).await {
///     Ok(ChargeOutcome::Accepted(accepted)) => println!("pending as {}", accepted.transaction_key),
///     Ok(ChargeOutcome::Uncertain(uncertain)) => {
///         // Keep the payment pending; the callback or reconciliation decides.
///         let found = client.find_by_order(&user, &uncertain.order_id).await?;
///         println!("{} transaction(s) so far", found.transactions.len());
///     }
///     Err(error) => println!("not charged ({}): {error}", error.class()),
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Clones share everything: HTTP connection pools, breakers, bulkheads, retry budgets.
#[derive(Clone)]
pub struct PgClient {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: PgClientConfig,
    pub(crate) payments: Url,
    pub(crate) charge_http: reqwest::Client,
    pub(crate) query_http: reqwest::Client,
    pub(crate) charge: PathPolicy<ChargeRetry>,
    pub(crate) query: PathPolicy<QueryRetry, QueryStack>,
    pub(crate) card_type_breakers: Option<Keyed<CircuitBreakers, CardType>>,
    pub(crate) clock: Clock,
    pub(crate) charge_live: ChargeLive,
    pub(crate) attempt_observer: Option<Arc<dyn AttemptObserver>>,
}

/// The charge body on the wire. No `Debug`: it holds the full card number, only to be
/// serialised once per charge.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireCharge<'a> {
    order_id: &'a str,
    card_type: &'a str,
    card_no: &'a str,
    amount: i64,
    callback_url: &'a str,
}

fn transport_error(path: CallPath, error: reqwest::Error) -> PgError {
    let kind = if error.is_connect() {
        if error.is_timeout() {
            Kind::ConnectTimeout
        } else {
            Kind::Connect
        }
    } else if error.is_timeout() {
        Kind::Timeout
    } else if error.is_builder() {
        Kind::Invalid
    } else {
        Kind::ConnectionLost
    };
    PgError::new(kind).with_path(path).with_source(error)
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Hands an attempt's outcome to the observer.
async fn observe_after<T: Observed>(
    observer: &dyn AttemptObserver,
    path: AttemptPath,
    id: AttemptId,
    status: Option<u16>,
    result: &Result<T, PgError>,
) {
    let text;
    let (transaction_key, reason) = match result {
        Ok(value) => value.observed(),
        Err(error) => {
            text = error.to_string();
            (
                error.transaction_key().map(TransactionKey::as_str),
                Some(text.as_str()),
            )
        }
    };
    let outcome = AttemptOutcome {
        path,
        status: status.or_else(|| result.as_ref().err().and_then(PgError::status)),
        failure: result.as_ref().err().map(PgError::class),
        transaction_key,
        reason,
    };
    observer.after(id, &outcome).await;
}

impl PgClient {
    /// Starts building a client from `config`.
    pub fn builder(config: PgClientConfig) -> PgClientBuilder {
        PgClientBuilder::new(config)
    }

    /// A client from `config`, with tokio's clock.
    ///
    /// # Errors
    ///
    /// As [`PgClientBuilder::build`].
    pub fn new(config: PgClientConfig) -> Result<Self, BuildError> {
        Self::builder(config).build()
    }

    /// The configuration in force.
    pub fn config(&self) -> &PgClientConfig {
        &self.shared.config
    }

    /// The circuit breaker of a path (name, state, metrics, manual transitions,
    /// `reconfigure`). Clones share its state.
    pub fn circuit_breaker(&self, path: CallPath) -> &CircuitBreaker<SystemFailures> {
        match path {
            CallPath::Charge => &self.shared.charge.circuit_breaker,
            CallPath::Query => &self.shared.query.circuit_breaker,
        }
    }

    /// The bulkhead of a path (limits and free permits; resizable at run time).
    pub fn bulkhead(&self, path: CallPath) -> &Bulkhead {
        match path {
            CallPath::Charge => &self.shared.charge.bulkhead,
            CallPath::Query => &self.shared.query.bulkhead,
        }
    }

    /// The charge breakers by card type, if the client was built with
    /// [`charge_breakers_by_card_type`](PgClientBuilder::charge_breakers_by_card_type).
    pub fn card_type_breakers(&self) -> Option<&Keyed<CircuitBreakers, CardType>> {
        self.shared.card_type_breakers.as_ref()
    }

    /// The adaptive limiter of a path (its current `limit()`; `reconfigure`). Without an
    /// `adaptive_limiter` in the path's configuration it never limits.
    pub fn adaptive_limiter(&self, path: CallPath) -> &AdaptiveLimiter<LimitSignals> {
        match path {
            CallPath::Charge => &self.shared.charge.adaptive_limiter,
            CallPath::Query => &self.shared.query.adaptive_limiter,
        }
    }

    /// The charge path's retry (metrics, `set_max_attempts`, ...).
    pub fn charge_retry(&self) -> &Retry<ChargeRetry> {
        &self.shared.charge.retry
    }

    /// The query path's retry.
    pub fn query_retry(&self) -> &Retry<QueryRetry> {
        &self.shared.query.retry
    }

    pub(crate) fn charge_live(&self) -> &ChargeLive {
        &self.shared.charge_live
    }

    /// The query path's hedge (metrics, `reconfigure` to turn it on or off at run time).
    /// The charge path has none: a charge is never hedged.
    pub fn query_hedge(&self) -> &seawall::Hedge<QueryAnswers> {
        self.shared.query.hedge()
    }

    fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn transaction_url(&self, key: &TransactionKey, suffix: Option<&str>) -> Url {
        let mut url = self.shared.payments.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(key.as_str());
            if let Some(suffix) = suffix {
                segments.push(suffix);
            }
        }
        url
    }

    /// Sends one request and reads the whole answer.
    async fn exchange(
        &self,
        path: CallPath,
        request: RequestBuilder,
    ) -> Result<RawAnswer, PgError> {
        let response = request.send().await.map_err(|e| transport_error(path, e))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let retry_after =
            wire::parse_retry_after(headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()));
        let replayed = headers
            .get(REPLAYED_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        match response.bytes().await {
            Ok(body) => Ok(RawAnswer {
                status,
                retry_after,
                replayed,
                body: body.to_vec(),
            }),
            // A success whose body was cut: the gateway acted, the answer is lost.
            Err(e) if is_success(status) => Err(transport_error(path, e).with_status(status)),
            // A failure status is enough to classify; its body is only decoration.
            Err(_) => Ok(RawAnswer {
                status,
                retry_after,
                replayed,
                body: Vec::new(),
            }),
        }
    }

    /// One HTTP attempt: the observer's `before` (its veto sends nothing), exchange, read
    /// with `read`, record the attempt, the observer's `after`.
    async fn attempt<T: Observed>(
        &self,
        operation: Operation,
        info: AttemptInfo<'_>,
        request: RequestBuilder,
        read: impl FnOnce(RawAnswer) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let path = operation.path();
        let observer = self.shared.attempt_observer.as_deref();
        let id = match observer {
            None => None,
            Some(observer) => match observer.before(&info).await {
                Ok(id) => Some(id),
                Err(veto) => {
                    tracing::warn!(attempt = info.attempt, reason = %veto, "attempt vetoed");
                    return Err(PgError::new(Kind::Vetoed)
                        .with_path(path)
                        .with_detail(veto.reason().to_owned()));
                }
            },
        };
        let (status, result) = match self.exchange(path, request).await {
            Ok(answer) => (Some(answer.status), read(answer)),
            Err(error) => (error.status(), Err(error)),
        };
        let outcome = Outcome::of(&result);
        telemetry::record_attempt(self.name(), operation, outcome);
        match &result {
            Ok(_) => tracing::debug!(
                attempt = info.attempt,
                outcome = outcome.as_str(),
                "attempt succeeded"
            ),
            Err(error) => tracing::debug!(
                attempt = info.attempt,
                outcome = outcome.as_str(),
                status = error.status(),
                error = %error,
                "attempt failed"
            ),
        }
        if let (Some(observer), Some(id)) = (observer, id) {
            observe_after(observer, info.path, id, status, &result).await;
        }
        result
    }

    /// A non-2xx answer as an error of its class.
    fn failure(&self, path: CallPath, answer: &RawAnswer) -> PgError {
        wire::classify_failure(path, answer, &self.shared.config.pre_create_messages)
    }

    /// Records and logs a finished call.
    fn finished(
        &self,
        operation: Operation,
        outcome: Outcome,
        started: seawall::clock::Instant,
        error: Option<&PgError>,
    ) {
        let took = self.shared.clock.now() - started;
        telemetry::record_call(self.name(), operation, outcome, took);
        let span = tracing::Span::current();
        span.record("outcome", outcome.as_str());
        match (outcome, error) {
            (Outcome::Success, _) | (_, None) => tracing::info!(
                operation = operation.as_str(),
                outcome = outcome.as_str(),
                took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                "payment gateway call finished"
            ),
            (Outcome::Failed(FailureClass::Business | FailureClass::Rejected), Some(error)) => {
                tracing::warn!(
                    operation = operation.as_str(),
                    outcome = outcome.as_str(),
                    status = error.status(),
                    attempts = error.attempts(),
                    error = %error,
                    "payment gateway call refused"
                );
            }
            (Outcome::Failed(_), Some(error)) => tracing::error!(
                operation = operation.as_str(),
                outcome = outcome.as_str(),
                status = error.status(),
                attempts = error.attempts(),
                error = %error,
                "payment gateway call failed"
            ),
        }
    }

    async fn charge(
        &self,
        user: &UserId,
        request: &PaymentRequest,
    ) -> Result<ChargeOutcome, PgError> {
        let started = self.shared.clock.now();
        let result = self.charge_through_policy(user, request).await;
        let (outcome, error) = match &result {
            Ok(ChargeOutcome::Accepted(accepted)) => {
                tracing::Span::current().record(
                    "transaction_key",
                    tracing::field::display(&accepted.transaction_key),
                );
                (Outcome::Success, None)
            }
            Ok(ChargeOutcome::Uncertain(uncertain)) => {
                if let Some(key) = &uncertain.transaction_key {
                    tracing::Span::current()
                        .record("transaction_key", tracing::field::display(key));
                }
                (
                    Outcome::Failed(FailureClass::Uncertain),
                    Some(&uncertain.error),
                )
            }
            Err(error) => (Outcome::Failed(error.class()), Some(error)),
        };
        self.finished(Operation::Charge, outcome, started, error);
        result
    }

    async fn charge_through_policy(
        &self,
        user: &UserId,
        request: &PaymentRequest,
    ) -> Result<ChargeOutcome, PgError> {
        let shared = &*self.shared;
        if request.amount.currency() != shared.config.currency {
            return Err(PgError::new(Kind::Invalid)
                .with_path(CallPath::Charge)
                .with_detail(format!(
                    "currency {} is not the gateway's {}",
                    request.amount.currency(),
                    shared.config.currency
                )));
        }
        let body = serde_json::to_vec(&WireCharge {
            order_id: request.order_id.as_str(),
            card_type: request.card_type.as_str(),
            card_no: request.card_number.expose_for_gateway(),
            amount: request.amount.minor_units(),
            callback_url: &request.callback_url,
        })
        .map_err(|_| {
            PgError::new(Kind::Invalid)
                .with_path(CallPath::Charge)
                .with_detail("the charge could not be encoded")
        })?;
        let body = body.as_slice();
        // Masked only for an observer: without one, no extra work per charge.
        let masked = shared
            .attempt_observer
            .as_ref()
            .map(|_| request.card_number.masked());
        let by_card_type = shared
            .card_type_breakers
            .as_ref()
            .map(|breakers| shared.charge.with_breaker(breakers.get(&request.card_type)));
        let result = by_card_type
            .as_ref()
            .unwrap_or(&shared.charge.policy)
            .call_with_attempt(|attempt| {
                let span = tracing::debug_span!("pg_client.attempt", attempt = attempt.number());
                let http = shared
                    .charge_http
                    .post(shared.payments.clone())
                    .header(USER_HEADER, user.as_str())
                    .header(IDEMPOTENCY_HEADER, request.idempotency_key.as_str())
                    .header(CONTENT_TYPE, "application/json")
                    .timeout(shared.charge_live.read_timeout())
                    .body(body.to_vec());
                let info = AttemptInfo {
                    order_id: Some(request.order_id.as_str()),
                    idempotency_key: Some(request.idempotency_key.as_str()),
                    card: masked.as_ref(),
                    ..AttemptInfo::new(AttemptPath::Charge, attempt.number())
                };
                let accepted = self.attempt(Operation::Charge, info, http, |answer| {
                    if !is_success(answer.status) {
                        return Err(self.failure(CallPath::Charge, &answer));
                    }
                    let created = wire::created(&answer)?;
                    Ok(Accepted {
                        transaction_key: created.transaction_key,
                        status: created.status,
                        reason: created.reason,
                        replayed: answer.replayed,
                    })
                });
                shared
                    .charge_live
                    .observe(&shared.clock, accepted)
                    .instrument(span)
            })
            .await;
        match result {
            Ok(accepted) => Ok(ChargeOutcome::Accepted(accepted)),
            Err(error) => {
                let error = PgError::from_policy(error, CallPath::Charge);
                if error.is_uncertain() {
                    Ok(ChargeOutcome::Uncertain(Uncertain {
                        order_id: request.order_id.clone(),
                        transaction_key: error.transaction_key().cloned(),
                        error,
                    }))
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Runs a query through the query path and records it.
    async fn query<T, F, Fut>(&self, operation: Operation, mut attempt: F) -> Result<T, PgError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, PgError>>,
    {
        let started = self.shared.clock.now();
        let result = self
            .shared
            .query
            .policy
            .call_with_attempt(|n| {
                let span = tracing::debug_span!("pg_client.attempt", attempt = n.number());
                attempt(n).instrument(span)
            })
            .await
            .map_err(|e| PgError::from_policy(e, CallPath::Query));
        self.finished(
            operation,
            Outcome::of(&result),
            started,
            result.as_ref().err(),
        );
        result
    }

    async fn get(
        &self,
        user: &UserId,
        key: &TransactionKey,
    ) -> Result<Option<TransactionDetail>, PgError> {
        let shared = &*self.shared;
        let url = self.transaction_url(key, None);
        self.query(Operation::GetTransaction, |attempt| {
            let http = shared
                .query_http
                .get(url.clone())
                .header(USER_HEADER, user.as_str())
                .timeout(shared.config.query.read_timeout);
            let info = AttemptInfo {
                transaction_key: Some(key.as_str()),
                ..AttemptInfo::new(AttemptPath::Query, attempt.number())
            };
            self.attempt(
                Operation::GetTransaction,
                info,
                http,
                |answer| match answer.status {
                    404 => Ok(None),
                    status if is_success(status) => {
                        wire::detail(CallPath::Query, &answer, shared.config.currency).map(Some)
                    }
                    _ => Err(self.failure(CallPath::Query, &answer)),
                },
            )
        })
        .await
    }

    async fn list(&self, user: &UserId, order_id: &OrderId) -> Result<OrderTransactions, PgError> {
        let shared = &*self.shared;
        let mut url = shared.payments.clone();
        url.query_pairs_mut()
            .append_pair("orderId", order_id.as_str());
        self.query(Operation::FindByOrder, |attempt| {
            let http = shared
                .query_http
                .get(url.clone())
                .header(USER_HEADER, user.as_str())
                .timeout(shared.config.query.read_timeout);
            let info = AttemptInfo {
                order_id: Some(order_id.as_str()),
                ..AttemptInfo::new(AttemptPath::Query, attempt.number())
            };
            self.attempt(Operation::FindByOrder, info, http, |answer| {
                match answer.status {
                    404 => Ok(OrderTransactions {
                        order_id: order_id.clone(),
                        transactions: Vec::new(),
                    }),
                    status if is_success(status) => wire::order(&answer),
                    _ => Err(self.failure(CallPath::Query, &answer)),
                }
            })
        })
        .await
    }

    async fn cancel_transaction(
        &self,
        user: &UserId,
        key: &TransactionKey,
    ) -> Result<TransactionDetail, PgError> {
        let shared = &*self.shared;
        let started = shared.clock.now();
        let result = if shared.config.cancel_supported {
            let url = self.transaction_url(key, Some("cancel"));
            shared
                .charge
                .policy
                .call_with_attempt(|attempt| {
                    let span =
                        tracing::debug_span!("pg_client.attempt", attempt = attempt.number());
                    let http = shared
                        .charge_http
                        .post(url.clone())
                        .header(USER_HEADER, user.as_str())
                        .timeout(shared.config.charge.read_timeout);
                    let info = AttemptInfo {
                        transaction_key: Some(key.as_str()),
                        ..AttemptInfo::new(AttemptPath::Cancel, attempt.number())
                    };
                    self.attempt(Operation::Cancel, info, http, |answer| {
                        if is_success(answer.status) {
                            wire::detail(CallPath::Charge, &answer, shared.config.currency)
                        } else {
                            Err(self.failure(CallPath::Charge, &answer))
                        }
                    })
                    .instrument(span)
                })
                .await
                .map_err(|e| PgError::from_policy(e, CallPath::Charge))
        } else {
            Err(PgError::new(Kind::Invalid)
                .with_path(CallPath::Charge)
                .with_detail("the gateway has no cancel endpoint (cancel_supported = false)"))
        };
        self.finished(
            Operation::Cancel,
            Outcome::of(&result),
            started,
            result.as_ref().err(),
        );
        result
    }
}

impl PaymentGateway for PgClient {
    fn request_payment<'a>(
        &'a self,
        user: &'a UserId,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<ChargeOutcome, PgError>> {
        let span = tracing::info_span!(
            "pg_client.charge",
            client = %self.name(),
            user_id = %user,
            order_id = %request.order_id,
            idempotency_key = %request.idempotency_key,
            amount = request.amount.minor_units(),
            currency = %request.amount.currency(),
            card = %request.card_number,
            transaction_key = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        Box::pin(self.charge(user, request).instrument(span))
    }

    fn get_transaction<'a>(
        &'a self,
        user: &'a UserId,
        transaction_key: &'a TransactionKey,
    ) -> BoxFuture<'a, Result<Option<TransactionDetail>, PgError>> {
        let span = tracing::info_span!(
            "pg_client.get_transaction",
            client = %self.name(),
            user_id = %user,
            transaction_key = %transaction_key,
            outcome = tracing::field::Empty,
        );
        Box::pin(self.get(user, transaction_key).instrument(span))
    }

    fn find_by_order<'a>(
        &'a self,
        user: &'a UserId,
        order_id: &'a OrderId,
    ) -> BoxFuture<'a, Result<OrderTransactions, PgError>> {
        let span = tracing::info_span!(
            "pg_client.find_by_order",
            client = %self.name(),
            user_id = %user,
            order_id = %order_id,
            outcome = tracing::field::Empty,
        );
        Box::pin(self.list(user, order_id).instrument(span))
    }

    fn supports_cancel(&self) -> bool {
        self.shared.config.cancel_supported
    }

    fn cancel<'a>(
        &'a self,
        user: &'a UserId,
        transaction_key: &'a TransactionKey,
    ) -> BoxFuture<'a, Result<TransactionDetail, PgError>> {
        let span = tracing::info_span!(
            "pg_client.cancel",
            client = %self.name(),
            user_id = %user,
            transaction_key = %transaction_key,
            outcome = tracing::field::Empty,
        );
        Box::pin(
            self.cancel_transaction(user, transaction_key)
                .instrument(span),
        )
    }

    fn circuit_breakers(&self) -> Vec<PathBreaker> {
        [CallPath::Charge, CallPath::Query]
            .into_iter()
            .map(|path| PathBreaker {
                path,
                breaker: self.circuit_breaker(path).clone(),
            })
            .collect()
    }
}

impl fmt::Debug for PgClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgClient")
            .field("name", &self.shared.config.name)
            .field("payments", &self.shared.payments.as_str())
            .field(
                "charge_breaker",
                &&self.shared.charge.circuit_breaker.state(),
            )
            .field("query_breaker", &&self.shared.query.circuit_breaker.state())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_and_its_futures_are_send_and_sync() {
        fn bounds<T: Send + Sync>() {}
        bounds::<PgClient>();
        bounds::<PgError>();
    }
}
