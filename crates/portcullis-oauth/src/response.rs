//! What an authorization request asks to get back (`response_type`) and how it is delivered
//! (`response_mode`).
//!
//! Guarantees:
//! - [`ResponseType`] is one of the eight combinations registered by OAuth 2.0 Multiple Response
//!   Type Encoding Practices §3 and §4 (`code`, `token`, `id_token`, `id_token token`,
//!   `code id_token`, `code token`, `code id_token token`, `none`), read as a space-delimited set
//!   whose order does not matter (RFC 6749 §3.1.1). Anything else (an unknown word, a repeated
//!   word, `none` with another word, an empty value) is `unsupported_response_type`.
//! - [`ResponseMode`] is `query`, `fragment` or `form_post` (Multiple Response Type Encoding
//!   Practices §2.1, OAuth 2.0 Form Post Response Mode §2). [`effective_mode`] picks the default
//!   when none is asked for (query for `code` and `none`, fragment otherwise) and refuses `query`
//!   for any response that carries a token, access or ID (§2.1: "In no case should a set of
//!   Authorization Response parameters whose default Response Mode is the fragment encoding be
//!   encoded using the query encoding").
//! - An ID token from the authorization endpoint needs a `nonce` ([`ResponseType::requires_nonce`],
//!   OpenID Connect Core §3.2.2.1 and §3.3.2.11).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, OAuthError};

/// The longest `response_type` parameter read; the longest valid one is 19 bytes.
const MAX_RESPONSE_TYPE_LEN: usize = 64;

/// A supported `response_type`.
///
/// Serialised as its canonical spelling (the order of the registry, e.g. `code id_token token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ResponseType {
    /// `code`: the authorization code flow (RFC 6749 §4.1).
    Code,
    /// `token`: an access token only, the OAuth 2.0 implicit grant (RFC 6749 §4.2).
    Token,
    /// `id_token`: an ID token only, OpenID Connect's implicit flow (OIDC Core §3.2).
    IdToken,
    /// `id_token token`: OpenID Connect's implicit flow with an access token.
    IdTokenToken,
    /// `code id_token`: hybrid flow (OIDC Core §3.3).
    CodeIdToken,
    /// `code token`: hybrid flow.
    CodeToken,
    /// `code id_token token`: hybrid flow.
    CodeIdTokenToken,
    /// `none`: nothing but `state` comes back (Multiple Response Type Encoding Practices §4).
    None,
}

impl ResponseType {
    /// Every response type, in the registry's order.
    pub const ALL: [ResponseType; 8] = [
        ResponseType::Code,
        ResponseType::Token,
        ResponseType::IdToken,
        ResponseType::IdTokenToken,
        ResponseType::CodeIdToken,
        ResponseType::CodeToken,
        ResponseType::CodeIdTokenToken,
        ResponseType::None,
    ];

    /// Parses a `response_type` parameter: space-delimited words in any order (runs of spaces
    /// are tolerated), forming one of the supported combinations.
    pub fn parse(param: &str) -> Result<Self, OAuthError> {
        let unsupported = || {
            OAuthError::described(
                ErrorCode::UnsupportedResponseType,
                "response_type must be code, token, id_token, a combination of them, or none",
            )
        };
        if param.len() > MAX_RESPONSE_TYPE_LEN {
            return Err(unsupported());
        }
        let (mut code, mut token, mut id_token, mut none) = (false, false, false, false);
        for word in param.split(' ').filter(|word| !word.is_empty()) {
            let seen = match word {
                "code" => &mut code,
                "token" => &mut token,
                "id_token" => &mut id_token,
                "none" => &mut none,
                _ => return Err(unsupported()),
            };
            if *seen {
                return Err(unsupported());
            }
            *seen = true;
        }
        match (code, token, id_token, none) {
            (true, false, false, false) => Ok(ResponseType::Code),
            (false, true, false, false) => Ok(ResponseType::Token),
            (false, false, true, false) => Ok(ResponseType::IdToken),
            (false, true, true, false) => Ok(ResponseType::IdTokenToken),
            (true, false, true, false) => Ok(ResponseType::CodeIdToken),
            (true, true, false, false) => Ok(ResponseType::CodeToken),
            (true, true, true, false) => Ok(ResponseType::CodeIdTokenToken),
            (false, false, false, true) => Ok(ResponseType::None),
            _ => Err(unsupported()),
        }
    }

