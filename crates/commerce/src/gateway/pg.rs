//! The production adapter: the workspace's typed `pg-client` behind the service's port.
//!
//! `pg-client` does the hard part — per-path timeouts, a retry that only retries failures that
//! provably created nothing (always with the same `Idempotency-Key`), separate breakers and
//! bulkheads for charges (`pg-charge`) and queries (`pg-query`), failure classification — and
//! this adapter only translates its outcomes into the service's vocabulary:
//!
//! | pg-client | service |
//! |---|---|
//! | `Ok(Accepted)` | accepted: payment PENDING |
//! | `Ok(Uncertain)` | uncertain: payment UNKNOWN, reconciled later |
//! | `Err` business (4xx) | rejected: payment FAILED, 422 |
//! | `Err` not reached / throttled / rejected (breaker open, bulkhead full) | not reached: payment FAILED, stock released, 503 |
//! | `Err` uncertain (never on the charge path; kept for safety) | uncertain |

use std::sync::Arc;

use pg_client::model::{
    CardType, IdempotencyKey, OrderId, PaymentRequest, TransactionKey, TransactionStatus, UserId,
};
use pg_client::observer::AttemptObserver;
use pg_client::{
    CallPath, ChargeOutcome, PaymentGateway as _, PgClient, PgClientBuilder, PgClientConfig,
    PgError,
};
use seawall::keyed::{Keyed, KeyedConfig};
use seawall::registry::{CircuitBreakers, Registries, Registry, Tags};

use super::tuning::{ChargeTuner, ChargeTuningSettings};
use super::{BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError};
use crate::domain::{Money, PgStatus};

/// Name of the charge path's circuit breaker.
pub const CHARGE_BREAKER: &str = "pg-charge";
/// Name of the query path's circuit breaker.
pub const QUERY_BREAKER: &str = "pg-query";

/// The service's port implemented with `pg-client`.
#[derive(Clone, Debug)]
pub struct PgGateway {
    client: Arc<PgClient>,
}

/// How one PG's client is wired into the service: its breakers' registry names and its
/// attempt hook (the PG call log). Every PG is built from it by the same code
/// ([`gateway_with_registry`]), so a second PG gets the same protection kit as the first.
#[derive(Clone, Debug)]
pub struct PgWiring {
    /// The charge breaker's registry name (`pg-charge` for the primary PG).
    pub charge_breaker: String,
    /// The query breaker's registry name (`pg-query` for the primary PG).
    pub query_breaker: String,
    /// Called around each HTTP attempt (the call log); `None`: no hook.
    pub attempt_observer: Option<Arc<dyn AttemptObserver>>,
}

impl PgWiring {
    /// The primary PG's: breakers `pg-charge` and `pg-query`, no hook.
    pub fn primary() -> Self {
        Self::named(CHARGE_BREAKER, QUERY_BREAKER)
    }

    /// Breakers of these names, no hook.
    pub fn named(charge_breaker: impl Into<String>, query_breaker: impl Into<String>) -> Self {
        Self {
            charge_breaker: charge_breaker.into(),
            query_breaker: query_breaker.into(),
            attempt_observer: None,
        }
    }

    /// With `observer` called around each HTTP attempt.
    #[must_use]
    pub fn observed_by(mut self, observer: Arc<dyn AttemptObserver>) -> Self {
        self.attempt_observer = Some(observer);
        self
    }
}

/// Builds the client with its two breakers created in `registries` as `pg-charge` and
/// `pg-query` (so the admin API, live reconfiguration and the registry's metrics see them).
///
/// # Errors
///
/// An invalid configuration value, naming its key.
pub fn client_with_registry(
    config: PgClientConfig,
    registries: &Registries,
) -> Result<PgClient, seawall::ConfigError> {
    build(builder_with_registry(
        config,
        registries,
        false,
        &PgWiring::primary(),
    )?)
}

/// At most this many card types get a breaker of their own; charges with further ones share
/// the set's overflow breaker.
pub const MAX_CARD_TYPE_BREAKERS: usize = 16;

fn builder_with_registry(
    config: PgClientConfig,
    registries: &Registries,
    by_card_type: bool,
    wiring: &PgWiring,
) -> Result<PgClientBuilder, seawall::ConfigError> {
    let breakers = registries.circuit_breakers();
    config.validate().map_err(|e| e.under("gateway.client"))?;
    let charge = breakers.get_or_create_with(
        &wiring.charge_breaker,
        &config.charge.circuit_breaker,
        Tags::new(),
    )?;
    let query = breakers.get_or_create_with(
        &wiring.query_breaker,
        &config.query.circuit_breaker,
        Tags::new(),
    )?;
    let mut builder = PgClient::builder(config)
        .charge_circuit_breaker(charge)
        .query_circuit_breaker(query);
    if by_card_type {
        builder =
            builder.charge_keyed_breakers(card_type_breakers(registries, &wiring.charge_breaker)?);
    }
    if let Some(observer) = &wiring.attempt_observer {
        builder = builder.attempt_observer(observer.clone());
    }
    Ok(builder)
}

