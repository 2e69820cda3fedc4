//! Domain types of the gateway: card types, statuses, outcomes and the masked card number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The card issuers the canonical gateway accepts (case-sensitive on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Every card type, in the canonical declaration order (used in the enum error message).
    pub const ALL: [Self; 3] = [Self::Samsung, Self::Kb, Self::Hyundai];

    /// The wire name, e.g. `"SAMSUNG"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Samsung => "SAMSUNG",
            Self::Kb => "KB",
            Self::Hyundai => "HYUNDAI",
        }
    }
}

impl fmt::Display for CardType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for CardType {
    type Err = UnknownCardType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(UnknownCardType(()))
    }
}

/// The string named no card type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCardType(());

impl fmt::Display for UnknownCardType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("unknown card type (expected SAMSUNG, KB or HYUNDAI)")
    }
}

impl std::error::Error for UnknownCardType {}

/// The state of a transaction. `Canceled` exists only with the cancel extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransactionStatus {
    /// Accepted, not processed yet; the only non-terminal state.
    Pending,
    /// Approved.
    Success,
    /// Declined (limit exceeded or invalid card).
    Failed,
    /// A successful payment that was canceled through the cancel extension.
    Canceled,
}

impl TransactionStatus {
    /// The wire name, e.g. `"PENDING"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    /// Terminal states never change again (except SUCCESS → CANCELED through the extension).
    pub const fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

impl fmt::Display for TransactionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How processing ends a PENDING transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// SUCCESS, "정상 승인되었습니다."
    Success,
    /// FAILED, "한도초과입니다. 다른 카드를 선택해주세요."
    LimitExceeded,
    /// FAILED, "잘못된 카드입니다. 다른 카드를 선택해주세요."
    InvalidCard,
}

impl Outcome {
    /// The status this outcome leaves the transaction in.
    pub const fn status(self) -> TransactionStatus {
        match self {
            Self::Success => TransactionStatus::Success,
            Self::LimitExceeded | Self::InvalidCard => TransactionStatus::Failed,
        }
    }

    /// The canonical reason text stored with the transaction.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Success => messages::REASON_SUCCESS,
            Self::LimitExceeded => messages::REASON_LIMIT_EXCEEDED,
            Self::InvalidCard => messages::REASON_INVALID_CARD,
        }
    }
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    /// Accepts `SUCCESS`, `LIMIT_EXCEEDED`, `INVALID_CARD` (and kebab/lower-case spellings).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "SUCCESS" | "APPROVE" => Ok(Self::Success),
            "LIMIT_EXCEEDED" | "FAILED" => Ok(Self::LimitExceeded),
            "INVALID_CARD" => Ok(Self::InvalidCard),
            _ => Err(UnknownOutcome(())),
        }
    }
}

/// The string named no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOutcome(());

impl fmt::Display for UnknownOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("unknown outcome (expected SUCCESS, LIMIT_EXCEEDED or INVALID_CARD)")
    }
}

impl std::error::Error for UnknownOutcome {}

/// A card number as sent by the merchant. `Debug`, `Display` and `Serialize` show only the
/// BIN (first 6 digits) and the last 4, so a full PAN can never reach a log by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

impl CardNumber {
    /// Wraps a card number (no validation: the API validates the format before this).
    pub fn new(number: impl Into<String>) -> Self {
        Self(number.into())
    }

