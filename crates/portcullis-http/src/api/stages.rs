//! `stages/all/` (every stage, whatever its type) and one CRUD path per stage type
//! (`stages/identification/`, `stages/password/`, ... from [`STAGE_KINDS`]), at authentik's
//! paths with authentik's fields. A type's settings sit at the top level of its JSON; the flow
//! crate validates them and fills defaults ([`normalize_stage_config`]), this module checks that
//! the objects they name exist. Superusers only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{Actor, FieldErrors, Stage, validate};
use portcullis_flow::{STAGE_KINDS, StageKind, normalize_stage_config, stage_kind};
use portcullis_store::{StageFilter, Store, StoreError};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{check, no_nul_in_json, normalize_settings, path_id};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{FlowSetSerializer, PaginatedStageList, StageSerializer, TypeCreate};

/// Fields of the response that a request may echo back and that are never written.
const READ_ONLY: &[&str] = &[
    "pk",
    "component",
    "verbose_name",
    "verbose_name_plural",
    "meta_model_name",
    "flow_set",
];

/// What a stage setting refers to.
#[derive(Debug, Clone, Copy)]
enum Ref {
    /// A stage of this kind.
    Stage(&'static str),
    Flow,
    Prompt,
    Policy,
    Group,
    /// A source: none exist yet, so any is unknown.
    Source,
}

/// The settings of each stage type that name other objects.
fn references(model: &str) -> &'static [(&'static str, Ref)] {
    match model {
        "identificationstage" => &[
            ("password_stage", Ref::Stage("passwordstage")),
            ("captcha_stage", Ref::Stage("captchastage")),
            ("webauthn_stage", Ref::Stage("authenticatorwebauthnstage")),
            ("enrollment_flow", Ref::Flow),
            ("recovery_flow", Ref::Flow),
            ("passwordless_flow", Ref::Flow),
            ("sources", Ref::Source),
        ],
        "passwordstage" => &[("configure_flow", Ref::Flow)],
        "redirectstage" => &[("target_flow", Ref::Flow)],
        "promptstage" => &[
            ("fields", Ref::Prompt),
            ("validation_policies", Ref::Policy),
        ],
        "userwritestage" => &[("create_users_group", Ref::Group)],
        _ => &[],
    }
}

fn missing(e: StoreError) -> Result<bool, ApiError> {
    match e {
        StoreError::NotFound => Ok(false),
        other => Err(other.into()),
    }
}

async fn exists(store: &Store, r: Ref, id: Uuid) -> ApiResult<bool> {
    let found = match r {
        Ref::Stage(kind) => match store.find_stage(id).await {
            Ok(s) => s.kind == kind,
            Err(e) => missing(e)?,
        },
        Ref::Flow => match store.find_flow(id).await {
            Ok(_) => true,
            Err(e) => missing(e)?,
        },
        Ref::Prompt => match store.find_prompt(id).await {
            Ok(_) => true,
            Err(e) => missing(e)?,
        },
        Ref::Policy => match store.find_policy(id).await {
            Ok(_) => true,
            Err(e) => missing(e)?,
        },
        Ref::Group => match store.find_group(id).await {
            Ok(_) => true,
            Err(e) => missing(e)?,
        },
        Ref::Source => false,
    };
    Ok(found)
}

/// Adds an error for each object a stage's (normalized) settings name that does not exist.
async fn check_references(
    store: &Store,
    model: &str,
    config: &Value,
    errors: &mut FieldErrors,
) -> ApiResult<()> {
    for (field, r) in references(model) {
        let ids: Vec<&Value> = match config.get(*field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items.iter().collect(),
            Some(v) => vec![v],
        };
        for id in ids {
            let ok = match id.as_str().and_then(|s| s.parse::<Uuid>().ok()) {
                Some(u) => exists(store, *r, u).await?,
                None => false,
            };
            if !ok {
                let shown: String = id
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| id.to_string())
                    .chars()
                    .take(64)
                    .collect();
                errors.add(
                    field,
                    format!("Invalid pk \"{shown}\" - object does not exist."),
                );
                break;
            }
        }
    }
    Ok(())
}

