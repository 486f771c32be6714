//! Encryption of secrets at rest (OAuth client secrets, source passwords, private keys), with a
//! key id in every value so the key can rotate.
//!
//! The AES-256-GCM key is derived from the configured secret key with HKDF-SHA256 (salt
//! `"portcullis secret encryption v1"`, info `"aead"`); its id is the first 8 hex characters of
//! the SHA-256 of the derived key. An encrypted value reads
//!
//! ```text
//! v1:<key id>:<base64url without padding of nonce(12) || ciphertext || tag(16)>
//! ```
//!
//! with a random 96-bit nonce per value and `v1:<key id>` as additional authenticated data, so
//! neither the version nor the key id can be swapped. Rotation: build the box from the new secret
//! key, add the old one with [`SecretBox::with_previous`]; new values use the new key, old values
//! still decrypt by their key id, and [`SecretBox::is_current`] finds the values to re-encrypt.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;

use crate::{CryptoError, random};

const VERSION: &str = "v1";
const HKDF_SALT: &[u8] = b"portcullis secret encryption v1";
const HKDF_INFO: &[u8] = b"aead";
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Characters of [`generate_secret_key`]: 64 of them, so each random byte's low 6 bits map
/// without bias.
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One derived AEAD key and its id. `Debug` shows the id only.
struct AeadKey {
    id: String,
    key: secrecy::SecretBox<[u8; KEY_LEN]>,
}

impl AeadKey {
    fn derive(secret_key: &str) -> Self {
        let key = secrecy::SecretBox::init_with_mut(|out: &mut [u8; KEY_LEN]| {
            hkdf_sha256_32(HKDF_SALT, secret_key.as_bytes(), HKDF_INFO, out);
        });
        let digest = digest::digest(&digest::SHA256, key.expose_secret());
        let id = hex::encode(digest.as_ref().iter().take(4).copied().collect::<Vec<u8>>());
        Self { id, key }
    }

    fn aead(&self) -> Result<LessSafeKey, UnboundKeyError> {
        UnboundKey::new(&AES_256_GCM, self.key.expose_secret())
            .map(LessSafeKey::new)
            .map_err(|_| UnboundKeyError)
    }
}

struct UnboundKeyError;

impl Clone for AeadKey {
    fn clone(&self) -> Self {
        let bytes = self.key.expose_secret();
        Self {
            id: self.id.clone(),
            key: secrecy::SecretBox::init_with_mut(|out: &mut [u8; KEY_LEN]| *out = *bytes),
        }
    }
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeadKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// HKDF-SHA256 (RFC 5869) with a 32-byte output: one HMAC for extract, one for expand.
/// Written out because the HMAC calls cannot fail, while aws-lc-rs's `hkdf` API returns
/// `Result`s for lengths this function never asks for.
fn hkdf_sha256_32(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8; KEY_LEN]) {
    let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm);
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()));
    ctx.update(info);
    ctx.update(&[1]);
    let okm = ctx.sign();
    for (o, i) in out.iter_mut().zip(okm.as_ref()) {
        *o = *i;
    }
}

/// Encrypts and decrypts secrets at rest. `Debug` shows key ids, never keys.
#[derive(Debug, Clone)]
pub struct SecretBox {
    /// Encrypts new values; decrypts too.
    current: AeadKey,
    /// Decrypt only, newest first.
    previous: Vec<AeadKey>,
}

impl SecretBox {
    /// A box whose key is derived from the configured secret key.
    #[must_use]
    pub fn from_secret_key(secret_key: &str) -> SecretBox {
        SecretBox {
            current: AeadKey::derive(secret_key),
            previous: Vec::new(),
        }
    }

    /// Adds an older secret key, used only to decrypt values encrypted under it.
    #[must_use]
    pub fn with_previous(mut self, old_secret_key: &str) -> SecretBox {
        self.previous.push(AeadKey::derive(old_secret_key));
        self
    }

    /// The id of the key new values are encrypted with.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Whether `encrypted` names the current key (false for malformed values): values for
    /// which this is false should be decrypted and encrypted again after a rotation.
    #[must_use]
    pub fn is_current(&self, encrypted: &str) -> bool {
        split(encrypted).is_ok_and(|(id, _)| id == self.current.id)
    }

