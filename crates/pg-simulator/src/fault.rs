//! The fault catalogue, how a request names faults, and the bounded log of injected faults.
//!
//! A fault is either rolled from a seeded probability (`faults.rates` for payment requests,
//! `faults.query_rates` for queries) or forced for one request by the `X-Sim-Fault` header
//! (`X-Sim-Fault: charge-but-timeout, delay-callback=250`) or by a magic card number
//! (`4000-0000-0000-NNNN`, see [`Fault::magic_card`]). Every injection is recorded in the
//! [`FaultLog`] so a test can assert what happened, not guess it.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Name of the header that forces faults for one request.
pub const FAULT_HEADER: &str = "x-sim-fault";

/// The prefix of every magic card number; the last group selects the fault.
pub const MAGIC_CARD_PREFIX: &str = "4000-0000-0000-";

macro_rules! faults {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $scope:ident, $code:expr; )*) => {
        /// One injectable gateway fault (the PG-side items of the F1–F21 list).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Fault {
            $( $(#[$doc])* $variant, )*
        }

        impl Fault {
            /// Every fault, in catalogue order (also the order in which rates are rolled).
            pub const ALL: &'static [Fault] = &[$(Fault::$variant),*];

            /// The kebab-case name used in headers, config and the fault log.
            pub const fn as_str(self) -> &'static str {
                match self { $(Fault::$variant => $name,)* }
            }

            /// Which requests the fault applies to.
            pub const fn scope(self) -> Scope {
                match self { $(Fault::$variant => Scope::$scope,)* }
            }

            /// The magic card number that forces this fault on a payment request, if any.
            pub fn magic_card(self) -> Option<String> {
                let code: Option<u16> = match self { $(Fault::$variant => $code,)* };
                code.map(|c| format!("{MAGIC_CARD_PREFIX}{c:04}"))
            }
        }
    };
}

faults! {
    /// F1/F2: close the connection without answering, before anything is created.
    Reset = "reset", Any, Some(505);
    /// F2: accept the request and never answer (until shutdown).
    BlackHole = "black-hole", Any, Some(504);
    /// F3: replace the latency with a draw from `faults.slow_latency` (or `slow=<ms>`).
    Slow = "slow", Any, Some(507);
    /// F7: 429 with `Retry-After`, nothing created.
    Throttle = "throttle", Any, Some(429);
    /// F7: 503 with `Retry-After`, nothing created.
    Unavailable = "unavailable", Any, Some(503);
    /// F8: a proxy's HTML 502 page, nothing created.
    Html502 = "html-502", Any, Some(502);
    /// F8: the JSON body cut in half (after the transaction was created, for payments).
    TruncatedJson = "truncated-json", Any, Some(520);
    /// F8: `{"meta":{"result":"SUCCESS"}}` without `data` (after create, for payments).
    MissingData = "missing-data", Any, Some(521);
    /// F8: `status` replaced by the unknown value `AUTHORIZED` (after create, for payments).
    UnknownStatus = "unknown-status", Any, Some(522);
    /// F8: extra unknown fields in `meta` and `data`.
    ExtraFields = "extra-fields", Any, Some(523);
    /// F4: 500 with the canonical "unstable" message before anything is created.
    ErrorBeforeCreate = "error-before-create", Payment, Some(500);
    /// F5: create the transaction, then answer 500.
    ErrorAfterCreate = "error-after-create", Payment, Some(501);
    /// F6: create the transaction, then close the connection without answering.
    ResetAfterCreate = "reset-after-create", Payment, Some(506);
    /// F6: create the transaction, then hold the answer for `faults.charge_but_timeout_delay`.
    ChargeButTimeout = "charge-but-timeout", Payment, Some(408);
    /// F21: the first generated key is the newest existing key; the simulator must regenerate.
    KeyCollision = "key-collision", Payment, Some(530);
    /// F19: an outage of one card type (`faults.card_outages`): 500 before create.
    CardOutage = "card-outage", Payment, None;
    /// Force the outcome SUCCESS.
    Approve = "approve", Transaction, Some(1);
    /// Force the outcome FAILED, limit exceeded.
    LimitExceeded = "limit-exceeded", Transaction, Some(3);
    /// Force the outcome FAILED, invalid card.
    InvalidCard = "invalid-card", Transaction, Some(2);
    /// F17: the transaction stays PENDING for ever (until force-completed).
    Stuck = "stuck", Transaction, Some(4);
    /// F9: no callback is sent.
    DropCallback = "drop-callback", Transaction, Some(10);
    /// F10: the callback is sent `faults.callback_delay` late.
    DelayCallback = "delay-callback", Transaction, Some(11);
    /// F11: the callback is sent `faults.duplicate_callback_copies` times, concurrently.
    DuplicateCallback = "duplicate-callback", Transaction, Some(12);
    /// F12: the callback is held until a later transaction of the same order has called back
    /// (or `faults.reorder_hold` passed).
    ReorderCallback = "reorder-callback", Transaction, Some(13);
    /// F12: after the real callback, a second one with the opposite terminal status.
    ConflictingCallback = "conflicting-callback", Transaction, Some(14);
    /// F12: after the real callback, a stale one with status PENDING.
    PendingCallback = "pending-callback", Transaction, Some(15);
    /// F20: the callback signature timestamp is off by `faults.signature_skew_secs`.
    SignatureSkew = "signature-skew", Transaction, Some(16);
    /// F16: queries answer 404 for `faults.query_lag` after creation (per request on a GET: 404).
    QueryLag = "query-lag", Transaction, Some(20);
    /// F16: queries report PENDING for `faults.stale_pending` after completion (per request on
    /// a GET: PENDING now).
    StalePending = "stale-pending", Transaction, Some(21);
    /// F16: the query answers 500.
    QueryError = "query-error", Query, None;
    /// F1: the listener is closed (connection refused); a state, set by `go_down`.
    Down = "down", State, None;
    /// F2: every connection is accepted and never answered; a state, set by `set_black_hole`.
    BlackHoleMode = "black-hole-mode", State, None;
}

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Payment requests and queries.
    Any,
    /// Payment requests (`POST /api/v1/payments`) only.
    Payment,
    /// Decided when the payment is created and carried by the transaction.
    Transaction,
    /// Queries (`GET /api/v1/payments/...`) only.
    Query,
    /// A gateway-wide state toggled through the handle or the control plane.
    State,
}

