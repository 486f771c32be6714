//! An OAuth2/OIDC provider's own settings: the `config` object the store keeps for providers
//! of kind [`KIND`], with authentik's field names and defaults.
//!
//! The store keeps the object as given; this module owns its shape. Reading is lenient (a field
//! that is missing takes its default, so settings written by an older version still load);
//! writing goes through the API, which validates each field with the functions here.
//!
//! The client secret is kept encrypted (`client_secret` holds the `v1:...` form of
//! `portcullis-crypto`'s secret box); encrypting and decrypting is the caller's, since this crate
//! holds no key.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::redirect_uri::RedirectUri;

/// The store's `kind` of an OAuth2/OIDC provider (authentik's model name).
pub const KIND: &str = "oauth2provider";
/// The store's `kind` of a scope mapping (authentik's model name).
pub const SCOPE_MAPPING_KIND: &str = "scopemapping";

/// authentik's `ClientTypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Can keep a secret: authenticates at the token endpoint.
    #[default]
    Confidential,
    /// Cannot keep a secret (a single-page or native app): PKCE is mandatory instead.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confidential" => Some(ClientType::Confidential),
            "public" => Some(ClientType::Public),
            _ => None,
        }
    }
}

/// What the `sub` claim holds (authentik's `SubModes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubMode {
    /// SHA-256 of the user's id and the install's secret: stable, and says nothing about the user.
    #[default]
    HashedUserId,
    UserId,
    UserUuid,
    UserUsername,
    UserEmail,
    /// The user's `upn` attribute, falling back to the hashed id.
    UserUpn,
    /// Beyond authentik: a pairwise identifier (OIDC Core §8.1), different for every sector
    /// (see [`OAuth2Config::sector`]), so applications of different sectors cannot correlate
    /// their users by `sub`.
    Pairwise,
}

impl SubMode {
    pub const ALL: [SubMode; 7] = [
        SubMode::HashedUserId,
        SubMode::UserId,
        SubMode::UserUuid,
        SubMode::UserUsername,
        SubMode::UserEmail,
        SubMode::UserUpn,
        SubMode::Pairwise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubMode::HashedUserId => "hashed_user_id",
            SubMode::UserId => "user_id",
            SubMode::UserUuid => "user_uuid",
            SubMode::UserUsername => "user_username",
            SubMode::UserEmail => "user_email",
            SubMode::UserUpn => "user_upn",
            SubMode::Pairwise => "pairwise",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// How the issuer is formed (authentik's `IssuerMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuerMode {
    /// `https://<host>/application/o/<application slug>/`.
    #[default]
    PerProvider,
    /// `https://<host>/`: one issuer for every provider.
    Global,
}

impl IssuerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerMode::PerProvider => "per_provider",
            IssuerMode::Global => "global",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "per_provider" => Some(IssuerMode::PerProvider),
            "global" => Some(IssuerMode::Global),
            _ => None,
        }
    }
}

/// How the application learns of a logout (authentik's `OAuth2LogoutMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogoutMethod {
    /// A signed logout token POSTed server to server (OIDC Back-Channel Logout).
    #[default]
    Backchannel,
    /// An iframe in the user's browser (OIDC Front-Channel Logout).
    Frontchannel,
}

impl LogoutMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutMethod::Backchannel => "backchannel",
            LogoutMethod::Frontchannel => "frontchannel",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "backchannel" => Some(LogoutMethod::Backchannel),
            "frontchannel" => Some(LogoutMethod::Frontchannel),
            _ => None,
        }
    }
}

/// The grant types a provider may allow (authentik's `GrantTypes`).
pub const GRANT_TYPES: [&str; 8] = [
    "authorization_code",
    "implicit",
    "hybrid",
    "refresh_token",
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
];

/// The grant types a new provider allows: all of them but token exchange (which arrives later).
pub fn default_grant_types() -> Vec<String> {
    GRANT_TYPES[..7].iter().map(|g| (*g).to_owned()).collect()
}

