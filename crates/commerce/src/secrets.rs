//! Secrets and identifiers drawn from the operating system's random number generator.

/// `bytes` random bytes from the OS RNG, hex-encoded (`2 × bytes` characters).
///
/// # Errors
///
/// The OS RNG is unavailable (the caller cannot make a secret without it and must not fall
/// back to a predictable one).
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(hex::encode(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_twice_the_bytes_in_hex_digits_and_differs_per_call() {
        let a = random_hex(32).unwrap();
        let b = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
