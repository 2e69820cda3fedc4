//! An unprotected adapter, as services are often first written ("before"), kept only for the
//! demo's comparison. Do not use it for anything else.
//!
//! It is pg-client with every protection taken off, plus the retry loop such services write:
//!
//! - no timeouts (a day: a hanging PG hangs the order);
//! - no circuit breaker (both breakers DISABLED: a dead PG is called for every order), no
//!   bulkhead to speak of, no adaptive limit, no hedging;
//! - retries on *any* failure, 3 attempts with a fixed 1 s wait, and a **new idempotency key
//!   on every attempt** — as good as none: a retry after a lost answer can charge twice;
//! - every failure reported as "not reached", so the service fails the order even when the PG
//!   may have charged it.
//!
//! The HTTP and the PG's wire format are pg-client's; queries and cancels go through the
//! service's own adapter ([`PgGateway`]) over the same unprotected client.

use std::time::Duration;

use commerce::gateway::pg::{PgGateway, payment_request};
use commerce::gateway::{
    BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError,
};
use pg_client::{
    BuildError, CallPath, ChargeOutcome, IdempotencyKey, PaymentGateway as _, PgClient,
    PgClientConfig,
};
use seawall::Clock;
use seawall::bulkhead::BulkheadConfig;

/// Charges blindly: see the module docs for what it gets wrong.
#[derive(Debug)]
pub(crate) struct NaiveGateway {
    port: PgGateway,
    attempts: u32,
    retry_wait: Duration,
    clock: Clock,
}

/// "No timeout": pg-client wants one, so a day.
const NO_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

impl NaiveGateway {
    /// A naive client of the PG at `base_url`: 3 attempts, 1 s apart.
    ///
    /// # Errors
    ///
    /// A base URL pg-client cannot use.
    pub(crate) fn new(base_url: &str) -> Result<Self, BuildError> {
        let mut config = PgClientConfig::with_base_url(base_url);
        config.name = "naive".to_owned();
        config.cancel_supported = true;
        for path in [&mut config.charge, &mut config.query] {
            path.connect_timeout = NO_TIMEOUT;
            path.read_timeout = NO_TIMEOUT;
            path.retry.max_attempts = 1;
            path.bulkhead = BulkheadConfig::new(100_000);
            path.adaptive_limiter = None;
            path.hedge.max_hedged_attempts = 0;
        }
        let client = PgClient::new(config)?;
        for path in [CallPath::Charge, CallPath::Query] {
            // Cannot fail: DISABLED is reachable from every state.
            let _ = client.circuit_breaker(path).transition_to_disabled();
        }
        Ok(Self {
            port: PgGateway::new(client),
            attempts: 3,
            retry_wait: Duration::from_secs(1),
            clock: Clock::default(),
        })
    }

    async fn attempt(&self, request: ChargeRequest, attempt: u32) -> Result<String, String> {
        let client = self.port.client();
        let (user, mut payment) =
            payment_request(request, client.config().currency).map_err(|e| e.to_string())?;
        payment.idempotency_key =
            IdempotencyKey::for_attempt(&payment.order_id, attempt).map_err(|e| e.to_string())?;
        match client.request_payment(&user, &payment).await {
            Ok(ChargeOutcome::Accepted(accepted)) => Ok(accepted.transaction_key.to_string()),
            Ok(ChargeOutcome::Uncertain(uncertain)) => Err(uncertain.error.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
}

impl PaymentGateway for NaiveGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            let mut last = String::new();
            for attempt in 1..=self.attempts {
                match self.attempt(request.clone(), attempt).await {
                    Ok(key) => return Ok(key),
                    Err(error) => last = error,
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
        self.port.transaction(user_id, transaction_key)
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        self.port.transactions_for_order(user_id, order_ref)
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        self.port.cancel(user_id, transaction_key)
    }

    fn queries_permitted(&self) -> bool {
        true
    }
}