/// The name from a request body, checked.
fn take_name(
    body: &mut Map<String, Value>,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<String> {
    match body.remove("name") {
        None if required => {
            errors.add("name", "This field is required.");
            None
        }
        None => None,
        Some(Value::String(s)) => {
            validate::text(errors, "name", &s, validate::NAME_MAX, false);
            Some(s)
        }
        Some(Value::Null) => {
            errors.add("name", "This field may not be null.");
            None
        }
        Some(_) => {
            errors.add("name", "Not a valid string.");
            None
        }
    }
}

/// Checks a stage request (`body`: name and settings at the top level) against `existing`
/// settings, and returns the name and the settings to store.
async fn stage_from_request(
    store: &Store,
    kind: &StageKind,
    existing: Option<&Stage>,
    mut body: Map<String, Value>,
) -> ApiResult<(String, Value)> {
    let mut errors = FieldErrors::new();
    let name = take_name(&mut body, existing.is_none(), &mut errors);
    for k in READ_ONLY {
        body.remove(*k);
    }
    for (k, v) in &body {
        no_nul_in_json(&mut errors, k, v);
    }
    check(errors)?;
    let base = match existing.map(|s| &s.config) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let config = normalize_settings(&base, body, |v| {
        normalize_stage_config(kind.model, v).map_err(|e| e.0)
    })?;
    let mut errors = FieldErrors::new();
    check_references(store, kind.model, &config, &mut errors).await?;
    check(errors)?;
    let name = name
        .or_else(|| existing.map(|s| s.name.clone()))
        .unwrap_or_default();
    Ok((name, config))
}

/// Creates a stage of `kind` from a request body, validated as the API validates it.
pub(crate) async fn create_stage(
    store: &Store,
    actor: &Actor,
    kind: &StageKind,
    body: Map<String, Value>,
) -> ApiResult<Stage> {
    let (name, config) = stage_from_request(store, kind, None, body).await?;
    Ok(store
        .create_stage(
            Stage {
                uuid: Uuid::nil(),
                name,
                kind: kind.model.to_owned(),
                config,
            },
            actor,
        )
        .await?)
}

/// Changes a stage from a request body. Settings not in the body keep their values (as DRF's
/// update does); `partial` only decides whether `name` is required.
pub(crate) async fn update_stage(
    store: &Store,
    actor: &Actor,
    existing: &Stage,
    body: Map<String, Value>,
    partial: bool,
) -> ApiResult<Stage> {
    let kind = stage_kind(&existing.kind)
        .ok_or_else(|| ApiError::Internal(format!("unknown stage kind {}", existing.kind)))?;
    if !partial && !body.contains_key("name") {
        return Err(ApiError::field("name", "This field is required."));
    }
    let (name, config) = stage_from_request(store, kind, Some(existing), body).await?;
    Ok(store
        .update_stage(
            existing.uuid,
            Stage {
                uuid: existing.uuid,
                name,
                kind: existing.kind.clone(),
                config,
            },
            actor,
        )
        .await?)
}

/// authentik's `app_label.model` of a stage kind (`authentik_stages_user_login.userloginstage`).
pub(crate) fn meta_model_name(kind: &str) -> String {
    match stage_kind(kind) {
        Some(k) => format!("{}.{}", k.app, k.model),
        None => format!("{}.{kind}", portcullis_store::stage_app_label(kind)),
    }
}

/// A stage as the API shows it: the common fields, its flows, and (with `with_config`) the
/// type's own settings.
pub(crate) async fn stage_serializer(
    store: &Store,
    s: &Stage,
    with_config: bool,
) -> ApiResult<StageSerializer> {
    let kind = stage_kind(&s.kind);
    let mut flow_set = Vec::new();
    for f in store.stage_flows(s.uuid).await? {
        match store.find_flow(f).await {
            Ok(f) => flow_set.push(FlowSetSerializer::from(&f)),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let config = match (&s.config, with_config) {
        (Value::Object(m), true) => m.clone(),
        _ => Map::new(),
    };
    Ok(StageSerializer {
        pk: s.uuid,
        name: s.name.clone(),
        component: kind.map(|k| k.component).unwrap_or_default().to_owned(),
        verbose_name: kind.map(|k| k.verbose_name).unwrap_or_default().to_owned(),
        verbose_name_plural: kind
            .map(|k| k.verbose_name_plural)
            .unwrap_or_default()
            .to_owned(),
        meta_model_name: meta_model_name(&s.kind),
        flow_set,
        config,
    })
}

async fn list_stages(
    state: &AppState,
    auth: &Auth,
    q: &QueryParams,
    kinds: Vec<String>,
    with_config: bool,
) -> ApiResult<PaginatedStageList> {
    auth.require_superuser()?;
    let lq = list_query(q)?;
    let filter = StageFilter {
        name: q.string("name").filter(|n| !n.is_empty()),
        kinds,
    };
    let page = state.store.list_stages(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for s in &page.items {
        results.push(stage_serializer(&state.store, s, with_config).await?);
    }
    Ok(PaginatedStageList::new(&lq.page, page.count, results))
}

/// The stage `id`, when it is of `kind` (any kind when `None`).
async fn find_stage(state: &AppState, id: &str, kind: Option<&StageKind>) -> ApiResult<Stage> {
    let s = state.store.find_stage(path_id(id)?).await?;
    if kind.is_some_and(|k| k.model != s.kind) {
        return Err(ApiError::NotFound);
    }
    Ok(s)
}

// ------------------------------------------------------------------------------ stages/all/

#[utoipa::path(get, path = "/api/v3/stages/all/", tag = "stages", operation_id = "stages_all_list",
    params(("name" = Option<String>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
        ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedStageList), (status = 403)))]
pub async fn all_list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedStageList>> {
    Ok(Json(
        list_stages(&state, &auth, &q, Vec::new(), false).await?,
    ))
}

#[utoipa::path(get, path = "/api/v3/stages/all/{stage_uuid}/", tag = "stages", operation_id = "stages_all_retrieve",
    params(("stage_uuid" = Uuid, Path)), responses((status = 200, body = StageSerializer), (status = 403), (status = 404)))]
