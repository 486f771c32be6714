//! `managed/blueprints/`: blueprint instances (files of the blueprints directory, built-in
//! ones, and content stored in the database), applying them on demand, the files available,
//! and export of the configuration. Superusers only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{FieldErrors, validate};
use portcullis_store::{BlueprintInstancePatch, NewBlueprintInstance};
use uuid::Uuid;

use super::{check, path_id, require};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{
    BlueprintFile, BlueprintInstanceRequest, BlueprintInstanceSerializer, BlueprintMetadata,
    PaginatedBlueprintInstanceList,
};

fn validate_request(state: &AppState, r: &BlueprintInstanceRequest, errors: &mut FieldErrors) {
    if let Some(n) = &r.name {
        validate::text(errors, "name", n, validate::NAME_MAX, false);
    }
    if let Some(c) = &r.context {
        validate::attributes(errors, "context", c);
    }
    if let Some(p) = r.path.as_deref().filter(|p| !p.is_empty()) {
        let known = crate::blueprints::BUILTINS.iter().any(|(b, _)| *b == p)
            || crate::blueprints::available_files(state)
                .iter()
                .any(|f| f == p);
        if !known {
            errors.add(
                "path",
                "No such blueprint file in the blueprints directory.",
            );
        }
    }
    if let Some(c) = r.content.as_deref().filter(|c| !c.is_empty())
        && let Err(e) = portcullis_blueprint::parse(c, "content")
    {
        errors.add("content", e.to_string());
    }
}

#[utoipa::path(get, path = "/api/v3/managed/blueprints/", tag = "managed", operation_id = "managed_blueprints_list",
    params(("name" = Option<String>, Query), ("path" = Option<String>, Query), ("search" = Option<String>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedBlueprintInstanceList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedBlueprintInstanceList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let page = state
        .store
        .list_blueprint_instances(q.get("name"), q.get("path"), &lq)
        .await?;
    check_page(&lq.page, page.count)?;
    Ok(Json(PaginatedBlueprintInstanceList::new(
        &lq.page,
        page.count,
        page.items
            .iter()
            .map(BlueprintInstanceSerializer::from)
            .collect(),
    )))
}

#[utoipa::path(post, path = "/api/v3/managed/blueprints/", tag = "managed", operation_id = "managed_blueprints_create",
    request_body = BlueprintInstanceRequest, responses((status = 201, body = BlueprintInstanceSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<BlueprintInstanceRequest>,
) -> ApiResult<(StatusCode, Json<BlueprintInstanceSerializer>)> {
    auth.require_superuser()?;
    let mut errors = FieldErrors::new();
    require(&mut errors, &[("name", r.name.is_some())]);
    let has_source = r.path.as_deref().is_some_and(|p| !p.is_empty())
        || r.content.as_deref().is_some_and(|c| !c.is_empty());
    if !has_source {
        errors.add("non_field_errors", "Either path or content must be set.");
    }
    validate_request(&state, &r, &mut errors);
    check(errors)?;
    let path = r.path.unwrap_or_default();
    let new = NewBlueprintInstance {
        name: r.name.unwrap_or_default(),
        content: if path.is_empty() { r.content } else { None },
        path,
        context: r.context.unwrap_or_else(|| serde_json::json!({})),
        enabled: r.enabled.unwrap_or(true),
    };
    let inst = state
        .store
        .create_blueprint_instance(new, Some(&auth.actor()))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(BlueprintInstanceSerializer::from(&inst)),
    ))
}

