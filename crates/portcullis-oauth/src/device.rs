//! The device authorization grant (RFC 8628): a device without a browser gets a device code
//! and a short user code; the person types the user code at `/device`, logs in and consents
//! through the provider's authorization flow; the device polls the token endpoint until then.
//!
//! Both codes are stored as SHA-256 hashes in `oauth_grants` under one family: the device code
//! (kind `device_code`, no user until approved) and the user code (kind `user_code`). User codes
//! are 8 letters from RFC 8628's 20 consonants (about 35 bits), shown as `BCDF-GHJK`, valid 10
//! minutes, and used once.

use portcullis_core::{OAuthGrant, OAuthGrantKind, Provider};
use portcullis_crypto::{random_string, sha256_hex};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{ErrorCode, OAuthError};
use crate::issue::{
    GrantData, GrantSubject, IssueOptions, OAuthServices, TokenResponse, provider_scopes,
};
use crate::scope::Scopes;
use crate::token::{Client, TokenForm, grant_user};

/// The grant type the device polls with.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long the codes are valid.
pub const EXPIRES_IN_SECONDS: i64 = 600;
/// How often the device may poll (RFC 8628's default).
pub const INTERVAL_SECONDS: i64 = 5;
/// RFC 8628 §6.1: consonants only, no vowels (no words), no look-alikes.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A user code as typed: upper-cased, dashes and spaces dropped; `None` unless 8 letters of
/// the alphabet remain.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

fn new_user_code() -> String {
    portcullis_crypto::random::random_from_alphabet(USER_CODE_ALPHABET, 8)
}

/// The device authorization response (RFC 8628 §3.2) for an authenticated client.
pub async fn authorize_device(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
    base_url: &str,
) -> Result<Value, OAuthError> {
    if !client.config.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient));
    }
    let offered = provider_scopes(svc, &client.provider).await?;
    let asked = Scopes::parse(form.get("scope").unwrap_or(""))?;
    let scopes: Vec<String> = if asked.is_empty() {
        offered
    } else {
        asked
            .intersect(&offered)
            .iter()
            .map(str::to_owned)
            .collect()
    };
    let device_code = random_string(64);
    let user_code = new_user_code();
    let family = Uuid::new_v4();
    let now = svc.clock.now();
    let expires = now + chrono::Duration::seconds(EXPIRES_IN_SECONDS);
    for (kind, secret) in [
        (OAuthGrantKind::DeviceCode, &device_code),
        (OAuthGrantKind::UserCode, &user_code),
    ] {
        svc.store
            .create_oauth_grant(OAuthGrant {
                id: 0,
                kind,
                key_hash: sha256_hex(secret.as_bytes()),
                provider: client.provider.pk,
                user: None,
                family,
                session: None,
                scope: scopes.join(" "),
                data: json!({}),
                created: now,
                expires,
                used: false,
                revoked: false,
            })
            .await?;
    }
    let shown = format!(
        "{}-{}",
        user_code.get(..4).unwrap_or(""),
        user_code.get(4..).unwrap_or("")
    );
    Ok(json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": format!("{base_url}/device"),
        "verification_uri_complete": format!("{base_url}/device?code={shown}"),
        "expires_in": EXPIRES_IN_SECONDS,
        "interval": INTERVAL_SECONDS,
    }))
}

/// Wrong user codes a person may type per [`GUESS_WINDOW`] before `/device` stops looking
/// codes up for them: at 35 bits, guessing a code someone else is about to type stays hopeless.
pub const MAX_WRONG_CODES: u32 = 10;
/// The window [`MAX_WRONG_CODES`] counts over.
pub const GUESS_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// Wrong user codes per user, in this process (each process of a PostgreSQL deployment counts
/// its own).
#[derive(Debug, Default)]
pub struct WrongCodes {
    users: std::sync::Mutex<std::collections::HashMap<i32, (u32, std::time::Instant)>>,
}

impl WrongCodes {
    /// Whether `user` has typed too many wrong codes lately.
    pub fn blocked(&self, user: i32) -> bool {
        let Ok(mut users) = self.users.lock() else {
            return true;
        };
        users.retain(|_, (_, since)| since.elapsed() < GUESS_WINDOW);
        users.get(&user).is_some_and(|(n, _)| *n >= MAX_WRONG_CODES)
    }

