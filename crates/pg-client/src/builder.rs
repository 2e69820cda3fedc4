//! [`PgClientBuilder`]: a [`PgClient`] from its configuration, with a clock and decorators
//! supplied from outside.

use std::sync::Arc;

use reqwest::Url;
use seawall::keyed::{Keyed, KeyedConfig};
use seawall::registry::CircuitBreakers;
use seawall::{Bulkhead, CircuitBreaker, Clock, ConfigError, Retry};

use crate::client::{PgClient, Shared};
use crate::config::{PathConfig, PgClientConfig};
use crate::live::{ChargeLive, Observer};
use crate::model::CardType;
use crate::observer::AttemptObserver;
use crate::policy::{self, CardTypeBreakers, Supplied};
use crate::telemetry;

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A configuration value broke a rule; the error names its dotted key.
    #[error("invalid payment gateway client configuration: {0}")]
    Config(#[from] ConfigError),
    /// The HTTP client could not be created (e.g. no TLS backend).
    #[error("could not create the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// The base URL with the payments path appended: `{base}/api/v1/payments`.
pub(crate) fn parse_base_url(base: &str) -> Result<Url, ConfigError> {
    let mut url =
        Url::parse(base).map_err(|e| ConfigError::new("base_url", format!("not a URL: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" if cfg!(feature = "rustls") => {}
        "https" => {
            return Err(ConfigError::new(
                "base_url",
                "https needs the `rustls` feature of pg-client",
            ));
        }
        other => {
            return Err(ConfigError::new(
                "base_url",
                format!("must be http or https, got {other}"),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            "base_url",
            "must not have a query or fragment",
        ));
    }
    url.path_segments_mut()
        .map_err(|()| ConfigError::new("base_url", "cannot be a base URL"))?
        .pop_if_empty()
        .extend(["api", "v1", "payments"]);
    Ok(url)
}

fn http_client(config: &PathConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .no_proxy()
        .user_agent(concat!("pg-client/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Builds a [`PgClient`]: the config, plus an optional clock and decorators supplied from
/// outside.
#[derive(Debug)]
pub struct PgClientBuilder {
    config: PgClientConfig,
    clock: Option<Clock>,
    charge: Supplied,
    query: Supplied,
    card_type_breakers: Option<CardTypeBreakers>,
    charge_observer: Option<Observer>,
    attempt_observer: Option<Arc<dyn AttemptObserver>>,
}

impl PgClientBuilder {
    /// A builder for `config`, with nothing supplied from outside.
    pub(crate) fn new(config: PgClientConfig) -> Self {
        Self {
            config,
            clock: None,
            charge: Supplied::default(),
            query: Supplied::default(),
            card_type_breakers: None,
            charge_observer: None,
            attempt_observer: None,
        }
    }

    /// The clock of every decorator built from the config: retry waits (`Retry-After`
    /// included), breaker windows and open waits, bulkhead waits, call durations (default:
    /// tokio's). A [`ManualClock`](seawall::clock::ManualClock) lets a test step a
    /// `Retry-After` by hand while the HTTP exchange runs on real sockets. The HTTP timeouts
    /// are the transport's and run on real time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this retry for the charge path instead of building one from `charge.retry`
    /// (the client attaches its own rule of what to retry).
    pub fn charge_retry(mut self, retry: Retry) -> Self {
        self.charge.retry = Some(retry);
        self
    }

    /// Uses this breaker for the charge path (the client attaches its classifier).
    pub fn charge_circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.charge.circuit_breaker = Some(breaker);
        self
    }

    /// Uses this bulkhead for the charge path.
    pub fn charge_bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.charge.bulkhead = Some(bulkhead);
        self
    }

    /// Gives every card type its own charge breaker, built from `charge.circuit_breaker` on
    /// the card type's first charge (named `{client}-charge[SAMSUNG]`, …): one issuer's
    /// outage opens only its breaker, and charges with the other card types go on. The
    /// charge path's own breaker ([`PgClient::circuit_breaker`]) then guards cancels only.
    /// The retry, its budget and the bulkhead stay shared by all card types.
    pub fn charge_breakers_by_card_type(mut self, settings: KeyedConfig) -> Self {
        self.card_type_breakers = Some(CardTypeBreakers::FromConfig(settings));
        self
    }

    /// As [`charge_breakers_by_card_type`](Self::charge_breakers_by_card_type), with the
    /// breakers supplied (the client attaches its classifier to each call).
    pub fn charge_keyed_breakers(mut self, breakers: Keyed<CircuitBreakers, CardType>) -> Self {
        self.card_type_breakers = Some(CardTypeBreakers::Supplied(breakers));
        self
    }

    /// Uses this retry for the query path (the client attaches its own rule).
    pub fn query_retry(mut self, retry: Retry) -> Self {
        self.query.retry = Some(retry);
        self
    }

    /// Uses this breaker for the query path (the client attaches its classifier).
    pub fn query_circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.query.circuit_breaker = Some(breaker);
        self
    }

    /// Uses this bulkhead for the query path.
    pub fn query_bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.query.bulkhead = Some(bulkhead);
        self
    }

    /// Calls `observer` around each HTTP attempt (charges, queries, cancels), below the
    /// retry and the hedge; its veto stops an attempt before anything is sent. See
    /// [`observer`](crate::observer).
    pub fn attempt_observer(mut self, observer: Arc<dyn AttemptObserver>) -> Self {
        self.attempt_observer = Some(observer);
        self
    }

    pub(crate) fn set_charge_observer(&mut self, observer: Observer) {
        self.charge_observer = Some(observer);
    }

    /// Validates the config and builds the client.
    ///
    /// # Errors
    ///
    /// An invalid configuration value (named by its dotted key), or an HTTP client that
    /// cannot be created.
    pub fn build(self) -> Result<PgClient, BuildError> {
        let config = self.config;
        config.validate()?;
        let payments = parse_base_url(&config.base_url)?;
        let clock = self.clock.unwrap_or_default();
        let charge = policy::charge_policy(&config.name, &config.charge, &clock, self.charge)?;
        let query = policy::query_policy(&config.name, &config.query, &clock, self.query)?;
        let card_type_breakers =
            policy::card_type_breakers(&config, &clock, self.card_type_breakers)?;
        let charge_http = http_client(&config.charge).map_err(BuildError::Http)?;
        let query_http = http_client(&config.query).map_err(BuildError::Http)?;
        telemetry::describe();
        let charge_live = ChargeLive::new(config.charge.read_timeout, self.charge_observer);
        Ok(PgClient {
            shared: Arc::new(Shared {
                charge_live,
                config,
                payments,
                charge_http,
                query_http,
                charge,
                query,
                card_type_breakers,
                clock,
                attempt_observer: self.attempt_observer,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payments_url_is_appended_to_the_base() {
        let url = parse_base_url("http://127.0.0.1:8082").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8082/api/v1/payments");
        let url = parse_base_url("http://pg.internal/gateway/").unwrap();
        assert_eq!(url.as_str(), "http://pg.internal/gateway/api/v1/payments");
        assert!(parse_base_url("http://x/?a=b").is_err());
        assert!(parse_base_url("not a url").is_err());
    }
}