#[utoipa::path(get, path = "/api/v3/managed/blueprints/{instance_uuid}/", tag = "managed", operation_id = "managed_blueprints_retrieve",
    params(("instance_uuid" = Uuid, Path)), responses((status = 200, body = BlueprintInstanceSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<BlueprintInstanceSerializer>> {
    auth.require_superuser()?;
    Ok(Json(BlueprintInstanceSerializer::from(
        &state
            .store
            .find_blueprint_instance(path_id::<Uuid>(&id)?)
            .await?,
    )))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: BlueprintInstanceRequest,
    partial: bool,
) -> ApiResult<Json<BlueprintInstanceSerializer>> {
    auth.require_superuser()?;
    let uuid = path_id::<Uuid>(id)?;
    state.store.find_blueprint_instance(uuid).await?;
    let mut errors = FieldErrors::new();
    if !partial {
        require(&mut errors, &[("name", r.name.is_some())]);
    }
    validate_request(state, &r, &mut errors);
    check(errors)?;
    let patch = BlueprintInstancePatch {
        name: r.name,
        path: r.path,
        context: r.context,
        enabled: r.enabled,
        content: r.content.map(Some),
    };
    Ok(Json(BlueprintInstanceSerializer::from(
        &state
            .store
            .update_blueprint_instance(uuid, patch, &auth.actor())
            .await?,
    )))
}

#[utoipa::path(put, path = "/api/v3/managed/blueprints/{instance_uuid}/", tag = "managed", operation_id = "managed_blueprints_update",
    params(("instance_uuid" = Uuid, Path)), request_body = BlueprintInstanceRequest, responses((status = 200, body = BlueprintInstanceSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<BlueprintInstanceRequest>,
) -> ApiResult<Json<BlueprintInstanceSerializer>> {
    update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/managed/blueprints/{instance_uuid}/", tag = "managed", operation_id = "managed_blueprints_partial_update",
    params(("instance_uuid" = Uuid, Path)), request_body = BlueprintInstanceRequest, responses((status = 200, body = BlueprintInstanceSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<BlueprintInstanceRequest>,
) -> ApiResult<Json<BlueprintInstanceSerializer>> {
    update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/managed/blueprints/{instance_uuid}/", tag = "managed", operation_id = "managed_blueprints_destroy",
    params(("instance_uuid" = Uuid, Path)), responses((status = 204), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    state
        .store
        .delete_blueprint_instance(path_id::<Uuid>(&id)?, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Applies the instance now. Its outcome (status, hash, error) is in the answer; a failed
/// blueprint changes nothing of the configuration.
#[utoipa::path(post, path = "/api/v3/managed/blueprints/{instance_uuid}/apply/", tag = "managed", operation_id = "managed_blueprints_apply_create",
    params(("instance_uuid" = Uuid, Path)), responses((status = 200, body = BlueprintInstanceSerializer), (status = 404)))]
pub async fn apply(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<BlueprintInstanceSerializer>> {
    auth.require_superuser()?;
    let inst = state
        .store
        .find_blueprint_instance(path_id::<Uuid>(&id)?)
        .await?;
    let done = crate::blueprints::apply_instance(&state, &inst).await?;
    Ok(Json(BlueprintInstanceSerializer::from(&done)))
}

#[utoipa::path(get, path = "/api/v3/managed/blueprints/available/", tag = "managed", operation_id = "managed_blueprints_available_list",
    responses((status = 200, body = Vec<BlueprintFile>), (status = 403)))]
pub async fn available(
    State(state): State<Arc<AppState>>,
    auth: Auth,
) -> ApiResult<Json<Vec<BlueprintFile>>> {
    auth.require_superuser()?;
    let mut out = Vec::new();
    let Some(dir) = state.blueprints_dir.clone() else {
        return Ok(Json(out));
    };
    for rel in crate::blueprints::available_files(&state) {
        let path = dir.join(&rel);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .map(chrono::DateTime::<chrono::Utc>::from);
        let meta = portcullis_blueprint::parse(&text, &rel)
            .ok()
            .and_then(|b| b.metadata);
        out.push(BlueprintFile {
            path: rel,
            last_m: modified.map(crate::serializers::dt).unwrap_or_default(),
            hash: portcullis_crypto::sha256_hex(text.as_bytes()),
            meta: BlueprintMetadata {
                name: meta.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
                labels: meta
                    .map(|m| serde_json::to_value(m.labels).unwrap_or_default())
                    .unwrap_or_else(|| serde_json::json!({})),
            },
        });
    }
    Ok(Json(out))
}

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
