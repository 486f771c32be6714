//! `policies/all/` (every policy, its types, and `test/`), one CRUD path per policy type
//! (`policies/expression/`, ... from [`POLICY_KINDS`]) and `policies/bindings/`, at authentik's
//! paths with authentik's fields. A type's settings sit at the top level of its JSON and are
//! validated by the flow crate (`normalize_config`), which also checks expression syntax.
//! Superusers only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{Actor, FieldErrors, Policy, PolicyBinding, validate};
use portcullis_flow::{POLICY_KINDS, PolicyKind, policy_kind};
use portcullis_policy::PolicyUser;
use portcullis_store::{PolicyBindingFilter, PolicyFilter, Store, StoreError};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{check, everything, no_nul_in_json, normalize_settings, path_id, query_uuid, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{
    LogEvent, PaginatedPolicyBindingList, PaginatedPolicyList, PartialGroup, PartialUser,
    PolicyBindingRequest, PolicyBindingSerializer, PolicySerializer, PolicyTestRequest,
    PolicyTestResult, TypeCreate, dt,
};

const READ_ONLY: &[&str] = &[
    "pk",
    "component",
    "verbose_name",
    "verbose_name_plural",
    "meta_model_name",
    "bound_to",
];

/// Checks a policy request (`body`: name, execution_logging and the type's settings) against
/// `existing`, and returns the policy to store.
fn policy_from_request(
    kind: &PolicyKind,
    existing: Option<&Policy>,
    mut body: Map<String, Value>,
) -> ApiResult<Policy> {
    let mut errors = FieldErrors::new();
    let name = match body.remove("name") {
        None if existing.is_none() => {
            errors.add("name", "This field is required.");
            None
        }
        None => None,
        Some(Value::String(s)) => {
            validate::text(&mut errors, "name", &s, validate::NAME_MAX, false);
            Some(s)
        }
        Some(_) => {
            errors.add("name", "Not a valid string.");
            None
        }
    };
    let logging = match body.remove("execution_logging") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            errors.add("execution_logging", "Must be a valid boolean.");
            None
        }
    };
    for k in READ_ONLY {
        body.remove(*k);
    }
    for (k, v) in &body {
        no_nul_in_json(&mut errors, k, v);
    }
    check(errors)?;
    let base = match existing.map(|p| &p.config) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let config = normalize_settings(&base, body, |v| {
        portcullis_flow::policies::normalize_config(kind.model, v).map_err(|e| e.0)
    })?;
    Ok(Policy {
        uuid: existing.map(|p| p.uuid).unwrap_or_else(Uuid::nil),
        name: name
            .or_else(|| existing.map(|p| p.name.clone()))
            .unwrap_or_default(),
        kind: kind.model.to_owned(),
        execution_logging: logging
            .or_else(|| existing.map(|p| p.execution_logging))
            .unwrap_or(false),
        config,
    })
}

/// Creates a policy of `kind` from a request body, validated as the API validates it.
pub(crate) async fn create_policy(
    store: &Store,
    actor: &Actor,
    kind: &PolicyKind,
    body: Map<String, Value>,
) -> ApiResult<Policy> {
    let p = policy_from_request(kind, None, body)?;
    Ok(store.create_policy(p, actor).await?)
}

/// Changes a policy from a request body; settings not in the body keep their values.
pub(crate) async fn update_policy(
    store: &Store,
    actor: &Actor,
    existing: &Policy,
    body: Map<String, Value>,
    partial: bool,
) -> ApiResult<Policy> {
    let kind = policy_kind(&existing.kind)
        .ok_or_else(|| ApiError::Internal(format!("unknown policy kind {}", existing.kind)))?;
    if !partial && !body.contains_key("name") {
        return Err(ApiError::field("name", "This field is required."));
    }
    let p = policy_from_request(kind, Some(existing), body)?;
    Ok(store.update_policy(existing.uuid, p, actor).await?)
}