/// The charge breakers by card type (`pg-charge[SAMSUNG]`, …), made with
/// [`Registry::keyed`](seawall::registry::Registry::keyed) from the registry's configuration
/// `pg-charge` (or the PG's charge breaker's name), a copy of the instance's. A keyed set
/// follows its configuration, not the instance: [`sync_card_type_breakers`] passes a change
/// of the instance on (the tuner's slow-call threshold, an admin PUT), and every card type's
/// breaker takes it, keeping its state.
fn card_type_breakers(
    registries: &Registries,
    charge_breaker: &str,
) -> Result<Keyed<CircuitBreakers, CardType>, seawall::ConfigError> {
    let breakers = registries.circuit_breakers();
    let current = breakers
        .current_config(charge_breaker)
        .map_err(|e| seawall::ConfigError::new(charge_breaker.to_owned(), e.to_string()))?;
    breakers.add_config(charge_breaker, current)?;
    let keyed = breakers
        .keyed(
            charge_breaker,
            KeyedConfig::with_max_keys(MAX_CARD_TYPE_BREAKERS),
        )
        .map_err(|e| {
            seawall::ConfigError::new("gateway.charge_breakers_by_card_type", e.to_string())
        })?;
    // The service's card types, made now: the admin listing shows them from the start and
    // an operator's forced state on the charge breaker reaches them all.
    for card_type in [CardType::Samsung, CardType::Kb, CardType::Hyundai] {
        let _ = keyed.get(&card_type);
    }
    Ok(keyed)
}

/// Copies the instance `pg-charge`'s configuration to the registry's configuration of the
/// same name, which the charge breakers by card type follow; nothing without them (no such
/// configuration) or when nothing changed.
///
/// # Errors
///
/// The copy was refused (an invalid configuration; the instance validated it already).
pub fn sync_card_type_breakers(
    breakers: &Registry<CircuitBreakers>,
) -> Result<(), seawall::ConfigError> {
    sync_card_type_breakers_of(breakers, CHARGE_BREAKER)
}

/// As [`sync_card_type_breakers`], for the charge breaker named `charge_breaker`.
///
/// # Errors
///
/// The copy was refused (an invalid configuration; the instance validated it already).
pub fn sync_card_type_breakers_of(
    breakers: &Registry<CircuitBreakers>,
    charge_breaker: &str,
) -> Result<(), seawall::ConfigError> {
    let Ok(current) = breakers.current_config(charge_breaker) else {
        return Ok(());
    };
    match breakers.config(charge_breaker) {
        Some(template) if template != current => breakers.add_config(charge_breaker, current),
        _ => Ok(()),
    }
}

fn build(builder: PgClientBuilder) -> Result<PgClient, seawall::ConfigError> {
    builder
        .build()
        .map_err(|e| seawall::ConfigError::new("gateway.client", e.to_string()))
}

/// The adapter over [`client_with_registry`]'s client, with its charge path following the
/// PG's latency as `tuning` says (see [`tuning`](super::tuning)); with `tuning.enabled`
/// off, the configured limits, fixed. With `by_card_type`, every card type has its own
/// charge breaker (see [`sync_card_type_breakers`]). `wiring` names the PG's breakers and
/// its attempt hook: every PG, primary or not, is built here.
///
/// # Errors
///
/// An invalid configuration value, naming its key.
pub fn gateway_with_registry(
    config: PgClientConfig,
    tuning: &ChargeTuningSettings,
    by_card_type: bool,
    registries: &Registries,
    wiring: &PgWiring,
) -> Result<PgGateway, seawall::ConfigError> {
    if !tuning.enabled {
        return build(builder_with_registry(
            config,
            registries,
            by_card_type,
            wiring,
        )?)
        .map(PgGateway::new);
    }
    tuning
        .validate(&config)
        .map_err(|e| e.under("gateway.charge_tuning"))?;
    let tuner = Arc::new(
        ChargeTuner::new(&config, tuning, registries.circuit_breakers().clone())
            .for_breaker(&wiring.charge_breaker),
    );
    let observer = tuner.clone();
    let client = Arc::new(build(
        builder_with_registry(config, registries, by_card_type, wiring)?
            .on_charge_accepted(move |took| observer.observe(took)),
    )?);
    tuner.attach(&client)?;
    Ok(PgGateway { client })
}

impl PgGateway {
    /// Wraps a client.
    pub fn new(client: PgClient) -> Self {
        Self {
            client: Arc::new(client),
        }
    }

    /// The wrapped client.
    pub fn client(&self) -> &PgClient {
        &self.client
    }
}

fn query_error(what: &str, error: impl std::fmt::Display) -> QueryError {
    QueryError(format!("{what}: {error}"))
}

fn user(user_id: &str) -> Result<UserId, QueryError> {
    UserId::parse(user_id).map_err(|e| query_error("user id", e))
}

fn key(transaction_key: &str) -> Result<TransactionKey, QueryError> {
    TransactionKey::parse(transaction_key).map_err(|e| query_error("transaction key", e))
}

