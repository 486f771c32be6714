//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6): client authentication and the grants it
//! redeems. One function per grant; each answers a [`TokenResponse`] or the OAuth error to send.
//!
//! | grant | rules |
//! |---|---|
//! | `authorization_code` | the code is this client's, unexpired, unused; `redirect_uri` identical; PKCE verified; a second use revokes everything the code led to |
//! | `refresh_token` | this client's, unexpired, unrevoked; rotated on use; a rotated token used again revokes its family; scope may only narrow |

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use portcullis_core::{Application, OAuthGrantKind, Provider, TokenIntent};
use portcullis_crypto::{constant_time_eq, sha256_hex};
use portcullis_store::{StoreError, UserWithGroups};

use crate::error::{ErrorCode, OAuthError};
use crate::issue::{
    GrantData, GrantSubject, IssueOptions, OAuthServices, TokenResponse, client_secret,
    issue_tokens, ready_signer, signer,
};
use crate::pkce;
use crate::provider::{ClientType, KIND, OAuth2Config};
use crate::scope::Scopes;

/// The longest form field read.
pub const MAX_FIELD_LEN: usize = 8192;

/// The token request's form, as received (duplicates refused, RFC 6749 §3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenForm {
    pub fields: Vec<(String, String)>,
}

impl TokenForm {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if v.len() > MAX_FIELD_LEN || k.len() > 128 {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    format!("{} is too long", k.chars().take(64).collect::<String>()),
                ));
            }
            if fields.iter().any(|(f, _)| f == k.as_ref()) {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    format!("{k} is given more than once"),
                ));
            }
            if fields.len() >= 64 {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    "too many parameters",
                ));
            }
            fields.push((k.into_owned(), v.into_owned()));
        }
        Ok(TokenForm { fields })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// How the client presented itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Sent in the `Authorization: Basic` header (errors then answer 401 with a challenge).
    pub basic: bool,
    /// A JWT client assertion (RFC 7523: `client_secret_jwt`, `private_key_jwt`).
    pub assertion: Option<String>,
}