/// authentik's `app_label.model` of a policy kind (`authentik_policies_expiry.passwordexpirypolicy`).
pub(crate) fn meta_model_name(kind: &str) -> String {
    match policy_kind(kind) {
        Some(k) => format!("{}.{}", k.app, k.model),
        None => format!("{}.{kind}", portcullis_store::policy_app_label(kind)),
    }
}

/// A policy as the API shows it; `with_config` adds the type's own settings.
pub(crate) async fn policy_serializer(
    store: &Store,
    p: &Policy,
    with_config: bool,
) -> ApiResult<PolicySerializer> {
    let kind = policy_kind(&p.kind);
    let config = match (&p.config, with_config) {
        (Value::Object(m), true) => m.clone(),
        _ => Map::new(),
    };
    Ok(PolicySerializer {
        pk: p.uuid,
        name: p.name.clone(),
        execution_logging: p.execution_logging,
        component: kind.map(|k| k.component).unwrap_or_default().to_owned(),
        verbose_name: kind.map(|k| k.verbose_name).unwrap_or_default().to_owned(),
        verbose_name_plural: kind
            .map(|k| k.verbose_name_plural)
            .unwrap_or_default()
            .to_owned(),
        meta_model_name: meta_model_name(&p.kind),
        bound_to: store.policy_bound_to(p.uuid).await?,
        config,
    })
}

async fn list_policies(
    state: &AppState,
    auth: &Auth,
    q: &QueryParams,
    kinds: Vec<String>,
    with_config: bool,
) -> ApiResult<PaginatedPolicyList> {
    auth.require_superuser()?;
    let lq = list_query(q)?;
    let filter = PolicyFilter {
        name: q.string("name").filter(|n| !n.is_empty()),
        kinds,
        unbound: q.bool("bindings__isnull")?,
    };
    let page = state.store.list_policies(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for p in &page.items {
        results.push(policy_serializer(&state.store, p, with_config).await?);
    }
    Ok(PaginatedPolicyList::new(&lq.page, page.count, results))
}

async fn find_policy(state: &AppState, id: &str, kind: Option<&PolicyKind>) -> ApiResult<Policy> {
    let p = state.store.find_policy(path_id(id)?).await?;
    if kind.is_some_and(|k| k.model != p.kind) {
        return Err(ApiError::NotFound);
    }
    Ok(p)
}

// ---------------------------------------------------------------------------- policies/all/

#[utoipa::path(get, path = "/api/v3/policies/all/", tag = "policies", operation_id = "policies_all_list",
    params(("bindings__isnull" = Option<bool>, Query), ("name" = Option<String>, Query), ("search" = Option<String>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedPolicyList), (status = 403)))]
pub async fn all_list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedPolicyList>> {
    Ok(Json(
        list_policies(&state, &auth, &q, Vec::new(), false).await?,
    ))
}

#[utoipa::path(get, path = "/api/v3/policies/all/{policy_uuid}/", tag = "policies", operation_id = "policies_all_retrieve",
    params(("policy_uuid" = Uuid, Path)), responses((status = 200, body = PolicySerializer), (status = 403), (status = 404)))]
pub async fn all_retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicySerializer>> {
    auth.require_superuser()?;
    let p = find_policy(&state, &id, None).await?;
    Ok(Json(policy_serializer(&state.store, &p, false).await?))
}

