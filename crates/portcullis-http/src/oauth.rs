//! The OAuth 2.0 / OpenID Connect endpoints at authentik's paths. This module only decodes
//! and encodes HTTP; the protocol is `portcullis-oauth`'s, the login and consent the flow
//! engine's.
//!
//! ```text
//!  GET /application/o/authorize/ ──validate──> logged in? ──no──> authentication flow ─┐
//!        │                                      │ yes                ?next=authorize   │
//!        │                                      v                                      │
//!        │                  application policies ──> authorization flow (consent) <───┘
//!        │                                                 │ done: redirect to
//!        v                                                 v
//!   error page / error redirect           /application/o/authorize/fulfil/?id=…
//!                                          code / tokens ──> client's redirect_uri
//!  POST /application/o/token/ ──client auth──> grant ──> JSON
//!  GET|POST /application/o/userinfo/ ──bearer JWT──> claims of the granted scopes
//! ```
//! The pending authorization waits in the session under a random id that only the flow's final
//! redirect reveals, so a client cannot skip the flow (and its consent) by calling the fulfil
//! URL itself.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use portcullis_core::{Application, EventAction, FlowDesignation, NewEvent, Provider};
use portcullis_flow::{Executor, context};
use portcullis_oauth::authorize::{self, Authorization, AuthorizeRequest, Refusal};
use portcullis_oauth::error::{ErrorCode, OAuthError};
use portcullis_oauth::issue::{self, GrantData, GrantSubject, IssueOptions};
use portcullis_oauth::provider::{IssuerMode, KIND};
use portcullis_oauth::token::{self, GrantOutcome, TokenForm};
use portcullis_oauth::{OAuth2Config, ResponseMode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The session data key of authorizations waiting for their flow.
const PENDING: &str = "oauth_pending";
/// Most authorizations one session may have waiting (oldest dropped first).
const MAX_PENDING: usize = 8;
/// What a client may sign its assertions and request objects with: its secret (HS*) or a key
/// registered in its `jwks`.
const CLIENT_SIGNING_ALGS: [&str; 7] = [
    "HS256", "HS384", "HS512", "RS256", "ES256", "ES384", "EdDSA",
];
/// The session data key of the authorization requests (by the SHA-256 of their query) that
/// sent the person to log in, and when.
const REAUTH: &str = "oauth_reauth";
/// The session data key of authorization requests too long for the login page's `next`.
const RESUME: &str = "oauth_resume";
/// The longest `next` the login page takes back (the flow engine's `safe_next` limit, less room).
const MAX_NEXT: usize = 2000;
/// How long an authorization may wait for its flow.
const PENDING_TTL_SECONDS: i64 = 30 * 60;
/// The largest token or userinfo request body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub use portcullis_oauth::issue::OAuthServices;

/// Back- and front-channel logout when a browser session logs out: its grants are revoked at
/// once, the logout tokens delivered in the background, and the front-channel pages handed to
/// the flow, which shows them in iframes.
pub struct OAuthLogout {
    svc: OAuthServices,
    deliverer: portcullis_oauth::logout::Deliverer,
}

impl OAuthLogout {
    pub fn new(svc: OAuthServices) -> Self {
        Self {
            svc,
            deliverer: portcullis_oauth::logout::Deliverer::new(),
        }
    }
}

#[async_trait::async_trait]
impl portcullis_flow::SessionEndHook for OAuthLogout {
    async fn session_ended(
        &self,
        session: Uuid,
        _user: i32,
    ) -> Vec<portcullis_flow::stages::iframe_logout::LogoutUrl> {
        let end = match portcullis_oauth::logout::session_ended(&self.svc, session).await {
            Ok(end) => end,
            Err(e) => {
                tracing::warn!(error = ?e, "logout: could not end the session's grants");
                return Vec::new();
            }
        };
        if !end.backchannel.is_empty() {
            let deliverer = self.deliverer.clone();
            let deliveries = end.backchannel;
            tokio::spawn(async move { deliverer.deliver(deliveries).await });
        }
        end.frontchannel
            .into_iter()
            .map(|f| portcullis_flow::stages::iframe_logout::LogoutUrl {
                url: f.url,
                provider_name: f.provider,
                binding: portcullis_flow::stages::iframe_logout::BINDING_REDIRECT.to_owned(),
            })
            .collect()
    }
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/application/o/authorize/",
            get(authorize_get).post(authorize_post),
        )
        .route("/application/o/authorize/fulfil/", get(fulfil))
        .route(
            "/application/o/token/",
            axum::routing::post(token_endpoint)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            "/application/o/userinfo/",
            get(userinfo).post(userinfo_post),
        )
        .route(
            "/application/o/{slug}/.well-known/openid-configuration",
            get(discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server/application/o/{slug}/",
            get(discovery),
        )
        .route("/application/o/{slug}/jwks/", get(jwks))
        .route(
            "/application/o/introspect/",
            axum::routing::post(introspect_endpoint)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            "/application/o/revoke/",
            axum::routing::post(revoke_endpoint)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            "/application/o/{slug}/end-session/",
            get(end_session_get).post(end_session_post),
        )
        .route(
            "/application/o/device/",
            axum::routing::post(device_authorization)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route("/device", get(device_user_page))
        .route("/device/fulfil/", get(device_fulfil))
}

pub(crate) fn services(state: &AppState) -> OAuthServices {
    OAuthServices {
        store: state.store.clone(),
        secrets: state.secrets.clone(),
        clock: state.clock.clone(),
        install_id: state.install_id.clone(),
        cache: state.oauth_cache.clone(),
    }
}

/// `https://host` of the request (the scheme as the client reached us).
fn base_url(parts: &Parts) -> String {
    let scheme = if crate::session::is_https(parts) {
        "https"
    } else {
        "http"
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

fn issuer(base: &str, config: &OAuth2Config, app: &Application) -> String {
    match config.issuer_mode {
        IssuerMode::PerProvider => format!("{base}/application/o/{}/", app.slug),
        IssuerMode::Global => format!("{base}/"),
    }
}

/// Whether the application's policy bindings let `user` use it.
async fn application_access(
    state: &AppState,
    app: &Application,
    user: &portcullis_store::UserWithGroups,
    request: &portcullis_flow::FlowRequest,
    context: serde_json::Map<String, Value>,
) -> ApiResult<portcullis_policy::EngineResult> {
    let mut preq = portcullis_policy::PolicyRequest::new(portcullis_policy::PolicyUser::from_user(
        &user.user,
        &user.groups,
    ));
    preq.http_request = Some(request.http.clone());
    preq.context = context;
    Ok(portcullis_flow::policies::evaluate_target(
        &state.flows.policies,
        app.uuid,
        app.policy_engine_mode,
        &preq,
        &portcullis_policy::PolicyCache::new(),
        &actor_of(user, request),
    )
    .await?)
}

/// Who events about `user`'s request name.
fn actor_of(
    user: &portcullis_store::UserWithGroups,
    request: &portcullis_flow::FlowRequest,
) -> portcullis_core::Actor {
    portcullis_core::Actor {
        user: Some(portcullis_core::EventUser {
            pk: user.user.pk,
            email: user.user.email.clone(),
            username: user.user.username.clone(),
        }),
        client_ip: request.http.client_ip.clone(),
        brand: None,
    }
}

/// The application `slug` and its OAuth2 provider.
async fn app_and_provider(state: &AppState, slug: &str) -> ApiResult<(Application, Provider)> {
    let app = state.store.find_application(slug).await?;
    let pk = app.provider.ok_or(ApiError::NotFound)?;
    let provider = state.store.find_provider(pk).await?;
    if provider.kind != KIND {
        return Err(ApiError::NotFound);
    }
    Ok((app, provider))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn cors_public(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

// ---------------------------------------------------------------------------- discovery

async fn discovery(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    parts: Parts,
) -> ApiResult<Response> {
    let (app, provider) = app_and_provider(&state, &slug).await?;
    let config = OAuth2Config::from_value(&provider.config);
    let base = base_url(&parts);
    let o = format!("{base}/application/o");
    let scopes = issue::provider_scopes(&services(&state), &provider)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let alg = issue::signer(&services(&state), &provider, &config)
        .await
        .map_err(|e| ApiError::Internal(format!("the provider's signing key: {e:?}")))?
        .algorithm()
        .as_str();
    // The grants the token endpoint serves, among those the provider allows.
    let grants: Vec<&str> = [
        "authorization_code",
        "refresh_token",
        "implicit",
        "client_credentials",
        "password",
        portcullis_oauth::device::GRANT_TYPE,
    ]
    .into_iter()
    .filter(|g| config.allows_grant(g))
    .collect();
    let mut doc = json!({
        "issuer": issuer(&base, &config, &app),
        "authorization_endpoint": format!("{o}/authorize/"),
        "token_endpoint": format!("{o}/token/"),
        "userinfo_endpoint": format!("{o}/userinfo/"),
        "end_session_endpoint": format!("{o}/{}/end-session/", app.slug),
        "introspection_endpoint": format!("{o}/introspect/"),
        "revocation_endpoint": format!("{o}/revoke/"),
        "device_authorization_endpoint": format!("{o}/device/"),
        "jwks_uri": format!("{o}/{}/jwks/", app.slug),
        "response_types_supported": ["code", "id_token", "id_token token", "code token", "code id_token", "code id_token token", "token", "none"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": grants,
        "subject_types_supported": [if config.sub_mode == portcullis_oauth::provider::SubMode::Pairwise { "pairwise" } else { "public" }],
        "id_token_signing_alg_values_supported": [alg],
        "scopes_supported": scopes,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "sid",
            "email", "email_verified", "name", "given_name", "preferred_username", "nickname", "groups"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
        "code_challenge_methods_supported": ["plain", "S256"],
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "authorization_response_iss_parameter_supported": true,
    });
    if config.encryption_key.is_some()
        && let Some(o) = doc.as_object_mut()
    {
        o.insert(
            "id_token_encryption_alg_values_supported".into(),
            json!([portcullis_crypto::jwe::ALG]),
        );
        o.insert(
            "id_token_encryption_enc_values_supported".into(),
            json!([portcullis_crypto::jwe::ENC]),
        );
    }
    Ok(cors_public(json_response(StatusCode::OK, &doc)))
}

async fn jwks(State(state): State<Arc<AppState>>, Path(slug): Path<String>) -> ApiResult<Response> {
    let (_, provider) = app_and_provider(&state, &slug).await?;
    let config = OAuth2Config::from_value(&provider.config);
    let svc = services(&state);
    let mut doc = match config.signing_key {
        Some(_) => {
            let signer = issue::signer(&svc, &provider, &config)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            portcullis_crypto::jws::jwks([signer.as_ref()])
        }
        None => json!({"keys": []}),
    };
    // The encryption key too (`use: enc`), as authentik publishes it. A broken one (deleted,
    // no longer RSA) is left out: the signing keys must stay readable for every client.
    match issue::encrypter(&svc, &provider, &config).await {
        Ok(Some(enc)) => {
            if let Some(keys) = doc.get_mut("keys").and_then(Value::as_array_mut) {
                keys.push(enc.public_jwk().clone());
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(provider = %provider.name, error = %e, "jwks: the encryption key cannot be used")
        }
    }
    Ok(cors_public(json_response(StatusCode::OK, &doc)))
}

// ---------------------------------------------------------------------------- authorize

/// An error shown to the person (never redirected): the client or redirect URI is unknown.
async fn error_page(
    state: &AppState,
    parts: &Parts,
    error: OAuthError,
    status: StatusCode,
) -> ApiResult<Response> {
    crate::ui::message_page(
        state,
        parts,
        crate::ui::Message {
            heading: "The application sent an invalid request",
            alert: error.description(),
            code: Some(error.code().as_str()),
            ..Default::default()
        },
        status,
    )
    .await
}

/// The authorization response (or error) in its response mode.
fn respond(resp: &authorize::AuthorizationResponse) -> Response {
    match resp.location() {
        Some(to) => {
            let mut r = Redirect::to(&to).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        None => {
            let nonce = portcullis_crypto::random_string(24);
            let html = resp.form_post_html(&nonce);
            let mut r = (StatusCode::OK, axum::response::Html(html)).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(csp) = HeaderValue::from_str(&format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'"
            )) {
                h.insert("content-security-policy", csp);
            }
            r
        }
    }
}

/// An authorization waiting for its flow, in the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    authorization: Authorization,
    application: Uuid,
    user: i32,
    created: i64,
}

async fn authorize_get(State(state): State<Arc<AppState>>, parts: Parts) -> ApiResult<Response> {
    let query = parts.uri.query().unwrap_or("").to_owned();
    authorize(&state, parts, &query).await
}

async fn authorize_post(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let query = String::from_utf8_lossy(&body).into_owned();
    authorize(&state, parts, &query).await
}

async fn authorize(state: &AppState, parts: Parts, query: &str) -> ApiResult<Response> {
    // A request too long to ride in the login page's `next` waited in the session.
    let resumed;
    let query =
        match resume_id(query) {
            None => query,
            Some(id) => {
                let session = crate::session::load(state, &parts).await?;
                match session
                    .data(RESUME)
                    .and_then(|m| m.get(&id))
                    .and_then(|e| e.get("query"))
                    .and_then(Value::as_str)
                {
                    Some(q) => {
                        resumed = q.to_owned();
                        resumed.as_str()
                    }
                    None => {
                        return error_page(state, &parts, OAuthError::described(
                            ErrorCode::InvalidRequest,
                            "the authorization request expired: start again from the application",
                        ),
                        StatusCode::BAD_REQUEST,).await;
                    }
                }
            }
        };
    let mut req = match AuthorizeRequest::parse(query) {
        Ok(r) => r,
        Err(e) => return error_page(state, &parts, e, StatusCode::BAD_REQUEST).await,
    };
    let unknown_client = || {
        error_page(
            state,
            &parts,
            OAuthError::described(ErrorCode::InvalidClient, "unknown client_id"),
            StatusCode::BAD_REQUEST,
        )
    };
    let svc = services(state);
    let client = match token::find_client(&svc, &req.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return unknown_client().await,
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    let (provider, config) = (&client.provider, &client.config);
    let Some(app) = &client.application else {
        return unknown_client().await;
    };
    let base = base_url(&parts);
    let iss = issuer(&base, config, app);
    // A signed request object: its parameters replace the query's. Shown on the error page
    // when it does not verify (its redirect_uri cannot be trusted then).
    let audiences = portcullis_oauth::assertion::Audiences {
        exact: vec![iss.clone(), format!("{base}/application/o/authorize/")],
        issuer_prefix: None,
    };
    if let Err(e) = portcullis_oauth::request_object::apply(
        &svc,
        &req.client_id.clone(),
        config,
        &audiences,
        &mut req,
    ) {
        return error_page(state, &parts, e, StatusCode::BAD_REQUEST).await;
    }
    let scopes = issue::provider_scopes(&svc, provider)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let authorization = match authorize::validate(&req, provider.pk, config, &scopes) {
        Ok(a) => a,
        Err(Refusal::Page(e)) => {
            return error_page(state, &parts, e, StatusCode::BAD_REQUEST).await;
        }
        Err(Refusal::Redirect(r)) => return Ok(respond(&r.response(&iss))),
    };

    // id_token_hint: the user the client believes is logged in (OIDC Core §3.1.2.1).
    let hinted = match req.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => {
            match issue::hinted_subject(&svc, provider, config, &req.client_id, &iss, h).await {
                Ok(sub) => Some(sub),
                Err(e) => return Ok(respond(&authorization.error(e).response(&iss))),
            }
        }
    };

    let mut session = crate::session::load(state, &parts).await?;
    let now = state.clock.now().timestamp();
    let auth_time = session.auth_time();
    let other_user = hinted.as_ref().is_some_and(|h| {
        session
            .user()
            .is_some_and(|u| issue::subject(&svc, config, u) != *h)
    });
    // max_age=0 asks for a new login as prompt=login does (OIDC Core §3.1.2.1).
    let too_old = authorization
        .max_age
        .is_some_and(|max| max == 0 || auth_time.is_none_or(|t| now - t > max));
    // prompt=login, and select_account (the person may log in as someone else), ask for a new
    // login; so do max_age and a hint naming someone else. The request comes back unchanged
    // after it (its parameters may be signed, in a request object), so the session remembers
    // which requests sent the person to log in, and when: a login after that, within the time a
    // request may wait, satisfies that request once (authentik keeps a similar flag).
    let fresh_login =
        authorization.prompt.login || authorization.prompt.select_account || other_user;
    let request_hash = portcullis_crypto::sha256_hex(query.as_bytes());
    let mut marks = young_entries(session.data(REAUTH), now);
    let mark = marks.remove(&request_hash).and_then(|v| v.as_i64());
    let relogged = mark.is_some_and(|at| auth_time.is_some_and(|t| t >= at));
    if session.user().is_none() || ((fresh_login || too_old) && !relogged) {
        if authorization.prompt.none {
            let e = OAuthError::new(ErrorCode::LoginRequired);
            return Ok(respond(&authorization.error(e).response(&iss)));
        }
        if session.user().is_some() {
            // A fresh login is required: the current one ends.
            session.logout(&state.store).await?;
        }
        // Log in first, then come back (a long request waits in the session: `next` is short).
        let mut next = format!("/application/o/authorize/?{query}");
        if next.len() > MAX_NEXT {
            let entry = json!({"query": query, "created": now});
            let id = push_pending(state, &mut session, RESUME, &entry, now).await?;
            next = format!("/application/o/authorize/?resume={id}");
        }
        let slug = match provider.authentication_flow {
            Some(f) => state.store.find_flow(f).await.ok().map(|f| f.slug),
            None => None,
        };
        let slug = match slug {
            Some(slug) => slug,
            None => crate::ui::default_flow(state, &parts.headers, FlowDesignation::Authentication)
                .await?
                .ok_or(ApiError::NotFound)?,
        };
        let mut to = format!(
            "/if/flow/{slug}/?next={}",
            portcullis_flow::executor::encode(&next)
        );
        // OIDC's login_hint: the login page fills it in.
        if let Some(hint) = authorization
            .login_hint
            .as_deref()
            .filter(|h| !h.is_empty())
        {
            to.push_str("&login_hint=");
            to.push_str(&portcullis_flow::executor::encode(hint));
        }
        marks.insert(request_hash, json!(now));
        keep_newest(&mut marks, MAX_PENDING);
        session
            .set_data(&state.store, REAUTH, Some(Value::Object(marks)))
            .await?;
        session.save(&state.store).await?;
        return Ok(crate::session::with_cookies(
            Redirect::to(&to).into_response(),
            &session,
            &parts,
        ));
    }
    if mark.is_some() {
        // Used once: the same request again asks for a new login again.
        session
            .set_data(&state.store, REAUTH, Some(Value::Object(marks)))
            .await?;
        session.save(&state.store).await?;
    }
    let Some(user) = session.user().cloned() else {
        return Err(ApiError::Internal("no user after login check".into()));
    };

    // The application's policies decide who may use it.
    let request = crate::flows_executor::flow_request(state, &parts, String::new()).await?;
    let access = application_access(state, app, &user, &request, Default::default()).await?;
    if !access.passing {
        if authorization.prompt.none {
            let e = OAuthError::new(ErrorCode::AccessDenied);
            return Ok(respond(&authorization.error(e).response(&iss)));
        }
        let c =
            portcullis_flow::challenge::Challenge::access_denied(&if access.messages.is_empty() {
                "You do not have access to this application.".to_owned()
            } else {
                access.messages.join(" ")
            });
        let r = crate::ui::render_challenge(&c, "", "", session.csrf_token(), &request.brand)?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    }
    // A hint or `claims` request for another user, or for an authentication context this login
    // lacks: no tokens (the person had the chance to log in as that user).
    let sub = issue::subject(&svc, config, &user);
    if hinted.as_ref().is_some_and(|h| *h != sub) {
        let e = OAuthError::described(
            ErrorCode::AccessDenied,
            "the id_token_hint names another user than the one logged in",
        );
        return Ok(respond(&authorization.error(e).response(&iss)));
    }
    if let Some(e) =
        authorize::unmet_claims(authorization.claims.as_ref(), &sub, issue::ACR_DEFAULT)
    {
        return Ok(respond(&authorization.error(e).response(&iss)));
    }

    // The authorization waits in the session for the provider's authorization flow.
    let Some(flow) = provider.authorization_flow else {
        let e = OAuthError::described(
            ErrorCode::ServerError,
            "the provider has no authorization flow",
        );
        return Ok(respond(&authorization.error(e).response(&iss)));
    };
    let permissions = consent_permissions(state, provider, &authorization.scopes).await?;
    let silent = authorization.prompt.none;
    let authorization_prompt_consent = authorization.prompt.consent;
    let refuse = authorization.clone();
    let waiting = Pending {
        authorization,
        application: app.uuid,
        user: user.user.pk,
        created: now,
    };
    let id = push_pending(state, &mut session, PENDING, &waiting, now).await?;
    let ctx = app_context(
        app,
        permissions,
        &format!("/application/o/authorize/fulfil/?id={id}"),
    );
    if !silent {
        // prompt=consent: the person is asked whatever the flow would do (authentik appends
        // an in-memory consent stage that always asks and remembers nothing).
        let appended = if authorization_prompt_consent {
            vec![portcullis_core::Stage {
                uuid: Uuid::new_v4(),
                name: "prompt-consent".to_owned(),
                kind: "consentstage".to_owned(),
                config: json!({"mode": portcullis_flow::stages::consent::ALWAYS_REQUIRE}),
            }]
        } else {
            Vec::new()
        };
        return start_flow(state, session, &parts, &request, flow, ctx, appended).await;
    }
    // prompt=none: the flow runs now and may not ask anything (OIDC Core §3.1.2.6).
    let slug = state.store.find_flow(flow).await?.slug;
    let first = {
        let mut exec = Executor::new(&state.flows, &mut session, &request);
        match exec.start(flow, ctx).await? {
            c if c.component == portcullis_flow::challenge::REDIRECT => exec.get(&slug).await?,
            c => c,
        }
    };
    let fulfil = format!("/application/o/authorize/fulfil/?id={id}");
    let r = if first.component == portcullis_flow::challenge::REDIRECT
        && first.field_str("to") == Some(fulfil.as_str())
    {
        Redirect::to(&fulfil).into_response()
    } else {
        session.set_plan(&state.store, &slug, None).await?;
        let code = if first.component == "ak-stage-consent" {
            ErrorCode::ConsentRequired
        } else {
            ErrorCode::InteractionRequired
        };
        respond(&refuse.error(OAuthError::new(code)).response(&iss))
    };
    session.save(&state.store).await?;
    Ok(crate::session::with_cookies(r, &session, &parts))
}

/// Puts `value` in the session's map `key` under a new random id (dropping entries older than
/// [`PENDING_TTL_SECONDS`], then the oldest beyond [`MAX_PENDING`]) and returns the id: what
/// waits for a flow (an authorization, a device approval) is found again only by that id.
async fn push_pending(
    state: &AppState,
    session: &mut portcullis_flow::SessionState,
    key: &str,
    value: &impl Serialize,
    now: i64,
) -> ApiResult<String> {
    let id = portcullis_crypto::random_string(43);
    let mut pending = young_entries(session.data(key), now);
    keep_newest(&mut pending, MAX_PENDING - 1);
    pending.insert(
        id.clone(),
        serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    session
        .set_data(&state.store, key, Some(Value::Object(pending)))
        .await?;
    Ok(id)
}

/// Takes the entry `id` out of the session's map `key` (it can be used once).
async fn take_pending<T: serde::de::DeserializeOwned>(
    state: &AppState,
    session: &mut portcullis_flow::SessionState,
    key: &str,
    id: &str,
) -> ApiResult<Option<T>> {
    let mut pending: serde_json::Map<String, Value> = session
        .data(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let taken = pending.remove(id);
    session
        .set_data(&state.store, key, Some(Value::Object(pending)))
        .await?;
    Ok(taken.and_then(|v| serde_json::from_value(v).ok()))
}

/// When a session map entry was written: the entry itself (a time), or its `created`.
fn entry_time(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.get("created").and_then(Value::as_i64))
}

/// The entries of a session map written less than [`PENDING_TTL_SECONDS`] ago.
fn young_entries(map: Option<&Value>, now: i64) -> serde_json::Map<String, Value> {
    let mut map = map.and_then(Value::as_object).cloned().unwrap_or_default();
    map.retain(|_, v| entry_time(v).is_some_and(|t| now - t < PENDING_TTL_SECONDS));
    map
}

/// Drops the oldest entries of such a map beyond `max`.
fn keep_newest(map: &mut serde_json::Map<String, Value>, max: usize) {
    while map.len() > max {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| entry_time(v).unwrap_or(0))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

/// The id of `resume=<id>` when that is the whole query.
fn resume_id(query: &str) -> Option<String> {
    let mut pairs = form_urlencoded::parse(query.as_bytes());
    match (pairs.next(), pairs.next()) {
        (Some((k, v)), None) if k == "resume" && v.len() <= 64 => Some(v.into_owned()),
        _ => None,
    }
}

/// The flow context of an application being authorized, ending at `redirect`.
fn app_context(
    app: &Application,
    permissions: Vec<Value>,
    redirect: &str,
) -> serde_json::Map<String, Value> {
    let mut ctx = serde_json::Map::new();
    ctx.insert(
        context::APPLICATION.into(),
        json!({"pk": app.uuid.to_string(), "name": app.name, "slug": app.slug}),
    );
    if !permissions.is_empty() {
        ctx.insert(
            context::CONSENT_PERMISSIONS.into(),
            Value::Array(permissions),
        );
    }
    ctx.insert(context::REDIRECT.into(), json!(redirect));
    ctx
}

/// Starts `flow` for this session with `ctx`, saves the session, and answers the browser: the
/// redirect to the flow's page, or the page of the challenge that stops it.
async fn start_flow(
    state: &AppState,
    mut session: portcullis_flow::SessionState,
    parts: &Parts,
    request: &portcullis_flow::FlowRequest,
    flow: Uuid,
    ctx: serde_json::Map<String, Value>,
    appended: Vec<portcullis_core::Stage>,
) -> ApiResult<Response> {
    let challenge = Executor::new(&state.flows, &mut session, request)
        .start_with(flow, ctx, appended)
        .await?;
    session.save(&state.store).await?;
    let r = match challenge.field_str("to") {
        Some(to) if challenge.component == portcullis_flow::challenge::REDIRECT => {
            Redirect::to(to).into_response()
        }
        _ => crate::ui::render_challenge(&challenge, "", "", session.csrf_token(), &request.brand)?,
    };
    Ok(crate::session::with_cookies(r, &session, parts))
}

/// The consent stage's permissions: the granted scopes that have a description.
async fn consent_permissions(
    state: &AppState,
    provider: &Provider,
    scopes: &[String],
) -> ApiResult<Vec<Value>> {
    let mappings = state.store.list_property_mappings_of(provider.pk).await?;
    let mut out = Vec::new();
    for m in mappings {
        let scope = m
            .config
            .get("scope_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let description = m
            .config
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        if scopes.iter().any(|s| s == scope) && !description.is_empty() {
            out.push(json!({"id": scope, "name": description}));
        }
    }
    Ok(out)
}

/// The flow is done: issue the code (and tokens) and send the browser to the client.
async fn fulfil(State(state): State<Arc<AppState>>, parts: Parts) -> ApiResult<Response> {
    let id = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut session = crate::session::load(&state, &parts).await?;
    let taken: Option<Pending> = take_pending(&state, &mut session, PENDING, &id).await?;
    let gone = || {
        error_page(
            &state,
            &parts,
            OAuthError::described(
                ErrorCode::InvalidRequest,
                "this authorization request has expired or was already answered; start again from the application",
            ),
            StatusCode::BAD_REQUEST,
        )
    };
    let Some(waiting) = taken else {
        session.save(&state.store).await?;
        return Ok(crate::session::with_cookies(
            gone().await?,
            &session,
            &parts,
        ));
    };
    let now = state.clock.now().timestamp();
    let user = match session.user() {
        Some(u) if u.user.pk == waiting.user && now - waiting.created < PENDING_TTL_SECONDS => {
            u.clone()
        }
        _ => {
            session.save(&state.store).await?;
            return Ok(crate::session::with_cookies(
                gone().await?,
                &session,
                &parts,
            ));
        }
    };
    let a = waiting.authorization;
    let provider = state.store.find_provider(a.provider).await?;
    let Some(app) = state
        .store
        .find_application_of_provider(provider.pk)
        .await?
    else {
        session.save(&state.store).await?;
        return Ok(crate::session::with_cookies(
            gone().await?,
            &session,
            &parts,
        ));
    };
    let config = OAuth2Config::from_value(&provider.config);
    let iss = issuer(&base_url(&parts), &config, &app);
    let svc = services(&state);
    let sub = GrantSubject {
        issuer: &iss,
        provider: &provider,
        config: &config,
        user: &user,
        scopes: &a.scopes,
        session: session.session().map(|s| s.uuid),
        family: Uuid::new_v4(),
        data: GrantData {
            redirect_uri: Some(a.redirect_uri.clone()),
            nonce: a.nonce.clone(),
            pkce: a.pkce.clone(),
            auth_time: session.auth_time().unwrap_or(now),
            amr: issue::amr(session.auth_method()),
            claims: a.claims.clone(),
            issuer: None,
        },
    };
    let mut params: Vec<(String, String)> = Vec::new();
    let issued = async {
        let code = if a.response_type.returns_code() {
            Some(issue::issue_code(&svc, &sub).await?)
        } else {
            None
        };
        let tokens = if a.response_type.returns_access_token() || a.response_type.returns_id_token()
        {
            let signer = issue::signer(&svc, &provider, &config).await?;
            Some(
                issue::issue_tokens(
                    &svc,
                    &signer,
                    &sub,
                    IssueOptions {
                        access_token: a.response_type.returns_access_token(),
                        id_token: a.response_type.returns_id_token(),
                        refresh_token: false,
                        code: code.as_deref(),
                        refresh_scopes: None,
                    },
                )
                .await?,
            )
        } else {
            None
        };
        Ok::<_, OAuthError>((code, tokens))
    }
    .await;
    match issued {
        Ok((code, tokens)) => {
            if let Some(c) = code {
                params.push(("code".into(), c));
            }
            if let Some(t) = tokens {
                if a.response_type.returns_access_token() {
                    params.push(("access_token".into(), t.access_token));
                    params.push(("token_type".into(), "Bearer".into()));
                    params.push(("expires_in".into(), t.expires_in.to_string()));
                }
                if let Some(id) = t.id_token.filter(|_| a.response_type.returns_id_token()) {
                    params.push(("id_token".into(), id));
                }
            }
            if let Some(s) = &a.state {
                params.push(("state".into(), s.clone()));
            }
            params.push(("iss".into(), iss.clone()));
            let event = NewEvent {
                action: EventAction::AuthorizeApplication,
                app: "authentik.providers.oauth2.views.authorize".to_owned(),
                context: json!({
                    "authorized_application": {
                        "app": "authentik_core", "model_name": "application",
                        "pk": app.uuid.simple().to_string(), "name": app.name,
                    },
                    "flow": Value::Null,
                    "scopes": a.scopes.join(" "),
                }),
            };
            // Who, and from where (the audit log of an authorization names the client IP).
            let request =
                crate::flows_executor::flow_request(&state, &parts, String::new()).await?;
            state
                .store
                .record_event(&actor_of(&user, &request), event)
                .await?;
        }
        Err(e) => {
            session.save(&state.store).await?;
            let r = respond(&a.error(e).response(&iss));
            return Ok(crate::session::with_cookies(r, &session, &parts));
        }
    }
    session.save(&state.store).await?;
    let resp = authorize::AuthorizationResponse {
        redirect_uri: a.redirect_uri.clone(),
        mode: a.response_mode,
        params,
    };
    Ok(crate::session::with_cookies(
        respond(&resp),
        &session,
        &parts,
    ))
}

// -------------------------------------------------------------------------------- token

fn oauth_error_response(e: &OAuthError, basic: bool) -> Response {
    let status = StatusCode::from_u16(e.token_endpoint_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let status = if e.code() == ErrorCode::InvalidClient && basic {
        StatusCode::UNAUTHORIZED
    } else {
        status
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), json!(e.code().as_str()));
    if let Some(d) = e.description() {
        body.insert("error_description".into(), json!(d));
    }
    let body = Value::Object(body);
    let mut r = json_response(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\""),
        );
    }
    r
}

async fn token_endpoint(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let form = match TokenForm::parse(&body) {
        Ok(f) => f,
        Err(e) => return Ok(oauth_error_response(&e, false)),
    };
    let auth_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let creds = match token::client_credentials(auth_header, &form) {
        Ok(c) => c,
        Err(e) => return Ok(oauth_error_response(&e, auth_header.is_some())),
    };
    let svc = services(&state);
    if let Some(r) = federated_grant(&state, &parts, &creds, &form).await? {
        return Ok(r);
    }
    let client = match token::authenticate_client(&svc, &creds, &audiences(&parts)).await {
        Ok(c) => c,
        Err(e) => return Ok(oauth_error_response(&e, creds.basic)),
    };
    let Some(app) = &client.application else {
        return Ok(oauth_error_response(
            &OAuthError::described(ErrorCode::InvalidClient, "the client has no application"),
            creds.basic,
        ));
    };
    let iss = issuer(&base_url(&parts), &client.config, app);
    let mut outcome = GrantOutcome::default();
    let result = match form.get("grant_type") {
        Some("authorization_code") => {
            token::authorization_code(&svc, &client, &form, &iss, &mut outcome).await
        }
        Some("refresh_token") => {
            token::refresh_token(&svc, &client, &form, &iss, &mut outcome).await
        }
        Some("client_credentials" | "password") if form.get("username").is_some() => {
            app_password_grant(&state, &parts, &client, app, &form).await?
        }
        Some("client_credentials") => {
            token::client_credentials_grant(&svc, &client, &form, &iss).await
        }
        Some("password") => Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "username and password are required",
        )),
        Some(portcullis_oauth::device::GRANT_TYPE) => {
            portcullis_oauth::device::device_code_grant(&svc, &client, &form, &iss).await
        }
        Some(_) => Err(OAuthError::new(ErrorCode::UnsupportedGrantType)),
        None => Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "grant_type is required",
        )),
    };
    if outcome.reuse_detected {
        let event = NewEvent {
            action: EventAction::SuspiciousRequest,
            app: "authentik.providers.oauth2.views.token".to_owned(),
            context: json!({
                "message": "a used authorization code or refresh token was presented again; everything it issued was revoked",
                "provider": client.provider.name,
            }),
        };
        state
            .store
            .record_event(&portcullis_core::Actor::system(), event)
            .await?;
    }
    token_answer(result, creds.basic)
}

/// The token endpoint's answer: the tokens, or the OAuth error (401 with a challenge when the
/// client authenticated with Basic).
fn token_answer(
    result: Result<issue::TokenResponse, OAuthError>,
    basic: bool,
) -> ApiResult<Response> {
    Ok(match result {
        Ok(tokens) => json_response(
            StatusCode::OK,
            &serde_json::to_value(&tokens).map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        Err(e) => oauth_error_response(&e, basic),
    })
}

/// JWT federation between providers (authentik's `jwt_federation_providers`): a
/// `client_credentials` request that names its client and whose credential (the
/// `client_assertion`, or the `client_secret`) is an access token issued by one of the client's
/// federated providers gets tokens of this client for the same user, when the application's
/// policies allow that user. `None` when the request is not such a request (or its token does
/// not verify): the usual client authentication then decides.
async fn federated_grant(
    state: &AppState,
    parts: &Parts,
    creds: &token::ClientCredentials,
    form: &TokenForm,
) -> ApiResult<Option<Response>> {
    if form.get("grant_type") != Some("client_credentials")
        || form.get("username").is_some()
        || form.get("client_id").is_none()
    {
        return Ok(None);
    }
    let Some(jwt) = creds
        .assertion
        .as_deref()
        .or(creds.client_secret.as_deref())
        .filter(|t| t.len() <= 16 * 1024 && t.split('.').count() == 3)
    else {
        return Ok(None);
    };
    let svc = services(state);
    let client = match token::find_client(&svc, &creds.client_id).await {
        Ok(Some(c)) if !c.config.jwt_federation_providers.is_empty() => c,
        Ok(_) => return Ok(None),
        Err(e) => return Ok(Some(oauth_error_response(&e, creds.basic))),
    };
    let (issuer_provider, claims, grant) = match verify_access_token(state, jwt).await {
        Ok(v) if client.config.jwt_federation_providers.contains(&v.0.pk) => v,
        // A client assertion of the client itself, or not a token of a federated provider.
        _ => return Ok(None),
    };
    let Some(app) = &client.application else {
        return Ok(Some(oauth_error_response(
            &OAuthError::described(ErrorCode::InvalidClient, "the client has no application"),
            creds.basic,
        )));
    };
    if !client.config.allows_grant("client_credentials") {
        return Ok(Some(oauth_error_response(
            &OAuthError::new(ErrorCode::UnauthorizedClient),
            creds.basic,
        )));
    }
    let user = match grant.user {
        Some(pk) => match state.store.find_user(pk).await {
            Ok(u) if u.user.is_active => Some(u),
            Ok(_) | Err(portcullis_store::StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let Some(user) = user else {
        return Ok(Some(oauth_error_response(
            &OAuthError::described(ErrorCode::InvalidGrant, "the token's user is not active"),
            creds.basic,
        )));
    };
    let method_args = json!({
        "jwt": claims,
        "provider": {
            "app": "authentik_providers_oauth2", "model_name": "oauth2provider",
            "pk": issuer_provider.pk, "name": issuer_provider.name,
        },
    });
    // The input token's claims are the policies' `request.context["oauth_jwt"]` (authentik).
    let mut context = serde_json::Map::new();
    context.insert("oauth_jwt".into(), claims.clone());
    let tokens = account_grant(
        state,
        parts,
        &client,
        app,
        form,
        &user,
        "jwt",
        method_args,
        context,
    )
    .await?;
    token_answer(tokens, creds.basic).map(Some)
}

/// `grant_type=password` (or `client_credentials` with a `username`): a user's app password,
/// the application's policies for that user, then the user's tokens and a `login` event, as
/// authentik does.
async fn app_password_grant(
    state: &AppState,
    parts: &Parts,
    client: &token::Client,
    app: &Application,
    form: &TokenForm,
) -> ApiResult<Result<issue::TokenResponse, OAuthError>> {
    let (user, identifier) = match token::app_password_user(&services(state), client, form).await {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let method_args = json!({"identifier": identifier});
    account_grant(
        state,
        parts,
        client,
        app,
        form,
        &user,
        "token",
        method_args,
        Default::default(),
    )
    .await
}

/// The tokens of a grant where a client acts as `user` without a browser (an app password, a
/// federated token): the application's policies for that user, the tokens, and a `login`
/// event naming the `method` (authentik's `method` and `method_args`).
#[allow(clippy::too_many_arguments)]
async fn account_grant(
    state: &AppState,
    parts: &Parts,
    client: &token::Client,
    app: &Application,
    form: &TokenForm,
    user: &portcullis_store::UserWithGroups,
    method: &str,
    method_args: Value,
    context: serde_json::Map<String, Value>,
) -> ApiResult<Result<issue::TokenResponse, OAuthError>> {
    let request = crate::flows_executor::flow_request(state, parts, String::new()).await?;
    if !application_access(state, app, user, &request, context)
        .await?
        .passing
    {
        return Ok(Err(OAuthError::described(
            ErrorCode::InvalidGrant,
            "the user may not use this application",
        )));
    }
    let iss = issuer(&base_url(parts), &client.config, app);
    let tokens = token::account_tokens(&services(state), client, form, &iss, user).await;
    if tokens.is_ok() {
        let event = NewEvent {
            action: EventAction::Login,
            app: "authentik.providers.oauth2.views.token".to_owned(),
            context: json!({
                "method": method,
                "method_args": method_args,
                "application": {
                    "app": "authentik_core", "model_name": "application",
                    "pk": app.uuid.simple().to_string(), "name": app.name,
                },
            }),
        };
        state
            .store
            .record_event(&actor_of(user, &request), event)
            .await?;
    }
    Ok(tokens)
}

// ----------------------------------------------------------------------------- userinfo

fn bearer_error(code: ErrorCode, description: &str) -> Response {
    let mut r = json_response(
        if code == ErrorCode::InsufficientScope {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        },
        &json!({"error": code.as_str(), "error_description": description}),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer error=\"{}\", error_description=\"{description}\"",
        code.as_str()
    )) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn userinfo(State(state): State<Arc<AppState>>, parts: Parts) -> ApiResult<Response> {
    userinfo_inner(&state, &parts, None).await
}

async fn userinfo_post(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    userinfo_inner(&state, &parts, token).await
}

/// The claims and grant of an access token, checked: signature and expiry by the provider's
/// key, and not revoked.
pub(crate) async fn verify_access_token(
    state: &AppState,
    token: &str,
) -> Result<(Provider, Value, portcullis_core::OAuthGrant), &'static str> {
    // The client is named inside the token; it is trusted only once the signature checks out.
    let payload = token.split('.').nth(1).ok_or("malformed token")?;
    let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .map_err(|_| "malformed token")?;
    let unverified: Value = serde_json::from_slice(&raw).map_err(|_| "malformed token")?;
    let client_id = unverified
        .get("client_id")
        .or_else(|| unverified.get("azp"))
        .and_then(Value::as_str)
        .ok_or("malformed token")?;
    let provider = match state.store.find_provider_by_client_id(client_id).await {
        Ok(p) if p.kind == KIND => p,
        _ => return Err("unknown client"),
    };
    let config = OAuth2Config::from_value(&provider.config);
    let (claims, grant) = issue::access_token_grant(&services(state), &provider, &config, token)
        .await
        .map_err(|_| "token lookup failed")?
        .ok_or("invalid, expired or unknown token")?;
    if grant.revoked {
        return Err("the token was revoked");
    }
    Ok((provider, claims, grant))
}

async fn userinfo_inner(
    state: &AppState,
    parts: &Parts,
    form_token: Option<String>,
) -> ApiResult<Response> {
    let header_token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let token = match (header_token, form_token) {
        (Some(t), None) | (None, Some(t)) => t,
        (Some(_), Some(_)) => {
            return Ok(bearer_error(
                ErrorCode::InvalidRequest,
                "send the token once",
            ));
        }
        (None, None) => return Ok(bearer_error(ErrorCode::InvalidToken, "no access token")),
    };
    if token.len() > 16 * 1024 {
        return Ok(bearer_error(ErrorCode::InvalidToken, "malformed token"));
    }
    let (provider, claims, grant) = match verify_access_token(state, &token).await {
        Ok(v) => v,
        Err(why) => return Ok(bearer_error(ErrorCode::InvalidToken, why)),
    };
    let scopes: Vec<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Ok(bearer_error(
            ErrorCode::InsufficientScope,
            "the token lacks the openid scope",
        ));
    }
    let user = match grant.user {
        Some(pk) => match state.store.find_user(pk).await {
            Ok(u) if u.user.is_active => u,
            _ => {
                return Ok(bearer_error(
                    ErrorCode::InvalidToken,
                    "the user is no longer active",
                ));
            }
        },
        None => return Ok(bearer_error(ErrorCode::InvalidToken, "unknown token")),
    };
    let mut body = issue::scope_claims(&services(state), &provider, &user, &scopes)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    body.insert(
        "sub".into(),
        claims.get("sub").cloned().unwrap_or(Value::Null),
    );
    Ok(cors_public(json_response(
        StatusCode::OK,
        &Value::Object(body),
    )))
}

// ------------------------------------------------------------------ introspect, revoke

/// What a client assertion may name as its audience: the endpoint called, the token endpoint,
/// and this server's issuers.
fn audiences(parts: &Parts) -> portcullis_oauth::assertion::Audiences {
    let base = base_url(parts);
    portcullis_oauth::assertion::Audiences {
        exact: vec![
            format!("{base}{}", parts.uri.path()),
            format!("{base}/application/o/token/"),
            format!("{base}/"),
        ],
        issuer_prefix: Some(format!("{base}/application/o/")),
    }
}

/// The form and the authenticated client of a client-authenticated endpoint, or the error
/// response.
async fn client_form(
    state: &AppState,
    parts: &Parts,
    body: &[u8],
) -> Result<(TokenForm, Arc<token::Client>), Response> {
    let form = TokenForm::parse(body).map_err(|e| oauth_error_response(&e, false))?;
    let auth_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let creds = token::client_credentials(auth_header, &form)
        .map_err(|e| oauth_error_response(&e, auth_header.is_some()))?;
    let client = token::authenticate_client(&services(state), &creds, &audiences(parts))
        .await
        .map_err(|e| oauth_error_response(&e, creds.basic))?;
    Ok((form, client))
}

/// RFC 7662: what a token is, for the client it was issued to.
async fn introspect_endpoint(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let (form, client) = match client_form(&state, &parts, &body).await {
        Ok(v) => v,
        Err(r) => return Ok(r),
    };
    Ok(
        match token::introspect(&services(&state), &client, &form).await {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => oauth_error_response(&e, false),
        },
    )
}

/// RFC 7009: revokes a token of the client; 200 whether or not it existed.
async fn revoke_endpoint(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let (form, client) = match client_form(&state, &parts, &body).await {
        Ok(v) => v,
        Err(r) => return Ok(r),
    };
    Ok(
        match token::revoke(&services(&state), &client, &form).await {
            Ok(()) => json_response(StatusCode::OK, &json!({})),
            Err(e) => oauth_error_response(&e, false),
        },
    )
}

// --------------------------------------------------------------------------- end-session

async fn end_session_get(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    parts: Parts,
) -> ApiResult<Response> {
    let query = parts.uri.query().unwrap_or("").to_owned();
    end_session(&state, &slug, parts, &query).await
}

async fn end_session_post(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let query = String::from_utf8_lossy(&body).into_owned();
    end_session(&state, &slug, parts, &query).await
}

/// OpenID Connect RP-Initiated Logout: runs the provider's invalidation flow, then returns to
/// `post_logout_redirect_uri` when it is one of the provider's registered logout URIs.
async fn end_session(
    state: &AppState,
    slug: &str,
    parts: Parts,
    query: &str,
) -> ApiResult<Response> {
    let (app, provider) = app_and_provider(state, slug).await?;
    let config = OAuth2Config::from_value(&provider.config);
    let mut post_logout = None;
    let mut logout_state = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if v.len() > authorize::MAX_PARAM_LEN {
            return error_page(
                state,
                &parts,
                OAuthError::described(ErrorCode::InvalidRequest, format!("{k} is too long")),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        match k.as_ref() {
            "post_logout_redirect_uri" => post_logout = Some(v.into_owned()),
            "state" => logout_state = Some(v.into_owned()),
            _ => {}
        }
    }
    let back = match post_logout.filter(|u| !u.is_empty()) {
        None => None,
        Some(uri) => {
            let registered = config.redirect_uris_of(portcullis_oauth::RedirectUriType::Logout);
            if portcullis_oauth::redirect_uri::find_match(&registered, &uri).is_none() {
                return error_page(
                    state,
                    &parts,
                    OAuthError::described(
                        ErrorCode::InvalidRequest,
                        "post_logout_redirect_uri is not registered for this client",
                    ),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
            let resp = authorize::AuthorizationResponse {
                redirect_uri: uri,
                mode: ResponseMode::Query,
                params: logout_state
                    .map(|s| vec![("state".to_owned(), s)])
                    .unwrap_or_default(),
            };
            resp.location()
        }
    };
    let session = crate::session::load(state, &parts).await?;
    let request = crate::flows_executor::flow_request(state, &parts, String::new()).await?;
    let Some(flow) = provider.invalidation_flow else {
        let r = Redirect::to(back.as_deref().unwrap_or("/")).into_response();
        return Ok(crate::session::with_cookies(r, &session, &parts));
    };
    let mut ctx = app_context(&app, Vec::new(), back.as_deref().unwrap_or(""));
    if back.is_none() {
        // No way back: the flow ends where flows end by default.
        ctx.remove(context::REDIRECT);
    }
    start_flow(state, session, &parts, &request, flow, ctx, Vec::new()).await
}

// --------------------------------------------------------------------------- device flow

/// The session data key of device authorizations waiting for their flow.
const DEVICE_PENDING: &str = "oauth_device_pending";

/// RFC 8628 §3.1: a device asks for a device code and a user code.
async fn device_authorization(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Bytes,
) -> ApiResult<Response> {
    let (form, client) = match client_form(&state, &parts, &body).await {
        Ok(v) => v,
        Err(r) => return Ok(r),
    };
    let base = base_url(&parts);
    Ok(
        match portcullis_oauth::device::authorize_device(&services(&state), &client, &form, &base)
            .await
        {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => oauth_error_response(&e, false),
        },
    )
}

/// A plain page of the device flow: a message and the code form.
async fn device_page(
    state: &AppState,
    parts: &Parts,
    message: &str,
    status: StatusCode,
) -> ApiResult<Response> {
    crate::ui::message_page(
        state,
        parts,
        crate::ui::Message {
            heading: "Connect a device",
            paragraphs: &[message],
            device_form: true,
            ..Default::default()
        },
        status,
    )
    .await
}

/// A waiting device approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DevicePending {
    user_code_hash: String,
    user: i32,
    created: i64,
}

/// `/device`: the person types the user code (or arrives with `?code=`), logs in, and goes
/// through the provider's authorization flow.
async fn device_user_page(State(state): State<Arc<AppState>>, parts: Parts) -> ApiResult<Response> {
    let query = parts.uri.query().unwrap_or("").to_owned();
    let typed = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.chars().take(32).collect::<String>());
    let mut session = crate::session::load(&state, &parts).await?;
    let Some(typed) = typed.filter(|t| !t.trim().is_empty()) else {
        let r = device_page(
            &state,
            &parts,
            "Enter the code your device shows.",
            StatusCode::OK,
        )
        .await?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    };
    let Some(user) = session.user().cloned() else {
        let next = format!(
            "/device?code={}",
            form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>()
        );
        let slug = crate::ui::default_flow(&state, &parts.headers, FlowDesignation::Authentication)
            .await?
            .ok_or(ApiError::NotFound)?;
        let to = format!(
            "/if/flow/{slug}/?next={}",
            portcullis_flow::executor::encode(&next)
        );
        return Ok(crate::session::with_cookies(
            Redirect::to(&to).into_response(),
            &session,
            &parts,
        ));
    };
    let svc = services(&state);
    if svc.cache.wrong_device_codes.blocked(user.user.pk) {
        let r = device_page(
            &state,
            &parts,
            "Too many wrong codes. Try again in a few minutes.",
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    }
    let found = portcullis_oauth::device::find_user_code(&svc, &typed)
        .await
        .map_err(|e| ApiError::Internal(format!("{e:?}")))?;
    let Some((grant, provider)) = found else {
        svc.cache.wrong_device_codes.failed(user.user.pk);
        let r = device_page(
            &state,
            &parts,
            "This code is not valid or has expired. Check the device and try again.",
            StatusCode::BAD_REQUEST,
        )
        .await?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    };
    let Some(app) = state
        .store
        .find_application_of_provider(provider.pk)
        .await?
    else {
        let r = device_page(
            &state,
            &parts,
            "This code is not valid.",
            StatusCode::BAD_REQUEST,
        )
        .await?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    };
    let request = crate::flows_executor::flow_request(&state, &parts, String::new()).await?;
    // The application's policies decide who may use it, as at the authorization endpoint.
    let access = application_access(&state, &app, &user, &request, Default::default()).await?;
    if !access.passing {
        let message = if access.messages.is_empty() {
            "You do not have access to this application.".to_owned()
        } else {
            access.messages.join(" ")
        };
        let r = device_page(&state, &parts, &message, StatusCode::FORBIDDEN).await?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    }
    let Some(flow) = provider.authorization_flow else {
        let r = device_page(
            &state,
            &parts,
            "This application cannot be authorized.",
            StatusCode::BAD_REQUEST,
        )
        .await?;
        return Ok(crate::session::with_cookies(r, &session, &parts));
    };
    let now = state.clock.now().timestamp();
    let waiting = DevicePending {
        user_code_hash: grant.key_hash.clone(),
        user: user.user.pk,
        created: now,
    };
    let id = push_pending(&state, &mut session, DEVICE_PENDING, &waiting, now).await?;
    let scopes = grant.scopes();
    let permissions = consent_permissions(&state, &provider, &scopes).await?;
    let ctx = app_context(&app, permissions, &format!("/device/fulfil/?id={id}"));
    start_flow(&state, session, &parts, &request, flow, ctx, Vec::new()).await
}

/// The authorization flow is done: the device code gets its user.
async fn device_fulfil(State(state): State<Arc<AppState>>, parts: Parts) -> ApiResult<Response> {
    let id = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut session = crate::session::load(&state, &parts).await?;
    let taken: Option<DevicePending> =
        take_pending(&state, &mut session, DEVICE_PENDING, &id).await?;
    let now = state.clock.now().timestamp();
    let ok = match (taken, session.user()) {
        (Some(w), Some(u)) if u.user.pk == w.user && now - w.created < PENDING_TTL_SECONDS => {
            let svc = services(&state);
            match state
                .store
                .find_oauth_grant(portcullis_core::OAuthGrantKind::UserCode, &w.user_code_hash)
                .await?
            {
                Some(g) => portcullis_oauth::device::approve(&svc, &g, w.user)
                    .await
                    .map_err(|e| ApiError::Internal(format!("{e:?}")))?,
                None => false,
            }
        }
        _ => false,
    };
    session.save(&state.store).await?;
    let r = if ok {
        crate::ui::message_page(
            &state,
            &parts,
            crate::ui::Message {
                heading: "Your device is connected",
                paragraphs: &["You can close this window and return to your device."],
                ..Default::default()
            },
            StatusCode::OK,
        )
        .await?
    } else {
        device_page(
            &state,
            &parts,
            "This code has expired or was already used. Start again on the device.",
            StatusCode::BAD_REQUEST,
        )
        .await?
    };
    Ok(crate::session::with_cookies(r, &session, &parts))
}