/// Reads the client's credentials from the `Authorization` header (`client_secret_basic`) or
/// the form (`client_secret_post`, `none`). Both at once is `invalid_request` (RFC 6749 §2.3).
pub fn client_credentials(
    authorization: Option<&str>,
    form: &TokenForm,
) -> Result<ClientCredentials, OAuthError> {
    let basic = authorization.and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    });
    if let Some(assertion_type) = form.get("client_assertion_type") {
        let two = || {
            OAuthError::described(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not two",
            )
        };
        if basic.is_some() {
            return Err(two());
        }
        if assertion_type != crate::assertion::ASSERTION_TYPE {
            return Err(OAuthError::described(
                ErrorCode::InvalidClient,
                "unsupported client_assertion_type",
            ));
        }
        // As authentik, the JWT may come as `client_secret` (for clients that can only send a
        // secret), but not as both.
        let assertion = match (form.get("client_assertion"), form.get("client_secret")) {
            (Some(_), Some(_)) => return Err(two()),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    "client_assertion is required",
                ));
            }
        };
        // The client is named by the form, else by the assertion's (not yet verified) `sub`.
        let client_id = match form.get("client_id") {
            Some(id) => id.to_owned(),
            None => crate::assertion::unverified_subject(assertion).ok_or_else(|| {
                OAuthError::described(ErrorCode::InvalidClient, "malformed client_assertion")
            })?,
        };
        return Ok(ClientCredentials {
            client_id,
            client_secret: None,
            basic: false,
            assertion: Some(assertion.to_owned()),
        });
    }
    if let Some(encoded) = basic {
        if form.get("client_secret").is_some() {
            return Err(OAuthError::described(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not two",
            ));
        }
        let invalid =
            || OAuthError::described(ErrorCode::InvalidClient, "malformed Basic credentials");
        let decoded = STANDARD.decode(encoded).map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
        // RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
        let id = percent_decode(id).ok_or_else(invalid)?;
        let secret = percent_decode(secret).ok_or_else(invalid)?;
        if let Some(form_id) = form.get("client_id")
            && form_id != id
        {
            return Err(OAuthError::described(
                ErrorCode::InvalidRequest,
                "client_id differs from the authenticated client",
            ));
        }
        return Ok(ClientCredentials {
            client_id: id,
            client_secret: Some(secret),
            basic: true,
            assertion: None,
        });
    }
    let client_id = form.get("client_id").ok_or_else(|| {
        OAuthError::described(
            ErrorCode::InvalidClient,
            "client authentication is required",
        )
    })?;
    Ok(ClientCredentials {
        client_id: client_id.to_owned(),
        client_secret: form.get("client_secret").map(str::to_owned),
        basic: false,
        assertion: None,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let pairs = format!("x={s}");
    form_urlencoded::parse(pairs.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A client: its provider, settings and the application the provider serves (none while no
/// application uses it).
#[derive(Debug, Clone)]
pub struct Client {
    pub provider: Provider,
    pub config: OAuth2Config,
    pub application: Option<Application>,
}

/// The OAuth2 client `client_id`, from the cache (see [`crate::issue::OAuthCache`]): every
/// token request names its client, and reading it is three queries.
pub async fn find_client(
    svc: &OAuthServices,
    client_id: &str,
) -> Result<Option<Arc<Client>>, OAuthError> {
    let generation = svc.store.changes();
    if let Some(c) = svc.cache.clients.get(client_id, generation) {
        return Ok(Some(c));
    }
    let provider = match svc.store.find_provider_by_client_id(client_id).await {
        Ok(p) if p.kind == KIND => p,
        Ok(_) | Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let application = svc.store.find_application_of_provider(provider.pk).await?;
    let client = Arc::new(Client {
        config: OAuth2Config::from_value(&provider.config),
        provider,
        application,
    });
    svc.cache
        .clients
        .put(client_id.to_owned(), generation, client.clone());
    Ok(Some(client))
}

/// Authenticates the client: a confidential client proves its secret (compared in constant
/// time) or signs a client assertion; a public client only names itself (or signs an
/// assertion). Any failure is the same `invalid_client`. `audiences` are the URLs an assertion
/// may name as its `aud` (this endpoint and the server's issuers).
pub async fn authenticate_client(
    svc: &OAuthServices,
    creds: &ClientCredentials,
    audiences: &crate::assertion::Audiences,
) -> Result<Arc<Client>, OAuthError> {
    let invalid =
        || OAuthError::described(ErrorCode::InvalidClient, "client authentication failed");
    let Some(client) = find_client(svc, &creds.client_id).await? else {
        return Err(invalid());
    };
    let (provider, config) = (&client.provider, &client.config);
    if let Some(assertion) = &creds.assertion {
        crate::assertion::verify(svc, provider, config, assertion, audiences)
            .await
            .map_err(|why| {
                tracing::info!(client = %creds.client_id, reason = why, "client assertion refused");
                invalid()
            })?;
        return Ok(client);
    }
    if config.client_type == ClientType::Confidential {
        let expected = client_secret(svc, config)?;
        let given = creds.client_secret.as_deref().unwrap_or("");
        if expected.is_empty() || !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Err(invalid());
        }
    }
    Ok(client)
}

/// What the caller learns besides the answer (for events and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantOutcome {
    /// A code or rotated refresh token was replayed: its family was revoked.
    pub reuse_detected: bool,
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
    issuer: &str,
    outcome: &mut GrantOutcome,
) -> Result<TokenResponse, OAuthError> {
    if !client.config.allows_grant("authorization_code") {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient));
    }
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::described(ErrorCode::InvalidRequest, "code is required"))?;
    let bad = |why: &str| OAuthError::described(ErrorCode::InvalidGrant, why);
    let Some(grant) = svc
        .store
        .find_oauth_grant(OAuthGrantKind::Code, &sha256_hex(code.as_bytes()))
        .await?
    else {
        return Err(bad("the code is invalid"));
    };
    if grant.provider != client.provider.pk {
        return Err(bad("the code is invalid"));
    }
    if grant.used || grant.revoked {
        // RFC 6749 §4.1.2: a code used twice revokes what it issued.
        svc.store.revoke_oauth_family(grant.family).await?;
        outcome.reuse_detected = true;
        return Err(bad("the code was already used"));
    }
    if grant.expires <= svc.clock.now() {
        return Err(bad("the code has expired"));
    }
    let data = GrantData::from_value(&grant.data);
    if form.get("redirect_uri") != data.redirect_uri.as_deref() {
        return Err(bad("redirect_uri differs from the authorization request's"));
    }
    pkce::check_token_request(data.pkce.as_ref(), form.get("code_verifier"))?;
    if client.config.client_type == ClientType::Public && data.pkce.is_none() {
        return Err(bad("public clients must use PKCE"));
    }
    // Everything that can fail without the code's fault, before the code is used up.
    let user = grant_user(svc, &grant).await?;
    let signer = ready_signer(svc, &client.provider, &client.config).await?;
    if !svc.store.consume_oauth_grant(grant.id).await? {
        // Lost a race with another redemption: treat as reuse.
        svc.store.revoke_oauth_family(grant.family).await?;
        outcome.reuse_detected = true;
        return Err(bad("the code was already used"));
    }
    let scopes = grant.scopes();
    let sub = GrantSubject {
        issuer,
        provider: &client.provider,
        config: &client.config,
        user: &user,
        scopes: &scopes,
        session: grant.session,
        family: grant.family,
        data,
    };
    issue_tokens(
        svc,
        &signer,
        &sub,
        IssueOptions {
            access_token: true,
            id_token: scopes.iter().any(|s| s == "openid"),
            refresh_token: wants_refresh(&client.config, &scopes),
            code: None,
            refresh_scopes: None,
        },
    )
    .await
}

