//! Callback signatures, Stripe style: `X-PG-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` where
//! each `v1` is HMAC-SHA256(secret, "{t}.{raw body}") for one configured secret (several during
//! a rotation).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-PG-Signature";

type HmacSha256 = Hmac<Sha256>;

/// The header value for `body` signed at `timestamp` with every secret, in order.
pub fn sign(secrets: &[String], timestamp: i64, body: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&hex::encode(mac(secret, timestamp, body)));
    }
    value
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Checks a signature header against `secret`: some `v1` must match (constant-time compare) and
/// `t` must be within `tolerance_secs` of `now`. Offered for receivers; tests of the simulator
/// itself verify with an independent HMAC.
pub fn verify(header: &str, secret: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    candidates.iter().any(|candidate| {
        let mut m =
            HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        m.verify_slice(candidate).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_gets_a_v1_and_each_verifies() {
        let secrets = vec!["old".to_owned(), "new".to_owned()];
        let header = sign(&secrets, 1_700_000_000, b"{}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(header.matches("v1=").count(), 2);
        assert!(verify(&header, "old", b"{}", 1_700_000_100, 300));
        assert!(verify(&header, "new", b"{}", 1_700_000_100, 300));
        assert!(!verify(&header, "other", b"{}", 1_700_000_100, 300));
        assert!(!verify(&header, "new", b"{ }", 1_700_000_100, 300));
        assert!(!verify(&header, "new", b"{}", 1_700_000_400, 300));
    }
}
