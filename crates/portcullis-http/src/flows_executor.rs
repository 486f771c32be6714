//! The flow executor API: `GET|POST /api/v3/flows/executor/<slug>/?query=<original query>`.
//!
//! GET returns the current challenge as JSON. POST takes the response to it and answers `200`
//! with what comes next: the next challenge when the response was accepted, else the same
//! challenge with errors, a denial, or the final `xak-flow-redirect`. (authentik answers an
//! accepted response with `302` back to the executor and its client, following the redirect,
//! GETs the next challenge: here the rest of the request runs as that GET would, so the client
//! sees the same challenge, one round trip sooner.) Malformed bodies are `400` and change nothing.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_flow::{Challenge, Executor, FlowRequest, SessionState};
use portcullis_policy::HttpRequestInfo;
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Largest executor response body: stages take a few short fields.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(
        "/api/v3/flows/executor/{slug}/",
        get(executor_get)
            .post(executor_post)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_RESPONSE_BYTES)),
    )
}

/// The brand of the host the request came to.
pub async fn request_brand(state: &AppState, parts: &Parts) -> ApiResult<portcullis_core::Brand> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    crate::api::brands::brand_for_host(state, host).await
}

/// The request as the flow engine and policies see it. Never includes cookies or credentials.
pub async fn flow_request(
    state: &AppState,
    parts: &Parts,
    query: String,
) -> ApiResult<FlowRequest> {
    let brand = request_brand(state, parts).await?;
    let headers = parts
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "cookie" | "authorization" | "proxy-authorization" | "x-authentik-csrf"
            )
        })
        .take(64)
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_owned(), v.chars().take(1024).collect()))
        })
        .collect();
    Ok(FlowRequest {
        http: HttpRequestInfo {
            path: parts.uri.path().to_owned(),
            method: parts.method.as_str().to_owned(),
            headers,
            client_ip: crate::extract::client_ip(parts),
        },
        query,
        brand,
    })
}

/// The `query` parameter: the original query of the page that runs the flow.
fn original_query(parts: &Parts) -> String {
    let raw = parts.uri.query().unwrap_or("");
    form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
        .chars()
        .take(4096)
        .collect()
}

fn with_cookie(response: Response, session: &SessionState, parts: &Parts) -> Response {
    let mut response = crate::session::with_cookies(response, session, parts);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A challenge of a flow (authentik's `ChallengeTypes`): `component` names its shape
/// (`ak-stage-identification`, `ak-stage-password`, `xak-flow-redirect`, ...); the other fields
/// depend on it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ChallengeTypes {
    pub component: String,
    /// `{title, background, cancel_url, layout}`.
    pub flow_info: Option<std::collections::BTreeMap<String, String>>,
    /// Field name → `[{string, code}]`.
    pub response_errors:
        Option<std::collections::BTreeMap<String, Vec<std::collections::BTreeMap<String, String>>>>,
}

/// A response to a challenge (authentik's `FlowChallengeResponseRequest`): `component` and the
/// component's fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FlowChallengeResponseRequest {
    pub component: String,
}

#[utoipa::path(get, path = "/api/v3/flows/executor/{flow_slug}/", tag = "flows", operation_id = "flows_executor_get",
    params(("flow_slug" = String, Path), ("query" = String, Query, description = "The query of the page that runs the flow")),
    responses((status = 200, body = ChallengeTypes), (status = 404)))]
pub async fn executor_get(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let request = flow_request(&state, &parts, original_query(&parts)).await?;
    let mut session = crate::session::load(&state, &parts).await?;
    let challenge = Executor::new(&state.flows, &mut session, &request)
        .get(&slug)
        .await?;
    Ok(with_cookie(
        Json(challenge).into_response(),
        &session,
        &parts,
    ))
}

#[utoipa::path(post, path = "/api/v3/flows/executor/{flow_slug}/", tag = "flows", operation_id = "flows_executor_solve",
    params(("flow_slug" = String, Path), ("query" = String, Query, description = "The query of the page that runs the flow")),
    request_body = FlowChallengeResponseRequest,
    responses((status = 200, body = ChallengeTypes),
        (status = 400), (status = 404), (status = 413), (status = 415)))]
pub async fn executor_post(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))?;
    let request = flow_request(&state, &parts, original_query(&parts)).await?;
    let mut session = crate::session::load(&state, &parts).await?;
    // What comes after an accepted response runs as authentik's client's follow-up GET.
    let mut then = request.clone();
    then.http.method = "GET".to_owned();
    then.http
        .headers
        .retain(|(name, _)| name != "content-type" && name != "content-length");
    let challenge = Executor::new(&state.flows, &mut session, &request)
        .solve(&slug, &body, &then)
        .await?;
    let response = Json::<Challenge>(challenge).into_response();
    Ok(with_cookie(response, &session, &parts))
}
