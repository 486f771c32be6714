//! Password hashing and verification.
//!
//! New hashes are argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) as PHC strings:
//! `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. To import users from authentik (Django),
//! [`verify_password`] also reads Django's formats and asks for a rehash after a successful login:
//!
//! | stored value                                   | Django hasher                 |
//! |------------------------------------------------|-------------------------------|
//! | `pbkdf2_sha256$<iterations>$<salt>$<b64 hash>` | `PBKDF2PasswordHasher`        |
//! | `pbkdf2_sha1$<iterations>$<salt>$<b64 hash>`   | `PBKDF2SHA1PasswordHasher`    |
//! | `argon2$argon2id$v=19$m=..,t=..,p=..$<s>$<h>`  | `Argon2PasswordHasher`        |
//! | `bcrypt_sha256$$2b$12$...`                     | `BCryptSHA256PasswordHasher`  |
//! | `bcrypt$$2b$12$...`                            | `BCryptPasswordHasher`        |
//! | `!...`                                         | unusable password (never matches) |
//!
//! Imported hashes are untrusted input: their work factors are bounded before any work is done
//! (PBKDF2 iterations, argon2 memory/time/lanes, bcrypt cost), and anything unparsable simply
//! does not verify. Digests are compared in constant time.
//!
//! Hashing is slow on purpose, so the async server goes through [`PasswordHasher`], a fixed
//! pool of hashing threads.

use std::num::NonZeroU32;
use std::sync::{Mutex, OnceLock};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use subtle::ConstantTimeEq;

use portcullis_core::pool::WorkerPool;

use crate::{CryptoError, random};

/// Stored passwords starting with this marker are unusable: nothing verifies against them
/// (Django's `UNUSABLE_PASSWORD_PREFIX`).
pub const UNUSABLE_PASSWORD: &str = "!";

/// argon2 memory cost in KiB for new hashes (OWASP: 19 MiB).
pub const ARGON2_M_COST: u32 = 19_456;
/// argon2 iterations for new hashes.
pub const ARGON2_T_COST: u32 = 2;
/// argon2 lanes for new hashes.
pub const ARGON2_P_COST: u32 = 1;
const ARGON2_OUTPUT_LEN: usize = 32;
const ARGON2_SALT_LEN: usize = 16;

/// Highest PBKDF2 iteration count we agree to compute for an imported hash.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Highest argon2 memory cost (KiB) we agree to compute for an imported hash: 1 GiB.
pub const MAX_ARGON2_M_COST: u32 = 1024 * 1024;
/// Highest argon2 time cost we agree to compute for an imported hash.
pub const MAX_ARGON2_T_COST: u32 = 32;
/// Highest argon2 parallelism we agree to compute for an imported hash.
pub const MAX_ARGON2_P_COST: u32 = 64;
/// Highest bcrypt cost we agree to compute for an imported hash (Django's default is 12).
pub const MAX_BCRYPT_COST: u32 = 16;
/// Stored hashes longer than this are refused without parsing.
const MAX_STORED_LEN: usize = 1024;
/// Longest argon2 digest accepted from an imported hash.
const MAX_ARGON2_OUTPUT_LEN: usize = 128;
/// Longest argon2 salt accepted from an imported hash.
const MAX_ARGON2_SALT_LEN: usize = 128;

/// The password behind the dummy hash used for unknown users.
const DUMMY_PASSWORD: &str = "portcullis dummy password for timing equalisation";

/// Base64 as PHC strings use it: standard alphabet, no padding (accepted if present).
const PHC_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches.
    pub valid: bool,
    /// The password matches but the stored hash is not argon2id with our parameters in our
    /// format: hash the password again and store the new hash. Never true when `valid` is false.
    pub needs_rehash: bool,
}

impl Verification {
    /// A failed verification.
    pub const INVALID: Verification = Verification {
        valid: false,
        needs_rehash: false,
    };
}

