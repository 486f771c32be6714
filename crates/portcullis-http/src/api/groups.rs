//! `core/groups/`: superusers only. Includes `add_user/` and `remove_user/`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{FieldErrors, GroupPatch, NewGroup, validate};
use portcullis_store::{GroupFilter, ListQuery, StoreError};
use uuid::Uuid;

use super::{check, no_nul_in_json, path_id, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{
    GroupIncludes, GroupRequest, GroupSerializer, PaginatedGroupList, UserAccountRequest,
};

fn includes(q: &QueryParams) -> ApiResult<GroupIncludes> {
    Ok(GroupIncludes {
        users: q.bool("include_users")?.unwrap_or(true),
        parents: q.bool("include_parents")?.unwrap_or(false),
        children: q.bool("include_children")?.unwrap_or(false),
        inherited_roles: q.bool("include_inherited_roles")?.unwrap_or(false),
    })
}

fn validate_request(r: &GroupRequest, errors: &mut FieldErrors) {
    if let Some(n) = &r.name {
        validate::text(errors, "name", n, validate::NAME_MAX, false);
    }
    if let Some(a) = &r.attributes {
        validate::attributes(errors, "attributes", a);
        no_nul_in_json(errors, "attributes", a);
    }
    if r.parents.as_ref().is_some_and(|p| p.len() > 1) {
        errors.add(
            "parents",
            "Portcullis supports one parent per group for now.",
        );
    }
    if r.roles.as_ref().is_some_and(|r| !r.is_empty()) {
        errors.add("roles", "Invalid pk - object does not exist.");
    }
    if r.users.as_ref().is_some_and(|u| u.len() > 10_000) {
        errors.add("users", "Too many users in one request.");
    }
}

pub(crate) async fn serialize(
    state: &AppState,
    g: &portcullis_store::GroupWithMembers,
    inc: GroupIncludes,
) -> ApiResult<GroupSerializer> {
    let children = state.store.list_group_children(g.group.uuid).await?;
    Ok(GroupSerializer::new(state, g, &children, inc))
}

#[utoipa::path(get, path = "/api/v3/core/groups/", tag = "core", operation_id = "core_groups_list",
    params(("name" = Option<String>, Query), ("is_superuser" = Option<bool>, Query), ("members_by_pk" = Option<Vec<i32>>, Query),
        ("members_by_username" = Option<Vec<String>>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
        ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedGroupList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedGroupList>> {
    auth.require_superuser()?;
    let lq: ListQuery = list_query(&q)?;
    let filter = GroupFilter {
        name: q.string("name"),
        is_superuser: q.bool("is_superuser")?,
        members_by_pk: q.ints("members_by_pk")?,
        members_by_username: q
            .get_all("members_by_username")
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let page = state.store.list_groups(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let inc = includes(&q)?;
    let mut results = Vec::with_capacity(page.items.len());
    for g in &page.items {
        results.push(serialize(&state, g, inc).await?);
    }
    Ok(Json(PaginatedGroupList::new(&lq.page, page.count, results)))
}

#[utoipa::path(post, path = "/api/v3/core/groups/", tag = "core", operation_id = "core_groups_create",
    request_body = GroupRequest, responses((status = 201, body = GroupSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<GroupRequest>,
) -> ApiResult<(StatusCode, Json<GroupSerializer>)> {
    auth.require_superuser()?;
    let g = create_group(&state.store, &auth.actor(), r).await?;
    let inc = GroupIncludes {
        users: true,
        parents: false,
        children: false,
        inherited_roles: false,
    };
    Ok((StatusCode::CREATED, Json(serialize(&state, &g, inc).await?)))
}

/// Creates a group from a request, validated as the API validates it.
pub(crate) async fn create_group(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    r: GroupRequest,
) -> ApiResult<portcullis_store::GroupWithMembers> {
    let mut errors = FieldErrors::new();
    require(&mut errors, &[("name", r.name.is_some())]);
    validate_request(&r, &mut errors);
    check(errors)?;
    Ok(store
        .create_group(
            NewGroup {
                name: r.name.unwrap_or_default(),
                is_superuser: r.is_superuser.unwrap_or(false),
                parent: r.parents.and_then(|p| p.into_iter().next()),
                attributes: r.attributes.unwrap_or_else(|| serde_json::json!({})),
                users: r.users.unwrap_or_default(),
            },
            actor,
        )
        .await?)
}

/// Changes a group from a request (`partial` as PATCH), validated as the API validates it.
pub(crate) async fn update_group(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    uuid: Uuid,
    r: GroupRequest,
    partial: bool,
) -> ApiResult<portcullis_store::GroupWithMembers> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(&mut errors, &[("name", r.name.is_some())]);
    }
    validate_request(&r, &mut errors);
    check(errors)?;
    let patch = GroupPatch {
        name: r.name,
        is_superuser: r.is_superuser,
        parent: r.parents.map(|p| p.into_iter().next()),
        attributes: r.attributes,
        users: r.users,
    };
    Ok(store.update_group(uuid, patch, actor).await?)
}

#[utoipa::path(get, path = "/api/v3/core/groups/{group_uuid}/", tag = "core", operation_id = "core_groups_retrieve",
    params(("group_uuid" = Uuid, Path)), responses((status = 200, body = GroupSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<GroupSerializer>> {
    auth.require_superuser()?;
    let g = state.store.find_group(path_id::<Uuid>(&id)?).await?;
    Ok(Json(serialize(&state, &g, includes(&q)?).await?))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: GroupRequest,
    partial: bool,
) -> ApiResult<Json<GroupSerializer>> {
    auth.require_superuser()?;
    let uuid = path_id::<Uuid>(id)?;
    state.store.find_group(uuid).await?;
    let g = update_group(&state.store, &auth.actor(), uuid, r, partial).await?;
    let inc = GroupIncludes {
        users: true,
        parents: false,
        children: false,
        inherited_roles: false,
    };
    Ok(Json(serialize(state, &g, inc).await?))
}

#[utoipa::path(put, path = "/api/v3/core/groups/{group_uuid}/", tag = "core", operation_id = "core_groups_update",
    params(("group_uuid" = Uuid, Path)), request_body = GroupRequest, responses((status = 200, body = GroupSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<GroupRequest>,
) -> ApiResult<Json<GroupSerializer>> {
    update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/core/groups/{group_uuid}/", tag = "core", operation_id = "core_groups_partial_update",
    params(("group_uuid" = Uuid, Path)), request_body = GroupRequest, responses((status = 200, body = GroupSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<GroupRequest>,
) -> ApiResult<Json<GroupSerializer>> {
    update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/core/groups/{group_uuid}/", tag = "core", operation_id = "core_groups_destroy",
    params(("group_uuid" = Uuid, Path)), responses((status = 204), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    state
        .store
        .delete_group(path_id::<Uuid>(&id)?, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn membership(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: UserAccountRequest,
    add: bool,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let uuid = path_id::<Uuid>(id)?;
    let result = if add {
        state
            .store
            .add_user_to_group(uuid, r.pk, &auth.actor())
            .await
    } else {
        state
            .store
            .remove_user_from_group(uuid, r.pk, &auth.actor())
            .await
    };
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        // authentik answers an unknown user with 404, like an unknown group.
        Err(StoreError::InvalidReference { .. }) => Err(ApiError::NotFound),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v3/core/groups/{group_uuid}/add_user/", tag = "core", operation_id = "core_groups_add_user_create",
    params(("group_uuid" = Uuid, Path)), request_body = UserAccountRequest, responses((status = 204), (status = 404)))]
pub async fn add_user(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UserAccountRequest>,
) -> ApiResult<StatusCode> {
    membership(&state, &auth, &id, r, true).await
}

#[utoipa::path(post, path = "/api/v3/core/groups/{group_uuid}/remove_user/", tag = "core", operation_id = "core_groups_remove_user_create",
    params(("group_uuid" = Uuid, Path)), request_body = UserAccountRequest, responses((status = 204), (status = 404)))]
pub async fn remove_user(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UserAccountRequest>,
) -> ApiResult<StatusCode> {
    membership(&state, &auth, &id, r, false).await
}
