//! OAuth 2.0 and OpenID Connect protocol errors: the codes a client may receive, and the one error
//! type every other module of this crate returns.
//!
//! Guarantees:
//! - [`ErrorCode`] holds exactly the registered codes this provider may send, and serialises to
//!   their snake_case names: RFC 6749 §4.1.2.1 (authorization endpoint) and §5.2 (token endpoint),
//!   RFC 6750 §3.1 (bearer token use), RFC 7009 §2.2.1 (revocation), RFC 8628 §3.5 (device
//!   authorization grant) and OpenID Connect Core 1.0 §3.1.2.6 (authentication errors).
//! - An [`OAuthError`]'s description only ever holds the characters RFC 6749 §4.1.2.1 and §5.2
//!   allow in `error_description` (%x20-21 / %x23-5B / %x5D-7E) and is at most
//!   [`MAX_DESCRIPTION_LEN`] bytes: anything else is replaced when the error is built, so no
//!   later encoder can be handed a quote, a backslash, CR/LF or non-ASCII text from it.
//! - The HTTP status of a token endpoint error follows RFC 6749 §5.2 ([`OAuthError::token_endpoint_status`]);
//!   turning it into a response is the HTTP layer's job, not this crate's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest `error_description` sent, in bytes; longer descriptions are cut.
pub const MAX_DESCRIPTION_LEN: usize = 512;

/// A registered OAuth 2.0 / OpenID Connect error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // RFC 6749 §4.1.2.1 and §4.2.2.1 (authorization endpoint).
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// The client may not use this method to obtain a code or token.
    UnauthorizedClient,
    /// The resource owner or the server denied the request.
    AccessDenied,
    /// The server does not support this `response_type`.
    UnsupportedResponseType,
    /// The requested scope is invalid, unknown or malformed.
    InvalidScope,
    /// An unexpected condition stopped the server.
    ServerError,
    /// The server is overloaded or under maintenance.
    TemporarilyUnavailable,
    // RFC 6749 §5.2 (token endpoint).
    /// Client authentication failed.
    InvalidClient,
    /// The grant (code, refresh token, credentials) is invalid, expired, revoked or mismatched.
    InvalidGrant,
    /// The server does not support this `grant_type`.
    UnsupportedGrantType,
    // RFC 6750 §3.1 (protected resources).
    /// The access token is expired, revoked, malformed or invalid.
    InvalidToken,
    /// The access token lacks a scope the resource needs.
    InsufficientScope,
    // RFC 7009 §2.2.1 (revocation).
    /// The server cannot revoke tokens of this type.
    UnsupportedTokenType,
    // RFC 8628 §3.5 (device authorization grant).
    /// The user has not finished the device authorization yet.
    AuthorizationPending,
    /// The client polls too often and must add 5 seconds to its interval.
    SlowDown,
    /// The device code expired.
    ExpiredToken,
    // OpenID Connect Core 1.0 §3.1.2.6.
    /// The user must interact with the server, which `prompt=none` forbids.
    InteractionRequired,
    /// The user must log in, which `prompt=none` forbids.
    LoginRequired,
    /// The user must choose an account, which `prompt=none` forbids.
    AccountSelectionRequired,
    /// The user must consent, which `prompt=none` forbids.
    ConsentRequired,
    /// The `request_uri` is unreachable or invalid.
    InvalidRequestUri,
    /// The `request` object is invalid.
    InvalidRequestObject,
    /// The server does not support the `request` parameter.
    RequestNotSupported,
    /// The server does not support the `request_uri` parameter.
    RequestUriNotSupported,
    /// The server does not support the `registration` parameter.
    RegistrationNotSupported,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnauthorizedClient,
        ErrorCode::AccessDenied,
        ErrorCode::UnsupportedResponseType,
        ErrorCode::InvalidScope,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidToken,
        ErrorCode::InsufficientScope,
        ErrorCode::UnsupportedTokenType,
        ErrorCode::AuthorizationPending,
        ErrorCode::SlowDown,
        ErrorCode::ExpiredToken,
        ErrorCode::InteractionRequired,
        ErrorCode::LoginRequired,
        ErrorCode::AccountSelectionRequired,
        ErrorCode::ConsentRequired,
        ErrorCode::InvalidRequestUri,
        ErrorCode::InvalidRequestObject,
        ErrorCode::RequestNotSupported,
        ErrorCode::RequestUriNotSupported,
        ErrorCode::RegistrationNotSupported,
    ];

    /// The code as it appears on the wire, e.g. `invalid_grant`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::AccountSelectionRequired => "account_selection_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::RegistrationNotSupported => "registration_not_supported",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The given string is not a registered error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrorCode;

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown OAuth error code")
    }
}

