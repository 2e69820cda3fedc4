//! Keeping a subscription's card number so the billing job can charge it every period,
//! without storing it in the clear.
//!
//! One-time orders hold the card number in memory only, from the request to the PG call. A
//! subscription must charge the card again each period, and the PG (the simulator) takes the
//! full number on every charge, offering no token. So the number is **sealed** with the
//! service's key (`subscriptions.card_key`, else a random key kept in `service_secrets`, as
//! the idempotency fingerprint key is): HMAC-SHA256 as a pseudo-random function in counter
//! mode for the keystream, then an HMAC-SHA256 tag over nonce and ciphertext
//! (encrypt-then-MAC), with separate derived keys for the two. Only the masked form (first 6
//! + last 4) is stored beside it and shown.
//!
//! Stored form: hex of `nonce (16 bytes) || ciphertext || tag (32 bytes)`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use pg_client::model::CardNumber;

type HmacSha256 = Hmac<Sha256>;

const NONCE: usize = 16;
const TAG: usize = 32;

/// Seals and opens card numbers with the service's key.
#[derive(Clone)]
pub struct CardVault {
    encryption: [u8; 32],
    authentication: [u8; 32],
}

impl std::fmt::Debug for CardVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardVault(..)")
    }
}

/// A sealed number could not be opened (another key, or altered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored card could not be opened (another key, or altered)")]
pub struct OpenError;

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut m = mac(key);
    m.update(label);
    m.finalize().into_bytes().into()
}

impl CardVault {
    /// A vault over `key` (at least 16 bytes, checked by the settings).
    pub fn new(key: &[u8]) -> Self {
        Self {
            encryption: derive(key, b"commerce subscriptions card encryption"),
            authentication: derive(key, b"commerce subscriptions card authentication"),
        }
    }

    fn keystream_xor(&self, nonce: &[u8], data: &mut [u8]) {
        for (block, chunk) in data.chunks_mut(32).enumerate() {
            let mut m = mac(&self.encryption);
            m.update(nonce);
            m.update(&u64::try_from(block).unwrap_or(u64::MAX).to_be_bytes());
            let stream = m.finalize().into_bytes();
            for (byte, key) in chunk.iter_mut().zip(stream.iter()) {
                *byte ^= key;
            }
        }
    }

    fn tag(&self, nonce: &[u8], ciphertext: &[u8]) -> HmacSha256 {
        let mut m = mac(&self.authentication);
        m.update(nonce);
        m.update(ciphertext);
        m
    }

    /// Seals a card number under a fresh random nonce.
    ///
    /// # Errors
    ///
    /// The OS RNG is unavailable.
    pub fn seal(&self, card: &CardNumber) -> Result<String, getrandom::Error> {
        let mut nonce = [0_u8; NONCE];
        getrandom::fill(&mut nonce)?;
        let mut data = card.expose_for_gateway().as_bytes().to_vec();
        self.keystream_xor(&nonce, &mut data);
        let tag = self.tag(&nonce, &data).finalize().into_bytes();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        out.extend_from_slice(&tag);
        Ok(hex::encode(out))
    }

    /// Opens a sealed card number.
    ///
    /// # Errors
    ///
    /// Not sealed with this key, or altered.
    pub fn open(&self, sealed: &str) -> Result<CardNumber, OpenError> {
        let bytes = hex::decode(sealed).map_err(|_| OpenError)?;
        if bytes.len() < NONCE + TAG {
            return Err(OpenError);
        }
        let (nonce, rest) = bytes.split_at(NONCE);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG);
        self.tag(nonce, ciphertext)
            .verify_slice(tag)
            .map_err(|_| OpenError)?;
        let mut data = ciphertext.to_vec();
        self.keystream_xor(nonce, &mut data);
        let text = String::from_utf8(data).map_err(|_| OpenError)?;
        CardNumber::parse(&text).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_card_opens_with_its_key_only_and_never_shows_the_number() {
        let card = CardNumber::parse("1234-5678-9012-3456").unwrap();
        let vault = CardVault::new(b"0123456789abcdef0123");
        let sealed = vault.seal(&card).unwrap();
        assert!(!sealed.contains("5678") || !sealed.contains("9012"));
        assert_ne!(
            sealed,
            vault.seal(&card).unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(vault.open(&sealed).unwrap(), card);
        let other = CardVault::new(b"another key of 16 bytes");
        assert_eq!(other.open(&sealed), Err(OpenError));
    }

    #[test]
    fn an_altered_or_truncated_seal_is_refused() {
        let card = CardNumber::parse("1234-5678-9012-3456").unwrap();
        let vault = CardVault::new(b"0123456789abcdef0123");
        let sealed = vault.seal(&card).unwrap();
        let mut bytes = hex::decode(&sealed).unwrap();
        bytes[NONCE] ^= 1;
        assert_eq!(vault.open(&hex::encode(&bytes)), Err(OpenError));
        assert_eq!(vault.open(&sealed[..40]), Err(OpenError));
        assert_eq!(vault.open("not hex"), Err(OpenError));
    }
}