/// Hashes `password` with argon2id and our parameters, as a PHC string.
///
/// # Errors
/// [`CryptoError::Random`] if no salt can be drawn, [`CryptoError::PasswordHash`] if argon2 fails.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let mut salt = [0u8; ARGON2_SALT_LEN];
    random::fill(&mut salt)?;
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, CryptoError> {
    let params = Params::new(
        ARGON2_M_COST,
        ARGON2_T_COST,
        ARGON2_P_COST,
        Some(ARGON2_OUTPUT_LEN),
    )
    .map_err(|e| CryptoError::PasswordHash(e.to_string()))?;
    let mut out = [0u8; ARGON2_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    with_blocks(argon.params().block_count(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
    })
    .map_err(|e| CryptoError::PasswordHash(e.to_string()))?;
    Ok(format!(
        "$argon2id$v=19$m={ARGON2_M_COST},t={ARGON2_T_COST},p={ARGON2_P_COST}${}${}",
        PHC_B64.encode(salt),
        PHC_B64.encode(out)
    ))
}

/// Reused argon2 working memory. Allocating 19 MiB per hash on whichever blocking thread runs it
/// made the allocator keep one such block per thread (314 MB peak RSS at 64 concurrent logins in
/// bench/login); buffers are taken from and returned to this pool instead, so memory stays at one
/// buffer per concurrent hash. Buffers for unusually large (imported) parameters are not kept.
static BLOCK_POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
/// Most buffers kept for reuse (a hasher runs at most one hash per CPU at once).
const MAX_POOLED: usize = 16;

/// How long the hashing threads stay idle before the pooled buffers go back to the system.
pub const HASH_MEMORY_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Blocks reserved per buffer: more than glibc's largest mmap threshold (32 MiB), so each
/// buffer is its own mapping and dropping it returns the memory to the system (a 19 MiB
/// allocation could otherwise land in an arena that keeps it). Only the blocks a hash uses
/// (19 MiB) are ever touched, so only they count in RSS.
const RESERVED_BLOCKS: usize = 34 * 1024;

/// Drops the pooled buffers: [`PasswordHasher`] calls it when its threads have been idle for
/// [`HASH_MEMORY_IDLE`], so an idle server does not keep 19 MiB per past concurrent hash.
fn release_pooled_blocks() {
    if let Ok(mut pool) = BLOCK_POOL.lock() {
        pool.clear();
    }
}

fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let standard = count <= ARGON2_M_COST as usize;
    let mut buf = if standard {
        BLOCK_POOL
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| Vec::with_capacity(RESERVED_BLOCKS))
    } else {
        Vec::new()
    };
    if buf.len() < count {
        buf.resize(count, Block::default());
    }
    let out = f(buf.get_mut(..count).unwrap_or_default());
    if standard
        && let Ok(mut pool) = BLOCK_POOL.lock()
        && pool.len() < MAX_POOLED
    {
        pool.push(buf);
    }
    out
}

/// Checks `password` against a stored hash in any supported format (see the module docs).
///
/// Unknown, garbled or over-expensive hashes and unusable passwords never verify.
#[must_use]
pub fn verify_password(stored: &str, password: &str) -> Verification {
    let Some(parsed) = StoredHash::parse(stored) else {
        return Verification::INVALID;
    };
    if parsed.verify(password) {
        Verification {
            valid: true,
            needs_rehash: !parsed.is_current(),
        }
    } else {
        Verification::INVALID
    }
}

/// Whether a stored hash should be replaced by a fresh [`hash_password`] at the next chance.
///
/// True for every format but our own argon2id with our parameters, including unparsable values;
/// false for unusable passwords (there is nothing to rehash).
#[must_use]
pub fn needs_rehash(stored: &str) -> bool {
    if !is_password_usable(stored) {
        return false;
    }
    StoredHash::parse(stored).is_none_or(|parsed| !parsed.is_current())
}

