//! Request extraction: JSON bodies with DRF-style errors, query strings with repeated keys,
//! bearer-token authentication and the client's address.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use portcullis_core::{Actor, EventUser, FieldErrors};
use portcullis_store::{StoreError, UserWithGroups};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body deserialized into `T`. Malformed JSON is a 400 `{"detail"}`; a value of the
/// wrong type is a 400 naming the field; a body over the limit is a 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(format!("Could not read the request body: {e}"))
                }
            })?;
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as JSON into `T` with DRF-shaped errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))?;
    if !numbers_are_finite(&value, 0) {
        return Err(ApiError::BadRequest(
            "JSON parse error - number out of range".into(),
        ));
    }
    if !value.is_object() {
        return Err(ApiError::field(
            "non_field_errors",
            "Invalid data. Expected a dictionary.",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = path
            .split(['.', '['])
            .next()
            .filter(|f| !f.is_empty() && *f != "?");
        // serde reports a missing field at the object that lacks it; DRF names the field.
        if field.is_none()
            && let Some(missing) = missing_field(&message)
        {
            return ApiError::field(missing, "This field is required.");
        }
        ApiError::Validation(FieldErrors::single(
            field.unwrap_or("non_field_errors"),
            clean_serde_message(&message),
        ))
    })
}

/// The field named by serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

/// Whether every number in `v` is a finite double or an integer. serde_json refuses `1e400`
/// itself, unless its `arbitrary_precision` feature is on (a dependency turns it on), so the
/// check is made here once for both.
fn numbers_are_finite(v: &serde_json::Value, depth: usize) -> bool {
    use serde_json::Value as J;
    if depth > 256 {
        return true;
    }
    match v {
        J::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(f64::is_finite),
        J::Array(items) => items.iter().all(|i| numbers_are_finite(i, depth + 1)),
        J::Object(map) => map.values().all(|i| numbers_are_finite(i, depth + 1)),
        _ => true,
    }
}

fn clean_serde_message(m: &str) -> String {
    // serde's messages end with " at line N column M" for some errors; the field says where.
    match m.find(" at line ") {
        Some(i) => m.get(..i).unwrap_or(m).to_owned(),
        None => m.to_owned(),
    }
}

/// The query string as pairs, keeping repeated keys (`?type=a&type=b`).
#[derive(Debug, Default, Clone)]
pub struct QueryParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        if q.len() > 8192 {
            return Err(ApiError::BadRequest("Query string too long.".into()));
        }
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        // No stored text can hold a NUL (PostgreSQL's cannot), so no filter with one can
        // match; refuse it as DRF does ("Null characters are not allowed.").
        if let Some((key, _)) = pairs.iter().find(|(_, v)| v.contains('\0')) {
            return Err(ApiError::field(key, "Null characters are not allowed."));
        }
        Ok(QueryParams(pairs))
    }
}

impl QueryParams {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some("true" | "True" | "1") => Ok(Some(true)),
            Some("false" | "False" | "0") => Ok(Some(false)),
            Some(_) => Err(ApiError::field(key, "Enter a valid boolean.")),
        }
    }

    pub fn int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::field(key, "Enter a whole number.")),
        }
    }

    pub fn ints<T: std::str::FromStr>(&self, key: &str) -> Result<Vec<T>, ApiError> {
        self.get_all(key)
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::field(key, "Enter a whole number."))
            })
            .collect()
    }

    pub fn uuids(&self, key: &str) -> Result<Vec<uuid::Uuid>, ApiError> {
        self.get_all(key)
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::field(key, "Must be a valid UUID."))
            })
            .collect()
    }
}

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: UserWithGroups,
    pub client_ip: Option<String>,
}

impl Auth {
    pub fn is_superuser(&self) -> bool {
        self.user.user.is_superuser
    }

    pub fn pk(&self) -> i32 {
        self.user.user.pk
    }

    pub fn require_superuser(&self) -> Result<(), ApiError> {
        if self.is_superuser() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// The actor recorded on events this request causes.
    pub fn actor(&self) -> Actor {
        Actor {
            user: Some(EventUser {
                pk: self.user.user.pk,
                email: self.user.user.email.clone(),
                username: self.user.user.username.clone(),
            }),
            client_ip: self.client_ip.clone(),
            brand: None,
        }
    }
}

/// The peer address of the connection (proxies are not trusted yet).
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<crate::tls::Peer>>()
        .map(|ConnectInfo(crate::tls::Peer(addr, _))| addr.ip().to_canonical().to_string())
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
            return session_auth(parts, state).await;
        };
        let value = header.to_str().map_err(|_| ApiError::InvalidCredentials)?;
        let (scheme, key) = value.split_once(' ').ok_or(ApiError::InvalidCredentials)?;
        let key = key.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() || key.len() > 512 {
            return Err(ApiError::InvalidCredentials);
        }
        let user = state.authenticate_token(key).await?;
        Ok(Auth {
            user,
            client_ip: client_ip(parts),
        })
    }
}

/// Authentication by the session cookie (the web interface calling the API). Unsafe methods must
/// echo the session's CSRF token in `X-authentik-CSRF`, so another site cannot make a logged-in
/// browser change anything.
async fn session_auth(parts: &Parts, state: &Arc<AppState>) -> Result<Auth, ApiError> {
    if crate::session::cookie(&parts.headers, crate::session::SESSION_COOKIE).is_none() {
        return Err(ApiError::Unauthenticated);
    }
    let session = crate::session::load(state, parts).await?;
    let Some(user) = session.user().cloned() else {
        return Err(ApiError::Unauthenticated);
    };
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        let sent = parts
            .headers
            .get(crate::session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let expected = session.csrf_token();
        if expected.is_empty()
            || !portcullis_crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes())
        {
            return Err(ApiError::Forbidden);
        }
    }
    Ok(Auth {
        user,
        client_ip: client_ip(parts),
    })
}

/// The client's address without requiring authentication.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

impl AppState {
    /// Resolves an API token key to its active user. Only `api`-intent tokens that have not
    /// expired, owned by active users, authenticate API requests.
    pub async fn authenticate_token(&self, key: &str) -> Result<UserWithGroups, ApiError> {
        let hash = portcullis_crypto::sha256_hex(key.as_bytes());
        let token = match self.store.find_token_by_key_hash(&hash).await {
            Ok(t) => t,
            Err(StoreError::NotFound) => return Err(ApiError::InvalidCredentials),
            Err(e) => return Err(e.into()),
        };
        if token.intent != portcullis_core::TokenIntent::Api || token.is_expired(self.clock.now()) {
            return Err(ApiError::InvalidCredentials);
        }
        let user = match self.store.find_user(token.user_pk).await {
            Ok(u) => u,
            Err(StoreError::NotFound) => return Err(ApiError::InvalidCredentials),
            Err(e) => return Err(e.into()),
        };
        if !user.user.is_active {
            return Err(ApiError::InvalidCredentials);
        }
        Ok(user)
    }
}
