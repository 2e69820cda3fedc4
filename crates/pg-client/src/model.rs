//! The gateway's vocabulary as types: money in integer minor units, identifiers with parse
//! constructors, a card number that cannot be printed in full, and statuses that survive values
//! added by a future gateway version.
//!
//! Parsing from the gateway is lenient about unknown fields and strict about types; an absent
//! optional field and a `null` one are the same.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod card;

pub use self::card::{CardNumber, MaskedCardNumber, mask_pan, redact_pans};

/// A value did not satisfy a model type's rules. The message names the type and the rule and
/// never repeats the rejected value (it may be a card number).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {rule}")]
pub struct ModelError {
    what: &'static str,
    rule: &'static str,
}

impl ModelError {
    const fn new(what: &'static str, rule: &'static str) -> Self {
        Self { what, rule }
    }

    /// The type whose rule was broken, e.g. `"order id"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The rule that was broken.
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}

// ===== Currency and Money =====

/// An ISO 4217 alphabetic currency code (three upper-case ASCII letters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// South Korean won (no minor unit: amounts are whole won), the simulator's currency.
    pub const KRW: Self = Self(*b"KRW");
    /// US dollar (minor unit: cent).
    pub const USD: Self = Self(*b"USD");
    /// Euro (minor unit: cent).
    pub const EUR: Self = Self(*b"EUR");

    /// Parses a three-letter upper-case code such as `"KRW"`.
    ///
    /// # Errors
    ///
    /// Anything but exactly three ASCII upper-case letters.
    pub fn parse(code: &str) -> Result<Self, ModelError> {
        match code.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(ModelError::new(
                "currency",
                "must be three upper-case ASCII letters (ISO 4217)",
            )),
        }
    }

    /// The code, e.g. `"KRW"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl Default for Currency {
    /// [`Currency::KRW`], the simulator's currency.
    fn default() -> Self {
        Self::KRW
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::parse(&code).map_err(D::Error::custom)
    }
}

/// An amount of money: a non-negative integer count of the currency's minor unit (whole won
/// for KRW, cents for USD) and its currency. Never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawMoney")]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMoney {
    minor_units: i64,
    currency: Currency,
}

impl TryFrom<RawMoney> for Money {
    type Error = ModelError;

    fn try_from(raw: RawMoney) -> Result<Self, ModelError> {
        Self::new(raw.minor_units, raw.currency)
    }
}

impl Money {
    /// `minor_units` of `currency`'s minor unit.
    ///
    /// # Errors
    ///
    /// A negative amount.
    pub fn new(minor_units: i64, currency: Currency) -> Result<Self, ModelError> {
        if minor_units < 0 {
            return Err(ModelError::new("amount", "must not be negative"));
        }
        Ok(Self {
            minor_units,
            currency,
        })
    }

    /// An amount in whole Korean won.
    ///
    /// # Errors
    ///
    /// A negative amount.
    pub fn krw(won: i64) -> Result<Self, ModelError> {
        Self::new(won, Currency::KRW)
    }

    /// The amount in minor units.
    pub const fn minor_units(&self) -> i64 {
        self.minor_units
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    /// `5000 KRW`: minor units and code (the minor unit's size is the currency's business).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor_units, self.currency)
    }
}

// ===== identifiers =====

fn check_text(
    what: &'static str,
    value: &str,
    max_chars: usize,
    header_safe: bool,
) -> Result<(), ModelError> {
    if value.trim().is_empty() {
        return Err(ModelError::new(what, "must not be blank"));
    }
    if value.chars().count() > max_chars {
        return Err(ModelError::new(what, "is too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(ModelError::new(what, "must not contain control characters"));
    }
    if header_safe && !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(ModelError::new(
            what,
            "must be visible ASCII (it is sent as an HTTP header)",
        ));
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident, $what:literal, $max:literal, $header_safe:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Parses ", $what, ": not blank, at most ", stringify!($max), " characters, no control characters",
                            ".")]
            ///
            /// # Errors
            ///
            /// A value that breaks one of those rules.
            pub fn parse(value: impl Into<String>) -> Result<Self, ModelError> {
                let value = value.into();
                check_text($what, &value, $max, $header_safe)?;
                Ok(Self(value))
            }

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(value).map_err(D::Error::custom)
            }
        }
    };
}

text_id! {
    /// The merchant's order id. Not unique at the gateway: every accepted charge creates a
    /// transaction, so an order may have several (which is why a charge is never retried
    /// blindly). The simulator requires at least 6 characters; that rule is the gateway's, and
    /// a shorter id is answered as a business error.
    OrderId, "order id", 255, false
}

text_id! {
    /// The `X-USER-ID` partition key the gateway scopes every transaction by (a merchant or end
    /// user id; not authentication). Reads with another user id do not see the transaction.
    UserId, "user id", 255, true
}

