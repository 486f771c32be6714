//! `propertymappings/provider/scope/`: OAuth2 scope mappings (a scope name and the expression
//! that computes its claims), with authentik's fields. Superusers only.
//!
//! The expression is checked for syntax when saved (run by the policy crate's sandbox when a
//! token is issued); `scope_name` and `description` are the mapping's `config`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{Actor, FieldErrors, PropertyMapping, validate};
use portcullis_oauth::provider::SCOPE_MAPPING_KIND;
use portcullis_store::{ListQuery, PropertyMappingFilter, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check, path_id, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::nullable;

/// authentik's `ScopeMapping`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeMappingSerializer {
    pub pk: Uuid,
    pub managed: Option<String>,
    pub name: String,
    pub expression: String,
    pub component: String,
    pub verbose_name: String,
    pub verbose_name_plural: String,
    pub meta_model_name: String,
    pub scope_name: String,
    pub description: String,
}

/// authentik's `ScopeMappingRequest` (every field optional here: PATCH uses the same type).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ScopeMappingRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub managed: Option<Option<String>>,
    pub name: Option<String>,
    pub expression: Option<String>,
    pub scope_name: Option<String>,
    pub description: Option<String>,
}

crate::paginated!(PaginatedScopeMappingList, ScopeMappingSerializer);

/// The largest expression accepted (authentik sets none; this bounds what is stored and parsed).
const EXPRESSION_MAX: usize = 64 * 1024;