/// An OAuth2/OIDC provider's settings, as stored in the provider's `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuth2Config {
    pub client_type: ClientType,
    /// The client secret, encrypted by the caller (empty: none).
    pub client_secret: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<RedirectUri>,
    /// authentik's timedelta strings (`hours=1;minutes=2`), parsed by
    /// `portcullis_core::validate::parse_timedelta`; see [`OAuth2Config::access_code_ttl`].
    pub access_code_validity: String,
    pub access_token_validity: String,
    pub refresh_token_validity: String,
    pub refresh_token_threshold: String,
    pub include_claims_in_id_token: bool,
    /// A certificate-key pair; none means HS256 with the client secret.
    pub signing_key: Option<Uuid>,
    /// A certificate-key pair whose public key encrypts the tokens (JWE).
    pub encryption_key: Option<Uuid>,
    pub logout_uri: String,
    pub logout_method: LogoutMethod,
    pub sub_mode: SubMode,
    pub issuer_mode: IssuerMode,
    pub jwt_federation_sources: Vec<Uuid>,
    pub jwt_federation_providers: Vec<i32>,
    /// The client's public keys (a JWK Set) for `private_key_jwt`; `null` when none.
    pub jwks: serde_json::Value,
    /// Beyond authentik: the sector of `pairwise` subjects (OIDC Core §8.1), as a URL whose
    /// host names it; empty: the one host of the redirect URIs.
    pub sector_identifier_uri: String,
}

impl Default for OAuth2Config {
    fn default() -> Self {
        OAuth2Config {
            client_type: ClientType::Confidential,
            client_secret: String::new(),
            grant_types: default_grant_types(),
            redirect_uris: Vec::new(),
            access_code_validity: "minutes=1".to_owned(),
            access_token_validity: "hours=1".to_owned(),
            refresh_token_validity: "days=30".to_owned(),
            refresh_token_threshold: "seconds=0".to_owned(),
            include_claims_in_id_token: true,
            signing_key: None,
            encryption_key: None,
            logout_uri: String::new(),
            logout_method: LogoutMethod::Backchannel,
            sub_mode: SubMode::HashedUserId,
            issuer_mode: IssuerMode::PerProvider,
            jwt_federation_sources: Vec::new(),
            jwt_federation_providers: Vec::new(),
            jwks: serde_json::Value::Null,
            sector_identifier_uri: String::new(),
        }
    }
}

/// The most keys a client may register.
pub const MAX_CLIENT_KEYS: usize = 20;

/// Checks a client's JWK Set for `private_key_jwt`: `null`, or `{"keys": [...]}` of at most
/// [`MAX_CLIENT_KEYS`] public keys `jsonwebtoken` can verify with. A private key (`d`, `p`,
/// `k`, ...) is refused: the server must never hold the client's secret. The error is fit for
/// an admin.
pub fn validate_client_jwks(v: &serde_json::Value) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    let keys = v
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("Enter a JWK Set: {\"keys\": [...]}.")?;
    if keys.len() > MAX_CLIENT_KEYS {
        return Err(format!("At most {MAX_CLIENT_KEYS} keys."));
    }
    for (i, k) in keys.iter().enumerate() {
        let n = i + 1;
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|f| k.get(f).is_some())
        {
            return Err(format!(
                "Key {n} is a private or symmetric key; register public keys only."
            ));
        }
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(k.clone())
            .map_err(|e| format!("Key {n} is not a valid JWK: {e}."))?;
        jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|e| format!("Key {n} cannot verify signatures: {e}."))?;
    }
    Ok(())
}

