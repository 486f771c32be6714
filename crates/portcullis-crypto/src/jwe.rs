//! JSON Web Encryption of tokens for a client (RFC 7516 compact serialization), as authentik
//! does with a provider's `encryption_key`: the content encryption key is encrypted to the
//! certificate's RSA public key with RSA-OAEP-256 (RFC 7518 §4.3) and the token with
//! A256CBC-HS512 (AES-256-CBC then HMAC-SHA-512 over the header, IV and ciphertext, the tag
//! being its first 32 bytes: RFC 7518 §5.2.2.1 and §5.2.5). Every primitive is aws-lc-rs';
//! only the RFC's composition is here, and the tests check it against the RFC's own example
//! (Appendix B.3) and by decrypting.
//!
//! ```text
//!  header {"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","kid":..,"cty":"JWT"}
//!  CEK (64 random bytes) = MAC key (32) ‖ AES key (32);  IV: 16 random bytes
//!  ciphertext = AES-256-CBC-PKCS7(AES key, IV, plaintext)
//!  tag = HMAC-SHA-512(MAC key, B64(header) ‖ IV ‖ ciphertext ‖ bits(B64(header)) as u64 BE)[..32]
//!  token = B64(header).B64(RSA-OAEP-256(public key, CEK)).B64(IV).B64(ciphertext).B64(tag)
//! ```

use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use x509_parser::public_key::PublicKey;

use crate::CryptoError;

/// The key management algorithm.
pub const ALG: &str = "RSA-OAEP-256";
/// The content encryption algorithm.
pub const ENC: &str = "A256CBC-HS512";

/// Encrypts tokens to one RSA public key (a certificate's).
pub struct JweEncrypter {
    key: OaepPublicEncryptingKey,
    kid: String,
    public_jwk: serde_json::Value,
}

impl std::fmt::Debug for JweEncrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JweEncrypter")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn jwe_error(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Certificate(format!("encryption key: {e}"))
}

impl JweEncrypter {
    /// The encrypter for the RSA key of the PEM certificate `certificate_pem`.
    ///
    /// # Errors
    /// [`CryptoError::Certificate`] when the certificate does not parse or its key is not RSA.
    pub fn from_certificate_pem(certificate_pem: &str) -> Result<Self, CryptoError> {
        let der = crate::cert::certificate_der(certificate_pem)?;
        let cert = crate::cert::parse_der(&der)?;
        let spki = cert.public_key();
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(jwe_error("the certificate's key is not an RSA key"));
        };
        let trim = |b: &[u8]| -> Vec<u8> {
            let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            b.get(first..).unwrap_or_default().to_vec()
        };
        let n = URL_SAFE_NO_PAD.encode(trim(rsa.modulus));
        let e = URL_SAFE_NO_PAD.encode(trim(rsa.exponent));
        let key = PublicEncryptingKey::from_der(spki.raw)
            .map_err(jwe_error)
            .and_then(|k| OaepPublicEncryptingKey::new(k).map_err(jwe_error))?;
        let mut jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "n": n, "e": e, "use": "enc", "alg": ALG,
            "x5c": [STANDARD.encode(&der)],
        }))
        .map_err(jwe_error)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(jwe_error)?;
        jwk.common.key_id = Some(kid.clone());
        let public_jwk = serde_json::to_value(&jwk).map_err(jwe_error)?;
        Ok(JweEncrypter {
            key,
            kid,
            public_jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key for a JWK Set (`use: enc`, `alg: RSA-OAEP-256`, `kid`, `x5c`).
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.public_jwk
    }

    /// Encrypts `plaintext` (a signed JWT when `cty` is `JWT`: a nested JWT).
    ///
    /// # Errors
    /// [`CryptoError::Random`] or [`CryptoError::Encrypt`] when a primitive fails.
    pub fn encrypt(&self, plaintext: &[u8], cty: Option<&str>) -> Result<String, CryptoError> {
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), ALG.into());
        header.insert("enc".into(), ENC.into());
        header.insert("kid".into(), self.kid.clone().into());
        if let Some(cty) = cty {
            header.insert("cty".into(), cty.into());
        }
        let header = serde_json::Value::Object(header);
        let mut cek = [0u8; 64];
        aws_lc_rs::rand::fill(&mut cek).map_err(|_| CryptoError::Random)?;
        let mut iv = [0u8; 16];
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| CryptoError::Random)?;
        let mut encrypted_key = vec![0u8; self.key.ciphertext_size()];
        let encrypted_key = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut encrypted_key, None)
            .map_err(|_| CryptoError::Encrypt)?
            .to_vec();
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        let (ciphertext, tag) = a256cbc_hs512(&cek, &iv, header_b64.as_bytes(), plaintext)?;
        Ok(format!(
            "{header_b64}.{}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(encrypted_key),
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ciphertext),
            URL_SAFE_NO_PAD.encode(tag),
        ))
    }
}