    /// The canonical spelling, as in discovery's `response_types_supported`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
            ResponseType::IdToken => "id_token",
            ResponseType::IdTokenToken => "id_token token",
            ResponseType::CodeIdToken => "code id_token",
            ResponseType::CodeToken => "code token",
            ResponseType::CodeIdTokenToken => "code id_token token",
            ResponseType::None => "none",
        }
    }

    /// Whether the authorization response carries an authorization code.
    #[must_use]
    pub fn returns_code(self) -> bool {
        matches!(
            self,
            ResponseType::Code
                | ResponseType::CodeIdToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the authorization response carries an access token.
    #[must_use]
    pub fn returns_access_token(self) -> bool {
        matches!(
            self,
            ResponseType::Token
                | ResponseType::IdTokenToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the authorization response carries an ID token.
    #[must_use]
    pub fn returns_id_token(self) -> bool {
        matches!(
            self,
            ResponseType::IdToken
                | ResponseType::IdTokenToken
                | ResponseType::CodeIdToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the request must carry a `nonce`: whenever the authorization endpoint returns an
    /// ID token (OIDC Core §3.2.2.1 for the implicit flow, §3.3.2.11 for the hybrid flow). The
    /// caller applies it to OpenID requests (with the `openid` scope), as authentik does.
    #[must_use]
    pub fn requires_nonce(self) -> bool {
        self.returns_id_token()
    }

    /// The response mode when the request names none (Multiple Response Type Encoding Practices
    /// §2.1 and §5): query for `code` and `none`, fragment for everything with a token.
    #[must_use]
    pub fn default_response_mode(self) -> ResponseMode {
        match self {
            ResponseType::Code | ResponseType::None => ResponseMode::Query,
            _ => ResponseMode::Fragment,
        }
    }
}

impl fmt::Display for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResponseType {
    type Err = OAuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResponseType::parse(s)
    }
}

impl TryFrom<String> for ResponseType {
    type Error = OAuthError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        ResponseType::parse(&value)
    }
}

impl From<ResponseType> for String {
    fn from(value: ResponseType) -> Self {
        value.as_str().to_owned()
    }
}

/// How the authorization response's parameters reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// In the redirect URI's query string.
    Query,
    /// In the redirect URI's fragment.
    Fragment,
    /// In an HTML form posted to the redirect URI (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

impl ResponseMode {
    /// Every response mode.
    pub const ALL: [ResponseMode; 3] = [
        ResponseMode::Query,
        ResponseMode::Fragment,
        ResponseMode::FormPost,
    ];

    /// The mode's name on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
            ResponseMode::FormPost => "form_post",
        }
    }
}

impl fmt::Display for ResponseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResponseMode {
    type Err = OAuthError;

    /// `query`, `fragment` or `form_post`, exactly; anything else (including JARM's `jwt`
    /// modes, which are not supported) is `invalid_request`. authentik falls back to the
    /// default instead; the authorize endpoint may choose to do the same.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResponseMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| {
                OAuthError::described(
                    ErrorCode::InvalidRequest,
                    "response_mode must be query, fragment or form_post",
                )
            })
    }
}

/// The response mode to use for `response_type` when the request asked for `requested`: the
/// type's default when nothing was asked; `invalid_request` when `query` is asked for a
/// response that carries a token (Multiple Response Type Encoding Practices §2.1).
pub fn effective_mode(
    response_type: ResponseType,
    requested: Option<ResponseMode>,
) -> Result<ResponseMode, OAuthError> {
    let default = response_type.default_response_mode();
    match requested {
        None => Ok(default),
        Some(ResponseMode::Query) if default != ResponseMode::Query => Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "response_mode=query cannot carry tokens: use fragment or form_post",
        )),
        Some(mode) => Ok(mode),
    }
}

#[cfg(test)]
mod tests;
