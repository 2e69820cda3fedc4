//! Domain types: money, card numbers, statuses and the observations that move a payment.
//!
//! Values that can be invalid have a `parse` constructor and a private field, so an invalid
//! value cannot exist past the edge of the service.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in integer minor units (KRW has no minor unit: 1 = ₩1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    /// An amount in minor units.
    pub const fn new(minor_units: i64) -> Self {
        Self(minor_units)
    }

    /// The amount in minor units.
    pub const fn minor_units(self) -> i64 {
        self.0
    }

    /// `self × quantity`, or `None` on overflow.
    pub fn checked_mul(self, quantity: i64) -> Option<Self> {
        self.0.checked_mul(quantity).map(Self)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }
}

/// A card number, `dddd-dddd-dddd-dddd`.
///
/// Its `Debug` and `Display` print only the BIN (first 6 digits) and the last 4, so it can be
/// logged or put in an error without leaking the PAN (PCI DSS 3.4.1). The full number is
/// reachable only through [`CardNumber::expose_for_gateway`], used solely to call the PG.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// Parses `dddd-dddd-dddd-dddd`.
    ///
    /// # Errors
    ///
    /// Any other shape. The message never repeats the input.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let groups: Vec<&str> = input.split('-').collect();
        let ok = groups.len() == 4
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err("cardNo must be 16 digits in four dash-separated groups (dddd-dddd-dddd-dddd)")
        }
    }

    /// The masked form stored and displayed: `1234-56**-****-3456`.
    pub fn masked(&self) -> String {
        mask_pan(&self.0)
    }

    /// The full number, for the request to the PG and nothing else.
    pub fn expose_for_gateway(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.masked())
    }
}

/// Masks any string that may hold a card number: keeps the first 6 and last 4 digits and
/// replaces the other digits with `*`, keeping separators. Strings with fewer than 10 digits
/// have all their digits masked.
pub fn mask_pan(input: &str) -> String {
    let digits = input.bytes().filter(u8::is_ascii_digit).count();
    let mut seen = 0;
    input
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                let keep = digits >= 10 && (seen <= 6 || seen > digits - 4);
                if keep { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

/// Masks only what is shaped like a card number: a run of 12 to 19 digits, possibly split by
/// single spaces or dashes (BIN and last four kept, as [`mask_pan`]). Other numbers — a line
/// and column, a quantity — are left as they are.
pub fn mask_card_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The longest run of digits with single separators between them.
        let mut end = i;
        let mut j = i;
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                end = j + 1;
                j += 1;
            } else if matches!(chars[j], ' ' | '-')
                && chars.get(j + 1).is_some_and(char::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        let run: String = chars[i..end].iter().collect();
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if (12..=19).contains(&digits) {
            out.push_str(&mask_pan(&run));
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

/// The card issuers the PG accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CardType {
    /// Samsung Card.
    Samsung,
    /// KB Kookmin Card.
    Kb,
    /// Hyundai Card.
    Hyundai,
}

impl CardType {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Samsung => "SAMSUNG",
            Self::Kb => "KB",
            Self::Hyundai => "HYUNDAI",
        }
    }
}

impl FromStr for CardType {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "SAMSUNG" => Ok(Self::Samsung),
            "KB" => Ok(Self::Kb),
            "HYUNDAI" => Ok(Self::Hyundai),
            _ => Err("cardType must be one of SAMSUNG, KB, HYUNDAI"),
        }
    }
}

/// How an order is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PaymentMethod {
    /// With the user's points, synchronously.
    Point,
    /// With a card through the PG, asynchronously.
    Card,
}

impl PaymentMethod {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Point => "POINT",
            Self::Card => "CARD",
        }
    }
}

/// The state of one payment attempt.
///
/// ```text
/// REQUESTED ──accepted──▶ PENDING ──▶ SUCCESS ──(extra charge canceled at the PG)──▶ CANCELED
///     │ └─uncertain─▶ UNKNOWN ──────▶ FAILED
///     └──not reached──▶ FAILED         NEEDS_REVIEW (conflict, or still pending past the deadline)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Stored before the PG is called; the PG may or may not have seen it.
    Requested,
    /// The PG accepted it; its transaction key is known; the result comes later.
    Pending,
    /// The call's outcome is unknown (timeout after sending): the PG may have charged.
    Unknown,
    /// Charged.
    Success,
    /// Not charged.
    Failed,
    /// Conflicting results, or still unresolved past the deadline: a person decides.
    NeedsReview,
    /// An extra successful charge that was reversed at the PG.
    Canceled,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [Self; 7] = [
        Self::Requested,
        Self::Pending,
        Self::Unknown,
        Self::Success,
        Self::Failed,
        Self::NeedsReview,
        Self::Canceled,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::Pending => "PENDING",
            Self::Unknown => "UNKNOWN",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::NeedsReview => "NEEDS_REVIEW",
            Self::Canceled => "CANCELED",
        }
    }

    /// Whether the payment still waits for the PG's verdict.
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::Pending | Self::Unknown)
    }
}