impl Fault {
    /// Whether the fault may be set on a payment request (header, magic card or `faults.rates`).
    pub const fn applies_to_payments(self) -> bool {
        matches!(
            self.scope(),
            Scope::Any | Scope::Payment | Scope::Transaction
        )
    }

    /// Whether the fault may be set on a query (header or `faults.query_rates`).
    pub fn applies_to_queries(self) -> bool {
        matches!(self.scope(), Scope::Any | Scope::Query)
            || matches!(self, Self::QueryLag | Self::StalePending)
    }

    /// The fault a magic card number forces, if the number is one.
    pub fn from_magic_card(card_no: &str) -> Option<Self> {
        if !card_no.starts_with(MAGIC_CARD_PREFIX) {
            return None;
        }
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.magic_card().as_deref() == Some(card_no))
    }

    const fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

impl Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A string that names no fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFault(String);

impl fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault `{}`", self.0)
    }
}

impl std::error::Error for UnknownFault {}

/// How a fault came to be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Named in the `X-Sim-Fault` header.
    Header,
    /// Selected by a magic card number.
    MagicCard,
    /// Rolled from a configured probability (`faults.rates`, `faults.query_rates`,
    /// `faults.card_outages`).
    Rate,
    /// The canonical pre-create failure rate (`request.fail_rate`, 40 % by default).
    FailRate,
    /// Set through the handle or the control plane.
    Control,
}

/// One fault active for a request, with its optional parameter (milliseconds for delays,
/// a count for `duplicate-callback`, seconds for `throttle`/`unavailable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// The fault.
    pub fault: Fault,
    /// Why it is active.
    pub trigger: Trigger,
    /// The `=<value>` given in the header, if any.
    pub param: Option<u64>,
}

/// The faults active for one request or transaction, at most one entry per fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActiveFaults {
    bits: u64,
    items: Vec<ActiveFault>,
}

impl ActiveFaults {
    /// No faults.
    pub const fn new() -> Self {
        Self {
            bits: 0,
            items: Vec::new(),
        }
    }

    /// Adds a fault unless it is already active (the first trigger wins).
    pub fn insert(&mut self, fault: Fault, trigger: Trigger, param: Option<u64>) {
        if self.bits & fault.bit() == 0 {
            self.bits |= fault.bit();
            self.items.push(ActiveFault {
                fault,
                trigger,
                param,
            });
        }
    }

    /// Whether `fault` is active.
    pub const fn contains(&self, fault: Fault) -> bool {
        self.bits & fault.bit() != 0
    }

    /// The entry of `fault`, if active.
    pub fn get(&self, fault: Fault) -> Option<&ActiveFault> {
        if self.contains(fault) {
            self.items.iter().find(|a| a.fault == fault)
        } else {
            None
        }
    }

    /// The header parameter of `fault`, if active and given.
    pub fn param(&self, fault: Fault) -> Option<u64> {
        self.get(fault).and_then(|a| a.param)
    }

    /// Every active fault, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &ActiveFault> {
        self.items.iter()
    }

    /// Whether no fault is active.
    pub const fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// Only the faults that travel with the created transaction.
    pub fn transaction_part(&self) -> Self {
        let mut out = Self::new();
        for a in self
            .items
            .iter()
            .filter(|a| a.fault.scope() == Scope::Transaction)
        {
            out.insert(a.fault, a.trigger, a.param);
        }
        out
    }

    /// The names of the active faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.items.iter().map(|a| a.fault).collect()
    }
}

/// The faults a request forced through its header: the parsed `X-Sim-Fault` value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFaults {
    /// The named faults with their parameters.
    pub faults: Vec<(Fault, Option<u64>)>,
    /// `none` was given: no probabilistic fault and no canonical fail-rate roll for this request.
    pub suppress_random: bool,
}