impl OAuth2Config {
    /// Reads a stored `config`; a value that is not an object, or fields of the wrong type,
    /// fall back to the defaults (the API never stores such a value).
    #[must_use]
    pub fn from_value(value: &serde_json::Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// The stored form.
    #[must_use]
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// How long an authorization code is valid.
    #[must_use]
    pub fn access_code_ttl(&self) -> chrono::Duration {
        ttl(&self.access_code_validity, chrono::Duration::minutes(1))
    }

    /// How long an access token (and an ID token) is valid.
    #[must_use]
    pub fn access_token_ttl(&self) -> chrono::Duration {
        ttl(&self.access_token_validity, chrono::Duration::hours(1))
    }

    /// How long a refresh token is valid.
    #[must_use]
    pub fn refresh_token_ttl(&self) -> chrono::Duration {
        ttl(&self.refresh_token_validity, chrono::Duration::days(30))
    }

    /// A refresh rotates the refresh token only when it is valid for less than this (authentik's
    /// `refresh_token_threshold`); zero (the default): every refresh rotates it.
    #[must_use]
    pub fn refresh_token_threshold(&self) -> chrono::Duration {
        ttl(&self.refresh_token_threshold, chrono::Duration::zero())
    }

    /// Whether the provider allows `grant_type`.
    #[must_use]
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The sector of pairwise subjects: the host of `sector_identifier_uri`, else the host all
    /// strict authorization redirect URIs share. `None` when neither gives one host (a regex
    /// entry, several hosts, no URIs): `pairwise` then needs a `sector_identifier_uri`.
    #[must_use]
    pub fn sector(&self) -> Option<String> {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        };
        if !self.sector_identifier_uri.is_empty() {
            return host(&self.sector_identifier_uri);
        }
        let uris = self.redirect_uris_of(crate::redirect_uri::RedirectUriType::Authorization);
        let mut hosts = uris.iter().map(|r| {
            (r.matching_mode == crate::redirect_uri::MatchingMode::Strict)
                .then(|| host(&r.url))
                .flatten()
        });
        let first = hosts.next()??;
        hosts
            .all(|h| h.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    /// The redirect URIs of the given use (authorization or logout).
    #[must_use]
    pub fn redirect_uris_of(&self, kind: crate::redirect_uri::RedirectUriType) -> Vec<RedirectUri> {
        self.redirect_uris
            .iter()
            .filter(|r| r.redirect_uri_type == kind)
            .cloned()
            .collect()
    }
}

/// A stored duration; one that does not parse (the API never stores one) takes the default.
fn ttl(s: &str, default: chrono::Duration) -> chrono::Duration {
    portcullis_core::validate::parse_timedelta(s).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_settings_round_trip_and_missing_fields_take_defaults() {
        let c = OAuth2Config::from_value(&serde_json::json!({"client_type": "public"}));
        assert_eq!(c.client_type, ClientType::Public);
        assert_eq!(c.access_token_validity, "hours=1");
        assert_eq!(c.access_token_ttl(), chrono::Duration::hours(1));
        assert_eq!(c.access_code_ttl(), chrono::Duration::minutes(1));
        assert_eq!(c.refresh_token_ttl(), chrono::Duration::days(30));
        assert_eq!(c.sub_mode, SubMode::HashedUserId);
        assert!(c.allows_grant("authorization_code"));
        assert!(!c.allows_grant("urn:ietf:params:oauth:grant-type:token-exchange"));
        assert_eq!(OAuth2Config::from_value(&c.to_value()), c);
        // Garbage reads as the defaults rather than failing a login.
        assert_eq!(
            OAuth2Config::from_value(&serde_json::json!("nope")),
            OAuth2Config::default()
        );
    }

    #[test]
    fn choices_parse_their_own_names_only() {
        for m in SubMode::ALL {
            assert_eq!(SubMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(SubMode::parse("pairwise"), Some(SubMode::Pairwise));
        assert_eq!(SubMode::parse("Pairwise"), None);
        assert_eq!(SubMode::parse("hashed_user_id "), None);
        assert_eq!(ClientType::parse("Public"), None);
        assert_eq!(IssuerMode::parse("global"), Some(IssuerMode::Global));
        assert_eq!(
            LogoutMethod::parse("frontchannel"),
            Some(LogoutMethod::Frontchannel)
        );
    }
}
