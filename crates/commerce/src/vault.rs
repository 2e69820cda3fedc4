//! The card kept sealed between an order's commit and its charge's first attempt, so the
//! recovery job can send a charge whose instance crashed before calling the PG.
//!
//! The number is sealed with AES-256-GCM (ring) under a key derived from
//! `recovery.card_key` (HMAC-SHA256 over a fixed label), a random 96-bit nonce per seal,
//! and the payment's PG idempotency key as associated data: a sealed card moved to another
//! payment does not open. It lives in `payment_cards` only until the payment leaves REQUESTED
//! (`persistence/payments.rs`'s `transition_payment` deletes it in the same transaction; a
//! claimed charge whose process died before its first HTTP attempt still needs it, see
//! `persistence/attempts.rs`), and is never logged: [`CardVault`]'s `Debug` shows nothing of
//! the key.

use std::fmt;

use hmac::{Hmac, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::Sha256;

use pg_client::model::CardNumber;

const LABEL: &[u8] = b"commerce card sealing v1";

/// Why a card could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The OS random generator failed (no nonce).
    #[error("no randomness for a nonce: {0}")]
    Random(String),
    /// Not sealed by this key for this payment, or altered.
    #[error("the sealed card does not open with this key for this payment")]
    Unreadable,
}

/// Seals and opens card numbers. Cheap to clone.
#[derive(Clone)]
pub struct CardVault {
    key: std::sync::Arc<LessSafeKey>,
}

impl fmt::Debug for CardVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardVault(..)")
    }
}

impl CardVault {
    /// A vault whose key is derived from `secret` (every instance must be given the same).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(LABEL);
        let bytes = mac.finalize().into_bytes();
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 gives the 32 bytes AES-256 takes"));
        Self {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        }
    }

    /// Seals `card` for the payment whose PG idempotency key is `payment_key`: hex of nonce,
    /// ciphertext and tag.
    ///
    /// # Errors
    ///
    /// [`VaultError::Random`] when the OS gives no nonce.
    pub fn seal(&self, card: &CardNumber, payment_key: &str) -> Result<String, VaultError> {
        let mut nonce = [0_u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| VaultError::Random(e.to_string()))?;
        let mut sealed = card.expose_for_gateway().as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(payment_key.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| VaultError::Unreadable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    /// Opens what [`seal`](Self::seal) made for `payment_key`.
    ///
    /// # Errors
    ///
    /// [`VaultError::Unreadable`]: another key, another payment, or altered.
    pub fn open(&self, sealed: &str, payment_key: &str) -> Result<CardNumber, VaultError> {
        let bytes = hex::decode(sealed).map_err(|_| VaultError::Unreadable)?;
        if bytes.len() < NONCE_LEN {
            return Err(VaultError::Unreadable);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Unreadable)?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(payment_key.as_bytes()), &mut rest)
            .map_err(|_| VaultError::Unreadable)?;
        let text = std::str::from_utf8(plain).map_err(|_| VaultError::Unreadable)?;
        CardNumber::parse(text).map_err(|_| VaultError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> CardNumber {
        CardNumber::parse("1234-5678-9012-3456").unwrap()
    }

    #[test]
    fn a_sealed_card_opens_for_its_payment_and_shows_no_digit_in_clear() {
        let vault = CardVault::new(b"a key of sixteen+ bytes");
        let sealed = vault.seal(&card(), "ORD-000001-P1").unwrap();
        assert!(!sealed.contains("3456") && !sealed.contains("1234"));
        let opened = vault.open(&sealed, "ORD-000001-P1").unwrap();
        assert_eq!(opened.expose_for_gateway(), "1234-5678-9012-3456");
        // A fresh nonce per seal.
        assert_ne!(sealed, vault.seal(&card(), "ORD-000001-P1").unwrap());
    }

    #[test]
    fn a_sealed_card_does_not_open_for_another_payment_another_key_or_altered() {
        let vault = CardVault::new(b"a key of sixteen+ bytes");
        let sealed = vault.seal(&card(), "ORD-000001-P1").unwrap();
        assert_eq!(
            vault.open(&sealed, "ORD-000002-P2").unwrap_err(),
            VaultError::Unreadable
        );
        let other = CardVault::new(b"another key, sixteen+");
        assert!(other.open(&sealed, "ORD-000001-P1").is_err());
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(vault.open(&altered, "ORD-000001-P1").is_err());
        assert!(vault.open("zz", "ORD-000001-P1").is_err());
        assert_eq!(format!("{vault:?}"), "CardVault(..)");
    }
}