impl std::error::Error for UnknownErrorCode {}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    /// Parses a wire code exactly (case-sensitive, as RFC 6749 §4.1.2.1 defines the values).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or(UnknownErrorCode)
    }
}

/// An OAuth protocol error: a code and an optional human-readable description.
///
/// This is what a client sees, in a token endpoint's JSON body or on its redirect URI. The
/// description is sanitised when set (see the module documentation), so it is safe to send;
/// it must still never hold a secret or an internal detail, because it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    #[serde(rename = "error")]
    code: ErrorCode,
    #[serde(rename = "error_description", skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

impl OAuthError {
    /// An error with no description.
    #[must_use]
    pub fn new(code: ErrorCode) -> Self {
        OAuthError {
            code,
            description: None,
        }
    }

    /// An error with a description (sanitised, see [`OAuthError::with_description`]).
    #[must_use]
    pub fn described(code: ErrorCode, description: impl AsRef<str>) -> Self {
        OAuthError::new(code).with_description(description)
    }

    /// Sets the description, replacing characters RFC 6749 §4.1.2.1 forbids and cutting it at
    /// [`MAX_DESCRIPTION_LEN`] bytes. A description that is empty once trimmed is dropped.
    #[must_use]
    pub fn with_description(mut self, description: impl AsRef<str>) -> Self {
        self.description = sanitize_description(description.as_ref());
        self
    }

    /// The error code.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The sanitised description, if any.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The HTTP status of this error as a token endpoint's answer (RFC 6749 §5.2): 400, except
    /// 401 for `invalid_client`, 500 for `server_error` and 503 for `temporarily_unavailable`
    /// (the last two as their names say; RFC 6749 only defines them for redirects).
    #[must_use]
    pub fn token_endpoint_status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    /// The parameters to add to a client's redirect URI (RFC 6749 §4.1.2.1 and §4.2.2.1), in
    /// order: `error`, `error_description` when there is one, and `state` when the request had
    /// one, exactly as received (the caller bounds its length when it parses the request).
    ///
    /// Values are not encoded: the caller encodes them for the response mode (query, fragment
    /// or form post).
    #[must_use]
    pub fn redirect_params(&self, state: Option<&str>) -> Vec<(&'static str, String)> {
        let mut params = Vec::with_capacity(3);
        params.push(("error", self.code.as_str().to_owned()));
        if let Some(description) = &self.description {
            params.push(("error_description", description.clone()));
        }
        if let Some(state) = state {
            params.push(("state", state.to_owned()));
        }
        params
    }
}

impl From<ErrorCode> for OAuthError {
    fn from(code: ErrorCode) -> Self {
        OAuthError::new(code)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{}: {description}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

impl std::error::Error for OAuthError {}

/// Whether `c` may appear in an `error_description` (RFC 6749 §4.1.2.1: %x20-21 / %x23-5B /
/// %x5D-7E, that is printable ASCII and space, without `"` and `\`).
fn is_description_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

/// Maps `raw` to the description character set: ASCII whitespace becomes a space, `"` becomes
/// `'`, `\` becomes `/`, anything else outside the set becomes `?`. The result is trimmed and
/// cut at [`MAX_DESCRIPTION_LEN`] bytes (every output character is one byte); empty is `None`.
fn sanitize_description(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(MAX_DESCRIPTION_LEN));
    for c in raw.chars() {
        if out.len() >= MAX_DESCRIPTION_LEN {
            break;
        }
        let mapped = match c {
            c if is_description_char(c) => c,
            '\t' | '\n' | '\r' | '\x0b' | '\x0c' => ' ',
            '"' => '\'',
            '\\' => '/',
            _ => '?',
        };
        out.push(mapped);
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

#[cfg(test)]
mod tests;