pub async fn all_retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<StageSerializer>> {
    auth.require_superuser()?;
    let s = find_stage(&state, &id, None).await?;
    Ok(Json(stage_serializer(&state.store, &s, false).await?))
}

#[utoipa::path(delete, path = "/api/v3/stages/all/{stage_uuid}/", tag = "stages", operation_id = "stages_all_destroy",
    params(("stage_uuid" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn all_destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let s = find_stage(&state, &id, None).await?;
    state.store.delete_stage(s.uuid, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/stages/all/types/", tag = "stages", operation_id = "stages_all_types_list",
    responses((status = 200, body = Vec<TypeCreate>), (status = 403)))]
pub async fn all_types(auth: Auth) -> ApiResult<Json<Vec<TypeCreate>>> {
    auth.require_superuser()?;
    Ok(Json(
        STAGE_KINDS
            .iter()
            .map(|k| TypeCreate {
                name: k.verbose_name.to_owned(),
                description: format!("{}.", k.verbose_name),
                component: k.component.to_owned(),
                model_name: k.model.to_owned(),
                icon_url: None,
                requires_enterprise: false,
                deprecated: false,
            })
            .collect(),
    ))
}

// ------------------------------------------------------------------------ one path per type

/// The shared bodies of every stage type's handlers.
pub(crate) mod typed {
    use super::*;

    pub async fn list(
        state: &AppState,
        auth: &Auth,
        q: &QueryParams,
        kind: &StageKind,
    ) -> ApiResult<Json<PaginatedStageList>> {
        Ok(Json(
            list_stages(state, auth, q, vec![kind.model.to_owned()], true).await?,
        ))
    }

    pub async fn create(
        state: &AppState,
        auth: &Auth,
        kind: &StageKind,
        body: Map<String, Value>,
    ) -> ApiResult<(StatusCode, Json<StageSerializer>)> {
        auth.require_superuser()?;
        let s = create_stage(&state.store, &auth.actor(), kind, body).await?;
        Ok((
            StatusCode::CREATED,
            Json(stage_serializer(&state.store, &s, true).await?),
        ))
    }

    pub async fn retrieve(
        state: &AppState,
        auth: &Auth,
        id: &str,
        kind: &StageKind,
    ) -> ApiResult<Json<StageSerializer>> {
        auth.require_superuser()?;
        let s = find_stage(state, id, Some(kind)).await?;
        Ok(Json(stage_serializer(&state.store, &s, true).await?))
    }

    pub async fn update(
        state: &AppState,
        auth: &Auth,
        id: &str,
        kind: &StageKind,
        body: Map<String, Value>,
        partial: bool,
    ) -> ApiResult<Json<StageSerializer>> {
        auth.require_superuser()?;
        let existing = find_stage(state, id, Some(kind)).await?;
        let s = update_stage(&state.store, &auth.actor(), &existing, body, partial).await?;
        Ok(Json(stage_serializer(&state.store, &s, true).await?))
    }

    pub async fn destroy(
        state: &AppState,
        auth: &Auth,
        id: &str,
        kind: &StageKind,
    ) -> ApiResult<StatusCode> {
        auth.require_superuser()?;
        let s = find_stage(state, id, Some(kind)).await?;
        state.store.delete_stage(s.uuid, &auth.actor()).await?;
        Ok(StatusCode::NO_CONTENT)
    }
}

/// The kind with this model name (every name used below is in `STAGE_KINDS`).
pub(crate) fn kind(model: &str) -> ApiResult<&'static StageKind> {
    stage_kind(model).ok_or_else(|| ApiError::Internal(format!("no stage kind {model}")))
}