text_id! {
    /// The gateway's id of one transaction, e.g. `20250816:TR:9577c5`.
    TransactionKey, "transaction key", 255, false
}

text_id! {
    /// The `Idempotency-Key` of one logical charge: the same key goes with every attempt of that
    /// charge, so a gateway that honours it never creates a second transaction. A new charge of
    /// the same order (after a decline, say) needs a new key: see
    /// [`IdempotencyKey::for_attempt`]. At most 255 visible ASCII characters (Stripe's limit;
    /// Toss and the simulator allow 300).
    IdempotencyKey, "idempotency key", 255, true
}

impl IdempotencyKey {
    /// The key of the `attempt`-th payment attempt of `order` (the caller's own attempt count,
    /// persisted before the first call: *not* the client's internal retry number).
    ///
    /// Order ids outside visible ASCII are hex-encoded so the key is always a valid header.
    ///
    /// # Errors
    ///
    /// A key longer than 255 characters (a very long order id).
    pub fn for_attempt(order: &OrderId, attempt: u32) -> Result<Self, ModelError> {
        let id = order.as_str();
        let id = if id.bytes().all(|b| b.is_ascii_graphic()) {
            id.to_owned()
        } else {
            hex::encode(id.as_bytes())
        };
        Self::parse(format!("order-{id}-payment-{attempt}"))
    }
}

// ===== enums with room for the future =====

/// The card issuer. Values the client does not know are kept, not rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CardType {
    /// Samsung Card (`SAMSUNG`).
    Samsung,
    /// KB Kookmin Card (`KB`).
    Kb,
    /// Hyundai Card (`HYUNDAI`).
    Hyundai,
    /// Any other issuer name the gateway uses (forks add `SHINHAN`, `LOTTE`, ...).
    Other(String),
}

impl CardType {
    /// The wire name, e.g. `"SAMSUNG"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Samsung => "SAMSUNG",
            Self::Kb => "KB",
            Self::Hyundai => "HYUNDAI",
            Self::Other(name) => name,
        }
    }

    /// Reads a wire name (case-sensitive, like the gateway).
    pub fn from_wire(name: &str) -> Self {
        match name {
            "SAMSUNG" => Self::Samsung,
            "KB" => Self::Kb,
            "HYUNDAI" => Self::Hyundai,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for CardType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for CardType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CardType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::from_wire(&name))
    }
}

/// The state of a transaction at the gateway.
///
/// `Unknown` keeps a value this client does not know (a new gateway version, or a fault):
/// treat it as "not final", keep the payment pending and alert; never as success.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// Accepted, not processed yet.
    Pending,
    /// Approved: the card was charged.
    Success,
    /// Declined (limit exceeded, invalid card, ...): nothing was charged.
    Failed,
    /// A successful payment that was canceled (cancel extension).
    Canceled,
    /// A value this client does not know, kept verbatim.
    Unknown(String),
}

impl TransactionStatus {
    /// The wire name, e.g. `"PENDING"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Unknown(value) => value,
        }
    }

    /// Reads a wire name (case-sensitive).
    pub fn from_wire(name: &str) -> Self {
        match name {
            "PENDING" => Self::Pending,
            "SUCCESS" => Self::Success,
            "FAILED" => Self::Failed,
            "CANCELED" => Self::Canceled,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// Whether the status is known to be final (SUCCESS, FAILED, CANCELED). `Unknown` is not.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Canceled)
    }

    /// Whether the value is one this client does not know.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }
}

impl fmt::Display for TransactionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for TransactionStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TransactionStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::from_wire(&name))
    }
}

// ===== requests and answers =====

/// One charge: what the merchant asks the gateway to do.
///
/// `Debug` is safe to log: the card number prints masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The merchant's order.
    pub order_id: OrderId,
    /// The card issuer.
    pub card_type: CardType,
    /// The card number (sent in full to the gateway, shown masked everywhere else).
    pub card_number: CardNumber,
    /// The amount; its currency must be the client's configured currency.
    pub amount: Money,
    /// Where the gateway posts the result (the simulator requires its configured prefix).
    pub callback_url: String,
    /// The key sent with every attempt of this charge.
    pub idempotency_key: IdempotencyKey,
}

/// A transaction as the gateway's detail endpoint reports it; the card number is masked on
/// ingest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionDetail {
    /// The gateway's id.
    pub transaction_key: TransactionKey,
    /// The merchant's order.
    pub order_id: OrderId,
    /// The card issuer.
    pub card_type: CardType,
    /// The card number, masked.
    pub card_number: MaskedCardNumber,
    /// The amount, in the client's configured currency.
    pub amount: Money,
    /// The status now.
    pub status: TransactionStatus,
    /// Why the status is what it is (absent while PENDING).
    pub reason: Option<String>,
}