#[utoipa::path(delete, path = "/api/v3/policies/all/{policy_uuid}/", tag = "policies", operation_id = "policies_all_destroy",
    params(("policy_uuid" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn all_destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let p = find_policy(&state, &id, None).await?;
    state.store.delete_policy(p.uuid, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/policies/all/types/", tag = "policies", operation_id = "policies_all_types_list",
    responses((status = 200, body = Vec<TypeCreate>), (status = 403)))]
pub async fn all_types(auth: Auth) -> ApiResult<Json<Vec<TypeCreate>>> {
    auth.require_superuser()?;
    Ok(Json(
        POLICY_KINDS
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

#[utoipa::path(post, path = "/api/v3/policies/all/{policy_uuid}/test/", tag = "policies", operation_id = "policies_all_test_create",
    params(("policy_uuid" = Uuid, Path)), request_body = PolicyTestRequest,
    responses((status = 200, body = PolicyTestResult), (status = 400), (status = 403), (status = 404)))]
pub async fn all_test(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PolicyTestRequest>,
) -> ApiResult<Json<PolicyTestResult>> {
    auth.require_superuser()?;
    let p = find_policy(&state, &id, None).await?;
    let user = match state.store.find_user(r.user).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => {
            return Err(ApiError::field(
                "user",
                format!("Invalid pk \"{}\" - object does not exist.", r.user),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let context = match r.context {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::field(
                "context",
                "Expected a dictionary of items.",
            ));
        }
    };
    let mut errors = FieldErrors::new();
    no_nul_in_json(&mut errors, "context", &Value::Object(context.clone()));
    check(errors)?;
    let mut req =
        portcullis_policy::PolicyRequest::new(PolicyUser::from_user(&user.user, &user.groups));
    req.context = context;
    let now = dt(state.clock.now());
    let log = |event: String, level: &str| LogEvent {
        timestamp: now.clone(),
        log_level: level.to_owned(),
        logger: format!("authentik.policies.{}", p.kind.trim_end_matches("policy")),
        event,
        attributes: serde_json::json!({}),
    };
    let result = portcullis_flow::policies::test_policy(&state.flows.policies, &p, &req).await;
    Ok(Json(match result {
        Ok(res) => PolicyTestResult {
            passing: res.passing,
            messages: res.messages,
            log_messages: res.log.into_iter().map(|l| log(l, "info")).collect(),
        },
        Err(e) => PolicyTestResult {
            passing: false,
            messages: vec![e.to_string()],
            log_messages: vec![log(e.to_string(), "error")],
        },
    }))
}

// ------------------------------------------------------------------------ one path per type

/// The shared bodies of every policy type's handlers.
pub(crate) mod typed {
    use super::*;

    pub async fn list(
        state: &AppState,
        auth: &Auth,
        q: &QueryParams,
        kind: &PolicyKind,
    ) -> ApiResult<Json<PaginatedPolicyList>> {
        Ok(Json(
            list_policies(state, auth, q, vec![kind.model.to_owned()], true).await?,
        ))
    }

    pub async fn create(
        state: &AppState,
        auth: &Auth,
        kind: &PolicyKind,
        body: Map<String, Value>,
    ) -> ApiResult<(StatusCode, Json<PolicySerializer>)> {
        auth.require_superuser()?;
        let p = create_policy(&state.store, &auth.actor(), kind, body).await?;
        Ok((
            StatusCode::CREATED,
            Json(policy_serializer(&state.store, &p, true).await?),
        ))
    }

    pub async fn retrieve(
        state: &AppState,
        auth: &Auth,
        id: &str,
        kind: &PolicyKind,
    ) -> ApiResult<Json<PolicySerializer>> {
        auth.require_superuser()?;
        let p = find_policy(state, id, Some(kind)).await?;
        Ok(Json(policy_serializer(&state.store, &p, true).await?))
    }

    pub async fn update(
        state: &AppState,
        auth: &Auth,
        id: &str,
        kind: &PolicyKind,
        body: Map<String, Value>,
        partial: bool,
    ) -> ApiResult<Json<PolicySerializer>> {
        auth.require_superuser()?;
        let existing = find_policy(state, id, Some(kind)).await?;
        let p = update_policy(&state.store, &auth.actor(), &existing, body, partial).await?;
        Ok(Json(policy_serializer(&state.store, &p, true).await?))
    }

    pub async fn destroy(
        state: &AppState,
        auth: &Auth,
        id: &str,
        kind: &PolicyKind,
    ) -> ApiResult<StatusCode> {
        auth.require_superuser()?;
        let p = find_policy(state, id, Some(kind)).await?;
        state.store.delete_policy(p.uuid, &auth.actor()).await?;
        Ok(StatusCode::NO_CONTENT)
    }
}

/// The kind with this model name (every name used below is in `POLICY_KINDS`).
pub(crate) fn kind(model: &str) -> ApiResult<&'static PolicyKind> {
    policy_kind(model).ok_or_else(|| ApiError::Internal(format!("no policy kind {model}")))
}

macro_rules! policy_type {
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
            use crate::serializers::{PaginatedPolicyList, PolicyRequest, PolicySerializer};

            #[utoipa::path(get, path = $list, tag = "policies", operation_id = $op_list,
                params(("name" = Option<String>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
                    ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
                responses((status = 200, body = PaginatedPolicyList), (status = 403)))]
            pub async fn list(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                q: QueryParams,
            ) -> ApiResult<Json<PaginatedPolicyList>> {
                typed::list(&state, &auth, &q, kind($model)?).await
            }

            #[utoipa::path(post, path = $list, tag = "policies", operation_id = $op_create,
                request_body = PolicyRequest, responses((status = 201, body = PolicySerializer), (status = 400), (status = 403)))]
            pub async fn create(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                ApiJson(body): ApiJson<Map<String, Value>>,
            ) -> ApiResult<(StatusCode, Json<PolicySerializer>)> {
                typed::create(&state, &auth, kind($model)?, body).await
            }

            #[utoipa::path(get, path = $detail, tag = "policies", operation_id = $op_retrieve,
                params(("policy_uuid" = uuid::Uuid, Path)), responses((status = 200, body = PolicySerializer), (status = 403), (status = 404)))]
            pub async fn retrieve(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
            ) -> ApiResult<Json<PolicySerializer>> {
                typed::retrieve(&state, &auth, &id, kind($model)?).await
            }

            #[utoipa::path(put, path = $detail, tag = "policies", operation_id = $op_update,
                params(("policy_uuid" = uuid::Uuid, Path)), request_body = PolicyRequest,
                responses((status = 200, body = PolicySerializer), (status = 400), (status = 403), (status = 404)))]
            pub async fn update(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
                ApiJson(body): ApiJson<Map<String, Value>>,
            ) -> ApiResult<Json<PolicySerializer>> {
                typed::update(&state, &auth, &id, kind($model)?, body, false).await
            }

            #[utoipa::path(patch, path = $detail, tag = "policies", operation_id = $op_partial,
                params(("policy_uuid" = uuid::Uuid, Path)), request_body = PolicyRequest,
                responses((status = 200, body = PolicySerializer), (status = 400), (status = 403), (status = 404)))]
            pub async fn partial_update(
                State(state): State<Arc<AppState>>,
                auth: Auth,
                Path(id): Path<String>,
                ApiJson(body): ApiJson<Map<String, Value>>,
            ) -> ApiResult<Json<PolicySerializer>> {
                typed::update(&state, &auth, &id, kind($model)?, body, true).await
            }

            #[utoipa::path(delete, path = $detail, tag = "policies", operation_id = $op_destroy,
                params(("policy_uuid" = uuid::Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
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

policy_type!(
    dummy,
    "dummypolicy",
    "/api/v3/policies/dummy/",
    "/api/v3/policies/dummy/{policy_uuid}/",
    "policies_dummy_list",
    "policies_dummy_create",
    "policies_dummy_retrieve",
    "policies_dummy_update",
    "policies_dummy_partial_update",
    "policies_dummy_destroy"
);
policy_type!(
    event_matcher,
    "eventmatcherpolicy",
    "/api/v3/policies/event_matcher/",
    "/api/v3/policies/event_matcher/{policy_uuid}/",
    "policies_event_matcher_list",
    "policies_event_matcher_create",
    "policies_event_matcher_retrieve",
    "policies_event_matcher_update",
    "policies_event_matcher_partial_update",
    "policies_event_matcher_destroy"
);
policy_type!(
    password_expiry,
    "passwordexpirypolicy",
    "/api/v3/policies/password_expiry/",
    "/api/v3/policies/password_expiry/{policy_uuid}/",
    "policies_password_expiry_list",
    "policies_password_expiry_create",
    "policies_password_expiry_retrieve",
    "policies_password_expiry_update",
    "policies_password_expiry_partial_update",
    "policies_password_expiry_destroy"
);
policy_type!(
    expression,
    "expressionpolicy",
    "/api/v3/policies/expression/",
    "/api/v3/policies/expression/{policy_uuid}/",
    "policies_expression_list",
    "policies_expression_create",
    "policies_expression_retrieve",
    "policies_expression_update",
    "policies_expression_partial_update",
    "policies_expression_destroy"
);
policy_type!(
    password,
    "passwordpolicy",
    "/api/v3/policies/password/",
    "/api/v3/policies/password/{policy_uuid}/",
    "policies_password_list",
    "policies_password_create",
    "policies_password_retrieve",
    "policies_password_update",
    "policies_password_partial_update",
    "policies_password_destroy"
);
policy_type!(
    reputation,
    "reputationpolicy",
    "/api/v3/policies/reputation/",
    "/api/v3/policies/reputation/{policy_uuid}/",
    "policies_reputation_list",
    "policies_reputation_create",
    "policies_reputation_retrieve",
    "policies_reputation_update",
    "policies_reputation_partial_update",
    "policies_reputation_destroy"
);

// ------------------------------------------------------------------------ policies/bindings/

/// What a binding's `target` names: a flow's or stage binding's own uuid is taken to mean its
/// policy binding model (authentik blueprints write `target: !KeyOf flow`, whose pk is the
/// flow's uuid while bindings point at its `pbm_uuid`).
pub(crate) async fn resolve_target(store: &Store, target: Uuid) -> ApiResult<Uuid> {
    match store.find_flow(target).await {
        Ok(f) => return Ok(f.pbm_uuid),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    match store.find_flow_binding(target).await {
        Ok(b) => Ok(b.pbm_uuid),
        Err(StoreError::NotFound) => Ok(target),
        Err(e) => Err(e.into()),
    }
}

async fn apply_binding(
    store: &Store,
    mut b: PolicyBinding,
    r: PolicyBindingRequest,
    partial: bool,
) -> ApiResult<PolicyBinding> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[("target", r.target.is_some()), ("order", r.order.is_some())],
        );
    }
    if r.timeout.is_some_and(|t| t < 0) {
        errors.add(
            "timeout",
            "Ensure this value is greater than or equal to 0.",
        );
    }
    check(errors)?;
    if let Some(v) = r.policy {
        b.policy = v;
    }
    if let Some(v) = r.group {
        b.group = v;
    }
    if let Some(v) = r.user {
        b.user = v;
    }
    let set = [b.policy.is_some(), b.group.is_some(), b.user.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if set != 1 {
        return Err(ApiError::field(
            "non_field_errors",
            "Only one of 'policy', 'group' or 'user' can be set.",
        ));
    }
    if let Some(v) = r.target {
        b.target = resolve_target(store, v).await?;
    }
    if let Some(v) = r.negate {
        b.negate = v;
    }
    if let Some(v) = r.enabled {
        b.enabled = v;
    }
    if let Some(v) = r.order {
        b.order = v;
    }
    if let Some(v) = r.timeout {
        b.timeout = v;
    }
    if let Some(v) = r.failure_result {
        b.failure_result = v;
    }
    Ok(b)
}

/// Creates a policy binding from a request, validated as the API validates it.
pub(crate) async fn create_binding(
    store: &Store,
    actor: &Actor,
    r: PolicyBindingRequest,
) -> ApiResult<PolicyBinding> {
    let b = apply_binding(store, PolicyBinding::new(Uuid::nil(), 0), r, false).await?;
    Ok(store.create_policy_binding(b, actor).await?)
}

/// Changes a policy binding from a request (`partial` as PATCH).
pub(crate) async fn update_binding(
    store: &Store,
    actor: &Actor,
    existing: PolicyBinding,
    r: PolicyBindingRequest,
    partial: bool,
) -> ApiResult<PolicyBinding> {
    let uuid = existing.uuid;
    let b = apply_binding(store, existing, r, partial).await?;
    Ok(store.update_policy_binding(uuid, b, actor).await?)
}

/// A policy binding as the API shows it, with what it binds.
pub(crate) async fn binding_serializer(
    state: &AppState,
    b: &PolicyBinding,
) -> ApiResult<PolicyBindingSerializer> {
    let store = &state.store;
    let policy_obj = match b.policy {
        Some(p) => Some(policy_serializer(store, &store.find_policy(p).await?, false).await?),
        None => None,
    };
    let group_obj = match b.group {
        Some(g) => Some(PartialGroup::from(&store.find_group(g).await?.group)),
        None => None,
    };
    let user_obj = match b.user {
        Some(u) => {
            let u = store.find_user(u).await?.user;
            Some(PartialUser {
                pk: u.pk,
                username: u.username.clone(),
                name: u.name.clone(),
                is_active: u.is_active,
                last_login: u.last_login.map(dt),
                email: u.email.clone(),
                attributes: u.attributes.clone(),
                uid: state.user_uid(u.pk),
            })
        }
        None => None,
    };
    Ok(PolicyBindingSerializer {
        pk: b.uuid,
        policy: b.policy,
        group: b.group,
        user: b.user,
        policy_obj,
        group_obj,
        user_obj,
        target: b.target,
        negate: b.negate,
        enabled: b.enabled,
        order: b.order,
        timeout: b.timeout,
        failure_result: b.failure_result,
        expires: None,
        expiring: false,
    })
}

#[utoipa::path(get, path = "/api/v3/policies/bindings/", tag = "policies", operation_id = "policies_bindings_list",
    params(("target" = Option<Uuid>, Query), ("target_in" = Option<Vec<Uuid>>, Query), ("policy" = Option<Uuid>, Query),
        ("group" = Option<Uuid>, Query), ("user" = Option<i32>, Query), ("enabled" = Option<bool>, Query),
        ("order" = Option<i32>, Query), ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedPolicyBindingList), (status = 403)))]