/// AES_256_CBC_HMAC_SHA_512 (RFC 7518 §5.2.5): the ciphertext and the 32-byte tag.
fn a256cbc_hs512(
    cek: &[u8; 64],
    iv: &[u8; 16],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    let (mac_key, enc_key) = cek.split_at(32);
    let key = UnboundCipherKey::new(&AES_256, enc_key).map_err(|_| CryptoError::Encrypt)?;
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| CryptoError::Encrypt)?;
    let mut ciphertext = plaintext.to_vec();
    cipher
        .less_safe_encrypt(&mut ciphertext, EncryptionContext::Iv128((*iv).into()))
        .map_err(|_| CryptoError::Encrypt)?;
    let al = (u64::try_from(aad.len()).map_err(|_| CryptoError::Encrypt)? * 8).to_be_bytes();
    let mac_key = hmac::Key::new(hmac::HMAC_SHA512, mac_key);
    let mut ctx = hmac::Context::with_key(&mac_key);
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(&ciphertext);
    ctx.update(&al);
    let tag = ctx
        .sign()
        .as_ref()
        .get(..32)
        .ok_or(CryptoError::Encrypt)?
        .to_vec();
    Ok((ciphertext, tag))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::cert::{KeyAlgorithm, generate_self_signed_with};
    use aws_lc_rs::cipher::{DecryptionContext, PaddedBlockDecryptingKey};
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};

    /// RFC 7518 Appendix B.3: AES_256_CBC_HMAC_SHA_512 with the RFC's key, IV and AAD gives
    /// the RFC's ciphertext and tag.
    #[test]
    fn a256cbc_hs512_matches_rfc_7518_appendix_b3() {
        let k: Vec<u8> = (0u8..64).collect();
        let cek: [u8; 64] = k.try_into().unwrap();
        let p = b"A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience";
        let iv: [u8; 16] = [
            0x1a, 0xf3, 0x8c, 0x2d, 0xc2, 0xb9, 0x6f, 0xfd, 0xd8, 0x66, 0x94, 0x09, 0x23, 0x41,
            0xbc, 0x04,
        ];
        let aad = b"The second principle of Auguste Kerckhoffs";
        let (e, t) = a256cbc_hs512(&cek, &iv, aad, p).unwrap();
        let hexs = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hexs(&e),
            "4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd\
             822c301dd67c373bccb584ad3e9279c2e6d12a1374b77f077553df829410446b\
             36ebd97066296ae6427ea75c2e0846a11a09ccf5370dc80bfecbad28c73f09b3\
             a3b75e662a2594410ae496b2e2e6609e31e6e02cc837f053d21f37ff4f51950b\
             be2638d09dd7a4930930806d0703b1f6"
        );
        assert_eq!(
            hexs(&t),
            "4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5"
        );
    }

    /// Encrypting to a certificate: its private key recovers the plaintext; the header names
    /// the algorithms and the key; a changed byte anywhere fails the tag.
    #[test]
    fn tokens_decrypt_with_the_private_key_and_resist_tampering() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let kp = generate_self_signed_with(KeyAlgorithm::Rsa2048, "enc", &[], 30, now).unwrap();
        let enc = JweEncrypter::from_certificate_pem(&kp.certificate_pem).unwrap();
        assert_eq!(enc.public_jwk()["use"], "enc");
        assert_eq!(enc.public_jwk()["alg"], ALG);
        assert_eq!(enc.public_jwk()["kid"], enc.kid());
        let token = enc
            .encrypt(b"header.payload.signature", Some("JWT"))
            .unwrap();
        let parts: Vec<Vec<u8>> = token
            .split('.')
            .map(|p| URL_SAFE_NO_PAD.decode(p).unwrap())
            .collect();
        assert_eq!(parts.len(), 5);
        let header: serde_json::Value = serde_json::from_slice(&parts[0]).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": ALG, "enc": ENC, "kid": enc.kid(), "cty": "JWT"})
        );
        let der = pem::parse(&kp.private_key_pem).unwrap();
        let private = OaepPrivateDecryptingKey::new(
            PrivateDecryptingKey::from_pkcs8(der.contents()).unwrap(),
        )
        .unwrap();
        let decrypt = |token: &str| -> Result<Vec<u8>, ()> {
            let parts: Vec<Vec<u8>> = token
                .split('.')
                .map(|p| URL_SAFE_NO_PAD.decode(p).unwrap())
                .collect();
            let mut cek = vec![0u8; private.min_output_size()];
            let cek = private
                .decrypt(&OAEP_SHA256_MGF1SHA256, &parts[1], &mut cek, None)
                .map_err(|_| ())?
                .to_vec();
            let aad = token.split('.').next().unwrap().as_bytes();
            let al = ((aad.len() as u64) * 8).to_be_bytes();
            let mac = hmac::Key::new(hmac::HMAC_SHA512, &cek[..32]);
            let data = [aad, &parts[2], &parts[3], &al].concat();
            let tag = hmac::sign(&mac, &data);
            if tag.as_ref()[..32] != parts[4][..] {
                return Err(());
            }
            let key = UnboundCipherKey::new(&AES_256, &cek[32..]).unwrap();
            let d = PaddedBlockDecryptingKey::cbc_pkcs7(key).unwrap();
            let iv: [u8; 16] = parts[2].clone().try_into().unwrap();
            let mut ct = parts[3].clone();
            let pt = d
                .decrypt(&mut ct, DecryptionContext::Iv128(iv.into()))
                .map_err(|_| ())?;
            Ok(pt.to_vec())
        };
        assert_eq!(decrypt(&token).unwrap(), b"header.payload.signature");
        // Two encryptions of the same text differ (fresh CEK and IV).
        assert_ne!(
            enc.encrypt(b"x", None).unwrap(),
            enc.encrypt(b"x", None).unwrap()
        );
        // Tampering with the ciphertext or the header fails.
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut ct = URL_SAFE_NO_PAD.decode(&segments[3]).unwrap();
        ct[0] ^= 1;
        segments[3] = URL_SAFE_NO_PAD.encode(ct);
        assert!(decrypt(&segments.join(".")).is_err());
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        segments[0] = URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512"}"#);
        assert!(decrypt(&segments.join(".")).is_err());
    }

    #[test]
    fn only_rsa_certificates_encrypt() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let kp = generate_self_signed_with(KeyAlgorithm::EcdsaP256, "ec", &[], 30, now).unwrap();
        assert!(JweEncrypter::from_certificate_pem(&kp.certificate_pem).is_err());
        assert!(JweEncrypter::from_certificate_pem("garbage").is_err());
    }
}