/// One transaction of an order, in the short form of the by-order query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionSummary {
    /// The gateway's id.
    pub transaction_key: TransactionKey,
    /// The status now.
    pub status: TransactionStatus,
    /// Why the status is what it is (absent while PENDING).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Every transaction the gateway holds for one order and user, newest first.
///
/// Empty when the gateway has none. Right after a charge whose answer was lost, "none" is not
/// yet proof that nothing was created: the gateway may still be working on it. Treat it as
/// conclusive only after the gateway's maximum in-flight time (plus its query lag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderTransactions {
    /// The order asked about.
    pub order_id: OrderId,
    /// Its transactions, newest first.
    pub transactions: Vec<TransactionSummary>,
}

impl OrderTransactions {
    /// The transactions that succeeded (more than one means a double charge to refund).
    pub fn successes(&self) -> impl Iterator<Item = &TransactionSummary> {
        self.transactions
            .iter()
            .filter(|t| t.status == TransactionStatus::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAN: &str = "1234-5678-9012-3456";

    #[test]
    fn card_numbers_print_only_the_bin_and_the_last_four() {
        let card = CardNumber::parse(PAN).unwrap();
        assert_eq!(card.to_string(), "1234-56**-****-3456");
        assert_eq!(format!("{card:?}"), "CardNumber(1234-56**-****-3456)");
        assert_eq!(
            serde_json::to_string(&card).unwrap(),
            "\"1234-56**-****-3456\""
        );
        assert_eq!(card.expose_for_gateway(), PAN);
    }

    #[test]
    fn card_number_rules_reject_without_echoing_the_value() {
        for bad in [
            "1234",
            "1234-5678-9012-345a",
            "-1234-5678-9012-3456",
            "1234--5678-9012-3456",
            "12345678901234567890",
        ] {
            let err = CardNumber::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("1234"), "{err}");
        }
        assert!(CardNumber::parse("4000 0000 0000 0002").is_ok());
        assert!(CardNumber::parse("4000000000000002").is_ok());
    }

    #[test]
    fn masking_is_idempotent_and_handles_gateway_masks() {
        let once = mask_pan(PAN);
        assert_eq!(mask_pan(&once), once);
        assert_eq!(mask_pan("40000000****109*"), "400000******109*");
        assert_eq!(mask_pan("1234-5678"), "****-****");
        assert_eq!(MaskedCardNumber::new(PAN).last4().as_deref(), Some("3456"));
    }

    #[test]
    fn redaction_masks_card_numbers_inside_free_text() {
        let text = format!("card {PAN} and 1234567890123456, key 20250816:TR:9577c5, 5000 won");
        let redacted = redact_pans(&text);
        assert_eq!(
            redacted,
            "card 1234-56**-****-3456 and 123456******3456, key 20250816:TR:9577c5, 5000 won"
        );
    }

    #[test]
    fn unknown_statuses_and_card_types_are_kept_not_rejected() {
        let status: TransactionStatus = serde_json::from_str("\"AUTHORIZED\"").unwrap();
        assert_eq!(status, TransactionStatus::Unknown("AUTHORIZED".into()));
        assert!(!status.is_terminal());
        let card: CardType = serde_json::from_str("\"SHINHAN\"").unwrap();
        assert_eq!(card.as_str(), "SHINHAN");
        assert_eq!(
            serde_json::from_str::<TransactionStatus>("\"SUCCESS\"").unwrap(),
            TransactionStatus::Success
        );
    }

    #[test]
    fn money_is_integer_minor_units_and_never_negative() {
        let money = Money::krw(5000).unwrap();
        assert_eq!(money.to_string(), "5000 KRW");
        assert!(Money::krw(-1).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"minorUnits":-5,"currency":"KRW"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"minorUnits":5.5,"currency":"KRW"}"#).is_err());
        assert!(Currency::parse("krw").is_err());
    }

    #[test]
    fn identifiers_are_parsed_once_and_keys_derive_from_the_order() {
        assert!(OrderId::parse("   ").is_err());
        assert!(UserId::parse("user\u{1}").is_err());
        assert!(UserId::parse("사용자").is_err());
        let order = OrderId::parse("주문-000123").unwrap();
        let key = IdempotencyKey::for_attempt(&order, 2).unwrap();
        assert!(key.as_str().is_ascii());
        assert!(key.as_str().ends_with("-payment-2"));
        let order = OrderId::parse("000123").unwrap();
        assert_eq!(
            IdempotencyKey::for_attempt(&order, 1).unwrap().as_str(),
            "order-000123-payment-1"
        );
    }
}
