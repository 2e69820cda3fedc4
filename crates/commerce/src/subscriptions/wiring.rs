//! Building the subscription service at start-up: the batch-path client, the card key, the
//! billing job.

use std::sync::Arc;

use pg_client::PgClient;
use seawall::ConfigError;
use seawall::registry::{Registries, Tags};

use super::billing::BillingJob;
use super::{BillingClock, SUBSCRIPTION_BREAKER, SUBSCRIPTION_QUERY_BREAKER, SubscriptionService};
use crate::configuration::Settings;
use crate::gateway::PaymentGateway;
use crate::gateway::pg::PgGateway;
use crate::persistence;
use crate::persistence::{Db, now_ms};
use crate::startup::StartupError;
use crate::vault::CardVault;

/// The batch-path gateway: its own pg-client with the breakers `pg-subscription` and
/// `pg-subscription-query` in the service's registry, at the PG of `gateway.base_url`. With
/// no base URL (a gateway injected by a test or the demo), `fallback`.
///
/// # Errors
///
/// An invalid configuration value, naming its key.
pub fn batch_gateway(
    settings: &Settings,
    registries: &Registries,
    fallback: &Arc<dyn PaymentGateway>,
) -> Result<Arc<dyn PaymentGateway>, ConfigError> {
    let Some(base_url) = settings.gateway.base_url.as_ref() else {
        return Ok(fallback.clone());
    };
    let mut config = settings.subscriptions.client.clone();
    config.base_url.clone_from(base_url);
    config
        .validate()
        .map_err(|e| e.under("subscriptions.client"))?;
    let breakers = registries.circuit_breakers();
    let charge = breakers.get_or_create_with(
        SUBSCRIPTION_BREAKER,
        &config.charge.circuit_breaker,
        Tags::new(),
    )?;
    let query = breakers.get_or_create_with(
        SUBSCRIPTION_QUERY_BREAKER,
        &config.query.circuit_breaker,
        Tags::new(),
    )?;
    let client = PgClient::builder(config)
        .charge_circuit_breaker(charge)
        .query_circuit_breaker(query)
        .build()
        .map_err(|e| ConfigError::new("subscriptions.client", e.to_string()))?;
    Ok(Arc::new(PgGateway::new(client)))
}

/// The subscription service with its billing job.
///
/// # Errors
///
/// An invalid configuration, or the database (the card key kept there).
pub async fn service(
    settings: &Settings,
    db: &Db,
    registries: &Registries,
    gateway: &Arc<dyn PaymentGateway>,
    clock: BillingClock,
    callback_url: &str,
) -> Result<SubscriptionService, StartupError> {
    let key = match &settings.subscriptions.card_key {
        Some(key) => key.clone(),
        None => {
            let candidate = crate::secrets::random_hex(32)
                .map_err(|e| ConfigError::new("subscriptions.card_key", e.to_string()))?;
            persistence::service_secret(
                &mut *db.writer().await?,
                "subscriptions.card_key",
                &candidate,
                now_ms(),
            )
            .await?
        }
    };
    let billing = BillingJob::new(
        db.clone(),
        batch_gateway(settings, registries, gateway)?,
        CardVault::new(key.as_bytes()),
        clock,
        settings.subscriptions.clone(),
        callback_url.to_owned(),
    );
    Ok(SubscriptionService::new(db.clone(), billing))
}