/// The active user a grant is for; `invalid_grant` otherwise.
pub(crate) async fn grant_user(
    svc: &OAuthServices,
    grant: &portcullis_core::OAuthGrant,
) -> Result<portcullis_store::UserWithGroups, OAuthError> {
    let gone = || OAuthError::described(ErrorCode::InvalidGrant, "the user is no longer active");
    let pk = grant.user.ok_or_else(gone)?;
    match svc.store.find_user(pk).await {
        Ok(u) if u.user.is_active => Ok(u),
        Ok(_) | Err(StoreError::NotFound) => Err(gone()),
        Err(e) => Err(e.into()),
    }
}

/// Refresh tokens go only with `offline_access` and the refresh grant allowed (authentik).
fn wants_refresh(config: &OAuth2Config, scopes: &[String]) -> bool {
    config.allows_grant("refresh_token") && scopes.iter().any(|s| s == "offline_access")
}

/// `grant_type=refresh_token`.
pub async fn refresh_token(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
    issuer: &str,
    outcome: &mut GrantOutcome,
) -> Result<TokenResponse, OAuthError> {
    if !client.config.allows_grant("refresh_token") {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient));
    }
    let token = form.get("refresh_token").ok_or_else(|| {
        OAuthError::described(ErrorCode::InvalidRequest, "refresh_token is required")
    })?;
    let bad = |why: &str| OAuthError::described(ErrorCode::InvalidGrant, why);
    let Some(grant) = svc
        .store
        .find_oauth_grant(OAuthGrantKind::RefreshToken, &sha256_hex(token.as_bytes()))
        .await?
    else {
        return Err(bad("the refresh token is invalid"));
    };
    if grant.provider != client.provider.pk {
        return Err(bad("the refresh token is invalid"));
    }
    if grant.revoked {
        return Err(bad("the refresh token was revoked"));
    }
    if grant.used {
        // A rotated token came back: someone holds a copy. Revoke the whole family.
        svc.store.revoke_oauth_family(grant.family).await?;
        outcome.reuse_detected = true;
        return Err(bad("the refresh token was already used"));
    }
    if grant.expires <= svc.clock.now() {
        return Err(bad("the refresh token has expired"));
    }
    let original = grant.scopes();
    let scopes = match form.get("scope") {
        None => original.clone(),
        Some(s) => {
            let asked = Scopes::parse(s)?;
            if asked.iter().any(|s| !original.iter().any(|o| o == s)) {
                return Err(OAuthError::described(
                    ErrorCode::InvalidScope,
                    "a refresh cannot add scopes",
                ));
            }
            asked.iter().map(str::to_owned).collect()
        }
    };
    // With a threshold, a token that is still valid for longer than it is kept (not rotated):
    // the response carries it again.
    // Public clients always rotate: their refresh tokens must be sender-constrained or rotated
    // (RFC 9700 §4.14.2), and rotation is what detects a stolen copy.
    let threshold = client.config.refresh_token_threshold();
    let rotate = client.config.client_type == ClientType::Public
        || threshold <= chrono::Duration::zero()
        || grant.expires - svc.clock.now() < threshold;
    let user = grant_user(svc, &grant).await?;
    let signer = ready_signer(svc, &client.provider, &client.config).await?;
    if rotate && !svc.store.consume_oauth_grant(grant.id).await? {
        svc.store.revoke_oauth_family(grant.family).await?;
        outcome.reuse_detected = true;
        return Err(bad("the refresh token was already used"));
    }
    let mut data = GrantData::from_value(&grant.data);
    // A refreshed ID token carries no nonce (OIDC Core §12.2).
    data.nonce = None;
    let sub = GrantSubject {
        issuer,
        provider: &client.provider,
        config: &client.config,
        user: &user,
        scopes: &scopes,
        session: grant.session,
        family: grant.family,
        data,
    };
    let mut response = issue_tokens(
        svc,
        &signer,
        &sub,
        IssueOptions {
            access_token: true,
            id_token: scopes.iter().any(|s| s == "openid"),
            // Rotation: a new refresh token replaces the one used, with the grant's original
            // scope even when this refresh narrowed the access token's.
            refresh_token: rotate && wants_refresh(&client.config, &original),
            code: None,
            refresh_scopes: Some(&original),
        },
    )
    .await?;
    if !rotate {
        response.refresh_token = Some(token.to_owned());
    }
    Ok(response)
}

