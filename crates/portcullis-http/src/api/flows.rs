//! `flows/instances/` (looked up by slug, as authentik) and `flows/bindings/` (stage bindings,
//! by uuid), with the flow's blueprint export. Superusers only, like every admin endpoint.
//! Create and update functions are shared with blueprints, so both validate alike.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{
    DeniedAction, FieldErrors, Flow, FlowAuthentication, FlowDesignation, FlowLayout,
    FlowStageBinding, InvalidResponseAction, PolicyEngineMode, validate,
};
use portcullis_store::{FlowBindingFilter, FlowFilter, Store};
use uuid::Uuid;

use super::{check, choice, everything, path_id, path_key, query_uuid, require};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{
    FlowRequest, FlowSerializer, FlowStageBindingRequest, FlowStageBindingSerializer,
    PaginatedFlowList, PaginatedFlowStageBindingList,
};

/// Longest background URL accepted.
const BACKGROUND_MAX: usize = 2048;

// -------------------------------------------------------------------------------- flows

fn validate_flow(r: &FlowRequest, errors: &mut FieldErrors) {
    if let Some(v) = &r.name {
        validate::text(errors, "name", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.slug {
        validate::slug(errors, "slug", v);
    }
    if let Some(v) = &r.title {
        validate::text(errors, "title", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.background {
        validate::text(errors, "background", v, BACKGROUND_MAX, true);
    }
}

/// The flow with the request's fields applied (all of them when `partial` is false).
fn apply_flow(mut f: Flow, r: FlowRequest, partial: bool) -> ApiResult<Flow> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("name", r.name.is_some()),
                ("slug", r.slug.is_some()),
                ("title", r.title.is_some()),
                ("designation", r.designation.is_some()),
            ],
        );
    }
    validate_flow(&r, &mut errors);
    let designation = choice(
        &mut errors,
        "designation",
        r.designation.as_deref(),
        FlowDesignation::parse,
    );
    let mode = choice(
        &mut errors,
        "policy_engine_mode",
        r.policy_engine_mode.as_deref(),
        PolicyEngineMode::parse,
    );
    let layout = choice(
        &mut errors,
        "layout",
        r.layout.as_deref(),
        FlowLayout::parse,
    );
    let denied = choice(
        &mut errors,
        "denied_action",
        r.denied_action.as_deref(),
        DeniedAction::parse,
    );
    let authentication = choice(
        &mut errors,
        "authentication",
        r.authentication.as_deref(),
        FlowAuthentication::parse,
    );
    check(errors)?;
    if let Some(v) = r.name {
        f.name = v;
    }
    if let Some(v) = r.slug {
        f.slug = v;
    }
    if let Some(v) = r.title {
        f.title = v;
    }
    if let Some(v) = designation {
        f.designation = v;
    }
    if let Some(v) = r.background {
        f.background = v;
    }
    if let Some(v) = mode {
        f.policy_engine_mode = v;
    }
    if let Some(v) = r.compatibility_mode {
        f.compatibility_mode = v;
    }
    if let Some(v) = layout {
        f.layout = v;
    }
    if let Some(v) = denied {
        f.denied_action = v;
    }
    if let Some(v) = authentication {
        f.authentication = v;
    }
    Ok(f)
}

/// Creates a flow from a request, validated as the API validates it.
pub(crate) async fn create_flow(
    store: &Store,
    actor: &portcullis_core::Actor,
    r: FlowRequest,
) -> ApiResult<Flow> {
    let f = apply_flow(Flow::new("", "", FlowDesignation::Authentication), r, false)?;
    Ok(store.create_flow(f, actor).await?)
}

/// Changes a flow from a request (`partial` as PATCH).
pub(crate) async fn update_flow(
    store: &Store,
    actor: &portcullis_core::Actor,
    existing: Flow,
    r: FlowRequest,
    partial: bool,
) -> ApiResult<Flow> {
    let uuid = existing.uuid;
    let f = apply_flow(existing, r, partial)?;
    Ok(store.update_flow(uuid, f, actor).await?)
}

/// A flow as the API shows it, with its bound stages and policies.
pub(crate) async fn flow_serializer(store: &Store, f: &Flow) -> ApiResult<FlowSerializer> {
    let bindings = store
        .list_flow_bindings(
            &FlowBindingFilter {
                target: Some(f.uuid),
                ..Default::default()
            },
            &everything(),
        )
        .await?;
    let stages = bindings.items.iter().map(|b| b.stage).collect();
    let policies = store
        .policy_bindings_for(f.pbm_uuid)
        .await?
        .into_iter()
        .filter_map(|(b, _)| b.policy)
        .collect();
    Ok(FlowSerializer::new(f, stages, policies))
}

async fn flow_by_slug(state: &AppState, slug: &str) -> ApiResult<Flow> {
    Ok(state.store.find_flow_by_slug(path_key(slug)?).await?)
}