/// Whether `stored` is a hash this module can verify (our argon2id or an importable
/// authentik/Django format within our work bounds): what an import must check first.
#[must_use]
pub fn is_supported_hash(stored: &str) -> bool {
    StoredHash::parse(stored).is_some()
}

/// Whether a stored value can ever verify (it is not marked unusable).
#[must_use]
pub fn is_password_usable(stored: &str) -> bool {
    !stored.starts_with(UNUSABLE_PASSWORD)
}

/// A fresh unusable password: the marker followed by 40 random characters, like Django's
/// `make_password(None)`, so two unusable values never look alike.
#[must_use]
pub fn unusable_password() -> String {
    format!("{UNUSABLE_PASSWORD}{}", random::random_string(40))
}

/// A stored hash, parsed and with its work factors checked against our bounds.
enum StoredHash<'a> {
    Argon2 {
        algorithm: Algorithm,
        version: Version,
        params: Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
        /// In our PHC format (not Django's `argon2$` prefix).
        phc: bool,
    },
    Pbkdf2 {
        algorithm: &'static aws_lc_rs::pbkdf2::Algorithm,
        iterations: NonZeroU32,
        salt: &'a str,
        hash: Vec<u8>,
    },
    Bcrypt {
        /// Django's `bcrypt_sha256`: bcrypt over the hex SHA-256 of the password.
        sha256: bool,
        hash: &'a str,
    },
}

impl<'a> StoredHash<'a> {
    fn parse(stored: &'a str) -> Option<Self> {
        if stored.len() > MAX_STORED_LEN || !is_password_usable(stored) {
            return None;
        }
        if let Some(rest) = stored.strip_prefix("argon2$") {
            return parse_argon2(rest, false);
        }
        if let Some(rest) = stored.strip_prefix('$')
            && rest.starts_with("argon2")
        {
            return parse_argon2(rest, true);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            return parse_pbkdf2(rest, &aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256, 32);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha1$") {
            return parse_pbkdf2(rest, &aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1, 20);
        }
        if let Some(rest) = stored.strip_prefix("bcrypt_sha256$") {
            return parse_bcrypt(rest, true);
        }
        if let Some(rest) = stored.strip_prefix("bcrypt$") {
            return parse_bcrypt(rest, false);
        }
        None
    }

    fn verify(&self, password: &str) -> bool {
        match self {
            StoredHash::Argon2 {
                algorithm,
                version,
                params,
                salt,
                hash,
                ..
            } => {
                let mut out = vec![0u8; hash.len()];
                let argon = Argon2::new(*algorithm, *version, params.clone());
                let ok = with_blocks(argon.params().block_count(), |blocks| {
                    argon.hash_password_into_with_memory(
                        password.as_bytes(),
                        salt,
                        &mut out,
                        blocks,
                    )
                })
                .is_ok();
                ok && bool::from(out.ct_eq(hash))
            }
            StoredHash::Pbkdf2 {
                algorithm,
                iterations,
                salt,
                hash,
            } => {
                // Compares in constant time (AWS-LC's `CRYPTO_memcmp`); the digest length was
                // checked against the algorithm's at parse time.
                aws_lc_rs::pbkdf2::verify(
                    **algorithm,
                    *iterations,
                    salt.as_bytes(),
                    password.as_bytes(),
                    hash,
                )
                .is_ok()
            }
            StoredHash::Bcrypt { sha256, hash } => {
                // The bcrypt crate compares its digests with `subtle`.
                if *sha256 {
                    let digest =
                        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, password.as_bytes());
                    bcrypt::verify(hex::encode(digest.as_ref()), hash).unwrap_or(false)
                } else {
                    // Truncating verify: bcrypt only ever used the first 72 bytes.
                    bcrypt::verify(password, hash).unwrap_or(false)
                }
            }
        }
    }

    /// argon2id, version 0x13, our parameters, in our PHC format.
    fn is_current(&self) -> bool {
        match self {
            StoredHash::Argon2 {
                algorithm,
                version,
                params,
                salt,
                hash,
                phc,
            } => {
                *phc && *algorithm == Algorithm::Argon2id
                    && *version == Version::V0x13
                    && params.m_cost() == ARGON2_M_COST
                    && params.t_cost() == ARGON2_T_COST
                    && params.p_cost() == ARGON2_P_COST
                    && salt.len() >= ARGON2_SALT_LEN
                    && hash.len() == ARGON2_OUTPUT_LEN
            }
            StoredHash::Pbkdf2 { .. } | StoredHash::Bcrypt { .. } => false,
        }
    }
}