/// `grant_type=client_credentials`: the client acts as itself, through its service account
/// `ak-<provider name>-client_credentials` (created on first use, as authentik does). Only
/// confidential clients; no refresh token. (With a `username`, the grant is
/// [`app_password_user`]'s instead, as in authentik.)
pub async fn client_credentials_grant(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    if !client.config.allows_grant("client_credentials")
        || client.config.client_type != ClientType::Confidential
    {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient));
    }
    let user = service_account(svc, &client.provider).await?;
    account_tokens(svc, client, form, issuer, &user).await
}

/// The user of a `password` grant, or of a `client_credentials` grant that names a
/// `username` (authentik treats both alike): `password` must be the key of an unexpired app
/// password (a token with intent `app_password`) of the active user `username`, never the
/// user's own password. Every failure is the same `invalid_grant`. Returns the user and the
/// token's identifier (for the login event). The caller checks the application's policies
/// before [`account_tokens`].
pub async fn app_password_user(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
) -> Result<(UserWithGroups, String), OAuthError> {
    let grant_type = form.get("grant_type").unwrap_or_default();
    if !client.config.allows_grant(grant_type) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient));
    }
    let invalid = || OAuthError::described(ErrorCode::InvalidGrant, "invalid credentials");
    let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
        return Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "username and password are required",
        ));
    };
    let token = match svc
        .store
        .find_token_by_key_hash(&sha256_hex(password.as_bytes()))
        .await
    {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    if token.intent != TokenIntent::AppPassword || token.is_expired(svc.clock.now()) {
        return Err(invalid());
    }
    let user = match svc.store.find_user(token.user_pk).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    if !user.user.is_active || user.user.username != username {
        return Err(invalid());
    }
    Ok((user, token.identifier))
}

