//! Card numbers: the full number that cannot be printed ([`CardNumber`]), the masked one a
//! gateway reports ([`MaskedCardNumber`]), and the masking every service shares
//! ([`mask_pan`], [`redact_pans`]).

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ModelError;

/// Whether a character stands for one digit position of a card number (a digit or a mask
/// character a gateway may have used).
fn is_digit_position(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | 'x' | 'X' | '#' | '•')
}

/// Masks a card number for display: every digit except the first 6 (the BIN) and the last 4 is
/// replaced by `*`; separators are kept. `1234-5678-9012-3456` becomes `1234-56**-****-3456`
/// (PCI DSS 3.4.1: at most BIN + last 4). Numbers of 10 digit positions or fewer are masked
/// completely, since BIN + last 4 would show all of them. Mask characters already present
/// count as digit positions, so masking a masked number changes nothing.
pub fn mask_pan(pan: &str) -> String {
    let positions = pan.chars().filter(|c| is_digit_position(*c)).count();
    let mut seen = 0;
    pan.chars()
        .map(|c| {
            if !is_digit_position(c) {
                return c;
            }
            seen += 1;
            let keep = positions > 10 && (seen <= 6 || seen > positions - 4);
            if keep && c.is_ascii_digit() { c } else { '*' }
        })
        .collect()
}

/// Replaces every run of 12–19 digits (single `-` or space separators allowed inside) in
/// `text` by its masked form ([`mask_pan`]); other numbers (a quantity, a line and column)
/// are left as they are. Used on every gateway message this client keeps, so that a gateway
/// echoing a card number in an error text cannot put it into a log, and by services on any
/// free text that may hold one (a JSON parse error quoting the request body).
///
/// ```
/// use pg_client::model::redact_pans;
///
/// assert_eq!(
///     redact_pans("cardNo 4111-1111-1111-1111, quantity 1000"),
///     "cardNo 4111-11**-****-1111, quantity 1000"
/// );
/// ```
pub fn redact_pans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // Extend over digits and single separators followed by a digit.
        let start = i;
        let mut end = i;
        let mut digits = 0;
        while end < chars.len() {
            if chars[end].is_ascii_digit() {
                digits += 1;
                end += 1;
            } else if matches!(chars[end], '-' | ' ')
                && chars.get(end + 1).is_some_and(char::is_ascii_digit)
            {
                end += 1;
            } else {
                break;
            }
        }
        let run: String = chars[start..end].iter().collect();
        if (12..=19).contains(&digits) {
            out.push_str(&mask_pan(&run));
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

/// A full card number (PAN), as the merchant sends it: 12–19 digits, optionally grouped with
/// `-` or spaces (the simulator wants `xxxx-xxxx-xxxx-xxxx`; it is sent as given).
///
/// `Debug`, `Display` and `Serialize` show only the BIN and the last 4
/// (`1234-56**-****-3456`), so the number cannot reach a log, an error text or a JSON document
/// by accident. The full number is reachable only through
/// [`expose_for_gateway`](Self::expose_for_gateway).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

impl CardNumber {
    /// Parses a card number: 12–19 digits, with optional single `-` or space separators
    /// between digits. No Luhn check (the gateway decides what it accepts).
    ///
    /// # Errors
    ///
    /// Any other character, a separator at either end or doubled, or a digit count outside
    /// 12–19. The error never contains the number.
    pub fn parse(number: impl Into<String>) -> Result<Self, ModelError> {
        let number = number.into();
        let mut digits = 0;
        let mut previous_was_digit = false;
        for c in number.chars() {
            if c.is_ascii_digit() {
                digits += 1;
                previous_was_digit = true;
            } else if matches!(c, '-' | ' ') && previous_was_digit {
                previous_was_digit = false;
            } else {
                return Err(ModelError::new(
                    "card number",
                    "must be digits with single '-' or ' ' separators between them",
                ));
            }
        }
        if !previous_was_digit {
            return Err(ModelError::new(
                "card number",
                "must start and end with a digit",
            ));
        }
        if !(12..=19).contains(&digits) {
            return Err(ModelError::new("card number", "must have 12 to 19 digits"));
        }
        Ok(Self(number))
    }

    /// The full number, exactly as parsed. **For building the gateway request only**: never
    /// log it, store it or put it in an error. The client calls this in one place, when it
    /// serialises the charge body.
    pub fn expose_for_gateway(&self) -> &str {
        &self.0
    }

    /// The masked form, e.g. `1234-56**-****-3456`.
    pub fn masked(&self) -> MaskedCardNumber {
        MaskedCardNumber(mask_pan(&self.0))
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", mask_pan(&self.0))
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&mask_pan(&self.0))
    }
}

impl Serialize for CardNumber {
    /// Serialises the **masked** form: a `CardNumber` inside a logged or stored document
    /// stays masked. The gateway request is built from
    /// [`expose_for_gateway`](CardNumber::expose_for_gateway) instead.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&mask_pan(&self.0))
    }
}

impl<'de> Deserialize<'de> for CardNumber {
    /// Parses with [`CardNumber::parse`] (for a service reading its own API's requests).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = String::deserialize(deserializer)?;
        Self::parse(number).map_err(D::Error::custom)
    }
}

/// A card number as the gateway reported it (in a transaction detail or a callback), masked on
/// ingest: only the BIN and the last 4 digits are ever kept in memory past parsing. The
/// canonical gateway echoes the full number; this type makes sure it goes no further.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MaskedCardNumber(String);

impl MaskedCardNumber {
    /// Masks `number` (full or already masked) with [`mask_pan`].
    pub fn new(number: &str) -> Self {
        Self(mask_pan(number))
    }

    /// The masked text, e.g. `1234-56**-****-3456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, when the number is long enough to show them.
    pub fn last4(&self) -> Option<String> {
        let digits: Vec<char> = self.0.chars().filter(|c| is_digit_position(*c)).collect();
        let tail = digits.get(digits.len().checked_sub(4)?..)?;
        tail.iter()
            .all(char::is_ascii_digit)
            .then(|| tail.iter().collect())
    }
}

impl fmt::Debug for MaskedCardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedCardNumber({})", self.0)
    }
}

impl fmt::Display for MaskedCardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl<'de> Deserialize<'de> for MaskedCardNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = String::deserialize(deserializer)?;
        Ok(Self::new(&number))
    }
}
