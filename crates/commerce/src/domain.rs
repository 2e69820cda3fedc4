//! Domain types: money, statuses and the observations that move a payment.
//!
//! The payment vocabulary shared with the PG (card numbers, card types, masking) is
//! `pg_client::model`'s: one `CardNumber` that prints only its BIN and last four, one
//! `mask_pan`, one `redact_pans` for free text, in the service as in the client.

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

/// Declares a row id: an `i64` the database assigns, typed so that one kind of id cannot be
/// passed where another is expected. It is stored and bound as the plain integer (sqlx
/// `transparent`, so it binds and decodes on the `Any` driver like `i64`) and serialised as
/// the plain number, so the JSON stays `"orderId": 42`.
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id with this number.
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            /// The number, as stored.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

row_id!(
    /// An order's id (`orders.id`); the PG sees it as the order reference `ORD-000042`.
    OrderId
);
row_id!(
    /// A payment attempt's id (`payments.id`).
    PaymentId
);
row_id!(
    /// A user's id (`users.id`; the `X-USER-ID` header).
    UserId
);
row_id!(
    /// A product's id (`products.id`).
    ProductId
);

#[cfg(test)]
mod tests {
    use super::*;

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
