//! JWT client authentication (RFC 7523 §2.2, OIDC Core §9): `client_secret_jwt` (HS256/384/512
//! keyed with the client secret) and `private_key_jwt` (RS256/ES256/ES384/EdDSA, verified with
//! the public keys the admin registered for the client, the provider's `jwks`).
//!
//! Rules: `iss` and `sub` are the client id; `aud` names this server (the endpoint called, or
//! an issuer of it); `exp` is in the future and at most an hour away; `jti` is present and used
//! once (kept until `exp` in `oauth_grants` as a `client_assertion`, so a replay is refused on
//! every process sharing the database); `alg: none` and algorithms that do not fit the key are
//! refused by `jsonwebtoken` itself.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_core::{OAuthGrant, OAuthGrantKind, Provider};
use portcullis_crypto::sha256_hex;
use portcullis_store::StoreError;
use serde_json::Value;

use crate::issue::{OAuthServices, client_secret};
use crate::provider::OAuth2Config;

/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may stay valid.
const MAX_LIFETIME_SECONDS: i64 = 3600;
/// The largest assertion read.
const MAX_LEN: usize = 8192;

/// What an assertion's `aud` may be: exact URLs, or any issuer under a prefix
/// (`https://host/application/o/` followed by one path segment and `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audiences {
    pub exact: Vec<String>,
    pub issuer_prefix: Option<String>,
}

impl Audiences {
    pub(crate) fn accepts(&self, aud: &str) -> bool {
        if self.exact.iter().any(|a| a == aud) {
            return true;
        }
        self.issuer_prefix.as_deref().is_some_and(|p| {
            aud.strip_prefix(p)
                .and_then(|rest| rest.strip_suffix('/'))
                .is_some_and(|slug| !slug.is_empty() && !slug.contains('/'))
        })
    }
}

/// The `sub` of an assertion, read without verifying it (only to find the client whose key
/// then verifies it).
pub fn unverified_subject(assertion: &str) -> Option<String> {
    use base64::Engine;
    if assertion.len() > MAX_LEN {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

/// The key that checks a JWT the client signed (an assertion, a request object): its client
/// secret for HS256/384/512 (`client_secret_jwt`), else the registered public key the header's
/// `kid` names (or the only one). `alg: none` never gets here: `jsonwebtoken` refuses it.
pub(crate) fn client_key(
    svc: &OAuthServices,
    config: &OAuth2Config,
    header: &jsonwebtoken::Header,
) -> Result<DecodingKey, &'static str> {
    match header.alg {
        // A public client cannot keep a secret: whatever it signed with one proves nothing.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            if config.client_type == crate::provider::ClientType::Public =>
        {
            Err("an HMAC signature from a public client")
        }
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let secret = client_secret(svc, config).map_err(|_| "no client secret")?;
            if secret.is_empty() {
                return Err("an HMAC signature without a client secret");
            }
            DecodingKey::from_secret(secret.as_bytes()).map_err(|_| "bad client secret")
        }
        _ => {
            let set: JwkSet = serde_json::from_value(config.jwks.clone())
                .map_err(|_| "no registered client keys")?;
            let jwk = match header.kid.as_deref() {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            }
            .ok_or("no registered key matches the signature")?;
            DecodingKey::from_jwk(jwk).map_err(|_| "unusable registered key")
        }
    }
}

/// Verifies `assertion` for `provider`; the error says why (for the log only: the client is
/// told `invalid_client`).
pub async fn verify(
    svc: &OAuthServices,
    provider: &Provider,
    config: &OAuth2Config,
    assertion: &str,
    audiences: &Audiences,
) -> Result<(), &'static str> {
    if assertion.len() > MAX_LEN {
        return Err("assertion too long");
    }
    let client_id = provider.client_id.as_deref().ok_or("client without id")?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "malformed assertion")?;
    let key = client_key(svc, config, &header)?;
    let mut v = Validation::new(header.alg);
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.set_issuer(&[client_id]);
    v.sub = Some(client_id.to_owned());
    v.leeway = 30;
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &v)
        .map_err(|_| "assertion signature or claims invalid")?
        .claims;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.accepts(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.accepts(a)),
        _ => false,
    };
    if !aud_ok {
        return Err("assertion audience is not this server");
    }
    let now = svc.clock.now();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("assertion without exp")?;
    if exp > now.timestamp() + MAX_LIFETIME_SECONDS {
        return Err("assertion valid for too long");
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("assertion without jti")?;
    let expires = chrono::DateTime::from_timestamp(exp, 0).ok_or("bad exp")?;
    // Once only: the jti is remembered until the assertion expires.
    let stored = svc
        .store
        .create_oauth_grant(OAuthGrant {
            id: 0,
            kind: OAuthGrantKind::ClientAssertion,
            key_hash: sha256_hex(format!("{client_id}\u{0}{jti}").as_bytes()),
            provider: provider.pk,
            user: None,
            family: uuid::Uuid::new_v4(),
            session: None,
            scope: String::new(),
            data: Value::Object(serde_json::Map::new()),
            created: now,
            expires,
            used: true,
            revoked: false,
        })
        .await;
    match stored {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict { .. }) => Err("assertion replayed"),
        Err(_) => Err("could not record the assertion"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_this_servers_urls_only() {
        let a = Audiences {
            exact: vec!["https://idp/application/o/token/".into()],
            issuer_prefix: Some("https://idp/application/o/".into()),
        };
        assert!(a.accepts("https://idp/application/o/token/"));
        assert!(a.accepts("https://idp/application/o/grafana/"));
        for bad in [
            "https://idp/application/o/",
            "https://idp/application/o/a/b/",
            "https://idp/application/o/grafana",
            "https://evil/application/o/grafana/",
            "",
        ] {
            assert!(!a.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn subjects_are_read_only_from_well_formed_tokens() {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let t = format!("{}.{}.sig", e.encode("{}"), e.encode(r#"{"sub":"app"}"#));
        assert_eq!(unverified_subject(&t).as_deref(), Some("app"));
        assert_eq!(unverified_subject("garbage"), None);
        assert_eq!(unverified_subject(&"a.".repeat(5000)), None);
    }
}
