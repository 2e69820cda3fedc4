//! Fault injection in front of the PG port, for game days (off by default).
//!
//! [`FaultyGateway`] wraps any [`PaymentGateway`] in two seawall fault injectors, `pg-charge`
//! for charges and `pg-query` for queries and cancels, created in the registries' `fault`
//! section from `[gateway.fault.*]` and switched live through the admin API. Switched off,
//! each call costs one atomic load.
//!
//! What an injected fault means to the service:
//!
//! - an injected **error** on a charge is [`ChargeError::NotReached`]: the charge was never
//!   sent, so the payment fails, the stock is released and the shopper gets a 503 with
//!   `Retry-After`, exactly as when the PG is down behind an open breaker; on a query it is a
//!   [`QueryError`], and the payment stays as it was;
//! - an injected **latency** delays the call before it is sent (on top of the client's own
//!   timeouts, which bound only the call itself);
//! - replaced outcomes are not used here (the PG's answers are not invented).
//!
//! The injectors sit in front of pg-client, not inside its policies: the client's breaker does
//! not count injected errors.

use std::fmt;
use std::sync::Arc;

use seawall::fault::{ErrorFn, FaultConfig};
use seawall::registry::{Registries, Tags};
use seawall::{ConfigError, FaultInjector};

use super::{BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError};
use crate::configuration::GatewayFaultSettings;

/// Name of the charge path's fault injector.
pub const CHARGE_FAULTS: &str = "pg-charge";
/// Name of the query path's fault injector.
pub const QUERY_FAULTS: &str = "pg-query";

/// What an injected charge error reads as.
const INJECTED: &str = "fault injected on purpose (game day)";

type ChargeFaults = FaultInjector<ErrorFn<fn() -> ChargeError>>;
type QueryFaults = FaultInjector<ErrorFn<fn() -> QueryError>>;

fn charge_not_reached() -> ChargeError {
    ChargeError::NotReached(INJECTED.to_owned())
}

fn query_failed() -> QueryError {
    QueryError(INJECTED.to_owned())
}

/// A [`PaymentGateway`] whose calls go through fault injectors first.
pub struct FaultyGateway {
    inner: Arc<dyn PaymentGateway>,
    charge: ChargeFaults,
    query: QueryFaults,
}

impl FaultyGateway {
    /// Wraps `inner`, creating (or reusing) the injectors `pg-charge` and `pg-query` in
    /// `registries` from `settings`.
    ///
    /// # Errors
    ///
    /// An invalid fault configuration, naming its key under `gateway.fault`.
    pub fn wrap(
        inner: Arc<dyn PaymentGateway>,
        settings: &GatewayFaultSettings,
        registries: &Registries,
    ) -> Result<Self, ConfigError> {
        let injector = |name: &str, config: &FaultConfig, key: &str| {
            registries
                .fault_injectors()
                .get_or_create_with(name, config, Tags::new())
                .map_err(|e| e.under(key))
        };
        let charge = injector(CHARGE_FAULTS, &settings.charge, "gateway.fault.charge")?;
        let query = injector(QUERY_FAULTS, &settings.query, "gateway.fault.query")?;
        Ok(Self {
            inner,
            charge: charge.with_error(charge_not_reached as fn() -> ChargeError),
            query: query.with_error(query_failed as fn() -> QueryError),
        })
    }
}

impl fmt::Debug for FaultyGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyGateway")
            .field("inner", &self.inner)
            .field("charge", &self.charge)
            .field("query", &self.query)
            .finish()
    }
}

/// The injector's error is either the operation's own or the one it injected (never a
/// marker: both injectors make the operation's own error type).
fn own<E>(error: seawall::Error<E>, injected: fn() -> E) -> E {
    error.try_into_inner().unwrap_or_else(|_| injected())
}

impl PaymentGateway for FaultyGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            self.charge
                .call(|| self.inner.charge(request.clone()))
                .await
                .map_err(|e| own(e, charge_not_reached))
        })
    }

    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>> {
        Box::pin(async move {
            self.query
                .call(|| self.inner.transaction(user_id, transaction_key))
                .await
                .map_err(|e| own(e, query_failed))
        })
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        Box::pin(async move {
            self.query
                .call(|| self.inner.transactions_for_order(user_id, order_ref))
                .await
                .map_err(|e| own(e, query_failed))
        })
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        Box::pin(async move {
            self.query
                .call(|| self.inner.cancel(user_id, transaction_key))
                .await
                .map_err(|e| own(e, query_failed))
        })
    }

    fn queries_permitted(&self) -> bool {
        self.inner.queries_permitted()
    }

    fn extra_breakers(&self) -> Vec<seawall::CircuitBreaker> {
        self.inner.extra_breakers()
    }
}
