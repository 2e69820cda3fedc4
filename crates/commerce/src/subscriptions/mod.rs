//! Subscriptions and dunning (issue 17, part 2).
//!
//! A subscription bills its plan's price every period through its own PG client, the
//! **batch path** ([`batch_client_defaults`]: a longer read timeout, a tolerant breaker
//! `pg-subscription`, a small bulkhead), separate from the one-time payments' `pg-charge`, so
//! a billing run cannot starve shoppers and a shopper burst cannot open the billing breaker.
//!
//! - [`SubscriptionService`]: create (the first period charged at once, by the same charge
//!   function as every later period), read, pause, resume, cancel, update the card.
//! - [`billing::BillingJob`]: the scheduled billing round, in pages; each due subscription is
//!   claimed with a conditional `UPDATE` that only one instance wins (see
//!   `persistence/subscriptions.rs`), and every attempt carries the idempotency key
//!   `SUB-{subscription}-{period}-{attempt}`, written before the PG is called, so a crash and
//!   re-send never charges a period twice.
//! - [`dunning`]: the schedule as a pure function.
//! - the card is kept sealed by [`crate::vault`] with the service's key, masked for display.
//!
//! Every attempt is a row of `subscription_attempts` (the subscriptions' payment history;
//! `payment_history` belongs to order payments). Time comes from a [`BillingClock`], so the
//! tests run 30 days of billing in seconds.

pub mod billing;
pub mod dunning;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use pg_client::PgClientConfig;
use seawall::ConfigError;
use seawall::circuit_breaker::{OpenWait, SlidingWindow};
use serde::{Deserialize, Serialize};

/// The subscription client's charge breaker (in the service's registry).
pub const SUBSCRIPTION_BREAKER: &str = "pg-subscription";
/// What a subscription's sealed card is bound to (the payments' vault, [`crate::vault`],
/// binds each card to a context; a subscription's card outlives any one charge).
pub const SEALED_CARD_CONTEXT: &str = "subscription card";
/// The subscription client's query breaker.
pub const SUBSCRIPTION_QUERY_BREAKER: &str = "pg-subscription-query";

/// The billing job and the subscription client (section `subscriptions`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Run the billing job (default true).
    pub enabled: bool,
    /// Time between billing rounds (default 60000).
    pub interval_ms: u64,
    /// Subscriptions claimed per page of a round (default 100).
    pub page_size: i64,
    /// How long an attempt may stay unsettled before a round looks at it again: re-sends it
    /// with the same idempotency key (no answer was recorded: a crash, an uncertain outcome)
    /// or re-queries the PG for its result (default 60000).
    pub resend_after_ms: u64,
    /// The key the stored card numbers are sealed with (at least 16 bytes, the same on every
    /// instance). Unset: a random key made at first start and kept in `service_secrets`.
    pub card_key: Option<String>,
    /// The batch-path pg-client configuration (a table replaces these defaults, keys it does
    /// not name take pg-client's own): see [`batch_client_defaults`].
    pub client: PgClientConfig,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_ms: 60_000,
            page_size: 100,
            resend_after_ms: 60_000,
            card_key: None,
            client: batch_client_defaults(),
        }
    }
}

impl SubscriptionSettings {
    /// Checks every value; the error names the key under `subscriptions`.
    ///
    /// # Errors
    ///
    /// The first invalid value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = crate::configuration::MAX_MS;
        if self.interval_ms == 0 || self.interval_ms > max {
            return Err(ConfigError::new(
                "subscriptions.interval_ms",
                format!("must be between 1 and {max}"),
            ));
        }
        if self.resend_after_ms > max {
            return Err(ConfigError::new(
                "subscriptions.resend_after_ms",
                format!("must be at most {max}"),
            ));
        }
        if !(1..=10_000).contains(&self.page_size) {
            return Err(ConfigError::new(
                "subscriptions.page_size",
                "must be between 1 and 10000",
            ));
        }
        if self.card_key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(ConfigError::new(
                "subscriptions.card_key",
                "must be at least 16 bytes",
            ));
        }
        self.client
            .validate()
            .map_err(|e| e.under("subscriptions.client"))
    }
}

/// The batch path (DIGEST §003, "by path": batch = timeout 10–30 s, tolerant breaker 60–70 %,
/// small bulkhead, fallback = the next run): a 10 s read timeout on charges, a breaker that
/// opens at 70 % failures over 20 calls (minimum 10) and waits 60 s, calls over 10 s slow,
/// 4 charges in flight, no adaptive limit; queries 3 s. Its metrics label is
/// `client="pg-subscription"`. The dunning schedule is the retry
/// across days; pg-client's own retries (3 attempts) retry only failures that created
/// nothing, with the same key.
pub fn batch_client_defaults() -> PgClientConfig {
    let mut client = PgClientConfig {
        name: "pg-subscription".to_owned(),
        cancel_supported: true,
        ..PgClientConfig::default()
    };
    for path in [&mut client.charge, &mut client.query] {
        path.connect_timeout = Duration::from_secs(1);
        let breaker = &mut path.circuit_breaker;
        breaker.sliding_window = SlidingWindow::count(20);
        breaker.minimum_number_of_calls = 10;
        breaker.failure_rate_threshold = 70.0;
        breaker.slow_call_duration_threshold = Some(Duration::from_secs(10));
        breaker.slow_call_rate_threshold = 70.0;
        breaker.open_wait = OpenWait::Fixed(Duration::from_secs(60));
        path.bulkhead.max_concurrent_calls = 4;
    }
    client.charge.read_timeout = Duration::from_secs(10);
    client.query.read_timeout = Duration::from_secs(3);
    client
}

/// The billing clock: wall time in milliseconds, or a manual one the tests move by days.
#[derive(Clone, Debug, Default)]
pub struct BillingClock(Option<Arc<AtomicI64>>);

impl BillingClock {
    /// Wall time.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `start_ms` until [`advance`](Self::advance)d.
    pub fn manual(start_ms: i64) -> Self {
        Self(Some(Arc::new(AtomicI64::new(start_ms))))
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(at) => at.load(Ordering::SeqCst),
            None => crate::persistence::now_ms(),
        }
    }

    /// Moves a manual clock forward (nothing on wall time).
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.0 {
            let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            at.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

mod service;
pub mod wiring;

pub use self::service::{NewSubscriptionRequest, SubscriptionService, SubscriptionView};
