//! The crate's one error type. Messages never contain secrets, passwords or key material.

/// Everything that can go wrong in `portcullis-crypto`.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The hashing pool is shut down or its worker task failed.
    #[error("password hashing task failed: {0}")]
    Task(String),
    /// An encrypted value is not in the `v1:<key id>:<data>` format.
    #[error("malformed encrypted value: {0}")]
    MalformedCiphertext(&'static str),
    /// An encrypted value names a key this process does not have.
    #[error("no key with id {0:?} to decrypt this value")]
    UnknownKeyId(String),
    /// Encryption failed.
    #[error("encryption failed")]
    Encrypt,
    /// Decryption failed: the value was tampered with or encrypted with another key.
    #[error("decryption failed: the value was altered or the key is wrong")]
    Decrypt,
    /// A decrypted value is not UTF-8 text.
    #[error("decrypted value is not valid UTF-8")]
    InvalidUtf8,
    /// An input is larger than we agree to parse.
    #[error("input of {actual} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The size received.
        actual: usize,
    },
    /// PEM text could not be decoded or holds no block of the expected kind.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// A certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// A private key could not be parsed or is not supported.
    #[error("invalid private key: {0}")]
    PrivateKey(String),
    /// Generating a key pair or certificate failed.
    #[error("certificate generation failed: {0}")]
    CertificateGeneration(String),
    /// Signing or verifying a JSON Web Signature failed (bad key, bad token, wrong algorithm).
    #[error("jws: {0}")]
    Jws(String),
}