/// Parses `argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` (the part after `$` or `argon2$`).
/// The version field is optional (absent means 0x10, as in old argon2i hashes).
fn parse_argon2(rest: &str, phc: bool) -> Option<StoredHash<'_>> {
    let mut fields = rest.split('$');
    let algorithm = match fields.next()? {
        "argon2id" => Algorithm::Argon2id,
        "argon2i" => Algorithm::Argon2i,
        "argon2d" => Algorithm::Argon2d,
        _ => return None,
    };
    let mut field = fields.next()?;
    let version = if let Some(v) = field.strip_prefix("v=") {
        field = fields.next()?;
        match v {
            "19" => Version::V0x13,
            "16" => Version::V0x10,
            _ => return None,
        }
    } else {
        Version::V0x10
    };
    let (m, t, p) = parse_argon2_params(field)?;
    let salt = PHC_B64.decode(fields.next()?).ok()?;
    let hash = PHC_B64.decode(fields.next()?).ok()?;
    if fields.next().is_some() {
        return None;
    }
    if m > MAX_ARGON2_M_COST || t > MAX_ARGON2_T_COST || p > MAX_ARGON2_P_COST {
        tracing::warn!(
            m_cost = m,
            t_cost = t,
            p_cost = p,
            "refusing to verify an argon2 hash whose cost exceeds our bounds"
        );
        return None;
    }
    if salt.len() < 8 || salt.len() > MAX_ARGON2_SALT_LEN {
        return None;
    }
    if hash.len() < Params::MIN_OUTPUT_LEN || hash.len() > MAX_ARGON2_OUTPUT_LEN {
        return None;
    }
    let params = Params::new(m, t, p, Some(hash.len())).ok()?;
    Some(StoredHash::Argon2 {
        algorithm,
        version,
        params,
        salt,
        hash,
        phc,
    })
}

/// Parses `m=..,t=..,p=..` (any order, each exactly once, nothing else).
fn parse_argon2_params(field: &str) -> Option<(u32, u32, u32)> {
    let (mut m, mut t, mut p) = (None, None, None);
    for pair in field.split(',') {
        let (key, value) = pair.split_once('=')?;
        let value = parse_decimal(value)?;
        let slot = match key {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    Some((m?, t?, p?))
}

/// Parses `<iterations>$<salt>$<b64 hash>` (the part after `pbkdf2_<digest>$`).
fn parse_pbkdf2<'a>(
    rest: &'a str,
    algorithm: &'static aws_lc_rs::pbkdf2::Algorithm,
    digest_len: usize,
) -> Option<StoredHash<'a>> {
    let mut fields = rest.split('$');
    let iterations = parse_decimal(fields.next()?)?;
    let salt = fields.next()?;
    let hash = STANDARD.decode(fields.next()?).ok()?;
    if fields.next().is_some() || salt.is_empty() || hash.len() != digest_len {
        return None;
    }
    if iterations > MAX_PBKDF2_ITERATIONS {
        tracing::warn!(
            iterations,
            "refusing to verify a PBKDF2 hash whose iteration count exceeds our bound"
        );
        return None;
    }
    Some(StoredHash::Pbkdf2 {
        algorithm,
        iterations: NonZeroU32::new(iterations)?,
        salt,
        hash,
    })
}