pub async fn bindings_list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedPolicyBindingList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let filter = PolicyBindingFilter {
        target: query_uuid(&q, "target")?,
        policy: query_uuid(&q, "policy")?,
        group: query_uuid(&q, "group")?,
        user: q.int("user")?,
        enabled: q.bool("enabled")?,
        order: q.int("order")?,
    };
    // `target_in` (comma-separated, or repeated): bindings of any of these targets.
    let mut targets_in = Vec::new();
    for v in q.get_all("target_in") {
        for part in v.split(',').filter(|p| !p.trim().is_empty()) {
            targets_in.push(
                part.trim()
                    .parse::<Uuid>()
                    .map_err(|_| ApiError::field("target_in", "Must be a valid UUID."))?,
            );
        }
    }
    let (items, count) = if targets_in.is_empty() {
        let page = state.store.list_policy_bindings(&filter, &lq).await?;
        (page.items, page.count)
    } else {
        if targets_in.len() > 100 {
            return Err(ApiError::field("target_in", "Too many targets."));
        }
        let mut all = Vec::new();
        for t in targets_in {
            if filter.target.is_some_and(|ft| ft != t) {
                continue;
            }
            let f = PolicyBindingFilter {
                target: Some(t),
                ..filter.clone()
            };
            all.extend(
                state
                    .store
                    .list_policy_bindings(&f, &everything())
                    .await?
                    .items,
            );
        }
        all.sort_by_key(|b| (b.order, b.uuid));
        if lq.ordering.descending {
            all.reverse();
        }
        let count = all.len() as u64;
        let skip = usize::try_from((lq.page.page - 1).saturating_mul(lq.page.page_size))
            .unwrap_or(usize::MAX);
        let take = usize::try_from(lq.page.page_size).unwrap_or(usize::MAX);
        (all.into_iter().skip(skip).take(take).collect(), count)
    };
    check_page(&lq.page, count)?;
    let mut results = Vec::with_capacity(items.len());
    for b in &items {
        results.push(binding_serializer(&state, b).await?);
    }
    Ok(Json(PaginatedPolicyBindingList::new(
        &lq.page, count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/policies/bindings/", tag = "policies", operation_id = "policies_bindings_create",
    request_body = PolicyBindingRequest, responses((status = 201, body = PolicyBindingSerializer), (status = 400), (status = 403)))]
pub async fn bindings_create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<PolicyBindingRequest>,
) -> ApiResult<(StatusCode, Json<PolicyBindingSerializer>)> {
    auth.require_superuser()?;
    let b = create_binding(&state.store, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(binding_serializer(&state, &b).await?),
    ))
}

