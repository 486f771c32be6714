//! portcullis-crypto: the cryptography Portcullis needs, behind small typed functions.
//!
//! One crypto provider, aws-lc-rs, does the work (random numbers, AEAD, digests, key
//! generation); `argon2` hashes passwords, and `bcrypt` only verifies imported hashes.
//!
//! - [`password`]: hashing and verifying passwords (argon2id, plus Django/authentik formats to
//!   import), and the bounded pool that keeps hashing off the async runtime.
//! - [`secret`]: encryption of secrets at rest, with key ids so keys can rotate.
//! - [`random`]: random strings and constant-time comparison.
//! - [`cert`]: self-signed certificates, certificate inspection and private key checks.
//! - [`jws`] and [`jwe`]: signed and encrypted tokens.

pub mod cert;
mod error;
pub mod jwe;
pub mod jws;
pub mod password;
pub mod random;
pub mod secret;

pub use cert::{
    CertificateInfo, GeneratedKeypair, KeyAlgorithm, generate_self_signed,
    generate_self_signed_with, key_matches_certificate, parse_certificate, validate_private_key,
};
pub use error::CryptoError;
pub use password::{
    PasswordHasher, UNUSABLE_PASSWORD, Verification, hash_password, is_password_usable,
    is_supported_hash, needs_rehash, unusable_password, verify_password,
};
pub use random::{constant_time_eq, random_string, sha256_hex};
pub use secret::{SecretBox, generate_secret_key};
