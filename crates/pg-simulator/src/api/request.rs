//! Binding and validation of the payment request, reproducing the canonical (Jackson + Kotlin)
//! behaviour and messages:
//!
//! 1. the body must be a JSON object, else the generic "JSON 메세지 규격" message;
//! 2. fields are read in document order and the first type error wins (enum errors list the
//!    allowed values; numbers and booleans are accepted as strings; numeric strings are
//!    accepted as `amount`; an empty string is null for `cardType` and 0 for `amount`);
//!    unknown fields are ignored;
//! 3. then the first missing (absent or null) field in declaration order;
//! 4. then the rules: orderId, cardNo, amount, callbackUrl, in that order.
//!
//! Two rules go beyond the canonical validation, where the canonical PG would fail later:
//! `orderId` and `callbackUrl` are at most [`MAX_STORED_CHARS`] characters (its `VARCHAR(255)`
//! columns), and `callbackUrl` is parsed and matched by scheme, host and port, never with
//! `user:password@` in it (a prefix check let `http://localhost:8080@other-host/` through).

use std::fmt;

use reqwest::Url;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::{Number, Value};

use crate::config::CallbackConfig;
use crate::model::{CardType, messages};

/// The longest `orderId`, `callbackUrl` and `X-USER-ID`, in characters: the canonical PG
/// stores them in `VARCHAR(255)` columns (JPA's default length), which cannot hold more.
pub(crate) const MAX_STORED_CHARS: usize = 255;

/// A validated payment request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PaymentRequest {
    pub(crate) order_id: String,
    pub(crate) card_type: CardType,
    pub(crate) card_no: String,
    pub(crate) amount: i64,
    pub(crate) callback_url: String,
}

impl PaymentRequest {
    /// What two requests must share to be "the same" for idempotency: a SHA-256 (hex) of
    /// every field, so neither the key store nor the ledger file keeps the card number twice.
    pub(crate) fn fingerprint(&self) -> String {
        use sha2::Digest;
        let joined = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.order_id, self.card_type, self.card_no, self.amount, self.callback_url
        );
        hex::encode(sha2::Sha256::digest(joined.as_bytes()))
    }
}

/// A JSON object with its entries in document order.
struct OrderedObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    entries.push((k, v));
                }
                Ok(OrderedObject(entries))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[derive(Default)]
struct Partial {
    order_id: Option<String>,
    card_type: Option<CardType>,
    card_no: Option<String>,
    amount: Option<i64>,
    callback_url: Option<String>,
}

/// Binds and validates; the error is the exact 400 message.
pub(crate) fn bind(body: &[u8], callback: &CallbackConfig) -> Result<PaymentRequest, String> {
    let OrderedObject(entries) =
        serde_json::from_slice(body).map_err(|_| messages::UNREADABLE_BODY.to_owned())?;
    let mut p = Partial::default();
    for (name, value) in entries {
        match name.as_str() {
            "orderId" => p.order_id = text("orderId", value)?,
            "cardType" => p.card_type = card_type(value)?,
            "cardNo" => p.card_no = text("cardNo", value)?,
            "amount" => p.amount = amount(value)?,
            "callbackUrl" => p.callback_url = text("callbackUrl", value)?,
            _ => {}
        }
    }
    let missing = messages::missing_field;
    let order_id = p.order_id.ok_or_else(|| missing("orderId"))?;
    let card_type = p.card_type.ok_or_else(|| missing("cardType"))?;
    let card_no = p.card_no.ok_or_else(|| missing("cardNo"))?;
    let amount = p.amount.ok_or_else(|| missing("amount"))?;
    let callback_url = p.callback_url.ok_or_else(|| missing("callbackUrl"))?;

    if order_id.trim().is_empty() || order_id.encode_utf16().count() < 6 {
        return Err(messages::INVALID_ORDER_ID.to_owned());
    }
    if order_id.chars().count() > MAX_STORED_CHARS {
        return Err(messages::ORDER_ID_TOO_LONG.to_owned());
    }
    if !is_card_number(&card_no) {
        return Err(messages::INVALID_CARD_NO.to_owned());
    }
    if amount <= 0 {
        return Err(messages::INVALID_AMOUNT.to_owned());
    }
    check_callback_url(&callback_url, callback)?;
    Ok(PaymentRequest {
        order_id,
        card_type,
        card_no,
        amount,
        callback_url,
    })
}

