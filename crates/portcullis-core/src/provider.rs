//! Providers and property mappings: what an application speaks (OAuth2/OIDC today; SAML, LDAP,
//! proxy, RADIUS and SCIM later) and the expressions that shape what it sends.
//!
//! ```text
//!   Application ──provider──> Provider ──(property_mappings, a set)──> PropertyMapping
//!                                │
//!                                └─ authentication_flow / authorization_flow / invalidation_flow ──> Flow
//! ```
//! As with stages and policies, the columns every kind shares are fields here and each kind's
//! own settings are a JSON object (`config`) whose shape the kind's protocol crate owns, so a
//! new kind of provider or mapping needs no migration.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A provider of any kind (authentik's `Provider` and its subclasses).
///
/// Invariants, kept by the store:
/// - `pk` is assigned by the store on create (what is given is ignored) and never changes;
/// - `name` is unique among providers;
/// - `kind` is authentik's model name (`oauth2provider`, later `samlprovider`, ...), one the
///   store knows an event label for, and never changes once created;
/// - each of the three flows, when set, names an existing flow; deleting the flow clears it;
/// - `property_mappings` names existing property mappings, as a set: duplicates are dropped,
///   and the store returns them ordered by the mappings' names; deleting a mapping removes it;
/// - `client_id`, when set, is unique among providers (OAuth2 and proxy providers are looked up
///   by it); kinds without one leave it `None`;
/// - deleting a provider leaves the applications that used it without one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    /// authentik's provider primary key is an integer.
    pub pk: i32,
    pub name: String,
    /// authentik's model name, e.g. `oauth2provider`.
    pub kind: String,
    /// The flow that logs a user in when they reach the provider without a session.
    pub authentication_flow: Option<Uuid>,
    /// The flow that authorizes a logged-in user for the provider (consent, ...).
    pub authorization_flow: Option<Uuid>,
    /// The flow that runs when the user logs out of the provider.
    pub invalidation_flow: Option<Uuid>,
    /// The uuids of the property mappings the provider uses.
    pub property_mappings: Vec<Uuid>,
    pub client_id: Option<String>,
    /// The kind's own settings (for OAuth2: redirect URIs, client type, token validity, ...).
    /// The store keeps it as given; secrets in it are encrypted by the caller.
    pub config: Value,
}

/// A property mapping of any kind (authentik's `PropertyMapping` and its subclasses): an
/// expression that computes what a provider sends (an OAuth2 scope's claims, a SAML attribute).
///
/// Invariants, kept by the store:
/// - `uuid` is authentik's `pm_uuid`: assigned on create when nil, never changed after;
/// - `name` is unique among property mappings;
/// - `managed`, when set, is unique: it names the mapping a blueprint manages
///   (`goauthentik.io/providers/oauth2/scope-email`), so a blueprint finds it again;
/// - `kind` is authentik's model name (`scopemapping`, later `samlpropertymapping`, ...), one the
///   store knows an event label for, and never changes once created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyMapping {
    pub uuid: Uuid,
    pub name: String,
    pub managed: Option<String>,
    /// authentik's model name, e.g. `scopemapping`.
    pub kind: String,
    /// The expression's source; evaluated by the policy crate's sandbox, never by the store.
    pub expression: String,
    /// The kind's own settings, e.g. `{"scope_name": "email", "description": "..."}`.
    pub config: Value,
}

/// What an OAuth grant row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrantKind {
    /// An authorization code (single use).
    Code,
    /// An access token, by the `jti` of its JWT (so it can be revoked and introspected).
    AccessToken,
    /// A refresh token (rotated on use).
    RefreshToken,
    /// A device code (RFC 8628): polled by the device until a person approves it.
    DeviceCode,
    /// The user code of a device authorization, typed by the person (same family).
    UserCode,
    /// The `jti` of a client assertion, kept until it expires so it is used once.
    ClientAssertion,
}

impl OAuthGrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthGrantKind::Code => "code",
            OAuthGrantKind::AccessToken => "access_token",
            OAuthGrantKind::RefreshToken => "refresh_token",
            OAuthGrantKind::DeviceCode => "device_code",
            OAuthGrantKind::UserCode => "user_code",
            OAuthGrantKind::ClientAssertion => "client_assertion",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "code" => Some(OAuthGrantKind::Code),
            "access_token" => Some(OAuthGrantKind::AccessToken),
            "refresh_token" => Some(OAuthGrantKind::RefreshToken),
            "device_code" => Some(OAuthGrantKind::DeviceCode),
            "user_code" => Some(OAuthGrantKind::UserCode),
            "client_assertion" => Some(OAuthGrantKind::ClientAssertion),
            _ => None,
        }
    }
}

/// An authorization code, access token or refresh token a provider issued (authentik's
/// `AuthorizationCode`, `AccessToken`, `RefreshToken`).
///
/// Invariants, kept by the store:
/// - the secret itself is never stored: `key_hash` is the SHA-256 (hex) of the code or refresh
///   token, or of the access token's `jti`; unique per kind;
/// - every grant that descends from one authorization (the code, its tokens, each rotated
///   refresh token) shares `family`, so reuse of a code or a rotated refresh token revokes
///   them all at once;
/// - `used` goes from false to true once, atomically (a code redeemed, a refresh token
///   rotated); `revoked` likewise; neither goes back;
/// - deleting the provider or the user deletes its grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthGrant {
    /// Assigned by the store.
    pub id: i32,
    pub kind: OAuthGrantKind,
    pub key_hash: String,
    pub provider: i32,
    /// The user the grant is for; none only for a device authorization nobody approved yet.
    pub user: Option<i32>,
    pub family: Uuid,
    /// The browser session the authorization came from (none for client credentials).
    pub session: Option<Uuid>,
    /// Space-separated granted scopes.
    pub scope: String,
    /// What the grant carries (redirect URI, nonce, PKCE challenge, auth time, ...), in the
    /// shape the oauth crate owns.
    pub data: Value,
    pub created: chrono::DateTime<chrono::Utc>,
    pub expires: chrono::DateTime<chrono::Utc>,
    pub used: bool,
    pub revoked: bool,
}

impl OAuthGrant {
    /// The granted scopes, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