    /// Counts a wrong code typed by `user`.
    pub fn failed(&self, user: i32) {
        if let Ok(mut users) = self.users.lock() {
            let entry = users
                .entry(user)
                .or_insert_with(|| (0, std::time::Instant::now()));
            entry.0 += 1;
        }
    }
}

/// A user code waiting for a person: its grant and the provider.
pub async fn find_user_code(
    svc: &OAuthServices,
    typed: &str,
) -> Result<Option<(OAuthGrant, Provider)>, OAuthError> {
    let Some(code) = normalize_user_code(typed) else {
        return Ok(None);
    };
    let Some(g) = svc
        .store
        .find_oauth_grant(OAuthGrantKind::UserCode, &sha256_hex(code.as_bytes()))
        .await?
    else {
        return Ok(None);
    };
    if g.used || g.revoked || g.expires <= svc.clock.now() {
        return Ok(None);
    }
    let provider = svc.store.find_provider(g.provider).await?;
    Ok(Some((g, provider)))
}

/// The person approved: the user code is spent and the device code gets its user.
pub async fn approve(
    svc: &OAuthServices,
    user_code_grant: &OAuthGrant,
    user: i32,
) -> Result<bool, OAuthError> {
    if !svc.store.consume_oauth_grant(user_code_grant.id).await? {
        return Ok(false);
    }
    // The device code is the family's other grant.
    let siblings = svc.store.list_oauth_family(user_code_grant.family).await?;
    let Some(device) = siblings
        .iter()
        .find(|g| g.kind == OAuthGrantKind::DeviceCode)
    else {
        return Ok(false);
    };
    Ok(svc
        .store
        .approve_oauth_grant(device.id, user, svc.clock.now())
        .await?)
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code`: `authorization_pending` until a
/// person approves, `expired_token` after ten minutes, then tokens once.
pub async fn device_code_grant(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    if !client.config.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient));
    }
    let code = form.get("device_code").ok_or_else(|| {
        OAuthError::described(ErrorCode::InvalidRequest, "device_code is required")
    })?;
    let Some(grant) = svc
        .store
        .find_oauth_grant(OAuthGrantKind::DeviceCode, &sha256_hex(code.as_bytes()))
        .await?
    else {
        return Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "the device code is invalid",
        ));
    };
    if grant.provider != client.provider.pk {
        return Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "the device code is invalid",
        ));
    }
    if grant.revoked {
        return Err(OAuthError::new(ErrorCode::AccessDenied));
    }
    if grant.used {
        return Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "the device code was already used",
        ));
    }
    if grant.expires <= svc.clock.now() {
        return Err(OAuthError::new(ErrorCode::ExpiredToken));
    }
    if grant.user.is_none() {
        return Err(OAuthError::new(ErrorCode::AuthorizationPending));
    }
    let user = grant_user(svc, &grant).await?;
    let signer = crate::issue::ready_signer(svc, &client.provider, &client.config).await?;
    if !svc.store.consume_oauth_grant(grant.id).await? {
        return Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "the device code was already used",
        ));
    }
    let scopes = grant.scopes();
    let sub = GrantSubject {
        issuer,
        provider: &client.provider,
        config: &client.config,
        user: &user,
        scopes: &scopes,
        session: None,
        family: grant.family,
        data: GrantData {
            auth_time: svc.clock.now().timestamp(),
            ..GrantData::default()
        },
    };
    crate::issue::issue_tokens(
        svc,
        &signer,
        &sub,
        IssueOptions {
            access_token: true,
            id_token: scopes.iter().any(|s| s == "openid"),
            refresh_token: client.config.allows_grant("refresh_token")
                && scopes.iter().any(|s| s == "offline_access"),
            code: None,
            refresh_scopes: None,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_and_read_leniently() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(normalize_user_code(&c), Some(c.clone()));
            let shown = format!("{}-{}", &c[..4], &c[4..]);
            assert_eq!(normalize_user_code(&shown.to_lowercase()), Some(c));
        }
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF GHJ1", "ß"] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(normalize_user_code(" bcdf ghjk "), Some("BCDFGHJK".into()));
    }
}
