//! Issuing: the provider's signing key, the subject, the claims of the granted scopes, and the
//! code, access token (a JWT in RFC 9068 form), ID token and refresh token of one grant.
//!
//! Every secret handed out is random (256 bits or more) and stored only as its SHA-256, in the
//! store's `oauth_grants`, under one `family` per authorization: a reused code or a replayed
//! rotated refresh token revokes the whole family.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use portcullis_core::PropertyMapping;
use portcullis_core::{Clock, OAuthGrant, OAuthGrantKind, Provider};
use portcullis_crypto::jwe::JweEncrypter;
use portcullis_crypto::jws::{JwsAlgorithm, JwsSigner};
use portcullis_crypto::{SecretBox, random_string, sha256_hex};
use portcullis_policy::{ExpressionPolicy, PolicyRequest, PolicyUser};
use portcullis_store::ttl_map::TtlMap;
use portcullis_store::{Store, StoreError, UserWithGroups};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::{ErrorCode, OAuthError};
use crate::provider::{OAuth2Config, SubMode};

/// authentik's `acr` for logins through its flows.
pub const ACR_DEFAULT: &str = "goauthentik.io/providers/oauth2/default";

/// Length of codes and tokens handed out (base62-ish characters: ~380 bits).
const SECRET_LEN: usize = 64;

/// What issuing needs from the server.
#[derive(Clone)]
pub struct OAuthServices {
    pub store: Store,
    pub secrets: SecretBox,
    pub clock: Arc<dyn Clock>,
    /// Keys `hashed_user_id` subjects and session ids (the install's own id).
    pub install_id: String,
    /// Signing keys and scope mappings per provider, read once (see [`OAuthCache`]).
    pub cache: Arc<OAuthCache>,
}

/// What every token request would otherwise read and parse again: each client (provider,
/// settings, application), its signing key (loaded, decrypted and parsed), its scope mappings
/// and its service account. Entries follow the store's change
/// count and a short TTL, as the flow engine's definition cache does.
#[derive(Default)]
pub struct OAuthCache {
    signers: TtlMap<i32, Arc<JwsSigner>>,
    encrypters: TtlMap<i32, Option<Arc<JweEncrypter>>>,
    mappings: TtlMap<i32, Arc<Vec<PropertyMapping>>>,
    pub(crate) clients: TtlMap<String, Arc<crate::token::Client>>,
    pub(crate) service_accounts: TtlMap<i32, Arc<UserWithGroups>>,
    /// Wrong codes typed at `/device`, per user.
    pub wrong_device_codes: crate::device::WrongCodes,
}

impl std::fmt::Debug for OAuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCache").finish_non_exhaustive()
    }
}

/// The provider's scope mappings, from the cache.
pub async fn mappings_of(
    svc: &OAuthServices,
    provider: &Provider,
) -> Result<Arc<Vec<PropertyMapping>>, OAuthError> {
    let generation = svc.store.changes();
    if let Some(m) = svc.cache.mappings.get(&provider.pk, generation) {
        return Ok(m);
    }
    let m = Arc::new(svc.store.list_property_mappings_of(provider.pk).await?);
    svc.cache.mappings.put(provider.pk, generation, m.clone());
    Ok(m)
}

impl std::fmt::Debug for OAuthServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthServices").finish_non_exhaustive()
    }
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "oauth: internal error");
    OAuthError::new(ErrorCode::ServerError)
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        server_error(e)
    }
}

/// The key that signs the provider's tokens: its certificate-key pair, else HS256 with the
/// client secret (authentik's rule). Loaded once and cached.
pub async fn signer(
    svc: &OAuthServices,
    provider: &Provider,
    config: &OAuth2Config,
) -> Result<Arc<JwsSigner>, OAuthError> {
    let generation = svc.store.changes();
    if let Some(s) = svc.cache.signers.get(&provider.pk, generation) {
        return Ok(s);
    }
    let s = Arc::new(load_signer(svc, config).await?);
    svc.cache.signers.put(provider.pk, generation, s.clone());
    Ok(s)
}

/// The provider's signer, once its encrypter (when it has one) is known to load too: grants
/// call this before they consume a code or token, so a broken key fails the request without
/// using anything up.
pub async fn ready_signer(
    svc: &OAuthServices,
    provider: &Provider,
    config: &OAuth2Config,
) -> Result<Arc<JwsSigner>, OAuthError> {
    encrypter(svc, provider, config).await?;
    signer(svc, provider, config).await
}