    /// Encrypts `plaintext` with the current key.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce can be drawn, [`CryptoError::Encrypt`] if sealing fails.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce)?;
        let key = self.current.aead().map_err(|_| CryptoError::Encrypt)?;
        let aad = format!("{VERSION}:{}", self.current.id);
        let mut blob = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(plaintext);
        let mut sealed = blob.split_off(NONCE_LEN);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| CryptoError::Encrypt)?;
        blob.append(&mut sealed);
        Ok(format!("{aad}:{}", URL_SAFE_NO_PAD.encode(&blob)))
    }

    /// Decrypts a value made by [`SecretBox::encrypt`] with the current or a previous key.
    ///
    /// # Errors
    /// [`CryptoError::MalformedCiphertext`] for a value not in our format,
    /// [`CryptoError::UnknownKeyId`] when no key has its id, [`CryptoError::Decrypt`] when the
    /// value was altered.
    pub fn decrypt(&self, encrypted: &str) -> Result<Vec<u8>, CryptoError> {
        let (id, data) = split(encrypted)?;
        let blob = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| CryptoError::MalformedCiphertext("data is not base64url"))?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::MalformedCiphertext("data is too short"));
        }
        let (nonce, sealed) = blob
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::MalformedCiphertext("data is too short"))?;
        let aad = format!("{VERSION}:{id}");
        let mut found = false;
        // Two keys could share an id (a 32-bit prefix): try each key with this id.
        for key in std::iter::once(&self.current).chain(&self.previous) {
            if key.id != id {
                continue;
            }
            found = true;
            let Ok(aead) = key.aead() else { continue };
            let Ok(nonce) = Nonce::try_assume_unique_for_key(nonce) else {
                continue;
            };
            let mut in_out = sealed.to_vec();
            if let Ok(plaintext) = aead.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut in_out)
            {
                return Ok(plaintext.to_vec());
            }
        }
        if found {
            Err(CryptoError::Decrypt)
        } else {
            Err(CryptoError::UnknownKeyId(id.to_owned()))
        }
    }

    /// [`SecretBox::encrypt`] for text.
    ///
    /// # Errors
    /// As [`SecretBox::encrypt`].
    pub fn encrypt_str(&self, plaintext: &str) -> Result<String, CryptoError> {
        self.encrypt(plaintext.as_bytes())
    }

    /// [`SecretBox::decrypt`] for text.
    ///
    /// # Errors
    /// As [`SecretBox::decrypt`], or [`CryptoError::InvalidUtf8`].
    pub fn decrypt_str(&self, encrypted: &str) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt(encrypted)?).map_err(|_| CryptoError::InvalidUtf8)
    }
}