/// The tokens of a grant where a client acts as an account (its service account, or a user
/// through an app password): the asked scopes the provider offers (all of them when none are
/// asked), an access token, an ID token with `openid`, no refresh token.
pub async fn account_tokens(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
    issuer: &str,
    user: &UserWithGroups,
) -> Result<TokenResponse, OAuthError> {
    let offered = crate::issue::provider_scopes(svc, &client.provider).await?;
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
    let signer = signer(svc, &client.provider, &client.config).await?;
    let now = svc.clock.now().timestamp();
    let sub = GrantSubject {
        issuer,
        provider: &client.provider,
        config: &client.config,
        user,
        scopes: &scopes,
        session: None,
        family: uuid::Uuid::new_v4(),
        data: GrantData {
            auth_time: now,
            ..GrantData::default()
        },
    };
    issue_tokens(
        svc,
        &signer,
        &sub,
        IssueOptions {
            access_token: true,
            id_token: scopes.iter().any(|s| s == "openid"),
            refresh_token: false,
            code: None,
            refresh_scopes: None,
        },
    )
    .await
}

/// The provider's service account, created on first use; cached as definitions are (a
/// deactivation through this process is seen at once, through another within the cache's TTL).
async fn service_account(
    svc: &OAuthServices,
    provider: &Provider,
) -> Result<Arc<portcullis_store::UserWithGroups>, OAuthError> {
    let generation = svc.store.changes();
    if let Some(u) = svc.cache.service_accounts.get(&provider.pk, generation) {
        return Ok(u);
    }
    let user = Arc::new(find_or_create_service_account(svc, provider).await?);
    // Read before the creation's change: the next request sees the account as stale and
    // reads it once more, then keeps it.
    svc.cache
        .service_accounts
        .put(provider.pk, generation, user.clone());
    Ok(user)
}

async fn find_or_create_service_account(
    svc: &OAuthServices,
    provider: &Provider,
) -> Result<portcullis_store::UserWithGroups, OAuthError> {
    let username: String = format!("ak-{}-client_credentials", provider.name)
        .chars()
        .take(150)
        .collect();
    match svc.store.find_user_by_username(&username).await {
        Ok(u) if u.user.is_active => return Ok(u),
        Ok(_) => {
            return Err(OAuthError::described(
                ErrorCode::InvalidClient,
                "the client's service account is deactivated",
            ));
        }
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let mut new = portcullis_core::NewUser::named(&username);
    new.name = format!("Autogenerated user from application {}", provider.name);
    new.user_type = portcullis_core::UserType::InternalServiceAccount;
    new.path = "goauthentik.io/service-accounts".to_owned();
    new.attributes = serde_json::json!({"goauthentik.io/user/override-ips": true});
    match svc
        .store
        .create_user(new, &portcullis_core::Actor::system())
        .await
    {
        Ok(u) => Ok(u),
        // Created meanwhile by a concurrent request.
        Err(StoreError::Conflict { .. }) => Ok(svc.store.find_user_by_username(&username).await?),
        Err(e) => Err(e.into()),
    }
}

/// What introspection says about a token (RFC 7662 §2.2).
pub async fn introspect(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
) -> Result<serde_json::Value, OAuthError> {
    let inactive = serde_json::json!({"active": false});
    let Some(token) = form.get("token") else {
        return Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "token is required",
        ));
    };
    let now = svc.clock.now();
    // A refresh token?
    if let Some(g) = svc
        .store
        .find_oauth_grant(OAuthGrantKind::RefreshToken, &sha256_hex(token.as_bytes()))
        .await?
    {
        if g.provider != client.provider.pk || g.revoked || g.used || g.expires <= now {
            return Ok(inactive);
        }
        let Some(pk) = g.user else {
            return Ok(inactive);
        };
        let user = svc.store.find_user(pk).await?;
        return Ok(serde_json::json!({
            "active": true,
            "scope": g.scope,
            "client_id": client.provider.client_id,
            "username": user.user.username,
            "token_type": "refresh_token",
            "exp": g.expires.timestamp(),
            "iat": g.created.timestamp(),
            "sub": crate::issue::subject(svc, &client.config, &user),
        }));
    }
    // An access token of this client, checked by its own key.
    match crate::issue::access_token_grant(svc, &client.provider, &client.config, token).await? {
        Some((claims, g)) if !g.revoked && g.expires > now => {
            let mut out = claims;
            if let Some(o) = out.as_object_mut() {
                o.insert("active".into(), serde_json::json!(true));
                o.insert("token_type".into(), serde_json::json!("access_token"));
                if let Some(Ok(u)) = match g.user {
                    Some(pk) => Some(svc.store.find_user(pk).await),
                    None => None,
                } {
                    o.insert("username".into(), serde_json::json!(u.user.username));
                }
            }
            Ok(out)
        }
        _ => Ok(inactive),
    }
}