/// The provider's ID-token encrypter (its `encryption_key`, an RSA certificate), from the
/// cache; `None` when it has none.
pub async fn encrypter(
    svc: &OAuthServices,
    provider: &Provider,
    config: &OAuth2Config,
) -> Result<Option<Arc<JweEncrypter>>, OAuthError> {
    let Some(uuid) = config.encryption_key else {
        return Ok(None);
    };
    let generation = svc.store.changes();
    if let Some(e) = svc.cache.encrypters.get(&provider.pk, generation) {
        return Ok(e);
    }
    let kp = svc.store.find_certificate_keypair(uuid).await?;
    let e = Some(Arc::new(
        JweEncrypter::from_certificate_pem(&kp.certificate_pem).map_err(server_error)?,
    ));
    svc.cache.encrypters.put(provider.pk, generation, e.clone());
    Ok(e)
}

async fn load_signer(svc: &OAuthServices, config: &OAuth2Config) -> Result<JwsSigner, OAuthError> {
    match config.signing_key {
        Some(uuid) => {
            let kp = svc.store.find_certificate_keypair(uuid).await?;
            let encrypted = svc
                .store
                .find_private_key_for_use(uuid)
                .await?
                .ok_or_else(|| server_error("the signing key has no private key"))?;
            let pem = svc.secrets.decrypt_str(&encrypted).map_err(server_error)?;
            JwsSigner::from_pem(&pem, Some(&kp.certificate_pem)).map_err(server_error)
        }
        None => {
            let secret = client_secret(svc, config)?;
            JwsSigner::hs256(secret.as_bytes()).map_err(server_error)
        }
    }
}

/// An access token the provider signed, with its stored grant: signature and algorithm checked
/// by the provider's key, `exp` present and not passed, the grant found by the token's `jti`,
/// belonging to the provider and not expired by its own stored expiry (so a token re-signed
/// with a later `exp` by someone holding an HS256 client secret gains nothing). `None` when any
/// of that fails; whether a revoked grant counts is the caller's to say (introspection answers
/// inactive, revocation has nothing left to do).
pub async fn access_token_grant(
    svc: &OAuthServices,
    provider: &Provider,
    config: &OAuth2Config,
    token: &str,
) -> Result<Option<(Value, OAuthGrant)>, OAuthError> {
    let Ok(signer) = signer(svc, provider, config).await else {
        return Ok(None);
    };
    let Ok(claims) = signer.verify::<Value>(token) else {
        return Ok(None);
    };
    if claims.get("exp").and_then(Value::as_i64).is_none() {
        return Ok(None);
    }
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
        return Ok(None);
    };
    let grant = svc
        .store
        .find_oauth_grant(OAuthGrantKind::AccessToken, &sha256_hex(jti.as_bytes()))
        .await?;
    let now = svc.clock.now();
    Ok(grant
        .filter(|g| g.provider == provider.pk && g.expires > now)
        .map(|g| (claims, g)))
}