/// Checks `$2b$<cost>$<53 chars>` (the part after `bcrypt$` or `bcrypt_sha256$`).
fn parse_bcrypt(hash: &str, sha256: bool) -> Option<StoredHash<'_>> {
    let mut fields = hash.split('$');
    if !fields.next()?.is_empty() {
        return None;
    }
    if !matches!(fields.next()?, "2a" | "2b" | "2x" | "2y") {
        return None;
    }
    let cost_field = fields.next()?;
    let cost = parse_decimal(cost_field)?;
    let body = fields.next()?;
    if fields.next().is_some() || cost_field.len() != 2 || body.len() != 53 {
        return None;
    }
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        if cost > MAX_BCRYPT_COST {
            tracing::warn!(
                cost,
                "refusing to verify a bcrypt hash whose cost exceeds our bound"
            );
        }
        return None;
    }
    Some(StoredHash::Bcrypt { sha256, hash })
}

/// Parses a plain decimal number: ASCII digits only, no sign, no whitespace.
fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A hash of a fixed password with our parameters and a fixed salt, computed once: verifying
/// against it costs what verifying a real user's current hash costs.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_with_salt(DUMMY_PASSWORD, &[0x5a; ARGON2_SALT_LEN]).unwrap_or_else(|error| {
            tracing::error!(%error, "could not compute the dummy password hash");
            String::new()
        })
    })
}

/// A bounded pool for password hashing, so slow hashes never block the async runtime and a
/// burst of logins cannot take every CPU: a [`WorkerPool`] of `portcullis-hash-N` threads, as
/// many as `max_concurrent` (tokio's blocking pool behind a semaphore handed each hash to
/// another thread, and the hand-offs cost a third of a login's CPU besides the hash). Cloning
/// is cheap and clones share the threads.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    pool: WorkerPool,
}

impl Default for PasswordHasher {
    /// As many concurrent hashes as the machine has CPUs.
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }
}

impl PasswordHasher {
    /// A pool running at most `max_concurrent` hashes at once (at least one).
    #[must_use]
    pub fn new(max_concurrent: usize) -> Self {
        let pool = WorkerPool::with_idle(
            "portcullis-hash",
            max_concurrent,
            HASH_MEMORY_IDLE,
            release_pooled_blocks,
        );
        if pool.concurrency() < max_concurrent.clamp(1, 1024) {
            tracing::error!(
                started = pool.concurrency(),
                "could not start every password hashing thread"
            );
        }
        Self { pool }
    }

    /// How many hashes run at once at most (the threads started).
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.pool.concurrency()
    }

    /// [`hash_password`] in the pool.
    ///
    /// # Errors
    /// As [`hash_password`], or [`CryptoError::Task`] if the pool's task failed.
    pub async fn hash(&self, password: String) -> Result<String, CryptoError> {
        self.run(move || hash_password(&password)).await?
    }

    /// [`verify_password`] in the pool. A pool failure counts as a failed verification.
    ///
    /// A stored value that cannot verify (unusable, garbled, over our bounds) still costs a
    /// dummy verification, so such accounts answer as slowly as others (Django does the same).
    pub async fn verify(&self, stored: String, password: String) -> Verification {
        self.run(move || {
            if StoredHash::parse(&stored).is_none() {
                let _ = verify_password(dummy_hash(), &password);
                return Verification::INVALID;
            }
            verify_password(&stored, &password)
        })
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "password verification task failed");
            Verification::INVALID
        })
    }

    /// Spends the time of a real verification and fails: call it when the user does not exist,
    /// so a failed login takes as long whether or not the account exists.
    pub async fn verify_dummy(&self, password: String) -> Verification {
        let _ = self
            .run(move || verify_password(dummy_hash(), &password))
            .await;
        Verification::INVALID
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        self.pool
            .run(work)
            .await
            .map_err(|e| CryptoError::Task(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
