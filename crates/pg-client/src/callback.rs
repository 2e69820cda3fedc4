//! The gateway's result callback: verify its `X-PG-Signature`, then parse the raw body into a
//! typed [`PaymentCallback`] whose card number is masked on ingest.
//!
//! The signature is Stripe's scheme: `X-PG-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`
//! where each `v1` is `HMAC-SHA256(secret, "{t}.{raw body}")`; during a secret rotation the
//! gateway sends one `v1` per secret, and the receiver accepts the callback when any `v1`
//! matches any of its secrets (compared in constant time) and `t` is within the tolerance
//! (default 300 s) of now. Verify the **raw** bytes, before any JSON parsing.
//!
//! A verified callback is still only a trigger: re-query the gateway before a terminal
//! transition, and match order, amount and user with your own record.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pg_client::callback::CallbackVerifier;
//!
//! let verifier = CallbackVerifier::new(["whsec_new", "whsec_old"])?;
//! # let body = br#"{"transactionKey":"k","orderId":"000123","cardType":"KB","cardNo":"1234-5678-9012-3456","amount":5000,"status":"SUCCESS","reason":"ok"}"#;
//! # let header = pg_simulator::signature::sign(&["whsec_old".to_owned()], 1_700_000_000, body);
//! let callback = verifier.verify_and_parse_at(Some(&header), body, 1_700_000_060)?;
//! assert_eq!(callback.card_number.as_str(), "1234-56**-****-3456");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::model::{
    CardType, Currency, MaskedCardNumber, Money, OrderId, TransactionKey, TransactionStatus,
    redact_pans,
};
use crate::wire::WireDetail;

type HmacSha256 = Hmac<Sha256>;

/// The name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-PG-Signature";

/// The default timestamp tolerance (Stripe's SDK default).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request had no signature header.
    #[error("the callback has no signature header")]
    Missing,
    /// The header is not `t=<unix>,v1=<hex>[,v1=<hex>…]` (no timestamp, several, or no `v1`).
    #[error("the callback signature header is malformed")]
    Malformed,
    /// No `v1` matches any configured secret: tampered body, forged or unknown secret.
    #[error("the callback signature matches no configured secret")]
    Mismatch,
    /// The signature is genuine but its timestamp is further than the tolerance from now (a
    /// replay, or a badly skewed clock).
    #[error(
        "the callback signature timestamp is {skew_secs} s away from now, beyond the tolerance"
    )]
    Expired {
        /// `now - t`, seconds (negative: from the future).
        skew_secs: i64,
    },
}

/// Why a callback was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The signature did not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The body is not a payment callback. The text describes the problem without quoting
    /// the body (which holds a card number).
    #[error("the callback body is not a valid payment callback: {0}")]
    Body(String),
}

impl CallbackError {
    /// Whether the callback was refused for its signature (answer 401) rather than its body
    /// (answer 400).
    pub fn is_signature(&self) -> bool {
        matches!(self, Self::Signature(_))
    }
}

/// A payment result posted by the gateway, card number masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCallback {
    /// The transaction it reports.
    pub transaction_key: TransactionKey,
    /// The merchant's order (match on it too: the transaction key may be one the merchant
    /// never saw, after a lost answer).
    pub order_id: OrderId,
    /// The card issuer.
    pub card_type: CardType,
    /// The card number, masked.
    pub card_number: MaskedCardNumber,
    /// The amount (compare it with the order's).
    pub amount: Money,
    /// The reported status (terminal for the canonical gateway; a stale PENDING is possible).
    pub status: TransactionStatus,
    /// The gateway's reason, card numbers masked.
    pub reason: Option<String>,
}

/// Parses a raw callback body (no envelope), masking the card number on ingest. Lenient about
/// unknown fields, strict about types; an absent `reason` and a `null` one are the same.
///
/// # Errors
///
/// A body that is not JSON, lacks a required field, has a field of the wrong type or a
/// negative amount. The message never quotes the body.
pub fn parse_callback(body: &[u8], currency: Currency) -> Result<PaymentCallback, CallbackError> {
    let wire: WireDetail = serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                "a field is missing or has the wrong type"
            }
        };
        CallbackError::Body(format!("{what} (line {} column {})", e.line(), e.column()))
    })?;
    let amount =
        Money::new(wire.amount, currency).map_err(|e| CallbackError::Body(e.to_string()))?;
    Ok(PaymentCallback {
        transaction_key: wire.transaction_key,
        order_id: wire.order_id,
        card_type: wire.card_type,
        card_number: wire.card_no,
        amount,
        status: wire.status,
        reason: wire.reason.as_deref().map(redact_pans),
    })
}

/// A shared source of the current Unix time in seconds.
type UnixNow = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Verifies callback signatures against one or more secrets (several during a rotation).
///
/// # Clone
///
/// Clones share the secrets and the time source.
#[derive(Clone)]
pub struct CallbackVerifier {
    secrets: Arc<[Vec<u8>]>,
    tolerance: Duration,
    currency: Currency,
    now: UnixNow,
}

impl CallbackVerifier {
    /// A verifier accepting a signature by any of `secrets`, with the default tolerance, the
    /// KRW currency and the system clock.
    ///
    /// # Errors
    ///
    /// No secret, or an empty one.
    pub fn new<S: AsRef<[u8]>>(
        secrets: impl IntoIterator<Item = S>,
    ) -> Result<Self, SignatureConfigError> {
        let secrets: Vec<Vec<u8>> = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        if secrets.is_empty() {
            return Err(SignatureConfigError("at least one secret is needed"));
        }
        if secrets.iter().any(Vec::is_empty) {
            return Err(SignatureConfigError("a secret must not be empty"));
        }
        Ok(Self {
            secrets: secrets.into(),
            tolerance: DEFAULT_TOLERANCE,
            currency: Currency::KRW,
            now: Arc::new(system_unix_now),
        })
    }