#[utoipa::path(get, path = "/api/v3/policies/bindings/{policy_binding_uuid}/", tag = "policies", operation_id = "policies_bindings_retrieve",
    params(("policy_binding_uuid" = Uuid, Path)), responses((status = 200, body = PolicyBindingSerializer), (status = 403), (status = 404)))]
pub async fn bindings_retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicyBindingSerializer>> {
    auth.require_superuser()?;
    let b = state.store.find_policy_binding(path_id(&id)?).await?;
    Ok(Json(binding_serializer(&state, &b).await?))
}

async fn bindings_update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: PolicyBindingRequest,
    partial: bool,
) -> ApiResult<Json<PolicyBindingSerializer>> {
    auth.require_superuser()?;
    let existing = state.store.find_policy_binding(path_id(id)?).await?;
    let b = update_binding(&state.store, &auth.actor(), existing, r, partial).await?;
    Ok(Json(binding_serializer(state, &b).await?))
}

#[utoipa::path(put, path = "/api/v3/policies/bindings/{policy_binding_uuid}/", tag = "policies", operation_id = "policies_bindings_update",
    params(("policy_binding_uuid" = Uuid, Path)), request_body = PolicyBindingRequest,
    responses((status = 200, body = PolicyBindingSerializer), (status = 400), (status = 404)))]