/// Parses one `X-Sim-Fault` value: comma-separated `name` or `name=<unsigned integer>` items;
/// `none` suppresses every random failure for the request.
///
/// # Errors
///
/// Returns the offending item when it names no fault or its parameter is not an integer.
pub fn parse_fault_header(value: &str, into: &mut HeaderFaults) -> Result<(), String> {
    for raw in value.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            continue;
        }
        if item.eq_ignore_ascii_case("none") {
            into.suppress_random = true;
            continue;
        }
        let (name, param) = match item.split_once('=') {
            Some((n, p)) => {
                let p = p.trim();
                let p = p.strip_suffix("ms").unwrap_or(p);
                let parsed = p.parse::<u64>().map_err(|_| item.to_owned())?;
                (n.trim(), Some(parsed))
            }
            None => (item, None),
        };
        let fault = name
            .to_ascii_lowercase()
            .parse::<Fault>()
            .map_err(|_| item.to_owned())?;
        into.faults.push((fault, param));
    }
    Ok(())
}

/// One entry of the fault log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRecord {
    /// Position in the log since start (never reused, survives truncation).
    pub seq: u64,
    /// Wall-clock time of the injection, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The injected fault.
    pub fault: Fault,
    /// Why it was injected.
    pub trigger: Trigger,
    /// The request's `X-USER-ID`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The order concerned, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The transaction concerned, if one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_key: Option<String>,
}

/// Context attached to fault records.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultContext {
    pub(crate) user_id: Option<String>,
    pub(crate) order_id: Option<String>,
    pub(crate) transaction_key: Option<String>,
}

/// A bounded, append-only log of injected faults (oldest entries are dropped past capacity).
#[derive(Debug)]
pub struct FaultLog {
    inner: Mutex<FaultLogInner>,
}

#[derive(Debug)]
struct FaultLogInner {
    capacity: usize,
    next_seq: u64,
    records: VecDeque<FaultRecord>,
}

impl FaultLog {
    /// An empty log keeping at most `capacity` records (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(FaultLogInner {
                capacity: capacity.max(1),
                next_seq: 0,
                records: VecDeque::new(),
            }),
        }
    }

    pub(crate) fn record(&self, fault: Fault, trigger: Trigger, ctx: &FaultContext) {
        tracing::info!(
            target: "pg_simulator::fault",
            fault = fault.as_str(),
            trigger = ?trigger,
            order_id = ctx.order_id.as_deref().unwrap_or("-"),
            transaction_key = ctx.transaction_key.as_deref().unwrap_or("-"),
            "fault injected"
        );
        let mut inner = lock(&self.inner);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        if inner.records.len() >= inner.capacity {
            inner.records.pop_front();
        }
        inner.records.push_back(FaultRecord {
            seq,
            at_unix_ms: crate::clock::unix_millis(),
            fault,
            trigger,
            user_id: ctx.user_id.clone(),
            order_id: ctx.order_id.clone(),
            transaction_key: ctx.transaction_key.clone(),
        });
    }

    /// A copy of the retained records, oldest first.
    pub fn records(&self) -> Vec<FaultRecord> {
        lock(&self.inner).records.iter().cloned().collect()
    }

    /// Forgets every record (sequence numbers keep counting).
    pub fn clear(&self) {
        lock(&self.inner).records.clear();
    }
}

/// Locks a mutex, recovering from poisoning: every critical section in this crate leaves its
/// data consistent before anything that could panic, so a poisoned lock is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fit_in_the_bitset() {
        assert!(Fault::ALL.len() < 64);
        for f in Fault::ALL {
            assert_eq!(f.as_str().parse::<Fault>(), Ok(*f));
        }
    }

    #[test]
    fn magic_cards_are_unique_and_map_back() {
        let mut seen = std::collections::HashSet::new();
        for f in Fault::ALL {
            if let Some(card) = f.magic_card() {
                assert!(seen.insert(card.clone()), "duplicate magic card {card}");
                assert_eq!(Fault::from_magic_card(&card), Some(*f));
            }
        }
        assert_eq!(Fault::from_magic_card("1234-5678-9012-3456"), None);
        assert_eq!(
            Fault::from_magic_card("4000-0000-0000-0002"),
            Some(Fault::InvalidCard)
        );
    }

    #[test]
    fn the_header_accepts_lists_parameters_and_none() {
        let mut h = HeaderFaults::default();
        parse_fault_header(" slow=250ms, drop-callback ,none", &mut h).unwrap();
        assert_eq!(
            h.faults,
            vec![(Fault::Slow, Some(250)), (Fault::DropCallback, None)]
        );
        assert!(h.suppress_random);
        assert_eq!(
            parse_fault_header("bogus", &mut HeaderFaults::default()),
            Err("bogus".to_owned())
        );
        assert!(parse_fault_header("slow=abc", &mut HeaderFaults::default()).is_err());
    }

    #[test]
    fn the_log_is_bounded_and_keeps_counting() {
        let log = FaultLog::new(2);
        for _ in 0..3 {
            log.record(Fault::Slow, Trigger::Rate, &FaultContext::default());
        }
        let records = log.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].seq, 1);
        assert_eq!(records[1].seq, 2);
    }
}