    /// The full number. Only for the wire (responses and callbacks echo it, canonically).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number with every digit after the first 6 and before the last 4 replaced by `*`,
    /// e.g. `1234-56**-****-3456` (PCI DSS 3.4.1 display rule).
    pub fn masked(&self) -> String {
        mask_pan(&self.0)
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

impl Serialize for CardNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

/// Masks every digit except the first 6 and the last 4; separators are kept.
///
/// Strings with 10 digits or fewer are masked completely, since BIN + last 4 would reveal all.
pub fn mask_pan(pan: &str) -> String {
    let digits = pan.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    pan.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                let keep = digits > 10 && (seen <= 6 || seen > digits - 4);
                if keep { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

/// The canonical texts, kept together so tests and handlers share one source.
pub mod messages {
    /// Reason of an approved transaction.
    pub const REASON_SUCCESS: &str = "정상 승인되었습니다.";
    /// Reason of a declined transaction: limit exceeded.
    pub const REASON_LIMIT_EXCEEDED: &str = "한도초과입니다. 다른 카드를 선택해주세요.";
    /// Reason of a declined transaction: invalid card.
    pub const REASON_INVALID_CARD: &str = "잘못된 카드입니다. 다른 카드를 선택해주세요.";
    /// Reason of a canceled transaction (cancel extension).
    pub const REASON_CANCELED: &str = "결제가 취소되었습니다.";
    /// Missing `X-USER-ID` header.
    pub const USER_HEADER_REQUIRED: &str = "유저 ID 헤더는 필수입니다.";
    /// Body is not readable JSON.
    pub const UNREADABLE_BODY: &str =
        "요청 본문을 처리하는 중 오류가 발생했습니다. JSON 메세지 규격을 확인해주세요.";
    /// Order id blank or shorter than 6 characters.
    pub const INVALID_ORDER_ID: &str = "주문 ID는 6자리 이상 문자열이어야 합니다.";
    /// Order id longer than the canonical `VARCHAR(255)` column.
    pub const ORDER_ID_TOO_LONG: &str = "주문 ID는 255자 이하 문자열이어야 합니다.";
    /// Callback URL longer than the canonical `VARCHAR(255)` column.
    pub const CALLBACK_URL_TOO_LONG: &str = "콜백 URL 은 255자 이하여야 합니다.";
    /// Callback URL with `user:password@` before its host.
    pub const CALLBACK_URL_USERINFO: &str =
        "콜백 URL 에 사용자 정보(user:password@)를 넣을 수 없습니다.";
    /// `X-USER-ID` longer than the canonical `VARCHAR(255)` column.
    pub const USER_ID_TOO_LONG: &str = "유저 ID 헤더는 255자 이하여야 합니다.";
    /// Card number not `xxxx-xxxx-xxxx-xxxx`.
    pub const INVALID_CARD_NO: &str = "카드 번호는 xxxx-xxxx-xxxx-xxxx 형식이어야 합니다.";
    /// Amount not positive.
    pub const INVALID_AMOUNT: &str = "결제금액은 양의 정수여야 합니다.";
    /// The injected pre-create failure (canonical 40 %).
    pub const UNSTABLE: &str = "현재 서버가 불안정합니다. 잠시 후 다시 시도해주세요.";
    /// Default message of BAD_REQUEST.
    pub const BAD_REQUEST: &str = "잘못된 요청입니다.";
    /// Default message of NOT_FOUND (also unknown paths).
    pub const NOT_FOUND: &str = "존재하지 않는 요청입니다.";
    /// Default message of INTERNAL_ERROR.
    pub const INTERNAL_ERROR: &str = "일시적인 오류가 발생했습니다.";
    /// Default message of CONFLICT.
    pub const CONFLICT: &str = "이미 존재하는 리소스입니다.";
    /// 429 from the throttle fault.
    pub const TOO_MANY_REQUESTS: &str = "요청이 너무 많습니다. 잠시 후 다시 시도해주세요.";
    /// 503 from the unavailable fault.
    pub const UNAVAILABLE: &str =
        "서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해주세요.";
    /// 422 when an idempotency key is reused with a different body.
    pub const IDEMPOTENCY_KEY_REUSED: &str =
        "같은 Idempotency-Key 로 다른 요청을 보낼 수 없습니다.";
    /// 409 when the first request with this idempotency key is still running.
    pub const IDEMPOTENCY_IN_PROGRESS: &str =
        "같은 Idempotency-Key 의 요청이 아직 처리 중입니다. 잠시 후 다시 시도해주세요.";
    /// 400 when the idempotency key is empty or too long.
    pub const IDEMPOTENCY_KEY_INVALID: &str = "Idempotency-Key 는 1자 이상 300자 이하여야 합니다.";

    /// Callback URL does not start with the configured prefix.
    pub fn invalid_callback_url(prefix: &str) -> String {
        format!("콜백 URL 은 {prefix} 로 시작해야 합니다.")
    }

    /// A required body field is absent, null or of a non-scalar type.
    pub fn missing_field(field: &str) -> String {
        format!("필수 필드 '{field}'이(가) 누락되었습니다.")
    }

    /// A field's value cannot be read as its type; enums list the allowed values.
    /// (The trailing space for non-enums is canonical.)
    pub fn type_mismatch(
        field: &str,
        value: &str,
        type_name: &str,
        allowed: Option<&str>,
    ) -> String {
        let hint = allowed.map_or_else(String::new, |a| format!("사용 가능한 값 : [{a}]"));
        format!(
            "필드 '{field}'의 값 '{value}'이(가) 예상 타입({type_name})과 일치하지 않습니다. {hint}"
        )
    }

    /// Unknown transaction key (or one owned by another user).
    pub fn transaction_not_found(key: &str) -> String {
        format!("(transactionKey: {key}) 결제건이 존재하지 않습니다.")
    }

    /// An order with no transactions for this user.
    pub fn order_not_found(order_id: &str) -> String {
        format!("(orderId: {order_id}) 에 해당하는 결제건이 존재하지 않습니다.")
    }

    /// Cancel of a transaction that is not SUCCESS.
    pub fn not_cancelable(key: &str, status: &str) -> String {
        format!("(transactionKey: {key}) 결제건은 취소할 수 없는 상태입니다. (status: {status})")
    }

    /// An `X-Sim-Fault` entry that names no fault.
    pub fn unknown_fault(entry: &str) -> String {
        format!("알 수 없는 X-Sim-Fault 값입니다: '{entry}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_the_bin_and_the_last_four() {
        assert_eq!(mask_pan("1234-5678-9012-3456"), "1234-56**-****-3456");
        assert_eq!(mask_pan("1234567890123456"), "123456******3456");
        assert_eq!(mask_pan("1234-5678"), "****-****");
    }

    #[test]
    fn card_numbers_never_print_in_full() {
        let card = CardNumber::new("1234-5678-9012-3456");
        assert_eq!(format!("{card}"), "1234-56**-****-3456");
        assert!(!format!("{card:?}").contains("5678-9012"));
        assert_eq!(card.expose(), "1234-5678-9012-3456");
    }

    #[test]
    fn card_types_parse_case_sensitively() {
        assert_eq!("KB".parse::<CardType>(), Ok(CardType::Kb));
        assert!("kb".parse::<CardType>().is_err());
    }
}
