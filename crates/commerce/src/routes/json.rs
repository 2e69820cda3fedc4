//! [`ApiJson`]: the JSON body extractor of every route, with the service's error messages.
//!
//! The parser's own message is passed on, with its real line and column, and the field it is
//! about (`items[0].quantity: invalid type: string, expected i64 at line 1 column 58`). What
//! the parser quotes from the input is cut out: the value in "invalid type" / "invalid value",
//! the name in "unknown variant" / "unknown field" (a key is input too). An unknown field that
//! looks like a card security code gets its own message: never send a CVV. As a last guard,
//! anything shaped like a card number is masked; other digits are left alone.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_path_to_error::{Path, Segment};

use crate::error::ApiError;

/// A JSON request body of type `T`; its rejection is an [`ApiError`] (400 with the parser's
/// message as described in the module docs, 413 when the body is over the limit).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                "expected Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(request, state).await?;
        parse(&body).map(Self)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON document as `T`, the whole body and nothing after it.
///
/// # Errors
///
/// 400 `INVALID_REQUEST` with a message that places the problem and never quotes the input.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut reader).map_err(|error| {
        let path = error.path().clone();
        message_of(Some(&path), &error.into_inner())
    })?;
    reader.end().map_err(|e| message_of(None, &e))?;
    Ok(value)
}

fn message_of(path: Option<&Path>, error: &serde_json::Error) -> ApiError {
    let message = match (error.classify(), path) {
        (Category::Data, Some(path)) => data_message(path, error),
        (Category::Data, None) => unquoted(&error.to_string()),
        (Category::Syntax | Category::Eof, _) => format!("the body is not valid JSON: {error}"),
        (Category::Io, _) => "unreadable request body".to_owned(),
    };
    ApiError::bad_request("INVALID_REQUEST", pg_client::model::redact_pans(&message))
}

fn data_message(path: &Path, error: &serde_json::Error) -> String {
    let full = error.to_string();
    let position = if error.line() > 0 {
        format!(" at line {} column {}", error.line(), error.column())
    } else {
        String::new()
    };
    let message = full.strip_suffix(&position).unwrap_or(&full);
    let segments: Vec<&Segment> = path.iter().collect();
    let (segments, message) = match message
        .strip_prefix("unknown field `")
        .and_then(quoted_name)
    {
        // The path ends with the unknown key itself: place the error at its parent.
        Some((name, _)) => {
            let parent = &segments[..segments.len().saturating_sub(1)];
            if looks_like_a_cvv(name) {
                return format!(
                    "{}never send a CVV: the card's security code is not needed and must \
                     not be sent{position}",
                    place(parent)
                );
            }
            (parent, unquoted(message))
        }
        None => (&segments[..], unquoted(message)),
    };
    format!("{}{message}{position}", place(segments))
}

/// `items[0].quantity: ` for a path, nothing for the whole body.
fn place(segments: &[&Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    if out.is_empty() {
        out
    } else {
        format!("{out}: ")
    }
}

/// A serde message without the part of the input it quotes.
fn unquoted(message: &str) -> String {
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(kind)
            && let Some((unexpected, expected)) = rest.rsplit_once(", expected ")
        {
            // `integer `5``, `string "abc"`: keep the kind, drop the value.
            let what = unexpected
                .split(['`', '"'])
                .next()
                .unwrap_or_default()
                .trim();
            return format!("{kind}{what}, expected {expected}");
        }
    }
    for kind in ["unknown variant `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(kind) {
            let name = kind.trim_end_matches(" `");
            return match quoted_name(rest) {
                // Our own list of what is expected follows the quoted name.
                Some((_, after)) => format!("{name}, {after}"),
                None => name.to_owned(),
            };
        }
    }
    message.to_owned()
}

/// Splits `name`, expected …` (what follows an opening backtick in serde's unknown variant and
/// field messages) into the quoted name and what serde says after it. The last match wins:
/// the name is input and may contain anything, serde's own text follows it.
fn quoted_name(rest: &str) -> Option<(&str, &str)> {
    let at = ["`, expected ", "`, there are no "]
        .iter()
        .filter_map(|tail| rest.rfind(tail))
        .max()?;
    // Past the backtick, the comma and the space.
    Some((&rest[..at], &rest[at + 3..]))
}

/// Field names that carry a card security code (CVV, CVC, CID, CSC, …) in any spelling.
fn looks_like_a_cvv(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "cvv",
        "cvc",
        "cvn",
        "cvd",
        "securitycode",
        "verificationcode",
        "verificationvalue",
    ]
    .iter()
    .any(|part| name.contains(part))
        || ["cid", "csc", "cav2", "cardcode"].contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        match parse::<T>(body.as_bytes()) {
            Err(ApiError::BadRequest { message, .. }) => message,
            other => panic!("{other:?}"),
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read by the deserializer only
    struct Line {
        quantity: i64,
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        A,
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_kind_but_not_the_value() {
        assert_eq!(
            message::<Vec<Line>>(r#"[{"quantity": "12345678901234"}]"#),
            "[0].quantity: invalid type: string, expected i64 at line 1 column 30"
        );
        assert_eq!(
            message::<Line>(r#"{"quantity": 1.5}"#),
            "quantity: invalid type: floating point, expected i64 at line 1 column 16"
        );
    }

    #[test]
    fn an_unknown_variant_or_field_lists_what_is_expected_but_not_what_was_sent() {
        assert_eq!(
            message::<Line>(r#"{"quantity": 1, "kind": "B`, expected x"}"#),
            "kind: unknown variant, expected `A` at line 1 column 40"
        );
        assert_eq!(
            message::<Line>(r#"{"quantity": 1, "<b>x</b>": 1}"#),
            "unknown field, expected `quantity` or `kind` at line 1 column 26"
        );
    }

    #[test]
    fn a_cvv_by_any_name_is_told_never_to_be_sent() {
        for name in ["cvv", "CVC2", "card_cvv", "securityCode", "cid", "cvn"] {
            let text = message::<Line>(&format!(r#"{{"quantity": 1, "{name}": "987"}}"#));
            assert!(text.starts_with("never send a CVV"), "{name}: {text}");
        }
        assert!(!looks_like_a_cvv("coupon"));
        assert!(!looks_like_a_cvv("cardType"));
    }

    #[test]
    fn syntax_errors_keep_their_real_position() {
        assert_eq!(
            message::<Vec<i64>>("[1,}"),
            "the body is not valid JSON: expected value at line 1 column 4"
        );
        assert_eq!(
            message::<Vec<i64>>("[1] [2]"),
            "the body is not valid JSON: trailing characters at line 1 column 5"
        );
    }
}
