//! Liveness and readiness (`/-/health/live/`, `/-/health/ready/`) and request metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;

use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/-/health/live/", get(live))
        .route("/-/health/ready/", get(ready))
}

async fn live() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Ready once startup finished and the database answers.
async fn ready(State(state): State<Arc<AppState>>) -> StatusCode {
    if state.ready.load(Ordering::Acquire) && state.store.ping().await.is_ok() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Counts requests and measures their duration per route and status.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("portcullis_http_requests_total", &labels).increment(1);
    metrics::histogram!("portcullis_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}
