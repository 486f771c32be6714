//! Certificates and private keys, as authentik's "certificate-key pairs" need them: generating a
//! self-signed pair, reading a certificate's fingerprints, validity and key type, checking that
//! a private key parses and belongs to a certificate.
//!
//! PEM input is untrusted (pasted in the UI, imported from blueprints): anything over 64 KiB is
//! refused before parsing. Keys are parsed by aws-lc-rs; certificates by x509-parser.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use chrono::{DateTime, Utc};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize, SerialNumber};
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS, OID_SIG_ED448,
    OID_SIG_ED25519,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{CryptoError, random};

/// Largest PEM text we agree to parse.
pub const MAX_PEM_LEN: usize = 64 * 1024;

/// A freshly generated certificate and its private key, both PEM (the key as PKCS#8).
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKeypair {
    /// `-----BEGIN CERTIFICATE-----`.
    pub certificate_pem: String,
    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8).
    pub private_key_pem: String,
}

impl std::fmt::Debug for GeneratedKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKeypair")
            .field("certificate_pem", &self.certificate_pem)
            .field("private_key_pem", &"[redacted]")
            .finish()
    }
}

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (ES256): fast, and our default.
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384 (ES384).
    EcdsaP384,
    /// RSA 2048 with SHA-256 (RS256).
    Rsa2048,
    /// RSA 4096 with SHA-256, authentik's default (takes a second or more to generate).
    Rsa4096,
    /// Ed25519 (`EdDSA`).
    Ed25519,
}

/// What a certificate says about itself, as authentik shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// SHA-256 of the DER, lowercase hex separated by colons (`ab:cd:...`).
    pub fingerprint_sha256: String,
    /// SHA-1 of the DER, same format.
    pub fingerprint_sha1: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Subject distinguished name (`CN=foo`).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// `"rsa"`, `"ec"`, `"ed25519"` or `"ed448"` (authentik's `private_key_type`); `None` for
    /// other public key algorithms.
    pub key_type: Option<String>,
}

/// A self-signed certificate for `common_name` with an ECDSA P-256 key, valid from a minute
/// before `now` for `validity_days` days. Names in `subject_alt_names` that parse as IP
/// addresses become IP SANs, the rest DNS SANs.
///
/// # Errors
/// [`CryptoError::CertificateGeneration`] for invalid names or dates, or if signing fails.
pub fn generate_self_signed(
    common_name: &str,
    subject_alt_names: &[String],
    validity_days: u32,
    now: DateTime<Utc>,
) -> Result<GeneratedKeypair, CryptoError> {
    generate_self_signed_with(
        KeyAlgorithm::EcdsaP256,
        common_name,
        subject_alt_names,
        validity_days,
        now,
    )
}

/// [`generate_self_signed`] with the key algorithm of your choice.
///
/// # Errors
/// As [`generate_self_signed`].
pub fn generate_self_signed_with(
    algorithm: KeyAlgorithm,
    common_name: &str,
    subject_alt_names: &[String],
    validity_days: u32,
    now: DateTime<Utc>,
) -> Result<GeneratedKeypair, CryptoError> {
    let generation = |e: rcgen::Error| CryptoError::CertificateGeneration(e.to_string());
    let key_pair = match algorithm {
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyAlgorithm::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
        }
        KeyAlgorithm::Rsa4096 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
        }
        KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
    }
    .map_err(generation)?;

    let mut params = CertificateParams::new(subject_alt_names.to_vec()).map_err(generation)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let not_before = now
        .checked_sub_signed(chrono::Duration::minutes(1))
        .ok_or_else(|| CryptoError::CertificateGeneration("date out of range".to_owned()))?;
    let not_after = now
        .checked_add_signed(chrono::Duration::days(i64::from(validity_days)))
        .ok_or_else(|| CryptoError::CertificateGeneration("validity too long".to_owned()))?;
    params.not_before = to_offset_date_time(not_before)?;
    params.not_after = to_offset_date_time(not_after)?;
    // 16 random bytes, positive (RFC 5280 allows up to 20 octets).
    let mut serial = [0u8; 16];
    random::fill(&mut serial)?;
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    params.serial_number = Some(SerialNumber::from_slice(&serial));

    let certificate = params.self_signed(&key_pair).map_err(generation)?;
    Ok(GeneratedKeypair {
        certificate_pem: certificate.pem(),
        private_key_pem: key_pair.serialize_pem(),
    })
}

fn to_offset_date_time(at: DateTime<Utc>) -> Result<time::OffsetDateTime, CryptoError> {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp())
        .map_err(|e| CryptoError::CertificateGeneration(e.to_string()))
}

/// Reads the first certificate of a PEM text (a chain may follow).
///
/// # Errors
/// [`CryptoError::InputTooLarge`], [`CryptoError::Pem`] when there is no certificate block,
/// [`CryptoError::Certificate`] when it does not parse.
pub fn parse_certificate(pem: &str) -> Result<CertificateInfo, CryptoError> {
    let der = certificate_der(pem)?;
    let cert = parse_der(&der)?;
    let validity = cert.validity();
    let time = |t: &x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0)
            .ok_or_else(|| CryptoError::Certificate("validity date out of range".to_owned()))
    };
    Ok(CertificateInfo {
        fingerprint_sha256: fingerprint(&digest::SHA256, &der),
        fingerprint_sha1: fingerprint(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der),
        not_before: time(&validity.not_before)?,
        not_after: time(&validity.not_after)?,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        key_type: certificate_key_type(&cert).map(str::to_owned),
    })
}

