//! JSON Web Signatures for tokens (ID tokens, JWT access tokens, logout tokens): signing with a
//! certificate-key pair's private key or a client secret, the public keys as a JWK Set, and
//! verification. The JOSE work is `jsonwebtoken`'s, on aws-lc-rs.
//!
//! | key | algorithm |
//! |---|---|
//! | RSA | RS256 |
//! | EC P-256 / P-384 | ES256 / ES384 |
//! | Ed25519 | EdDSA |
//! | none (a client secret) | HS256 |
//!
//! The key's type is found by loading its PKCS#8 DER with aws-lc-rs (a PKCS#1 RSA key is
//! accepted too), so a key is signed with exactly the algorithm it was made for. The key id
//! (`kid`) is the RFC 7638 SHA-256 thumbprint of the public key, stable for as long as the key.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CryptoError;

/// A signature algorithm Portcullis signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlgorithm {
    Hs256,
    Rs256,
    Es256,
    Es384,
    EdDsa,
}

impl JwsAlgorithm {
    /// The JOSE name (`RS256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Hs256 => "HS256",
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            JwsAlgorithm::Hs256 => Algorithm::HS256,
            JwsAlgorithm::Rs256 => Algorithm::RS256,
            JwsAlgorithm::Es256 => Algorithm::ES256,
            JwsAlgorithm::Es384 => Algorithm::ES384,
            JwsAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }
}

fn jws_error(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Jws(e.to_string())
}

/// A key that signs tokens, with what verifies them.
pub struct JwsSigner {
    alg: JwsAlgorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: Option<String>,
    /// The public key as a JWK (none for HS256: a shared secret is never published).
    public_jwk: Option<serde_json::Value>,
}

impl std::fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwsSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwsSigner {
    /// HS256 keyed with a client secret (authentik's signing when a provider has no key).
    pub fn hs256(secret: &[u8]) -> Result<Self, CryptoError> {
        if secret.is_empty() {
            return Err(jws_error("an HS256 secret cannot be empty"));
        }
        Ok(JwsSigner {
            alg: JwsAlgorithm::Hs256,
            encoding: EncodingKey::from_secret(secret).map_err(jws_error)?,
            decoding: DecodingKey::from_secret(secret).map_err(jws_error)?,
            kid: None,
            public_jwk: None,
        })
    }

    /// A signer from a PEM private key (PKCS#8, or PKCS#1 for RSA), and optionally the PEM
    /// certificate to publish in the JWK's `x5c`.
    pub fn from_pem(
        private_key_pem: &str,
        certificate_pem: Option<&str>,
    ) -> Result<Self, CryptoError> {
        let key = pem::parse(private_key_pem).map_err(jws_error)?;
        let der = key.contents();
        let (alg, encoding) =
            if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).is_ok() {
                (JwsAlgorithm::Es256, EncodingKey::from_ec_der(der))
            } else if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der).is_ok() {
                (JwsAlgorithm::Es384, EncodingKey::from_ec_der(der))
            } else if let Ok(ed) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                // jsonwebtoken takes the PKCS#8 v1 form (no public key inside); rcgen writes v2.
                let v1 = ed.to_pkcs8v1().map_err(jws_error)?;
                (JwsAlgorithm::EdDsa, EncodingKey::from_ed_der(v1.as_ref()))
            } else if RsaKeyPair::from_der(der).is_ok() {
                (JwsAlgorithm::Rs256, EncodingKey::from_rsa_der(der))
            } else if RsaKeyPair::from_pkcs8(der).is_ok() {
                // jsonwebtoken signs RSA with the PKCS#1 form inside the PKCS#8 wrapper.
                let encoding =
                    EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(jws_error)?;
                (JwsAlgorithm::Rs256, encoding)
            } else {
                return Err(jws_error(
                    "the private key is not an RSA, EC P-256/P-384 or Ed25519 key",
                ));
            };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).map_err(jws_error)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(jws_error)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        if let Some(cert) = certificate_pem {
            let cert = pem::parse(cert).map_err(jws_error)?;
            jwk.common.x509_chain = Some(vec![STANDARD.encode(cert.contents())]);
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(jws_error)?;
        let public_jwk = serde_json::to_value(&jwk).map_err(jws_error)?;
        Ok(JwsSigner {
            alg,
            encoding,
            decoding,
            kid: Some(kid),
            public_jwk: Some(public_jwk),
        })
    }

    pub fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key for a JWK Set (`use: sig`, `kid`, `alg`, `x5c` when a certificate was
    /// given); `None` for HS256.
    pub fn public_jwk(&self) -> Option<&serde_json::Value> {
        self.public_jwk.as_ref()
    }

    /// Signs `claims` as a compact JWS with header `typ` (`JWT`, `at+jwt`, `logout+jwt`).
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, CryptoError> {
        let mut header = Header::new(self.alg.jwt());
        header.typ = Some(typ.to_owned());
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(jws_error)
    }

    /// Verifies a token this key signed: signature and algorithm (the header's `alg` must be
    /// this key's, so `none` and algorithm confusion are refused), and `exp` when present.
    /// Audience and issuer are the caller's to check on the returned claims.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, CryptoError> {
        let mut v = Validation::new(self.alg.jwt());
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v.leeway = 0;
        jsonwebtoken::decode::<T>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(jws_error)
    }

    /// [`JwsSigner::verify`] without the expiry: for tokens that still say who they were
    /// about once expired (an OIDC `id_token_hint`).
    pub fn verify_ignoring_expiry<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<T, CryptoError> {
        let mut v = Validation::new(self.alg.jwt());
        v.validate_aud = false;
        v.validate_exp = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(jws_error)
    }
}

