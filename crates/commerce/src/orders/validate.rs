//! Pure checks of an order request, and its fingerprint for the idempotency key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{MAX_IDEMPOTENCY_KEY_LEN, MAX_ITEMS, MAX_QUANTITY, OrderRequest, PlaceError};
use pg_client::model::{CardNumber, CardType};

use crate::domain::PaymentMethod;

/// A validated payment choice.
#[derive(Clone, Debug)]
pub(super) enum Payment {
    Point,
    Card(CardType, CardNumber),
}

/// Checks the key and the request's shape; returns the validated payment.
pub(super) fn validate(
    request: &OrderRequest,
    idempotency_key: Option<&str>,
) -> Result<Payment, PlaceError> {
    if let Some(key) = idempotency_key
        && (key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(PlaceError::invalid(
            "INVALID_IDEMPOTENCY_KEY",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
        ));
    }
    validate_items(request)?;
    let payment = &request.payment;
    match (payment.method, &payment.card_type, &payment.card_no) {
        (PaymentMethod::Point, None, None) => Ok(Payment::Point),
        (PaymentMethod::Point, ..) => Err(PlaceError::invalid(
            "INVALID_REQUEST",
            "payment.cardType and payment.cardNo are only for CARD payments",
        )),
        (PaymentMethod::Card, Some(card_type), Some(card_no)) => Ok(Payment::Card(
            card_type_of(card_type)?,
            card_number_of(card_no)?,
        )),
        (PaymentMethod::Card, ..) => Err(PlaceError::invalid(
            "INVALID_REQUEST",
            "payment.cardType and payment.cardNo are required for a CARD payment",
        )),
    }
}

/// The issuers the PG accepts (pg-client keeps other names as `Other`; the API refuses them).
pub(crate) fn card_type_of(name: &str) -> Result<CardType, PlaceError> {
    match CardType::from_wire(name) {
        CardType::Other(_) => Err(PlaceError::invalid(
            "INVALID_CARD",
            "payment.cardType must be one of SAMSUNG, KB, HYUNDAI",
        )),
        known => Ok(known),
    }
}

/// A card number in the one shape the PG takes, `dddd-dddd-dddd-dddd` (pg-client's
/// `CardNumber` takes any 12–19 digit grouping; the API is stricter). The error never
/// repeats the number.
pub(crate) fn card_number_of(number: &str) -> Result<CardNumber, PlaceError> {
    let shaped = number.len() == 19
        && number.split('-').count() == 4
        && number
            .split('-')
            .all(|group| group.len() == 4 && group.bytes().all(|b| b.is_ascii_digit()));
    let invalid = || {
        PlaceError::invalid(
            "INVALID_CARD",
            "payment.cardNo must be 16 digits in four dash-separated groups (dddd-dddd-dddd-dddd)",
        )
    };
    if !shaped {
        return Err(invalid());
    }
    CardNumber::parse(number).map_err(|_| invalid())
}

fn validate_items(request: &OrderRequest) -> Result<(), PlaceError> {
    if request.items.is_empty() || request.items.len() > MAX_ITEMS {
        return Err(PlaceError::invalid(
            "INVALID_REQUEST",
            format!("items must hold 1 to {MAX_ITEMS} lines"),
        ));
    }
    for (i, item) in request.items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(PlaceError::invalid(
                "INVALID_REQUEST",
                format!("items[{i}].quantity must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if item.product_id.get() <= 0 {
            return Err(PlaceError::invalid(
                "INVALID_REQUEST",
                format!("items[{i}].productId must be positive"),
            ));
        }
        if request.items[..i]
            .iter()
            .any(|o| o.product_id == item.product_id)
        {
            return Err(PlaceError::invalid(
                "INVALID_REQUEST",
                format!("items[{i}].productId repeats an earlier line"),
            ));
        }
    }
    Ok(())
}

/// A fingerprint of the request, to tell a replay from a reuse of the key. It covers the
/// full card number (two cards that mask alike are two requests), so it is an HMAC with a
/// server key: without the key, the stored value does not give the middle digits away to a
/// search of the few million numbers that share a BIN and last four.
pub(super) fn fingerprint(key: &[u8], request: &OrderRequest, payment: &Payment) -> String {
    let payment = match payment {
        Payment::Point => "POINT".to_owned(),
        Payment::Card(card_type, card) => {
            format!("CARD {} {}", card_type.as_str(), card.expose_for_gateway())
        }
    };
    let canonical = serde_json::json!({"items": request.items, "payment": payment});
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(canonical.to_string().as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{ItemRequest, PaymentRequest};

    fn request(
        items: &[(i64, i64)],
        method: PaymentMethod,
        card: Option<(&str, &str)>,
    ) -> OrderRequest {
        OrderRequest {
            items: items
                .iter()
                .map(|&(product_id, quantity)| ItemRequest {
                    product_id: product_id.into(),
                    quantity,
                })
                .collect(),
            payment: PaymentRequest {
                method,
                card_type: card.map(|(t, _)| t.to_owned()),
                card_no: card.map(|(_, n)| n.to_owned()),
            },
        }
    }

    fn code(result: Result<Payment, PlaceError>) -> &'static str {
        match result {
            Err(PlaceError::Invalid { code, .. }) => code,
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn a_repeated_product_line_is_an_invalid_request() {
        let order = request(&[(1, 1), (1, 2)], PaymentMethod::Point, None);
        assert_eq!(code(validate(&order, None)), "INVALID_REQUEST");
    }

    #[test]
    fn a_point_payment_with_card_details_is_an_invalid_request() {
        let order = request(
            &[(1, 1)],
            PaymentMethod::Point,
            Some(("KB", "1234-5678-9012-3456")),
        );
        assert_eq!(code(validate(&order, None)), "INVALID_REQUEST");
    }

    #[test]
    fn an_unknown_card_type_or_a_malformed_number_is_an_invalid_card() {
        let unknown = request(
            &[(1, 1)],
            PaymentMethod::Card,
            Some(("VISA", "1234-5678-9012-3456")),
        );
        assert_eq!(code(validate(&unknown, None)), "INVALID_CARD");
        let malformed = request(
            &[(1, 1)],
            PaymentMethod::Card,
            Some(("KB", "1234567890123456")),
        );
        assert_eq!(code(validate(&malformed, None)), "INVALID_CARD");
    }

    #[test]
    fn a_key_with_a_space_is_an_invalid_idempotency_key() {
        let order = request(&[(1, 1)], PaymentMethod::Point, None);
        assert_eq!(
            code(validate(&order, Some("a key"))),
            "INVALID_IDEMPOTENCY_KEY"
        );
        assert!(matches!(
            validate(&order, Some("a-key")),
            Ok(Payment::Point)
        ));
    }

    #[test]
    fn the_fingerprint_tells_two_cards_that_mask_alike_apart() {
        let a = request(
            &[(1, 1)],
            PaymentMethod::Card,
            Some(("KB", "1234-5611-1111-3456")),
        );
        let b = request(
            &[(1, 1)],
            PaymentMethod::Card,
            Some(("KB", "1234-5622-2222-3456")),
        );
        let (pa, pb) = (validate(&a, None).unwrap(), validate(&b, None).unwrap());
        assert_ne!(fingerprint(b"k", &a, &pa), fingerprint(b"k", &b, &pb));
        assert_eq!(fingerprint(b"k", &a, &pa), fingerprint(b"k", &a, &pa));
    }
}