/// One module of handlers per stage type, with authentik's paths and operation ids.
macro_rules! stage_type {
    ($module:ident, $model:literal, $list:literal, $detail:literal,
     $op_list:literal, $op_create:literal, $op_retrieve:literal, $op_update:literal,
     $op_partial:literal, $op_destroy:literal) => {
        pub mod $module {
            use std::sync::Arc;

            use axum::Json;
            use axum::extract::{Path, State};
            use axum::http::StatusCode;
            use serde_json::{Map, Value};

            use super::{kind, typed};
            use crate::AppState;
            use crate::error::ApiResult;
            use crate::extract::{ApiJson, Auth, QueryParams};
            use crate::serializers::{PaginatedStageList, StageRequest, StageSerializer};

            #[utoipa::path(get, path = $list, tag = "stages", operation_id = $op_list,
                params(("name" = Option<String>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
                    ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
                responses((status = 200, body = PaginatedStageList), (status = 403)))]
            pub async fn list(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                q: QueryParams,
            ) -> ApiResult<Json<PaginatedStageList>> {
                typed::list(&state, &auth, &q, kind($model)?).await
            }

            #[utoipa::path(post, path = $list, tag = "stages", operation_id = $op_create,
                request_body = StageRequest, responses((status = 201, body = StageSerializer), (status = 400), (status = 403)))]
            pub async fn create(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                ApiJson(body): ApiJson<Map<String, Value>>,
            ) -> ApiResult<(StatusCode, Json<StageSerializer>)> {
                typed::create(&state, &auth, kind($model)?, body).await
            }

            #[utoipa::path(get, path = $detail, tag = "stages", operation_id = $op_retrieve,
                params(("stage_uuid" = uuid::Uuid, Path)), responses((status = 200, body = StageSerializer), (status = 403), (status = 404)))]
            pub async fn retrieve(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
            ) -> ApiResult<Json<StageSerializer>> {
                typed::retrieve(&state, &auth, &id, kind($model)?).await
            }

            #[utoipa::path(put, path = $detail, tag = "stages", operation_id = $op_update,
                params(("stage_uuid" = uuid::Uuid, Path)), request_body = StageRequest,
                responses((status = 200, body = StageSerializer), (status = 400), (status = 403), (status = 404)))]
            pub async fn update(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
                ApiJson(body): ApiJson<Map<String, Value>>,
            ) -> ApiResult<Json<StageSerializer>> {
                typed::update(&state, &auth, &id, kind($model)?, body, false).await
            }

            #[utoipa::path(patch, path = $detail, tag = "stages", operation_id = $op_partial,
                params(("stage_uuid" = uuid::Uuid, Path)), request_body = StageRequest,
                responses((status = 200, body = StageSerializer), (status = 400), (status = 403), (status = 404)))]
            pub async fn partial_update(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
                ApiJson(body): ApiJson<Map<String, Value>>,
            ) -> ApiResult<Json<StageSerializer>> {
                typed::update(&state, &auth, &id, kind($model)?, body, true).await
            }

            #[utoipa::path(delete, path = $detail, tag = "stages", operation_id = $op_destroy,
                params(("stage_uuid" = uuid::Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
            pub async fn destroy(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
            ) -> ApiResult<StatusCode> {
                typed::destroy(&state, &auth, &id, kind($model)?).await
            }
        }
    };
}