/// A JWK Set document (`{"keys": [...]}`) of these signers' public keys.
pub fn jwks<'a>(signers: impl IntoIterator<Item = &'a JwsSigner>) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = signers
        .into_iter()
        .filter_map(|s| s.public_jwk().cloned())
        .collect();
    serde_json::json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::cert::{KeyAlgorithm, generate_self_signed_with};
    use serde_json::{Value, json};

    fn signer(alg: KeyAlgorithm) -> JwsSigner {
        let kp = generate_self_signed_with(
            alg,
            "test",
            &[],
            365,
            portcullis_core::Clock::now(&portcullis_core::SystemClock),
        )
        .unwrap();
        JwsSigner::from_pem(&kp.private_key_pem, Some(&kp.certificate_pem)).unwrap()
    }

    #[test]
    fn each_key_type_signs_with_its_algorithm_and_verifies() {
        for (key, alg, kty) in [
            (KeyAlgorithm::EcdsaP256, JwsAlgorithm::Es256, "EC"),
            (KeyAlgorithm::EcdsaP384, JwsAlgorithm::Es384, "EC"),
            (KeyAlgorithm::Rsa2048, JwsAlgorithm::Rs256, "RSA"),
            (KeyAlgorithm::Ed25519, JwsAlgorithm::EdDsa, "OKP"),
        ] {
            let s = signer(key);
            assert_eq!(s.algorithm(), alg);
            let token = s.sign(&json!({"sub": "u1", "n": 1}), "JWT").unwrap();
            let claims: Value = s.verify(&token).unwrap();
            assert_eq!(claims["sub"], "u1");
            let jwk = s.public_jwk().unwrap();
            assert_eq!(jwk["kty"], kty);
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["kid"].as_str(), s.kid());
            assert!(jwk.get("d").is_none(), "private part published: {jwk}");
            assert_eq!(jwk["x5c"].as_array().unwrap().len(), 1);
            // The header names the key.
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), s.kid());
        }
    }

    #[test]
    fn tampered_foreign_and_unsigned_tokens_are_refused() {
        let s = signer(KeyAlgorithm::EcdsaP256);
        let other = signer(KeyAlgorithm::EcdsaP256);
        let token = s.sign(&json!({"sub": "u1"}), "JWT").unwrap();
        assert!(other.verify::<Value>(&token).is_err());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        parts[1] = engine.encode(br#"{"sub":"admin"}"#);
        assert!(s.verify::<Value>(&parts.join(".")).is_err());
        // alg none, and an HS256 token keyed with the public key (algorithm confusion).
        let none = format!(
            "{}.{}.",
            engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
            engine.encode(br#"{"sub":"u1"}"#)
        );
        assert!(s.verify::<Value>(&none).is_err());
        let public = serde_json::to_vec(s.public_jwk().unwrap()).unwrap();
        let confused = JwsSigner::hs256(&public)
            .unwrap()
            .sign(&json!({"sub": "u1"}), "JWT")
            .unwrap();
        assert!(s.verify::<Value>(&confused).is_err());
    }

    #[test]
    fn expired_tokens_are_refused_and_hs256_is_never_published() {
        let h = JwsSigner::hs256(b"client-secret").unwrap();
        assert!(h.public_jwk().is_none());
        assert_eq!(jwks([&h]), json!({"keys": []}));
        let past = json!({"sub": "u", "exp": 1_000_000_000});
        let token = h.sign(&past, "JWT").unwrap();
        assert!(h.verify::<Value>(&token).is_err());
        let future = json!({"sub": "u", "exp": 4_000_000_000u64});
        assert!(h.verify::<Value>(&h.sign(&future, "JWT").unwrap()).is_ok());
        assert!(JwsSigner::hs256(b"").is_err());
    }

    #[test]
    fn garbage_keys_are_refused() {
        assert!(JwsSigner::from_pem("not a key", None).is_err());
        let bogus = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(JwsSigner::from_pem(bogus, None).is_err());
    }
}
