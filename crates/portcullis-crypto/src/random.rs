//! Random values and constant-time comparison.
//!
//! All randomness comes from aws-lc-rs (`RAND_bytes`, the operating system's generator behind
//! a DRBG). Strings are drawn by rejection sampling so every character is equally likely.

use subtle::ConstantTimeEq;

use crate::CryptoError;

/// The characters of [`random_string`]: `[A-Za-z0-9]`.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `dest` with random bytes.
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(dest).map_err(|_| CryptoError::Random)
}

/// Fills `dest` with random bytes, or stops the process if the generator fails.
///
/// AWS-LC itself aborts when its generator fails, so this branch is unreachable in practice;
/// it exists because functions that return plain values have no honest way to go on without
/// randomness.
pub(crate) fn fill_or_abort(dest: &mut [u8]) {
    if fill(dest).is_err() {
        tracing::error!("the system random number generator failed; stopping the process");
        std::process::abort();
    }
}

/// Draws `len` characters from `alphabet` (1 to 256 ASCII characters) without modulo bias.
///
/// Bytes at or above the largest multiple of the alphabet's length are discarded.
pub fn random_from_alphabet(alphabet: &[u8], len: usize) -> String {
    let size = alphabet.len();
    if size == 0 || size > 256 || len == 0 {
        return String::new();
    }
    // Largest multiple of `size` that fits in a byte's 256 values.
    let limit = 256 - (256 % size);
    let mut out = String::with_capacity(len);
    // Ask for a little more than needed so one round usually suffices.
    let mut buf = vec![0u8; len.saturating_add(len / 4).saturating_add(16).min(4096)];
    while out.len() < len {
        fill_or_abort(&mut buf);
        for &byte in &buf {
            if usize::from(byte) >= limit {
                continue;
            }
            if let Some(&c) = alphabet.get(usize::from(byte) % size) {
                out.push(char::from(c));
            }
            if out.len() == len {
                break;
            }
        }
    }
    out
}

/// A random string of `len` characters from `[A-Za-z0-9]` (about 5.95 bits each).
///
/// Uses the system generator; if that ever fails the process aborts (see AWS-LC `RAND_bytes`).
#[must_use]
pub fn random_string(len: usize) -> String {
    random_from_alphabet(ALPHANUMERIC, len)
}

/// Compares two byte strings in time that depends only on their lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Lower-case hex SHA-256 of `data`: how token keys are indexed, and how stable opaque ids are
/// derived.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn random_string_has_length_and_alphabet() {
        for len in [0, 1, 7, 64, 1000, 10_000] {
            let s = random_string(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn random_strings_differ() {
        assert_ne!(random_string(32), random_string(32));
    }

    #[test]
    fn random_string_uses_whole_alphabet_evenly() {
        let s = random_string(62 * 1000);
        let mut counts = [0usize; 128];
        for b in s.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHANUMERIC {
            let n = counts[usize::from(c)];
            // Expected 1000 each; 5 standard deviations is about +-160.
            assert!(
                (800..=1200).contains(&n),
                "{} appeared {n} times",
                char::from(c)
            );
        }
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