stage_type!(
    consent,
    "consentstage",
    "/api/v3/stages/consent/",
    "/api/v3/stages/consent/{stage_uuid}/",
    "stages_consent_list",
    "stages_consent_create",
    "stages_consent_retrieve",
    "stages_consent_update",
    "stages_consent_partial_update",
    "stages_consent_destroy"
);
stage_type!(
    deny,
    "denystage",
    "/api/v3/stages/deny/",
    "/api/v3/stages/deny/{stage_uuid}/",
    "stages_deny_list",
    "stages_deny_create",
    "stages_deny_retrieve",
    "stages_deny_update",
    "stages_deny_partial_update",
    "stages_deny_destroy"
);
stage_type!(
    dummy,
    "dummystage",
    "/api/v3/stages/dummy/",
    "/api/v3/stages/dummy/{stage_uuid}/",
    "stages_dummy_list",
    "stages_dummy_create",
    "stages_dummy_retrieve",
    "stages_dummy_update",
    "stages_dummy_partial_update",
    "stages_dummy_destroy"
);
stage_type!(
    identification,
    "identificationstage",
    "/api/v3/stages/identification/",
    "/api/v3/stages/identification/{stage_uuid}/",
    "stages_identification_list",
    "stages_identification_create",
    "stages_identification_retrieve",
    "stages_identification_update",
    "stages_identification_partial_update",
    "stages_identification_destroy"
);
stage_type!(
    password,
    "passwordstage",
    "/api/v3/stages/password/",
    "/api/v3/stages/password/{stage_uuid}/",
    "stages_password_list",
    "stages_password_create",
    "stages_password_retrieve",
    "stages_password_update",
    "stages_password_partial_update",
    "stages_password_destroy"
);
stage_type!(
    prompt_stages,
    "promptstage",
    "/api/v3/stages/prompt/stages/",
    "/api/v3/stages/prompt/stages/{stage_uuid}/",
    "stages_prompt_stages_list",
    "stages_prompt_stages_create",
    "stages_prompt_stages_retrieve",
    "stages_prompt_stages_update",
    "stages_prompt_stages_partial_update",
    "stages_prompt_stages_destroy"
);
stage_type!(
    redirect,
    "redirectstage",
    "/api/v3/stages/redirect/",
    "/api/v3/stages/redirect/{stage_uuid}/",
    "stages_redirect_list",
    "stages_redirect_create",
    "stages_redirect_retrieve",
    "stages_redirect_update",
    "stages_redirect_partial_update",
    "stages_redirect_destroy"
);
stage_type!(
    user_login,
    "userloginstage",
    "/api/v3/stages/user_login/",
    "/api/v3/stages/user_login/{stage_uuid}/",
    "stages_user_login_list",
    "stages_user_login_create",
    "stages_user_login_retrieve",
    "stages_user_login_update",
    "stages_user_login_partial_update",
    "stages_user_login_destroy"
);
stage_type!(
    user_logout,
    "userlogoutstage",
    "/api/v3/stages/user_logout/",
    "/api/v3/stages/user_logout/{stage_uuid}/",
    "stages_user_logout_list",
    "stages_user_logout_create",
    "stages_user_logout_retrieve",
    "stages_user_logout_update",
    "stages_user_logout_partial_update",
    "stages_user_logout_destroy"
);
stage_type!(
    user_write,
    "userwritestage",
    "/api/v3/stages/user_write/",
    "/api/v3/stages/user_write/{stage_uuid}/",
    "stages_user_write_list",
    "stages_user_write_create",
    "stages_user_write_retrieve",
    "stages_user_write_update",
    "stages_user_write_partial_update",
    "stages_user_write_destroy"
);

/// Adds every stage route to the API router.
pub fn routes(
    r: utoipa_axum::router::OpenApiRouter<Arc<AppState>>,
) -> utoipa_axum::router::OpenApiRouter<Arc<AppState>> {
    use utoipa_axum::routes;
    macro_rules! typed_routes {
        ($r:expr, $($m:ident),+) => {{
            let mut r = $r;
            $(
                r = r
                    .routes(routes!($m::list, $m::create))
                    .routes(routes!($m::retrieve, $m::update, $m::partial_update, $m::destroy));
            )+
            r
        }};
    }
    let r = r
        .routes(routes!(all_list))
        .routes(routes!(all_types))
        .routes(routes!(all_retrieve, all_destroy));
    typed_routes!(
        r,
        consent,
        deny,
        dummy,
        identification,
        password,
        prompt_stages,
        redirect,
        user_login,
        user_logout,
        user_write
    )
}