    /// How far the signature's timestamp may be from now (default 300 s).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The currency of the callback's amount (default KRW).
    #[must_use]
    pub fn currency(mut self, currency: Currency) -> Self {
        self.currency = currency;
        self
    }

    /// The source of "now" in Unix seconds (default: the system clock), e.g. a fixed time in
    /// tests.
    #[must_use]
    pub fn now_fn(mut self, now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.now = Arc::new(now);
        self
    }

    /// Verifies `header` (the `X-PG-Signature` value, `None` when absent) over the raw
    /// `body`, at the verifier's now.
    ///
    /// # Errors
    ///
    /// See [`SignatureError`].
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        self.verify_at(header, body, (self.now)())
    }

    /// Like [`verify`](Self::verify), at `now` (Unix seconds).
    ///
    /// # Errors
    ///
    /// See [`SignatureError`]. The signature is checked before the timestamp, so
    /// [`SignatureError::Expired`] always means "genuine, but too old or too new".
    pub fn verify_at(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let (timestamp, candidates) = parse_header(header)?;
        let mut matched = false;
        for secret in self.secrets.iter() {
            let mut mac =
                HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            // Every candidate is compared (constant time each), so the time taken does not
            // tell which one matched.
            for candidate in &candidates {
                matched |= mac.clone().verify_slice(candidate).is_ok();
            }
        }
        if !matched {
            return Err(SignatureError::Mismatch);
        }
        let skew_secs = now.saturating_sub(timestamp);
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if skew_secs.unsigned_abs() > tolerance.unsigned_abs() {
            return Err(SignatureError::Expired { skew_secs });
        }
        Ok(())
    }

    /// Verifies, then parses, at the verifier's now.
    ///
    /// # Errors
    ///
    /// A signature that does not verify, or a body that is not a payment callback.
    pub fn verify_and_parse(
        &self,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<PaymentCallback, CallbackError> {
        self.verify_and_parse_at(header, body, (self.now)())
    }

    /// Verifies at `now` (Unix seconds), then parses.
    ///
    /// # Errors
    ///
    /// As [`verify_and_parse`](Self::verify_and_parse).
    pub fn verify_and_parse_at(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<PaymentCallback, CallbackError> {
        self.verify_at(header, body, now)?;
        parse_callback(body, self.currency)
    }
}

impl fmt::Debug for CallbackVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackVerifier")
            .field(
                "secrets",
                &format_args!("{} (redacted)", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

/// A [`CallbackVerifier`] could not be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid callback verifier: {0}")]
pub struct SignatureConfigError(&'static str);

/// `t=<unix>` (exactly once) and every decodable `v1=<hex>`; other schemes are ignored.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                timestamp = Some(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "v1" => {
                if let Ok(bytes) = hex::decode(value.trim()) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok((timestamp, candidates))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"transactionKey":"20250816:TR:9577c5","orderId":"000123","cardType":"SAMSUNG","cardNo":"1234-5678-9012-3456","amount":5000,"status":"SUCCESS","reason":"ok","extra":1}"#;

    #[test]
    fn headers_need_one_timestamp_and_at_least_one_v1() {
        assert_eq!(parse_header("v1=00"), Err(SignatureError::Malformed));
        assert_eq!(parse_header("t=1"), Err(SignatureError::Malformed));
        assert_eq!(
            parse_header("t=1,t=2,v1=00"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(parse_header("t=x,v1=00"), Err(SignatureError::Malformed));
        let (t, v) = parse_header("t=5, v0=zz, v1=0a0b ,v1=nothex").unwrap();
        assert_eq!((t, v), (5, vec![vec![10, 11]]));
    }

    #[test]
    fn callbacks_parse_leniently_with_the_card_masked() {
        let callback = parse_callback(BODY, Currency::KRW).unwrap();
        assert_eq!(callback.card_number.as_str(), "1234-56**-****-3456");
        assert_eq!(callback.amount.minor_units(), 5000);
        assert_eq!(callback.status, TransactionStatus::Success);
        let without_reason = String::from_utf8_lossy(BODY).replace(r#","reason":"ok""#, "");
        assert_eq!(
            parse_callback(without_reason.as_bytes(), Currency::KRW)
                .unwrap()
                .reason,
            None
        );
    }

    #[test]
    fn bad_bodies_are_described_without_quoting_them() {
        let wrong_type = String::from_utf8_lossy(BODY).replace(
            r#""cardNo":"1234-5678-9012-3456""#,
            r#""cardNo":1234567890123456"#,
        );
        let err = parse_callback(wrong_type.as_bytes(), Currency::KRW).unwrap_err();
        assert!(!err.to_string().contains("1234567890123456"), "{err}");
        assert!(!format!("{err:?}").contains("1234567890123456"));
        let err = parse_callback(&BODY[..40], Currency::KRW).unwrap_err();
        assert!(err.to_string().contains("truncated"));
    }

    #[test]
    fn the_verifier_never_prints_its_secrets() {
        let verifier = CallbackVerifier::new(["top-secret"]).unwrap();
        assert!(!format!("{verifier:?}").contains("top-secret"));
        assert!(CallbackVerifier::new(Vec::<&str>::new()).is_err());
        assert!(CallbackVerifier::new([""]).is_err());
    }
}
