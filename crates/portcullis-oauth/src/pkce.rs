//! Proof Key for Code Exchange (RFC 7636): the challenge a client sends to the authorization
//! endpoint and the verifier it later proves it knows at the token endpoint.
//!
//! Guarantees:
//! - A challenge and a verifier are accepted only as 43 to 128 characters of the unreserved set
//!   `[A-Za-z0-9-._~]` (RFC 7636 §4.1 and §4.2); anything else, including non-ASCII look-alikes,
//!   controls and over-long input, is refused before any hashing.
//! - The method is `plain` or `S256`, spelled exactly so (§4.3); a challenge with no method is
//!   `plain` (§4.3), as in authentik.
//! - [`verify`] computes `BASE64URL-NOPAD(SHA256(ASCII(verifier)))` for `S256` (§4.2, §4.6) and
//!   compares in constant time ([`subtle`]), so the comparison leaks no prefix of the expected
//!   challenge.
//! - [`check_token_request`] applies authentik's rules at the token endpoint: a code issued with a
//!   challenge needs a matching verifier, and a verifier for a code issued without one is
//!   refused (a downgrade), both as `invalid_grant` (§4.6).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{ErrorCode, OAuthError};

/// The shortest challenge or verifier (RFC 7636 §4.1, §4.2).
pub const MIN_LEN: usize = 43;

/// The longest challenge or verifier (RFC 7636 §4.1, §4.2).
pub const MAX_LEN: usize = 128;

/// How the verifier is transformed into the challenge (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodeChallengeMethod {
    /// The challenge is the verifier itself.
    #[serde(rename = "plain")]
    Plain,
    /// The challenge is the unpadded base64url of the verifier's SHA-256.
    S256,
}

impl CodeChallengeMethod {
    /// The method's name on the wire: `plain` or `S256`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CodeChallengeMethod::Plain => "plain",
            CodeChallengeMethod::S256 => "S256",
        }
    }

    /// The method of an authorization request's `code_challenge_method`: absent is `plain`
    /// (RFC 7636 §4.3); an unknown value is `invalid_request` (§4.4.1).
    pub fn from_param(method: Option<&str>) -> Result<Self, OAuthError> {
        match method {
            None => Ok(CodeChallengeMethod::Plain),
            Some(method) => method.parse(),
        }
    }
}

impl fmt::Display for CodeChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CodeChallengeMethod {
    type Err = OAuthError;

    /// `plain` or `S256`, exactly (RFC 7636 §4.3 defines these names; `s256` is not one).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(CodeChallengeMethod::Plain),
            "S256" => Ok(CodeChallengeMethod::S256),
            _ => Err(OAuthError::described(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 or plain",
            )),
        }
    }
}

/// A validated challenge with its method, as stored with an authorization code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkceChallenge {
    /// How the verifier becomes the challenge.
    pub method: CodeChallengeMethod,
    /// The challenge as the client sent it.
    pub challenge: String,
}

impl PkceChallenge {
    /// The PKCE part of an authorization request, from its `code_challenge` and
    /// `code_challenge_method` parameters.
    ///
    /// - No challenge (absent or empty, as authentik reads it): `Ok(None)`, whatever the method
    ///   says; PKCE is optional for the client, and a verifier sent later is refused.
    /// - A challenge: it must be well formed and the method known, else `invalid_request`
    ///   (RFC 7636 §4.4.1).
    pub fn from_authorize_params(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Option<Self>, OAuthError> {
        let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let method = CodeChallengeMethod::from_param(method)?;
        validate_challenge(challenge)?;
        Ok(Some(PkceChallenge {
            method,
            challenge: challenge.to_owned(),
        }))
    }

    /// Whether `verifier` proves this challenge (see [`verify`]).
    #[must_use]
    pub fn is_verified_by(&self, verifier: &str) -> bool {
        verify(self.method, &self.challenge, verifier)
    }
}

/// Checks a `code_challenge` (RFC 7636 §4.2): `invalid_request` unless it is 43 to 128
/// unreserved characters.
pub fn validate_challenge(challenge: &str) -> Result<(), OAuthError> {
    if is_well_formed(challenge) {
        Ok(())
    } else {
        Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ))
    }
}

/// Checks a `code_verifier` (RFC 7636 §4.1): `invalid_grant` unless it is 43 to 128
/// unreserved characters (no such verifier can match a challenge, §4.6).
pub fn validate_verifier(verifier: &str) -> Result<(), OAuthError> {
    if is_well_formed(verifier) {
        Ok(())
    } else {
        Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ))
    }
}

/// Whether `verifier` matches `challenge` under `method` (RFC 7636 §4.6).
///
/// False when either is malformed (see [`validate_challenge`] and [`validate_verifier`]). The
/// final comparison takes time that depends only on the lengths, which are public.
#[must_use]
pub fn verify(method: CodeChallengeMethod, challenge: &str, verifier: &str) -> bool {
    if !is_well_formed(verifier) || !is_well_formed(challenge) {
        return false;
    }
    match method {
        CodeChallengeMethod::Plain => constant_time_eq(verifier.as_bytes(), challenge.as_bytes()),
        CodeChallengeMethod::S256 => {
            constant_time_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes())
        }
    }
}

/// The token endpoint's PKCE check for the authorization code grant, with authentik's rules:
///
/// | code issued with | request has | result |
/// |---|---|---|
/// | no challenge | no verifier | `Ok` |
/// | no challenge | a verifier | `invalid_grant` (a downgrade: the client believes it uses PKCE) |
/// | a challenge | no verifier | `invalid_grant` |
/// | a challenge | a verifier | `Ok` if [`verify`] agrees, else `invalid_grant` |
///
/// An empty `code_verifier` counts as absent, as in authentik.
pub fn check_token_request(
    issued_with: Option<&PkceChallenge>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    let verifier = verifier.filter(|v| !v.is_empty());
    match (issued_with, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "code_verifier sent, but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "code_verifier is required",
        )),
        (Some(challenge), Some(verifier)) => {
            validate_verifier(verifier)?;
            if challenge.is_verified_by(verifier) {
                Ok(())
            } else {
                Err(OAuthError::described(
                    ErrorCode::InvalidGrant,
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

/// The `S256` challenge of `verifier`: `BASE64URL-NOPAD(SHA256(ASCII(verifier)))` (RFC 7636
/// §4.2). Clients and tests use it; the server only needs [`verify`].
#[must_use]
pub fn s256_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// RFC 7636 §4.1: `43*128unreserved`, `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_well_formed(value: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests;