#[utoipa::path(get, path = "/api/v3/flows/instances/", tag = "flows", operation_id = "flows_instances_list",
    params(("slug" = Option<String>, Query), ("name" = Option<String>, Query), ("designation" = Option<String>, Query),
        ("search" = Option<String>, Query), ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedFlowList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedFlowList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let mut errors = FieldErrors::new();
    let designation = choice(
        &mut errors,
        "designation",
        q.get("designation").filter(|d| !d.is_empty()),
        FlowDesignation::parse,
    );
    check(errors)?;
    let filter = FlowFilter {
        slug: q.string("slug").filter(|s| !s.is_empty()),
        name: q.string("name").filter(|s| !s.is_empty()),
        designation,
    };
    let page = state.store.list_flows(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for f in &page.items {
        results.push(flow_serializer(&state.store, f).await?);
    }
    Ok(Json(PaginatedFlowList::new(&lq.page, page.count, results)))
}

#[utoipa::path(post, path = "/api/v3/flows/instances/", tag = "flows", operation_id = "flows_instances_create",
    request_body = FlowRequest, responses((status = 201, body = FlowSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<FlowRequest>,
) -> ApiResult<(StatusCode, Json<FlowSerializer>)> {
    auth.require_superuser()?;
    let f = create_flow(&state.store, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(flow_serializer(&state.store, &f).await?),
    ))
}

#[utoipa::path(get, path = "/api/v3/flows/instances/{slug}/", tag = "flows", operation_id = "flows_instances_retrieve",
    params(("slug" = String, Path)), responses((status = 200, body = FlowSerializer), (status = 403), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<Json<FlowSerializer>> {
    auth.require_superuser()?;
    let f = flow_by_slug(&state, &slug).await?;
    Ok(Json(flow_serializer(&state.store, &f).await?))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    slug: &str,
    r: FlowRequest,
    partial: bool,
) -> ApiResult<Json<FlowSerializer>> {
    auth.require_superuser()?;
    let existing = flow_by_slug(state, slug).await?;
    let f = update_flow(&state.store, &auth.actor(), existing, r, partial).await?;
    Ok(Json(flow_serializer(&state.store, &f).await?))
}

#[utoipa::path(put, path = "/api/v3/flows/instances/{slug}/", tag = "flows", operation_id = "flows_instances_update",
    params(("slug" = String, Path)), request_body = FlowRequest, responses((status = 200, body = FlowSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(r): ApiJson<FlowRequest>,
) -> ApiResult<Json<FlowSerializer>> {
    update_inner(&state, &auth, &slug, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/flows/instances/{slug}/", tag = "flows", operation_id = "flows_instances_partial_update",
    params(("slug" = String, Path)), request_body = FlowRequest, responses((status = 200, body = FlowSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(r): ApiJson<FlowRequest>,
) -> ApiResult<Json<FlowSerializer>> {
    update_inner(&state, &auth, &slug, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/flows/instances/{slug}/", tag = "flows", operation_id = "flows_instances_destroy",
    params(("slug" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let f = flow_by_slug(&state, &slug).await?;
    state.store.delete_flow(f.uuid, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/flows/instances/{slug}/export/", tag = "flows", operation_id = "flows_instances_export_retrieve",
    params(("slug" = String, Path)), responses((status = 200, description = "The flow as a blueprint (YAML)", content_type = "application/yaml", body = String), (status = 403), (status = 404)))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    auth.require_superuser()?;
    let f = flow_by_slug(&state, &slug).await?;
    let yaml = super::flow_export::export_flow(&state.store, &f).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.yaml\"", f.slug),
            ),
        ],
        yaml,
    )
        .into_response())
}

// ------------------------------------------------------------------------- stage bindings

fn apply_binding(
    mut b: FlowStageBinding,
    r: FlowStageBindingRequest,
    partial: bool,
) -> ApiResult<FlowStageBinding> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("target", r.target.is_some()),
                ("stage", r.stage.is_some()),
                ("order", r.order.is_some()),
            ],
        );
    }
    let mode = choice(
        &mut errors,
        "policy_engine_mode",
        r.policy_engine_mode.as_deref(),
        PolicyEngineMode::parse,
    );
    let action = choice(
        &mut errors,
        "invalid_response_action",
        r.invalid_response_action.as_deref(),
        InvalidResponseAction::parse,
    );
    check(errors)?;
    if let Some(v) = r.target {
        b.target = v;
    }
    if let Some(v) = r.stage {
        b.stage = v;
    }
    if let Some(v) = r.order {
        b.order = v;
    }
    if let Some(v) = r.evaluate_on_plan {
        b.evaluate_on_plan = v;
    }
    if let Some(v) = r.re_evaluate_policies {
        b.re_evaluate_policies = v;
    }
    if let Some(v) = mode {
        b.policy_engine_mode = v;
    }
    if let Some(v) = action {
        b.invalid_response_action = v;
    }
    Ok(b)
}

