//! Portcullis' OAuth 2.0 and OpenID Connect provider, compatible with authentik's
//! `/application/o/` endpoints.
//!
//! # The pipeline
//! Every request to an endpoint goes through the same stages; each is a pure function over typed
//! values, so the whole provider is testable without a server:
//!
//! ```text
//!  parse            validate                          flow                  issue
//!  query/form  -->  client, redirect URI, PKCE,  -->  grant-specific    -->  code, tokens,
//!  parameters       scopes, response type/mode        rules (one file       ID token; or an
//!                   against the provider              per grant)            OAuthError
//! ```
//!
//! 1. **Parse**: the HTTP layer decodes the request and hands over strings; this crate turns them
//!    into typed values ([`Scopes`], [`ResponseType`], [`ResponseMode`], [`CodeChallengeMethod`])
//!    or an [`OAuthError`] with the spec's code.
//! 2. **Validate** against the provider's configuration: the client, its registered redirect URIs
//!    ([`redirect_uri::find_match`]), PKCE ([`pkce`]), the allowed scopes ([`Scopes::intersect`]).
//!    Until the client and its redirect URI are known good, errors are shown to the user and never
//!    sent to the redirect URI (RFC 6749 §4.1.2.1).
//! 3. **Flow**: the grant's own rules (see [`token`] and [`device`]); the implicit and hybrid
//!    responses of the authorization endpoint are issued when its flow is done. A grant reads
//!    and writes through the store and takes the time from a `Clock`.
//! 4. **Issue**: codes and tokens are created and signed (through `portcullis-crypto`), and the
//!    HTTP layer encodes the answer (JSON, or the redirect's response mode).
//!
//! # Modules
//! - Building blocks with no I/O: [`redirect_uri`] (authentik's strict/regex redirect URI
//!   entries and their matching), [`pkce`] (RFC 7636), [`scope`] (RFC 6749 §3.3), [`response`]
//!   (response types and modes), [`error`] (the protocol's error codes), [`provider`] (a
//!   provider's settings as stored).
//! - [`authorize`]: the authorization request, validated, and its response in its mode.
//! - [`issue`]: signing keys, subjects, scope claims, codes and tokens (with the per-process
//!   cache of keys and mappings).
//! - [`token`]: client authentication and the authorization_code, refresh_token and
//!   client_credentials grants, introspection and revocation; [`device`] (RFC 8628);
//!   [`assertion`] (RFC 7523 client assertions); [`logout`] (back-channel logout).
//!
//! The HTTP layer (`portcullis-http`'s `oauth.rs`) only decodes and encodes; nothing here knows
//! axum, and SQL is reached only through the store (see `scripts/check-deps`).

pub mod assertion;
pub mod authorize;
pub mod device;
pub mod error;
pub mod issue;
pub mod logout;
pub mod pkce;
pub mod provider;
pub mod redirect_uri;
pub mod request_object;
pub mod response;
pub mod scope;
pub mod token;

pub use error::{ErrorCode, OAuthError};
pub use pkce::{CodeChallengeMethod, PkceChallenge};
pub use provider::{ClientType, IssuerMode, LogoutMethod, OAuth2Config, SubMode};
pub use redirect_uri::{CompiledRedirectUris, MatchingMode, RedirectUri, RedirectUriType};
pub use response::{ResponseMode, ResponseType};
pub use scope::Scopes;
