//! `managed/blueprints/`: export of the configuration as a blueprint (superusers only).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, QueryParams};

#[utoipa::path(get, path = "/api/v3/managed/blueprints/export/", tag = "managed", operation_id = "managed_blueprints_export_retrieve",
    params(("include_secrets" = Option<bool>, Query)),
    responses((status = 200, description = "The configuration as blueprint YAML", content_type = "application/yaml", body = String), (status = 403)))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Response> {
    auth.require_superuser()?;
    let yaml = crate::export::export(&state, q.bool("include_secrets")?.unwrap_or(false)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        yaml,
    )
        .into_response())
}
