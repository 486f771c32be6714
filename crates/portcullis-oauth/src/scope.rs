//! The `scope` parameter (RFC 6749 §3.3) as a bounded, ordered set of scope tokens.
//!
//! Guarantees of a [`Scopes`] value:
//! - every scope is 1 or more characters of `%x21 / %x23-5B / %x5D-7E` (RFC 6749 §3.3
//!   `scope-token`: printable ASCII without space, `"` and `\`), so it can be written into a
//!   token response, a JWT claim or a log line without escaping;
//! - no scope appears twice; the order is the order of first appearance in the request, so
//!   [`Scopes`]'s `Display` (space-separated) is stable for a given request;
//! - at most [`MAX_SCOPES`] scopes, parsed from at most [`MAX_SCOPE_PARAM_LEN`] bytes.
//!
//! Parsing splits on the space character only, as §3.3 defines the list; runs of spaces and
//! leading or trailing spaces are tolerated (they produce no empty scope). Anything else that is
//! not a scope character (tabs, CR/LF, NUL, non-ASCII) makes the whole parameter
//! `invalid_scope` (§4.1.2.1, §5.2). Which scopes a client may have is the caller's business:
//! [`Scopes::intersect`] keeps the allowed ones, as authentik silently drops the others.

use std::fmt;

use crate::error::{ErrorCode, OAuthError};

/// The longest `scope` parameter accepted, in bytes.
pub const MAX_SCOPE_PARAM_LEN: usize = 2048;

/// The most distinct scopes in one request.
pub const MAX_SCOPES: usize = 100;

/// An ordered set of valid scope tokens (see the module documentation).
///
/// Two values are equal when they hold the same scopes, in whatever order.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    scopes: Vec<String>,
}

impl Scopes {
    /// No scope.
    #[must_use]
    pub fn new() -> Self {
        Scopes::default()
    }

    /// Parses a space-delimited `scope` parameter. An empty (or all-space) parameter is an
    /// empty set: whether that means "the default scopes" is the caller's choice (authentik
    /// grants all configured scopes).
    ///
    /// Errors (`invalid_scope`): more than [`MAX_SCOPE_PARAM_LEN`] bytes, a character outside
    /// the scope-token set, or more than [`MAX_SCOPES`] distinct scopes.
    pub fn parse(param: &str) -> Result<Self, OAuthError> {
        if param.len() > MAX_SCOPE_PARAM_LEN {
            return Err(OAuthError::described(
                ErrorCode::InvalidScope,
                format!("scope must be at most {MAX_SCOPE_PARAM_LEN} bytes long"),
            ));
        }
        let mut scopes = Scopes::new();
        for token in param.split(' ').filter(|token| !token.is_empty()) {
            if !is_scope_token(token) {
                return Err(OAuthError::described(
                    ErrorCode::InvalidScope,
                    "scope must be scope tokens separated by spaces, each of printable ASCII \
                     other than double quote and backslash (RFC 6749 section 3.3)",
                ));
            }
            scopes.push(token)?;
        }
        Ok(scopes)
    }

    /// Adds `scope` at the end unless it is already present; errors as [`Scopes::parse`] does.
    fn push(&mut self, scope: &str) -> Result<(), OAuthError> {
        if self.contains(scope) {
            return Ok(());
        }
        if self.scopes.len() >= MAX_SCOPES {
            return Err(OAuthError::described(
                ErrorCode::InvalidScope,
                format!("at most {MAX_SCOPES} scopes may be requested"),
            ));
        }
        self.scopes.push(scope.to_owned());
        Ok(())
    }

    /// Whether `scope` is in the set (exact, case-sensitive comparison).
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The scopes, in order of first appearance.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.scopes.iter().map(String::as_str)
    }

    /// The number of scopes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether there is no scope.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The scopes of `self` that are in `allowed`, in `self`'s order.
    #[must_use]
    pub fn intersect<S: AsRef<str>>(&self, allowed: &[S]) -> Scopes {
        Scopes {
            scopes: self
                .scopes
                .iter()
                .filter(|scope| allowed.iter().any(|a| a.as_ref() == scope.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// Removes `scope`; returns whether it was there (e.g. `offline_access` when the response
    /// type issues no code, as authentik does).
    pub fn remove(&mut self, scope: &str) -> bool {
        let before = self.scopes.len();
        self.scopes.retain(|s| s != scope);
        self.scopes.len() != before
    }
}

impl PartialEq for Scopes {
    fn eq(&self, other: &Self) -> bool {
        // Both sides hold distinct scopes, so equal sizes and inclusion make equal sets.
        self.len() == other.len() && self.iter().all(|scope| other.contains(scope))
    }
}

impl Eq for Scopes {}

impl fmt::Display for Scopes {
    /// The scopes separated by single spaces, as the `scope` of a token response (RFC 6749
    /// §5.1) or a `scope` claim.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.scopes {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a str;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, String>, fn(&'a String) -> &'a str>;

    fn into_iter(self) -> Self::IntoIter {
        self.scopes.iter().map(String::as_str)
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

#[cfg(test)]
mod tests;