/// Creates a stage binding from a request, validated as the API validates it.
pub(crate) async fn create_binding(
    store: &Store,
    actor: &portcullis_core::Actor,
    r: FlowStageBindingRequest,
) -> ApiResult<FlowStageBinding> {
    let b = apply_binding(FlowStageBinding::new(Uuid::nil(), Uuid::nil(), 0), r, false)?;
    Ok(store.create_flow_binding(b, actor).await?)
}

/// Changes a stage binding from a request (`partial` as PATCH).
pub(crate) async fn update_binding(
    store: &Store,
    actor: &portcullis_core::Actor,
    existing: FlowStageBinding,
    r: FlowStageBindingRequest,
    partial: bool,
) -> ApiResult<FlowStageBinding> {
    let uuid = existing.uuid;
    let b = apply_binding(existing, r, partial)?;
    Ok(store.update_flow_binding(uuid, b, actor).await?)
}

/// A stage binding as the API shows it, with its stage.
pub(crate) async fn binding_serializer(
    store: &Store,
    b: &FlowStageBinding,
) -> ApiResult<FlowStageBindingSerializer> {
    let stage = store.find_stage(b.stage).await?;
    Ok(FlowStageBindingSerializer {
        pk: b.uuid,
        policybindingmodel_ptr_id: b.pbm_uuid,
        target: b.target,
        stage: b.stage,
        stage_obj: super::stages::stage_serializer(store, &stage, false).await?,
        evaluate_on_plan: b.evaluate_on_plan,
        re_evaluate_policies: b.re_evaluate_policies,
        order: b.order,
        policy_engine_mode: b.policy_engine_mode.as_str().to_owned(),
        invalid_response_action: b.invalid_response_action.as_str().to_owned(),
    })
}

#[utoipa::path(get, path = "/api/v3/flows/bindings/", tag = "flows", operation_id = "flows_bindings_list",
    params(("target" = Option<Uuid>, Query), ("stage" = Option<Uuid>, Query), ("order" = Option<i32>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedFlowStageBindingList), (status = 403)))]
pub async fn bindings_list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedFlowStageBindingList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let filter = FlowBindingFilter {
        target: query_uuid(&q, "target")?,
        stage: query_uuid(&q, "stage")?,
        order: q.int("order")?,
    };
    let page = state.store.list_flow_bindings(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for b in &page.items {
        results.push(binding_serializer(&state.store, b).await?);
    }
    Ok(Json(PaginatedFlowStageBindingList::new(
        &lq.page, page.count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/flows/bindings/", tag = "flows", operation_id = "flows_bindings_create",
    request_body = FlowStageBindingRequest, responses((status = 201, body = FlowStageBindingSerializer), (status = 400), (status = 403)))]
pub async fn bindings_create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<FlowStageBindingRequest>,
) -> ApiResult<(StatusCode, Json<FlowStageBindingSerializer>)> {
    auth.require_superuser()?;
    let b = create_binding(&state.store, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(binding_serializer(&state.store, &b).await?),
    ))
}

#[utoipa::path(get, path = "/api/v3/flows/bindings/{fsb_uuid}/", tag = "flows", operation_id = "flows_bindings_retrieve",
    params(("fsb_uuid" = Uuid, Path)), responses((status = 200, body = FlowStageBindingSerializer), (status = 403), (status = 404)))]
pub async fn bindings_retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<FlowStageBindingSerializer>> {
    auth.require_superuser()?;
    let b = state.store.find_flow_binding(path_id(&id)?).await?;
    Ok(Json(binding_serializer(&state.store, &b).await?))
}

async fn bindings_update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: FlowStageBindingRequest,
    partial: bool,
) -> ApiResult<Json<FlowStageBindingSerializer>> {
    auth.require_superuser()?;
    let existing = state.store.find_flow_binding(path_id(id)?).await?;
    let b = update_binding(&state.store, &auth.actor(), existing, r, partial).await?;
    Ok(Json(binding_serializer(&state.store, &b).await?))
}

#[utoipa::path(put, path = "/api/v3/flows/bindings/{fsb_uuid}/", tag = "flows", operation_id = "flows_bindings_update",
    params(("fsb_uuid" = Uuid, Path)), request_body = FlowStageBindingRequest, responses((status = 200, body = FlowStageBindingSerializer), (status = 400), (status = 404)))]
pub async fn bindings_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<FlowStageBindingRequest>,
) -> ApiResult<Json<FlowStageBindingSerializer>> {
    bindings_update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/flows/bindings/{fsb_uuid}/", tag = "flows", operation_id = "flows_bindings_partial_update",
    params(("fsb_uuid" = Uuid, Path)), request_body = FlowStageBindingRequest, responses((status = 200, body = FlowStageBindingSerializer), (status = 400), (status = 404)))]
pub async fn bindings_partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<FlowStageBindingRequest>,
) -> ApiResult<Json<FlowStageBindingSerializer>> {
    bindings_update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/flows/bindings/{fsb_uuid}/", tag = "flows", operation_id = "flows_bindings_destroy",
    params(("fsb_uuid" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn bindings_destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let uuid: Uuid = path_id(&id)?;
    state.store.delete_flow_binding(uuid, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