/// Checks that `key_pem` holds an unencrypted private key we can use: PKCS#8
/// (`PRIVATE KEY`: RSA, EC P-256/384/521, Ed25519), SEC1 (`EC PRIVATE KEY`) or PKCS#1
/// (`RSA PRIVATE KEY`). RSA keys must have 2048 to 8192 bits.
///
/// # Errors
/// [`CryptoError::InputTooLarge`], [`CryptoError::Pem`] when there is no key block,
/// [`CryptoError::PrivateKey`] when the key does not parse or is not supported.
pub fn validate_private_key(key_pem: &str) -> Result<(), CryptoError> {
    parse_private_key(key_pem).map(|_| ())
}

/// Whether the private key in `key_pem` belongs to the certificate in `cert_pem` (their public
/// keys are equal).
///
/// # Errors
/// As [`parse_certificate`] and [`validate_private_key`].
pub fn key_matches_certificate(cert_pem: &str, key_pem: &str) -> Result<bool, CryptoError> {
    let der = certificate_der(cert_pem)?;
    let cert = parse_der(&der)?;
    let key = parse_private_key(key_pem)?;
    let cert_type = certificate_key_type(&cert);
    let same_type = matches!(
        (&key, cert_type),
        (PrivateKey::Rsa(_), Some("rsa"))
            | (PrivateKey::Ec(_), Some("ec"))
            | (PrivateKey::Ed25519(_), Some("ed25519"))
    );
    Ok(same_type && key.public_key() == &*cert.public_key().subject_public_key.data)
}

/// A parsed private key.
enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl PrivateKey {
    /// The public key as a certificate's `subjectPublicKey` bit string holds it: `RSAPublicKey`
    /// DER, an uncompressed EC point, or the raw Ed25519 key.
    fn public_key(&self) -> &[u8] {
        match self {
            PrivateKey::Rsa(key) => key.public_key().as_ref(),
            PrivateKey::Ec(key) => key.public_key().as_ref(),
            PrivateKey::Ed25519(key) => key.public_key().as_ref(),
        }
    }
}

const EC_ALGORITHMS: [&EcdsaSigningAlgorithm; 3] = [
    &ECDSA_P256_SHA256_ASN1_SIGNING,
    &ECDSA_P384_SHA384_ASN1_SIGNING,
    &ECDSA_P521_SHA512_ASN1_SIGNING,
];

fn parse_private_key(key_pem: &str) -> Result<PrivateKey, CryptoError> {
    check_size(key_pem)?;
    let blocks = pem::parse_many(key_pem).map_err(|e| CryptoError::Pem(e.to_string()))?;
    let block = blocks
        .iter()
        .find(|b| {
            matches!(
                b.tag(),
                "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
            )
        })
        .ok_or_else(|| CryptoError::Pem("no private key block".to_owned()))?;
    let der = block.contents();
    let unsupported = || CryptoError::PrivateKey("unsupported or malformed key".to_owned());
    match block.tag() {
        "PRIVATE KEY" => {
            if let Ok(key) = RsaKeyPair::from_pkcs8(der) {
                return Ok(PrivateKey::Rsa(key));
            }
            for alg in EC_ALGORITHMS {
                if let Ok(key) = EcdsaKeyPair::from_pkcs8(alg, der) {
                    return Ok(PrivateKey::Ec(key));
                }
            }
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(PrivateKey::Ed25519)
                .map_err(|_| unsupported())
        }
        "EC PRIVATE KEY" => EC_ALGORITHMS
            .iter()
            .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, der).ok())
            .map(PrivateKey::Ec)
            .ok_or_else(unsupported),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(der)
            .map(PrivateKey::Rsa)
            .map_err(|_| unsupported()),
        _ => Err(CryptoError::PrivateKey(
            "encrypted private keys are not supported".to_owned(),
        )),
    }
}

fn check_size(pem: &str) -> Result<(), CryptoError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(CryptoError::InputTooLarge {
            limit: MAX_PEM_LEN,
            actual: pem.len(),
        });
    }
    Ok(())
}

/// The DER of the first `CERTIFICATE` block.
pub(crate) fn certificate_der(pem: &str) -> Result<Vec<u8>, CryptoError> {
    check_size(pem)?;
    pem::parse_many(pem)
        .map_err(|e| CryptoError::Pem(e.to_string()))?
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .ok_or_else(|| CryptoError::Pem("no certificate block".to_owned()))
}

pub(crate) fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, CryptoError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| CryptoError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CryptoError::Certificate(
            "trailing data after the certificate".to_owned(),
        ));
    }
    Ok(cert)
}

fn certificate_key_type(cert: &X509Certificate<'_>) -> Option<&'static str> {
    let oid = &cert.public_key().algorithm.algorithm;
    if *oid == OID_PKCS1_RSAENCRYPTION || *oid == OID_PKCS1_RSASSAPSS {
        Some("rsa")
    } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        Some("ec")
    } else if *oid == OID_SIG_ED25519 {
        Some("ed25519")
    } else if *oid == OID_SIG_ED448 {
        Some("ed448")
    } else {
        None
    }
}

/// Lowercase hex, colon separated, like authentik's fingerprints.
fn fingerprint(algorithm: &'static digest::Algorithm, der: &[u8]) -> String {
    digest::digest(algorithm, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests;