/// `None` for a status the service cannot act on (an unknown value): fail closed, keep the
/// payment as it is.
fn status(status: &TransactionStatus) -> Option<PgStatus> {
    match status {
        TransactionStatus::Pending => Some(PgStatus::Pending),
        TransactionStatus::Success => Some(PgStatus::Success),
        TransactionStatus::Failed => Some(PgStatus::Failed),
        TransactionStatus::Canceled => Some(PgStatus::Canceled),
        TransactionStatus::Unknown(_) => None,
    }
}

fn classify(error: &PgError) -> ChargeError {
    let message = error.to_string();
    if error.is_business() {
        ChargeError::Rejected(message)
    } else if error.is_uncertain() {
        ChargeError::Uncertain(message)
    } else {
        // Not reached, throttled, or refused by our own breaker / bulkhead: nothing created.
        ChargeError::NotReached(message)
    }
}

/// The port's charge in pg-client's words: the PG user and the payment request, in the
/// client's `currency`.
///
/// # Errors
///
/// A value pg-client refuses (a user id, order reference or idempotency key it cannot
/// parse, a negative amount): `Rejected`, since nothing was sent.
pub fn payment_request(
    request: ChargeRequest,
    currency: pg_client::Currency,
) -> Result<(UserId, PaymentRequest), ChargeError> {
    let invalid =
        |what: &str, e: &dyn std::fmt::Display| ChargeError::Rejected(format!("{what}: {e}"));
    let user = UserId::parse(request.user_id.as_str()).map_err(|e| invalid("user id", &e))?;
    let payment = PaymentRequest {
        order_id: OrderId::parse(request.order_ref.as_str())
            .map_err(|e| invalid("order id", &e))?,
        card_type: request.card_type,
        card_number: request.card_no,
        amount: pg_client::model::Money::new(request.amount.minor_units(), currency)
            .map_err(|e| invalid("amount", &e))?,
        callback_url: request.callback_url,
        idempotency_key: IdempotencyKey::parse(request.idempotency_key.as_str())
            .map_err(|e| invalid("idempotency key", &e))?,
    };
    Ok((user, payment))
}

impl PaymentGateway for PgGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            let (user, pg_request) = payment_request(request, self.client.config().currency)?;
            match self.client.request_payment(&user, &pg_request).await {
                Ok(ChargeOutcome::Accepted(accepted)) => Ok(accepted.transaction_key.to_string()),
                Ok(ChargeOutcome::Uncertain(uncertain)) => {
                    Err(ChargeError::Uncertain(uncertain.error.to_string()))
                }
                Err(error) => Err(classify(&error)),
            }
        })
    }

    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>> {
        Box::pin(async move {
            let user = user(user_id)?;
            let key = key(transaction_key)?;
            let Some(detail) = self
                .client
                .get_transaction(&user, &key)
                .await
                .map_err(|e| query_error("transaction", e))?
            else {
                return Ok(None);
            };
            let status = status(&detail.status).ok_or_else(|| {
                QueryError(format!("unknown transaction status {}", detail.status))
            })?;
            Ok(Some(PgTransaction {
                transaction_key: detail.transaction_key.to_string(),
                order_ref: detail.order_id.to_string(),
                amount: Money::new(detail.amount.minor_units()),
                status,
                reason: detail.reason,
            }))
        })
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        Box::pin(async move {
            let user = user(user_id)?;
            let order = OrderId::parse(order_ref).map_err(|e| query_error("order id", e))?;
            let found = self
                .client
                .find_by_order(&user, &order)
                .await
                .map_err(|e| query_error("transactions of the order", e))?;
            Ok(found
                .transactions
                .into_iter()
                .map(|t| t.transaction_key.to_string())
                .collect())
        })
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        Box::pin(async move {
            let user = user(user_id)?;
            let key = key(transaction_key)?;
            self.client
                .cancel(&user, &key)
                .await
                .map(drop)
                .map_err(|e| query_error("cancel", e))
        })
    }

    fn queries_permitted(&self) -> bool {
        self.client
            .circuit_breaker(CallPath::Query)
            .is_call_permitted()
    }

    fn extra_breakers(&self) -> Vec<seawall::CircuitBreaker> {
        self.client
            .card_type_breakers()
            .map(|keyed| {
                let mut breakers: Vec<_> = keyed.entries().into_iter().map(|(_, _, b)| b).collect();
                breakers.sort_by(|a, b| a.name().cmp(b.name()));
                breakers
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pg_client::FailureClass;

    #[test]
    fn only_failures_that_created_nothing_are_not_reached() {
        let cases = [
            (FailureClass::NotReached, "not"),
            (FailureClass::Throttled, "not"),
            (FailureClass::Rejected, "not"),
            (FailureClass::Business, "rejected"),
            (FailureClass::Uncertain, "uncertain"),
        ];
        for (class, expected) in cases {
            let got = match classify(&PgError::synthetic(class, "x")) {
                ChargeError::NotReached(_) => "not",
                ChargeError::Rejected(_) => "rejected",
                ChargeError::Uncertain(_) => "uncertain",
            };
            assert_eq!(got, expected, "{class:?}");
        }
    }
}