pub async fn bindings_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PolicyBindingRequest>,
) -> ApiResult<Json<PolicyBindingSerializer>> {
    bindings_update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/policies/bindings/{policy_binding_uuid}/", tag = "policies", operation_id = "policies_bindings_partial_update",
    params(("policy_binding_uuid" = Uuid, Path)), request_body = PolicyBindingRequest,
    responses((status = 200, body = PolicyBindingSerializer), (status = 400), (status = 404)))]
pub async fn bindings_partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PolicyBindingRequest>,
) -> ApiResult<Json<PolicyBindingSerializer>> {
    bindings_update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/policies/bindings/{policy_binding_uuid}/", tag = "policies", operation_id = "policies_bindings_destroy",
    params(("policy_binding_uuid" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn bindings_destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let uuid: Uuid = path_id(&id)?;
    state
        .store
        .delete_policy_binding(uuid, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds every policy route to the API router.
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
        .routes(routes!(all_retrieve, all_destroy))
        .routes(routes!(all_test))
        .routes(routes!(bindings_list, bindings_create))
        .routes(routes!(
            bindings_retrieve,
            bindings_update,
            bindings_partial_update,
            bindings_destroy
        ));
    typed_routes!(
        r,
        dummy,
        event_matcher,
        password_expiry,
        expression,
        password,
        reputation
    )
}
