//! `stages/prompt/prompts/`: the fields prompt stages show, with authentik's field names. A
//! prompt's own settings (`field_key`, `label`, `type`, ...) are stored in its `config`; this
//! module validates them and fills authentik's defaults. Superusers only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{Actor, FieldErrors, Prompt, validate};
use portcullis_store::{StageFilter, Store};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{check, everything, path_id, require};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{PaginatedPromptList, PromptRequest, PromptSerializer};

/// authentik's `FieldTypes` of a prompt.
pub const PROMPT_TYPES: &[&str] = &[
    "text",
    "text_area",
    "text_read_only",
    "text_area_read_only",
    "username",
    "email",
    "password",
    "number",
    "checkbox",
    "radio-button-group",
    "dropdown",
    "date",
    "date-time",
    "file",
    "separator",
    "hidden",
    "static",
    "ak-locale",
];

/// The stored settings of a prompt with their defaults.
fn defaults() -> serde_json::Map<String, Value> {
    match json!({
        "field_key": "", "label": "", "type": "text", "required": true, "placeholder": "",
        "initial_value": "", "order": 0, "sub_text": "", "placeholder_expression": false,
        "initial_value_expression": false,
    }) {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Applies a request to a prompt's settings (`partial` as PATCH) and returns the name and
/// settings to store.
fn apply(existing: Option<&Prompt>, r: PromptRequest, partial: bool) -> ApiResult<(String, Value)> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("name", r.name.is_some()),
                ("field_key", r.field_key.is_some()),
                ("label", r.label.is_some()),
                ("type", r.prompt_type.is_some()),
            ],
        );
    }
    if let Some(v) = &r.name {
        validate::text(&mut errors, "name", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.field_key {
        validate::text(&mut errors, "field_key", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.label {
        validate::text(&mut errors, "label", v, validate::NAME_MAX, false);
    }
    for (field, v) in [
        ("placeholder", &r.placeholder),
        ("initial_value", &r.initial_value),
        ("sub_text", &r.sub_text),
    ] {
        if let Some(v) = v {
            validate::text(&mut errors, field, v, validate::TEXT_MAX, true);
        }
    }
    if let Some(t) = &r.prompt_type
        && !PROMPT_TYPES.contains(&t.as_str())
    {
        let shown: String = t.chars().take(64).collect();
        errors.add("type", format!("\"{shown}\" is not a valid choice."));
    }
    if r.order.is_some_and(|o| i32::try_from(o).is_err()) {
        errors.add("order", "Ensure this value fits a 32-bit integer.");
    }
    check(errors)?;
    let mut config = defaults();
    if let Some(Value::Object(m)) = existing.map(|p| &p.config) {
        config.extend(m.clone());
    }
    let mut set = |k: &str, v: Value| {
        config.insert(k.to_owned(), v);
    };
    if let Some(v) = r.field_key {
        set("field_key", Value::from(v));
    }
    if let Some(v) = r.label {
        set("label", Value::from(v));
    }
    if let Some(v) = r.prompt_type {
        set("type", Value::from(v));
    }
    if let Some(v) = r.required {
        set("required", Value::from(v));
    }
    if let Some(v) = r.placeholder {
        set("placeholder", Value::from(v));
    }
    if let Some(v) = r.initial_value {
        set("initial_value", Value::from(v));
    }
    if let Some(v) = r.order {
        set("order", Value::from(v));
    }
    if let Some(v) = r.sub_text {
        set("sub_text", Value::from(v));
    }
    if let Some(v) = r.placeholder_expression {
        set("placeholder_expression", Value::from(v));
    }
    if let Some(v) = r.initial_value_expression {
        set("initial_value_expression", Value::from(v));
    }
    let name = r
        .name
        .or_else(|| existing.map(|p| p.name.clone()))
        .unwrap_or_default();
    Ok((name, Value::Object(config)))
}

/// Creates a prompt from a request, validated as the API validates it.
pub(crate) async fn create_prompt(
    store: &Store,
    actor: &Actor,
    r: PromptRequest,
) -> ApiResult<Prompt> {
    let (name, config) = apply(None, r, false)?;
    Ok(store
        .create_prompt(
            Prompt {
                uuid: Uuid::nil(),
                name,
                config,
            },
            actor,
        )
        .await?)
}

/// Changes a prompt from a request (`partial` as PATCH).
pub(crate) async fn update_prompt(
    store: &Store,
    actor: &Actor,
    existing: &Prompt,
    r: PromptRequest,
    partial: bool,
) -> ApiResult<Prompt> {
    let (name, config) = apply(Some(existing), r, partial)?;
    Ok(store
        .update_prompt(
            existing.uuid,
            Prompt {
                uuid: existing.uuid,
                name,
                config,
            },
            actor,
        )
        .await?)
}

/// A prompt as the API shows it, with the prompt stages that use it.
pub(crate) async fn prompt_serializer(store: &Store, p: &Prompt) -> ApiResult<PromptSerializer> {
    let stages = store
        .list_stages(
            &StageFilter {
                kinds: vec!["promptstage".into()],
                ..Default::default()
            },
            &everything(),
        )
        .await?;
    let mut using = Vec::new();
    for s in &stages.items {
        let uses = s
            .config
            .get("fields")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|f| f.as_str() == Some(&p.uuid.to_string())));
        if uses {
            using.push(super::stages::stage_serializer(store, s, true).await?);
        }
    }
    let c = &p.config;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let b = |k: &str, d: bool| c.get(k).and_then(Value::as_bool).unwrap_or(d);
    Ok(PromptSerializer {
        pk: p.uuid,
        name: p.name.clone(),
        field_key: s("field_key"),
        label: s("label"),
        prompt_type: c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("text")
            .to_owned(),
        required: b("required", true),
        placeholder: s("placeholder"),
        initial_value: s("initial_value"),
        order: c.get("order").and_then(Value::as_i64).unwrap_or(0),
        promptstage_set: using.iter().map(|s| s.pk).collect(),
        prompt_stages_obj: using,
        sub_text: s("sub_text"),
        placeholder_expression: b("placeholder_expression", false),
        initial_value_expression: b("initial_value_expression", false),
    })
}

#[utoipa::path(get, path = "/api/v3/stages/prompt/prompts/", tag = "stages", operation_id = "stages_prompt_prompts_list",
    params(("name" = Option<String>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
        ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedPromptList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedPromptList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let name = q.string("name").filter(|n| !n.is_empty());
    let page = state.store.list_prompts(name.as_deref(), &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for p in &page.items {
        results.push(prompt_serializer(&state.store, p).await?);
    }
    Ok(Json(PaginatedPromptList::new(
        &lq.page, page.count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/stages/prompt/prompts/", tag = "stages", operation_id = "stages_prompt_prompts_create",
    request_body = PromptRequest, responses((status = 201, body = PromptSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<PromptRequest>,
) -> ApiResult<(StatusCode, Json<PromptSerializer>)> {
    auth.require_superuser()?;
    let p = create_prompt(&state.store, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(prompt_serializer(&state.store, &p).await?),
    ))
}

#[utoipa::path(get, path = "/api/v3/stages/prompt/prompts/{prompt_uuid}/", tag = "stages", operation_id = "stages_prompt_prompts_retrieve",
    params(("prompt_uuid" = Uuid, Path)), responses((status = 200, body = PromptSerializer), (status = 403), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PromptSerializer>> {
    auth.require_superuser()?;
    let p = state.store.find_prompt(path_id(&id)?).await?;
    Ok(Json(prompt_serializer(&state.store, &p).await?))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: PromptRequest,
    partial: bool,
) -> ApiResult<Json<PromptSerializer>> {
    auth.require_superuser()?;
    let existing = state.store.find_prompt(path_id(id)?).await?;
    let p = update_prompt(&state.store, &auth.actor(), &existing, r, partial).await?;
    Ok(Json(prompt_serializer(&state.store, &p).await?))
}

#[utoipa::path(put, path = "/api/v3/stages/prompt/prompts/{prompt_uuid}/", tag = "stages", operation_id = "stages_prompt_prompts_update",
    params(("prompt_uuid" = Uuid, Path)), request_body = PromptRequest, responses((status = 200, body = PromptSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PromptRequest>,
) -> ApiResult<Json<PromptSerializer>> {
    update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/stages/prompt/prompts/{prompt_uuid}/", tag = "stages", operation_id = "stages_prompt_prompts_partial_update",
    params(("prompt_uuid" = Uuid, Path)), request_body = PromptRequest, responses((status = 200, body = PromptSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PromptRequest>,
) -> ApiResult<Json<PromptSerializer>> {
    update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/stages/prompt/prompts/{prompt_uuid}/", tag = "stages", operation_id = "stages_prompt_prompts_destroy",
    params(("prompt_uuid" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let uuid: Uuid = path_id(&id)?;
    state.store.delete_prompt(uuid, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