/// Revokes a token of this client (RFC 7009): a refresh token takes its family with it
/// (everything the authorization issued); an access token goes alone. Unknown tokens and
/// other clients' tokens are answered the same (nothing revealed).
pub async fn revoke(
    svc: &OAuthServices,
    client: &Client,
    form: &TokenForm,
) -> Result<(), OAuthError> {
    let Some(token) = form.get("token") else {
        return Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "token is required",
        ));
    };
    if let Some(g) = svc
        .store
        .find_oauth_grant(OAuthGrantKind::RefreshToken, &sha256_hex(token.as_bytes()))
        .await?
    {
        if g.provider == client.provider.pk {
            svc.store.revoke_oauth_family(g.family).await?;
        }
        return Ok(());
    }
    if let Some((_, g)) =
        crate::issue::access_token_grant(svc, &client.provider, &client.config, token).await?
    {
        svc.store.revoke_oauth_grant(g.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forms_refuse_duplicates_and_oversized_fields() {
        let f = TokenForm::parse(b"grant_type=authorization_code&code=abc").unwrap();
        assert_eq!(f.get("code"), Some("abc"));
        assert_eq!(f.get("missing"), None);
        assert!(TokenForm::parse(b"code=a&code=b").is_err());
        let long = format!("code={}", "a".repeat(MAX_FIELD_LEN + 1));
        assert!(TokenForm::parse(long.as_bytes()).is_err());
        let many: String = (0..70).map(|i| format!("f{i}=1&")).collect();
        assert!(TokenForm::parse(many.as_bytes()).is_err());
    }

    #[test]
    fn client_credentials_come_from_one_place() {
        let empty = TokenForm::default();
        let basic = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        let c = client_credentials(Some(&basic), &empty).unwrap();
        assert_eq!(c.client_id, "my client");
        assert_eq!(c.client_secret.as_deref(), Some("s:cret"));
        assert!(c.basic);
        let post = TokenForm::parse(b"client_id=app&client_secret=x").unwrap();
        let c = client_credentials(None, &post).unwrap();
        assert_eq!((c.client_id.as_str(), c.basic), ("app", false));
        // Both methods at once, a mismatched id, garbage and nothing at all.
        assert_eq!(
            client_credentials(Some(&basic), &post).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        let other = TokenForm::parse(b"client_id=other").unwrap();
        assert_eq!(
            client_credentials(Some(&basic), &other).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            client_credentials(Some("Basic !!!"), &empty)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidClient
        );
        assert_eq!(
            client_credentials(None, &empty).unwrap_err().code(),
            ErrorCode::InvalidClient
        );
    }
}