/// String fields: scalars are coerced to text, null is absent, containers are a binding error.
fn text(field: &str, value: Value) -> Result<Option<String>, String> {
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        Value::Array(_) | Value::Object(_) => Err(messages::missing_field(field)),
    }
}

fn card_type(value: Value) -> Result<Option<CardType>, String> {
    let allowed = CardType::ALL.map(CardType::as_str).join(", ");
    let mismatch = |v: &str| messages::type_mismatch("cardType", v, "CardTypeDto", Some(&allowed));
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| mismatch(&s)),
        // Jackson reads an integer as the enum's index.
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| CardType::ALL.get(i).copied())
            .map(Some)
            .ok_or_else(|| mismatch(&n.to_string())),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err(messages::missing_field("cardType"))
        }
    }
}

fn amount(value: Value) -> Result<Option<i64>, String> {
    let mismatch = |v: &str| messages::type_mismatch("amount", v, "long", None);
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => number_to_long(&n)
            .map(Some)
            .ok_or_else(|| mismatch(&n.to_string())),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(Some(0));
            }
            t.parse::<i64>().map(Some).map_err(|_| mismatch(&s))
        }
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err(messages::missing_field("amount"))
        }
    }
}

/// Integers as they are; fractions truncated like Jackson's `ACCEPT_FLOAT_AS_INT`.
fn number_to_long(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let in_range = f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64;
    #[allow(clippy::cast_possible_truncation)]
    in_range.then(|| f.trunc() as i64)
}

/// `^\d{4}-\d{4}-\d{4}-\d{4}$` with ASCII digits, like Java's `\d`.
fn is_card_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| {
            if i % 5 == 4 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// The callback URL must fit the canonical column, carry no userinfo (reqwest would turn it
/// into a Basic auth header), and point at the allowed scheme, host and port (or, when
/// allowed, at any loopback host over plain HTTP).
fn check_callback_url(url: &str, callback: &CallbackConfig) -> Result<(), String> {
    if url.chars().count() > MAX_STORED_CHARS {
        return Err(messages::CALLBACK_URL_TOO_LONG.to_owned());
    }
    let not_allowed = || messages::invalid_callback_url(&callback.url_prefix);
    let parsed = Url::parse(url).map_err(|_| not_allowed())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(messages::CALLBACK_URL_USERINFO.to_owned());
    }
    let allowed = Url::parse(&callback.url_prefix).is_ok_and(|prefix| within(&parsed, &prefix))
        || (callback.allow_any_loopback && is_loopback_http(&parsed));
    if allowed { Ok(()) } else { Err(not_allowed()) }
}

/// Same scheme, host and port as `prefix`, and a path under the prefix's path, segment-wise.
fn within(url: &Url, prefix: &Url) -> bool {
    if url.scheme() != prefix.scheme()
        || url.host() != prefix.host()
        || url.port_or_known_default() != prefix.port_or_known_default()
    {
        return false;
    }
    let base = prefix.path().trim_end_matches('/');
    let path = url.path();
    base.is_empty() || path == base || path.starts_with(&format!("{base}/"))
}

fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && url.host_str().is_some_and(|h| {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb() -> CallbackConfig {
        CallbackConfig::default()
    }

    fn body(json: &str) -> Result<PaymentRequest, String> {
        bind(json.as_bytes(), &cb())
    }

    const OK: &str = r#"{"orderId":"000123","cardType":"SAMSUNG","cardNo":"1234-5678-9012-3456","amount":5000,"callbackUrl":"http://localhost:8080/cb"}"#;

    #[test]
    fn a_valid_body_binds() {
        let r = body(OK).unwrap();
        assert_eq!(r.amount, 5000);
        assert_eq!(r.card_type, CardType::Samsung);
    }

    #[test]
    fn the_first_type_error_in_document_order_wins_over_missing_fields() {
        let e = body(r#"{"amount":"abc","cardType":"VISA"}"#).unwrap_err();
        assert_eq!(e, messages::type_mismatch("amount", "abc", "long", None));
        let e = body(r#"{"cardType":"VISA","amount":"abc"}"#).unwrap_err();
        assert_eq!(
            e,
            "필드 'cardType'의 값 'VISA'이(가) 예상 타입(CardTypeDto)과 일치하지 않습니다. 사용 가능한 값 : [SAMSUNG, KB, HYUNDAI]"
        );
    }

    #[test]
    fn missing_fields_are_reported_in_declaration_order() {
        assert_eq!(body("{}").unwrap_err(), messages::missing_field("orderId"));
        assert_eq!(
            body(r#"{"orderId":"000123","cardType":""}"#).unwrap_err(),
            messages::missing_field("cardType")
        );
        assert_eq!(
            body(r#"{"orderId":"000123","cardType":"KB","cardNo":null}"#).unwrap_err(),
            messages::missing_field("cardNo")
        );
    }

    #[test]
    fn coercions_follow_jackson() {
        let r = body(
            &OK.replace("5000", "\"5000\"")
                .replace("\"000123\"", "123456"),
        )
        .unwrap();
        assert_eq!((r.amount, r.order_id.as_str()), (5000, "123456"));
        let r = body(&OK.replace("\"SAMSUNG\"", "2")).unwrap();
        assert_eq!(r.card_type, CardType::Hyundai);
        assert_eq!(
            body(&OK.replace("5000", "\"\"")).unwrap_err(),
            messages::INVALID_AMOUNT
        );
    }

    #[test]
    fn rules_are_checked_in_canonical_order() {
        let all_bad = r#"{"orderId":"123","cardType":"KB","cardNo":"1234","amount":0,"callbackUrl":"http://evil"}"#;
        assert_eq!(body(all_bad).unwrap_err(), messages::INVALID_ORDER_ID);
        assert_eq!(
            body(&OK.replace("1234-5678-9012-3456", "1234567890123456")).unwrap_err(),
            messages::INVALID_CARD_NO
        );
        assert_eq!(
            body(&OK.replace("5000", "-1")).unwrap_err(),
            messages::INVALID_AMOUNT
        );
        assert_eq!(
            body(&OK.replace("http://localhost:8080/cb", "http://127.0.0.1:9/cb")).unwrap_err(),
            "콜백 URL 은 http://localhost:8080 로 시작해야 합니다."
        );
        assert_eq!(
            body(&OK.replace("\"000123\"", "\"      \"")).unwrap_err(),
            messages::INVALID_ORDER_ID
        );
    }

    #[test]
    fn any_loopback_callback_can_be_allowed() {
        let mut c = cb();
        c.allow_any_loopback = true;
        let json = OK.replace("http://localhost:8080/cb", "http://127.0.0.1:4567/cb");
        assert!(bind(json.as_bytes(), &c).is_ok());
        let json = OK.replace("http://localhost:8080/cb", "http://10.0.0.1:4567/cb");
        assert!(bind(json.as_bytes(), &c).is_err());
    }

    #[test]
    fn a_prefix_with_a_path_allows_that_path_and_below_only() {
        let mut c = cb();
        c.url_prefix = "http://localhost:8080/api".into();
        for (url, ok) in [
            ("http://localhost:8080/api", true),
            ("http://localhost:8080/api/cb", true),
            ("http://localhost:8080/apix/cb", false),
            ("http://localhost:8080/", false),
        ] {
            let json = OK.replace("http://localhost:8080/cb", url);
            assert_eq!(bind(json.as_bytes(), &c).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn garbage_is_the_generic_json_message() {
        for bad in ["", "{", "[]", "\"x\"", "{\"orderId\":}"] {
            assert_eq!(body(bad).unwrap_err(), messages::UNREADABLE_BODY, "{bad}");
        }
    }
}