/// Splits `v1:<key id>:<data>` into the key id and the data.
fn split(encrypted: &str) -> Result<(&str, &str), CryptoError> {
    let mut parts = encrypted.splitn(3, ':');
    if parts.next() != Some(VERSION) {
        return Err(CryptoError::MalformedCiphertext("unknown version"));
    }
    let id = parts
        .next()
        .filter(|id| id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(CryptoError::MalformedCiphertext("bad key id"))?;
    let data = parts
        .next()
        .ok_or(CryptoError::MalformedCiphertext("missing data"))?;
    Ok((id, data))
}

/// A new secret key: 64 random characters from `[A-Za-z0-9_-]` (384 bits).
///
/// Uses the system generator; if that ever fails the process aborts (see AWS-LC `RAND_bytes`).
#[must_use]
pub fn generate_secret_key() -> String {
    random::random_from_alphabet(URL_SAFE, 64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const KEY: &str = "a test secret key that is long enough for testing purposes 1234";

    #[test]
    fn roundtrip() {
        let sb = SecretBox::from_secret_key(KEY);
        for plaintext in [&b""[..], b"x", b"client secret value", &[0u8; 4096]] {
            let encrypted = sb.encrypt(plaintext).unwrap();
            assert!(encrypted.starts_with(&format!("v1:{}:", sb.key_id())));
            assert_eq!(sb.decrypt(&encrypted).unwrap(), plaintext);
        }
        let text = sb.encrypt_str("h\u{e9}llo").unwrap();
        assert_eq!(sb.decrypt_str(&text).unwrap(), "h\u{e9}llo");
    }

    #[test]
    fn nonces_are_fresh() {
        let sb = SecretBox::from_secret_key(KEY);
        assert_ne!(sb.encrypt(b"same").unwrap(), sb.encrypt(b"same").unwrap());
    }

    #[test]
    fn key_id_is_stable_and_derived() {
        let a = SecretBox::from_secret_key(KEY);
        let b = SecretBox::from_secret_key(KEY);
        let c = SecretBox::from_secret_key("another key");
        assert_eq!(a.key_id(), b.key_id());
        assert_ne!(a.key_id(), c.key_id());
        assert_eq!(a.key_id().len(), 8);
        assert!(
            a.key_id()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        // A value from one process decrypts in another with the same secret key.
        assert_eq!(
            b.decrypt(&a.encrypt(b"shared").unwrap()).unwrap(),
            b"shared"
        );
    }

    #[test]
    fn manual_hkdf_matches_aws_lc_hkdf() {
        use aws_lc_rs::hkdf;
        let mut ours = [0u8; KEY_LEN];
        hkdf_sha256_32(HKDF_SALT, KEY.as_bytes(), HKDF_INFO, &mut ours);
        let mut theirs = [0u8; KEY_LEN];
        hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT)
            .extract(KEY.as_bytes())
            .expand(&[HKDF_INFO], hkdf::HKDF_SHA256)
            .unwrap()
            .fill(&mut theirs)
            .unwrap();
        assert_eq!(ours, theirs);
        // RFC 5869 test case 1, first 32 bytes of OKM.
        let mut okm = [0u8; KEY_LEN];
        hkdf_sha256_32(
            &hex::decode("000102030405060708090a0b0c").unwrap(),
            &[0x0b; 22],
            &hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap(),
            &mut okm,
        );
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn rotation() {
        let old = SecretBox::from_secret_key("old key");
        let old_value = old.encrypt_str("legacy").unwrap();
        let new = SecretBox::from_secret_key("new key").with_previous("old key");
        assert_eq!(new.decrypt_str(&old_value).unwrap(), "legacy");
        assert!(!new.is_current(&old_value));
        let new_value = new.encrypt_str("fresh").unwrap();
        assert!(new.is_current(&new_value));
        assert!(new_value.contains(new.key_id()));
        // The old box cannot read values made with the new key.
        assert!(matches!(
            old.decrypt(&new_value),
            Err(CryptoError::UnknownKeyId(_))
        ));
        // Without the previous key, old values are refused by id.
        let fresh = SecretBox::from_secret_key("new key");
        assert!(matches!(
            fresh.decrypt(&old_value),
            Err(CryptoError::UnknownKeyId(id)) if id == old.key_id()
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let sb = SecretBox::from_secret_key(KEY);
        let encrypted = sb.encrypt(b"do not touch").unwrap();
        let (prefix, data) = encrypted.rsplit_once(':').unwrap();
        let blob = URL_SAFE_NO_PAD.decode(data).unwrap();
        for i in 0..blob.len() {
            let mut altered = blob.clone();
            altered[i] ^= 0x01;
            let value = format!("{prefix}:{}", URL_SAFE_NO_PAD.encode(&altered));
            assert!(
                matches!(sb.decrypt(&value), Err(CryptoError::Decrypt)),
                "byte {i}"
            );
        }
        // Truncated and extended data.
        let value = format!(
            "{prefix}:{}",
            URL_SAFE_NO_PAD.encode(&blob[..blob.len() - 1])
        );
        assert!(matches!(sb.decrypt(&value), Err(CryptoError::Decrypt)));
        let mut longer = blob.clone();
        longer.push(0);
        let value = format!("{prefix}:{}", URL_SAFE_NO_PAD.encode(&longer));
        assert!(matches!(sb.decrypt(&value), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn key_id_is_authenticated() {
        // Two keys forced to share... we cannot force an id collision, so relabel a value with
        // another key's id and check that key refuses it.
        let a = SecretBox::from_secret_key("key a");
        let b = SecretBox::from_secret_key("key b").with_previous("key a");
        let value = a.encrypt(b"x").unwrap();
        let relabelled = value.replacen(a.key_id(), b.key_id(), 1);
        assert!(matches!(b.decrypt(&relabelled), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn malformed_values_are_refused() {
        let sb = SecretBox::from_secret_key(KEY);
        let good = sb.encrypt(b"payload").unwrap();
        let id = sb.key_id();
        let cases = [
            String::new(),
            "garbage".to_owned(),
            "v1".to_owned(),
            "v1:".to_owned(),
            format!("v1:{id}"),
            format!("v1:{id}:"),
            format!("v1:{id}:AAAA"),
            format!("v1:{id}:not base64!"),
            format!("v1:{id}:{}", &good[good.len() - 10..]),
            format!(
                "v1:{}:{}",
                id.to_uppercase().replace(char::is_numeric, "G"),
                "AAAA"
            ),
            good.replacen("v1:", "v2:", 1),
            good.replacen("v1:", "", 1),
            good.replacen(':', "::", 1),
            format!("{good}="),
            format!("{good}:extra"),
            good[..good.len() - 5].to_owned(),
            "v1:zzzzzzzz:AAAA".to_owned(),
            "v1:0123456:AAAA".to_owned(),
            "v1:\u{1F600}:AAAA".to_owned(),
        ];
        for case in &cases {
            assert!(sb.decrypt(case).is_err(), "{case}");
        }
        assert!(matches!(
            sb.decrypt("v1:00000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Err(CryptoError::UnknownKeyId(_))
        ));
        // Not UTF-8 after decryption.
        let bytes = sb.encrypt(&[0xff, 0xfe]).unwrap();
        assert!(matches!(
            sb.decrypt_str(&bytes),
            Err(CryptoError::InvalidUtf8)
        ));
    }

    #[test]
    fn debug_hides_keys() {
        let sb = SecretBox::from_secret_key(KEY).with_previous("old");
        let debug = format!("{sb:?}");
        assert!(debug.contains(sb.key_id()));
        assert!(!debug.contains(KEY));
        let clone = sb.clone();
        assert_eq!(clone.decrypt(&sb.encrypt(b"c").unwrap()).unwrap(), b"c");
    }

    #[test]
    fn generated_secret_keys() {
        let a = generate_secret_key();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| URL_SAFE.contains(&b)));
        assert_ne!(a, generate_secret_key());
    }
}