/// The `sub` of an `id_token_hint` (OIDC Core §3.1.2.1): an ID token this provider (`issuer`)
/// signed for `client_id` (its signature checked, its expiry not: a hint may have expired).
/// Anything else is `invalid_request`. An encrypted ID token is no hint: the client decrypts it
/// first.
pub async fn hinted_subject(
    svc: &OAuthServices,
    provider: &Provider,
    config: &OAuth2Config,
    client_id: &str,
    issuer: &str,
    hint: &str,
) -> Result<String, OAuthError> {
    let invalid = || OAuthError::described(ErrorCode::InvalidRequest, "invalid id_token_hint");
    let signer = signer(svc, provider, config).await?;
    // Signed with a public client's "secret" (HS256 without a signing key), anyone could have
    // made it: no hint at all.
    if signer.algorithm() == JwsAlgorithm::Hs256
        && config.client_type == crate::provider::ClientType::Public
    {
        return Err(invalid());
    }
    let claims: Value = signer.verify_ignoring_expiry(hint).map_err(|_| invalid())?;
    let for_client = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    // An ID token, not an access token or logout token of the same client (their `typ`).
    let typ = jsonwebtoken::decode_header(hint).ok().and_then(|h| h.typ);
    let from_here = claims.get("iss").and_then(Value::as_str) == Some(issuer);
    if !for_client || !from_here || typ.as_deref() != Some("JWT") {
        return Err(invalid());
    }
    claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// The provider's client secret in clear (empty when it has none).
pub fn client_secret(svc: &OAuthServices, config: &OAuth2Config) -> Result<String, OAuthError> {
    if config.client_secret.is_empty() {
        return Ok(String::new());
    }
    svc.secrets
        .decrypt_str(&config.client_secret)
        .map_err(server_error)
}

/// The `sub` claim for `user` under the provider's `sub_mode`.
pub fn subject(svc: &OAuthServices, config: &OAuth2Config, user: &UserWithGroups) -> String {
    let u = &user.user;
    let hashed = || sha256_hex(format!("{}-{}", u.pk, svc.install_id).as_bytes());
    match config.sub_mode {
        SubMode::HashedUserId => hashed(),
        SubMode::UserId => u.pk.to_string(),
        SubMode::UserUuid => u.uuid.to_string(),
        SubMode::UserUsername => u.username.clone(),
        SubMode::UserEmail => u.email.clone(),
        SubMode::UserUpn => u
            .attributes
            .get("upn")
            .and_then(Value::as_str)
            .map_or_else(hashed, str::to_owned),
        // Keyed with the install's secret id: without it, nobody can tell which user a
        // pairwise subject is, nor match subjects of two sectors. (The API and blueprints
        // refuse `pairwise` without a sector; were one missing, the empty sector is used.)
        SubMode::Pairwise => {
            let sector = config.sector().unwrap_or_default();
            sha256_hex(format!("pairwise|{sector}|{}|{}", u.pk, svc.install_id).as_bytes())
        }
    }
}

/// authentik's `uid` claim: stable and opaque, per install.
pub fn uid(svc: &OAuthServices, user: &UserWithGroups) -> String {
    sha256_hex(format!("{}-{}", svc.install_id, user.user.pk).as_bytes())
}

/// The scope names the provider's mappings offer, in the mappings' order.
pub async fn provider_scopes(
    svc: &OAuthServices,
    provider: &Provider,
) -> Result<Vec<String>, OAuthError> {
    let mappings = mappings_of(svc, provider).await?;
    let mut out: Vec<String> = Vec::new();
    for m in mappings.iter() {
        if let Some(s) = m.config.get("scope_name").and_then(Value::as_str)
            && !out.iter().any(|o| o == s)
        {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// The claims of the granted scopes: each of the provider's mappings for a granted scope runs
/// (sandboxed, bounded) and the objects they return are merged. A mapping that fails or
/// returns something else is skipped and logged, as authentik does.
pub async fn scope_claims(
    svc: &OAuthServices,
    provider: &Provider,
    user: &UserWithGroups,
    scopes: &[String],
) -> Result<Map<String, Value>, OAuthError> {
    let mappings = mappings_of(svc, provider).await?;
    let req = PolicyRequest::new(PolicyUser::from_user(&user.user, &user.groups));
    let scopes = scopes.to_vec();
    // Expressions are CPU-bound and bounded by their limits: all of them in one trip off the
    // async workers.
    portcullis_policy::expression::off_thread(move || {
        let mut claims = Map::new();
        for m in mappings.iter() {
            let Some(scope) = m.config.get("scope_name").and_then(Value::as_str) else {
                continue;
            };
            if !scopes.iter().any(|s| s == scope) {
                continue;
            }
            let policy = ExpressionPolicy::new(m.name.clone(), m.expression.clone());
            match policy.evaluate_value(&req) {
                Ok(Value::Object(map)) => claims.extend(map),
                Ok(Value::Null) => {}
                Ok(other) => {
                    tracing::warn!(mapping = %m.name, kind = %json_kind(&other), "scope mapping returned no object");
                }
                Err(e) => tracing::warn!(mapping = %m.name, error = %e, "scope mapping failed"),
            }
        }
        claims
    })
    .await
    .map_err(server_error)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The claim names the `claims` request parameter asks for in `member` (`id_token` or
/// `userinfo`).
fn requested_claims<'a>(claims: Option<&'a Value>, member: &str) -> Vec<&'a str> {
    claims
        .and_then(|c| c.get(member))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The left half of the hash of `value`, base64url (`at_hash`, `c_hash`; OIDC Core §3.3.2.11),
/// with the hash of the signing algorithm.
pub fn half_hash(alg: JwsAlgorithm, value: &str) -> String {
    let algorithm = match alg {
        JwsAlgorithm::Es384 => &aws_lc_rs::digest::SHA384,
        JwsAlgorithm::EdDsa => &aws_lc_rs::digest::SHA512,
        _ => &aws_lc_rs::digest::SHA256,
    };
    let digest = aws_lc_rs::digest::digest(algorithm, value.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(bytes.get(..bytes.len() / 2).unwrap_or(bytes))
}

/// The `amr` claim (RFC 8176) for how the session's user logged in: `pwd` for a password or an
/// app password. Empty (and left out) when unknown.
pub fn amr(auth_method: Option<&str>) -> Vec<String> {
    match auth_method {
        Some("password" | "app_password") => vec!["pwd".to_owned()],
        _ => Vec::new(),
    }
}

/// What a code or refresh token carries to the tokens it leads to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<crate::pkce::PkceChallenge>,
    /// When the user authenticated (seconds since the epoch).
    pub auth_time: i64,
    /// Authentication methods (`pwd`, `mfa`, ...).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The `claims` request parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
    /// The issuer the grant's tokens name (set when stored; a logout token names the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl GrantData {
    pub fn from_value(v: &Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
}

/// Who a grant is for and what it may do.
#[derive(Debug, Clone)]
pub struct GrantSubject<'a> {
    pub issuer: &'a str,
    pub provider: &'a Provider,
    pub config: &'a OAuth2Config,
    pub user: &'a UserWithGroups,
    pub scopes: &'a [String],
    pub session: Option<Uuid>,
    pub family: Uuid,
    pub data: GrantData,
}

impl GrantSubject<'_> {
    fn client_id(&self) -> &str {
        self.provider.client_id.as_deref().unwrap_or("")
    }

    /// `sid`: the session's id, hashed (the session's own id never leaves the server).
    fn sid(&self) -> Option<String> {
        self.session
            .map(|s| sha256_hex(format!("sid-{s}").as_bytes()))
    }
}

/// The grant's data as stored, with the issuer.
fn stored_data(sub: &GrantSubject<'_>) -> Result<Value, OAuthError> {
    let mut data = sub.data.clone();
    data.issuer = Some(sub.issuer.to_owned());
    serde_json::to_value(&data).map_err(server_error)
}

/// A new random secret and its stored hash.
fn new_secret() -> (String, String) {
    let s = random_string(SECRET_LEN);
    let h = sha256_hex(s.as_bytes());
    (s, h)
}

/// Stores a new authorization code for the subject; returns the code.
pub async fn issue_code(svc: &OAuthServices, sub: &GrantSubject<'_>) -> Result<String, OAuthError> {
    let (code, hash) = new_secret();
    let now = svc.clock.now();
    svc.store
        .create_oauth_grant(OAuthGrant {
            id: 0,
            kind: OAuthGrantKind::Code,
            key_hash: hash,
            provider: sub.provider.pk,
            user: Some(sub.user.user.pk),
            family: sub.family,
            session: sub.session,
            scope: sub.scopes.join(" "),
            data: stored_data(sub)?,
            created: now,
            expires: now + sub.config.access_code_ttl(),
            used: false,
            revoked: false,
        })
        .await?;
    Ok(code)
}

/// What the token endpoint answers (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Options of one issue.
#[derive(Debug, Clone, Copy, Default)]
pub struct IssueOptions<'a> {
    /// Issue an access token (false only for authorization responses that return none, e.g.
    /// `response_type=id_token`: no token is made that nobody receives).
    pub access_token: bool,
    /// Issue an ID token (the openid scope was granted).
    pub id_token: bool,
    /// Issue a refresh token (offline_access granted and the refresh grant allowed).
    pub refresh_token: bool,
    /// The code this issue answers (for `c_hash` in hybrid responses).
    pub code: Option<&'a str>,
    /// The scopes of the refresh token when they differ from the access token's (a refresh
    /// that narrows the scope keeps the grant's original scope for the next refresh, RFC 6749
    /// §6).
    pub refresh_scopes: Option<&'a [String]>,
}

/// Issues an access token (stored by its `jti`), and optionally an ID token and a refresh
/// token, for the subject.
pub async fn issue_tokens(
    svc: &OAuthServices,
    signer: &JwsSigner,
    sub: &GrantSubject<'_>,
    opts: IssueOptions<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = svc.clock.now();
    let ttl = sub.config.access_token_ttl();
    let exp = now + ttl;
    let claims = scope_claims(svc, sub.provider, sub.user, sub.scopes).await?;
    let subject = subject(svc, sub.config, sub.user);
    let jti = Uuid::new_v4().to_string();
    let scope = sub.scopes.join(" ");

    let mut base = Map::new();
    base.insert("iss".into(), json!(sub.issuer));
    base.insert("sub".into(), json!(subject));
    base.insert("aud".into(), json!(sub.client_id()));
    base.insert("exp".into(), json!(exp.timestamp()));
    base.insert("iat".into(), json!(now.timestamp()));
    base.insert("auth_time".into(), json!(sub.data.auth_time));
    base.insert("acr".into(), json!(ACR_DEFAULT));
    if !sub.data.amr.is_empty() {
        base.insert("amr".into(), json!(sub.data.amr));
    }
    if let Some(sid) = sub.sid() {
        base.insert("sid".into(), json!(sid));
    }

    // The access token: RFC 9068 (typ at+jwt, client_id, jti, scope), with authentik's azp,
    // uid and the scope claims.
    let mut at = base.clone();
    at.insert("azp".into(), json!(sub.client_id()));
    at.insert("client_id".into(), json!(sub.client_id()));
    at.insert("uid".into(), json!(uid(svc, sub.user)));
    at.insert("scope".into(), json!(scope));
    at.insert("jti".into(), json!(jti));
    for (k, v) in &claims {
        at.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let access_token = if opts.access_token {
        let t = signer.sign(&at, "at+jwt").map_err(server_error)?;
        store_grant(
            svc,
            sub,
            sub.scopes,
            OAuthGrantKind::AccessToken,
            sha256_hex(jti.as_bytes()),
            now,
            exp,
        )
        .await?;
        t
    } else {
        String::new()
    };

    let id_token = if opts.id_token {
        let mut id = base;
        id.insert("azp".into(), json!(sub.client_id()));
        if let Some(n) = &sub.data.nonce {
            id.insert("nonce".into(), json!(n));
        }
        if !access_token.is_empty() {
            id.insert(
                "at_hash".into(),
                json!(half_hash(signer.algorithm(), &access_token)),
            );
        }
        if let Some(code) = opts.code {
            id.insert("c_hash".into(), json!(half_hash(signer.algorithm(), code)));
        }
        // The scope claims, or (OIDC Core §5.5) those of them the `claims` request parameter
        // asks for in the ID token. Only claims of granted scopes are ever released.
        let asked = requested_claims(sub.data.claims.as_ref(), "id_token");
        for (k, v) in &claims {
            if sub.config.include_claims_in_id_token || asked.contains(&k.as_str()) {
                id.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let signed = signer.sign(&id, "JWT").map_err(server_error)?;
        // With an encryption key, the client gets the signed ID token inside a JWE.
        Some(match encrypter(svc, sub.provider, sub.config).await? {
            Some(enc) => enc
                .encrypt(signed.as_bytes(), Some("JWT"))
                .map_err(server_error)?,
            None => signed,
        })
    } else {
        None
    };

    let refresh_token = if opts.refresh_token {
        let (token, hash) = new_secret();
        let expires = now + sub.config.refresh_token_ttl();
        let scopes = opts.refresh_scopes.unwrap_or(sub.scopes);
        store_grant(
            svc,
            sub,
            scopes,
            OAuthGrantKind::RefreshToken,
            hash,
            now,
            expires,
        )
        .await?;
        Some(token)
    } else {
        None
    };

    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl.num_seconds(),
        scope,
        id_token,
        refresh_token,
    })
}

#[allow(clippy::too_many_arguments)]
async fn store_grant(
    svc: &OAuthServices,
    sub: &GrantSubject<'_>,
    scopes: &[String],
    kind: OAuthGrantKind,
    key_hash: String,
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<(), OAuthError> {
    svc.store
        .record_oauth_grant(OAuthGrant {
            id: 0,
            kind,
            key_hash,
            provider: sub.provider.pk,
            user: Some(sub.user.user.pk),
            family: sub.family,
            session: sub.session,
            scope: scopes.join(" "),
            data: stored_data(sub)?,
            created,
            expires,
            used: false,
            revoked: false,
        })
        .await?;
    Ok(())
}