/// A scope mapping as the API shows it.
pub(crate) fn scope_mapping_serializer(m: &PropertyMapping) -> ScopeMappingSerializer {
    let s = |k: &str| {
        m.config
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    ScopeMappingSerializer {
        pk: m.uuid,
        managed: m.managed.clone(),
        name: m.name.clone(),
        expression: m.expression.clone(),
        component: "ak-property-mapping-provider-scope-form".to_owned(),
        verbose_name: "Scope Mapping".to_owned(),
        verbose_name_plural: "Scope Mappings".to_owned(),
        meta_model_name: "authentik_providers_oauth2.scopemapping".to_owned(),
        scope_name: s("scope_name"),
        description: s("description"),
    }
}

/// Applies a request to a mapping (`partial` as PATCH), validated as authentik validates it.
fn apply(
    existing: Option<&PropertyMapping>,
    r: ScopeMappingRequest,
    partial: bool,
) -> ApiResult<PropertyMapping> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("name", r.name.is_some()),
                ("expression", r.expression.is_some()),
                ("scope_name", r.scope_name.is_some()),
            ],
        );
    }
    if let Some(v) = &r.name {
        validate::text(&mut errors, "name", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.scope_name {
        validate::text(&mut errors, "scope_name", v, validate::NAME_MAX, false);
        if v.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            // RFC 6749 §3.3: a scope token is printable ASCII without space, '"' and '\'.
            errors.add(
                "scope_name",
                "A scope name cannot contain spaces, quotes or backslashes.",
            );
        }
    }
    if let Some(v) = &r.description {
        validate::text(&mut errors, "description", v, validate::TEXT_MAX, true);
    }
    if let Some(Some(v)) = &r.managed {
        validate::text(&mut errors, "managed", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.expression {
        if v.len() > EXPRESSION_MAX {
            errors.add(
                "expression",
                format!("Ensure this field has no more than {EXPRESSION_MAX} characters."),
            );
        } else if v.contains('\0') {
            errors.add("expression", "Null characters are not allowed.");
        } else if let Err(e) =
            portcullis_policy::ExpressionPolicy::new("scope mapping", v.as_str()).validate()
        {
            errors.add("expression", e.to_string());
        }
    }
    check(errors)?;
    let mut config = match existing.map(|m| &m.config) {
        Some(Value::Object(m)) => m.clone(),
        _ => match json!({"scope_name": "", "description": ""}) {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
    };
    if let Some(v) = r.scope_name {
        config.insert("scope_name".into(), Value::from(v));
    }
    if let Some(v) = r.description {
        config.insert("description".into(), Value::from(v));
    }
    Ok(PropertyMapping {
        uuid: existing.map_or(Uuid::nil(), |m| m.uuid),
        name: r
            .name
            .or_else(|| existing.map(|m| m.name.clone()))
            .unwrap_or_default(),
        managed: match r.managed {
            Some(v) => v,
            None => existing.and_then(|m| m.managed.clone()),
        },
        kind: SCOPE_MAPPING_KIND.to_owned(),
        expression: r
            .expression
            .or_else(|| existing.map(|m| m.expression.clone()))
            .unwrap_or_default(),
        config: Value::Object(config),
    })
}

/// Creates a scope mapping from a request, validated as the API validates it.
pub(crate) async fn create_scope_mapping(
    store: &Store,
    actor: &Actor,
    r: ScopeMappingRequest,
) -> ApiResult<PropertyMapping> {
    let m = apply(None, r, false)?;
    Ok(store.create_property_mapping(m, actor).await?)
}

/// Changes a scope mapping from a request (`partial` as PATCH).
pub(crate) async fn update_scope_mapping(
    store: &Store,
    actor: &Actor,
    existing: &PropertyMapping,
    r: ScopeMappingRequest,
    partial: bool,
) -> ApiResult<PropertyMapping> {
    let m = apply(Some(existing), r, partial)?;
    Ok(store
        .update_property_mapping(existing.uuid, m, actor)
        .await?)
}

/// The scope mapping with this uuid (another kind of mapping is "not found" here).
pub(crate) async fn find_scope_mapping(store: &Store, uuid: Uuid) -> ApiResult<PropertyMapping> {
    let m = store.find_property_mapping(uuid).await?;
    if m.kind == SCOPE_MAPPING_KIND {
        Ok(m)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(get, path = "/api/v3/propertymappings/provider/scope/", tag = "propertymappings", operation_id = "propertymappings_provider_scope_list",
    params(("name" = Option<String>, Query), ("scope_name" = Option<String>, Query), ("managed__isnull" = Option<bool>, Query),
        ("search" = Option<String>, Query), ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedScopeMappingList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedScopeMappingList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let managed_is_null = match q.string("managed__isnull").as_deref() {
        None | Some("") => None,
        Some("true" | "True" | "1") => Some(true),
        Some("false" | "False" | "0") => Some(false),
        Some(_) => {
            return Err(ApiError::field("managed__isnull", "Enter a valid boolean."));
        }
    };
    let filter = PropertyMappingFilter {
        name: q.string("name").filter(|n| !n.is_empty()),
        kinds: vec![SCOPE_MAPPING_KIND.to_owned()],
        managed_is_null,
    };
    // `scope_name` lives in the mapping's settings: filtered here, over every scope mapping
    // (a few dozen at most), then paged.
    let scope_name = q.string("scope_name").filter(|n| !n.is_empty());
    let (count, results) = match scope_name {
        None => {
            let page = state.store.list_property_mappings(&filter, &lq).await?;
            check_page(&lq.page, page.count)?;
            (
                page.count,
                page.items.iter().map(scope_mapping_serializer).collect(),
            )
        }
        Some(name) => {
            let all = ListQuery {
                page: super::everything().page,
                ..lq.clone()
            };
            let page = state.store.list_property_mappings(&filter, &all).await?;
            let matching: Vec<_> = page
                .items
                .iter()
                .filter(|m| m.config.get("scope_name").and_then(Value::as_str) == Some(&name))
                .collect();
            check_page(&lq.page, matching.len() as u64)?;
            let size = lq.page.page_size as usize;
            let start = (lq.page.page as usize)
                .saturating_sub(1)
                .saturating_mul(size);
            let results = matching
                .iter()
                .skip(start)
                .take(size)
                .map(|m| scope_mapping_serializer(m))
                .collect();
            (matching.len() as u64, results)
        }
    };
    Ok(Json(PaginatedScopeMappingList::new(
        &lq.page, count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/propertymappings/provider/scope/", tag = "propertymappings", operation_id = "propertymappings_provider_scope_create",
    request_body = ScopeMappingRequest, responses((status = 201, body = ScopeMappingSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<ScopeMappingRequest>,
) -> ApiResult<(StatusCode, Json<ScopeMappingSerializer>)> {
    auth.require_superuser()?;
    let m = create_scope_mapping(&state.store, &auth.actor(), r).await?;
    Ok((StatusCode::CREATED, Json(scope_mapping_serializer(&m))))
}

#[utoipa::path(get, path = "/api/v3/propertymappings/provider/scope/{pm_uuid}/", tag = "propertymappings", operation_id = "propertymappings_provider_scope_retrieve",
    params(("pm_uuid" = Uuid, Path)), responses((status = 200, body = ScopeMappingSerializer), (status = 403), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ScopeMappingSerializer>> {
    auth.require_superuser()?;
    let m = find_scope_mapping(&state.store, path_id(&id)?).await?;
    Ok(Json(scope_mapping_serializer(&m)))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: ScopeMappingRequest,
    partial: bool,
) -> ApiResult<Json<ScopeMappingSerializer>> {
    auth.require_superuser()?;
    let existing = find_scope_mapping(&state.store, path_id(id)?).await?;
    let m = update_scope_mapping(&state.store, &auth.actor(), &existing, r, partial).await?;
    Ok(Json(scope_mapping_serializer(&m)))
}

#[utoipa::path(put, path = "/api/v3/propertymappings/provider/scope/{pm_uuid}/", tag = "propertymappings", operation_id = "propertymappings_provider_scope_update",
    params(("pm_uuid" = Uuid, Path)), request_body = ScopeMappingRequest, responses((status = 200, body = ScopeMappingSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ScopeMappingRequest>,
) -> ApiResult<Json<ScopeMappingSerializer>> {
    update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/propertymappings/provider/scope/{pm_uuid}/", tag = "propertymappings", operation_id = "propertymappings_provider_scope_partial_update",
    params(("pm_uuid" = Uuid, Path)), request_body = ScopeMappingRequest, responses((status = 200, body = ScopeMappingSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ScopeMappingRequest>,
) -> ApiResult<Json<ScopeMappingSerializer>> {
    update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/propertymappings/provider/scope/{pm_uuid}/", tag = "propertymappings", operation_id = "propertymappings_provider_scope_destroy",
    params(("pm_uuid" = Uuid, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let m = find_scope_mapping(&state.store, path_id(&id)?).await?;
    state
        .store
        .delete_property_mapping(m.uuid, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