impl FromStr for PaymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown payment status {s:?}"))
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The state of an order, derived from its payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Stock reserved; waiting for the card payment.
    PaymentPending,
    /// Paid (some attempt succeeded).
    Paid,
    /// Not paid; stock released.
    Failed,
    /// A person must look at it (conflicting PG results, or unresolved past the deadline).
    NeedsReview,
}

impl OrderStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PaymentPending => "PAYMENT_PENDING",
            Self::Paid => "PAID",
            Self::Failed => "FAILED",
            Self::NeedsReview => "NEEDS_REVIEW",
        }
    }
}

impl FromStr for OrderStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::PaymentPending,
            Self::Paid,
            Self::Failed,
            Self::NeedsReview,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| format!("unknown order status {s:?}"))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who reported an observation; stored with every transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The order request's own call to the PG.
    Request,
    /// A PG callback (after re-querying the PG).
    Callback,
    /// The recovery job.
    Recovery,
    /// An operator through the admin API.
    Admin,
}

impl Source {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Callback => "callback",
            Self::Recovery => "recovery",
            Self::Admin => "admin",
        }
    }
}

/// The PG's word on one of its transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PgStatus {
    /// Not processed yet.
    Pending,
    /// Approved.
    Success,
    /// Declined.
    Failed,
    /// A success reversed by a cancel.
    Canceled,
}

/// Something learned about a payment, from any source. [`crate::payments::PaymentService::apply`]
/// turns observations into transitions; it is the only way a payment's status changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The PG accepted the charge and named its transaction.
    Accepted {
        /// The PG's transaction key.
        transaction_key: String,
    },
    /// The charge provably did not reach the PG (refused, breaker open, throttled, …).
    NotReached {
        /// Why, for the history.
        reason: String,
    },
    /// The charge may have reached the PG; its outcome is unknown.
    Uncertain {
        /// Why, for the history.
        reason: String,
    },
    /// The PG declined the request itself (a 4xx): nothing was created.
    Rejected {
        /// The PG's message.
        reason: String,
    },
    /// The PG's authoritative state of a transaction (from a query, never a callback body).
    Pg {
        /// The PG's transaction key.
        transaction_key: String,
        /// Its state.
        status: PgStatus,
        /// Its reason, if terminal.
        reason: Option<String>,
    },
    /// The PG has no transaction for this payment, and the grace period is over.
    NotFoundAtPg,
    /// Still unresolved past the recovery deadline.
    DeadlinePassed,
    /// An operator sets the outcome.
    Manual {
        /// The status to set (SUCCESS, FAILED or CANCELED).
        status: PaymentStatus,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_prints_only_its_bin_and_last_four() {
        let card = CardNumber::parse("1234-5678-9012-3456").unwrap();
        assert_eq!(card.masked(), "1234-56**-****-3456");
        assert_eq!(format!("{card}"), "1234-56**-****-3456");
        assert_eq!(format!("{card:?}"), "CardNumber(1234-56**-****-3456)");
        assert_eq!(card.expose_for_gateway(), "1234-5678-9012-3456");
    }

    #[test]
    fn malformed_card_numbers_are_rejected_without_echoing_them() {
        for bad in [
            "9999888877776666",
            "9999-8888-7777-666",
            "abcd-8888-7777-6666",
            "",
        ] {
            let err = CardNumber::parse(bad).unwrap_err();
            assert!(!err.contains(bad) || bad.is_empty());
        }
    }

    #[test]
    fn masking_a_short_string_hides_every_digit() {
        assert_eq!(mask_pan("12-34"), "**-**");
        assert_eq!(mask_pan("no digits"), "no digits");
    }

    #[test]
    fn only_card_shaped_numbers_are_masked_in_free_text() {
        assert_eq!(
            mask_card_numbers("got 4111 1111 1111 1111 at line 1 column 80"),
            "got 4111 11** **** 1111 at line 1 column 80"
        );
        assert_eq!(
            mask_card_numbers("cardNo 4111-1111-1111-1111, quantity 1000, id 12345678901"),
            "cardNo 4111-11**-****-1111, quantity 1000, id 12345678901"
        );
        assert_eq!(mask_card_numbers("expected i64"), "expected i64");
    }

    #[test]
    fn statuses_round_trip_through_their_stored_names() {
        for s in PaymentStatus::ALL {
            assert_eq!(s.as_str().parse::<PaymentStatus>().unwrap(), s);
        }
        assert_eq!(
            "PAYMENT_PENDING".parse::<OrderStatus>().unwrap(),
            OrderStatus::PaymentPending
        );
    }
}
