//! `core/users/`: list, create, retrieve, update, delete, `me/` and `set_password/`.
//! Superusers manage everyone; other users see only themselves and may change only their own
//! name, email and password.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{FieldErrors, NewUser, UserPatch, UserType, validate};
use portcullis_store::UserFilter;

use super::{check, no_nul_in_json, path_id, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{
    PaginatedUserList, SessionUser, UserPasswordSetRequest, UserRequest, UserSelf, UserSerializer,
};

/// Longest password accepted, to bound hashing work.
pub const MAX_PASSWORD_LEN: usize = 1024;

fn includes(q: &QueryParams) -> ApiResult<(bool, bool)> {
    Ok((
        q.bool("include_groups")?.unwrap_or(true),
        q.bool("include_roles")?.unwrap_or(true),
    ))
}

fn validate_request(r: &UserRequest, errors: &mut FieldErrors) {
    if let Some(v) = &r.username {
        validate::username(errors, "username", v);
    }
    if let Some(v) = &r.name {
        validate::text(errors, "name", v, validate::NAME_MAX, true);
    }
    if let Some(v) = &r.email {
        validate::email(errors, "email", v);
    }
    if let Some(v) = &r.path {
        validate::user_path(errors, "path", v);
    }
    if let Some(v) = &r.attributes {
        validate::attributes(errors, "attributes", v);
        no_nul_in_json(errors, "attributes", v);
    }
    if r.roles.as_ref().is_some_and(|r| !r.is_empty()) {
        errors.add("roles", "Invalid pk - object does not exist.");
    }
    if r.groups.as_ref().is_some_and(|g| g.len() > 1000) {
        errors.add("groups", "Too many groups.");
    }
}

#[utoipa::path(get, path = "/api/v3/core/users/", tag = "core", operation_id = "core_users_list",
    params(("username" = Option<String>, Query), ("email" = Option<String>, Query), ("is_active" = Option<bool>, Query),
        ("groups_by_name" = Option<Vec<String>>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
        ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedUserList), (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedUserList>> {
    let lq = list_query(&q)?;
    let mut types = Vec::new();
    for t in q.get_all("type") {
        types.push(UserType::parse(t).ok_or_else(|| {
            ApiError::field(
                "type",
                format!("Select a valid choice. {t} is not one of the available choices."),
            )
        })?);
    }
    let filter = UserFilter {
        pk: if auth.is_superuser() {
            q.int("pk")?
        } else {
            Some(auth.pk())
        },
        uuid: q.uuids("uuid")?.into_iter().next(),
        username: q.string("username"),
        email: q.string("email"),
        name: q.string("name"),
        is_active: q.bool("is_active")?,
        path: q.string("path"),
        path_startswith: q.string("path_startswith"),
        user_types: types,
        groups_by_name: q
            .get_all("groups_by_name")
            .into_iter()
            .map(str::to_owned)
            .collect(),
        groups_by_pk: q.uuids("groups_by_pk")?,
    };
    let page = state.store.list_users(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let (g, r) = includes(&q)?;
    let results = page
        .items
        .iter()
        .map(|u| UserSerializer::new(&state, u, g, r))
        .collect();
    Ok(Json(PaginatedUserList::new(&lq.page, page.count, results)))
}

#[utoipa::path(post, path = "/api/v3/core/users/", tag = "core", operation_id = "core_users_create",
    request_body = UserRequest, responses((status = 201, body = UserSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<UserRequest>,
) -> ApiResult<(StatusCode, Json<UserSerializer>)> {
    auth.require_superuser()?;
    let created = create_user(&state.store, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(UserSerializer::new(&state, &created, true, true)),
    ))
}

/// Creates a user from a request, validated as the API validates it (the API's create and
/// blueprints both come here).
pub(crate) async fn create_user(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    r: UserRequest,
) -> ApiResult<portcullis_store::UserWithGroups> {
    let mut errors = FieldErrors::new();
    require(
        &mut errors,
        &[
            ("username", r.username.is_some()),
            ("name", r.name.is_some()),
        ],
    );
    validate_request(&r, &mut errors);
    check(errors)?;
    let mut new = NewUser::named(r.username.as_deref().unwrap_or_default());
    new.name = r.name.unwrap_or_default();
    new.email = r.email.unwrap_or_default();
    new.is_active = r.is_active.unwrap_or(true);
    new.attributes = r.attributes.unwrap_or_else(|| serde_json::json!({}));
    if let Some(p) = r.path {
        new.path = p;
    }
    if let Some(t) = r.user_type {
        new.user_type = t;
    }
    new.groups = r.groups.unwrap_or_default();
    Ok(store.create_user(new, actor).await?)
}

/// Changes a user from a request (`partial` as PATCH), validated as the API validates it.
pub(crate) async fn update_user(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    id: i32,
    r: UserRequest,
    partial: bool,
) -> ApiResult<portcullis_store::UserWithGroups> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("username", r.username.is_some()),
                ("name", r.name.is_some()),
            ],
        );
    }
    validate_request(&r, &mut errors);
    check(errors)?;
    let patch = UserPatch {
        username: r.username,
        name: r.name,
        email: r.email,
        is_active: r.is_active,
        attributes: r.attributes,
        path: r.path,
        user_type: r.user_type,
        groups: r.groups,
    };
    Ok(store.update_user(id, patch, actor).await?)
}

/// Loads a user the caller may see: anyone for superusers, only themselves otherwise (others
/// are "not found", so ids cannot be probed).
async fn visible(
    state: &AppState,
    auth: &Auth,
    id: i32,
) -> ApiResult<portcullis_store::UserWithGroups> {
    if !auth.is_superuser() && id != auth.pk() {
        return Err(ApiError::NotFound);
    }
    Ok(state.store.find_user(id).await?)
}

#[utoipa::path(get, path = "/api/v3/core/users/{id}/", tag = "core", operation_id = "core_users_retrieve",
    params(("id" = i32, Path)), responses((status = 200, body = UserSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<UserSerializer>> {
    let id = path_id::<i32>(&id)?;
    let u = visible(&state, &auth, id).await?;
    let (g, r) = includes(&q)?;
    Ok(Json(UserSerializer::new(&state, &u, g, r)))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: i32,
    r: UserRequest,
    partial: bool,
) -> ApiResult<Json<UserSerializer>> {
    visible(state, auth, id).await?;
    if !auth.is_superuser() {
        // A user changing themselves may touch only harmless fields: never groups (that would
        // make anyone a superuser), activity, type, path, username or attributes.
        let forbidden = r.groups.is_some()
            || r.roles.is_some()
            || r.is_active.is_some()
            || r.user_type.is_some()
            || r.path.is_some()
            || r.attributes.is_some()
            || r.last_login.is_some()
            || r.username
                .as_ref()
                .is_some_and(|u| *u != auth.user.user.username);
        if forbidden {
            return Err(ApiError::Forbidden);
        }
    }
    let u = update_user(&state.store, &auth.actor(), id, r, partial).await?;
    Ok(Json(UserSerializer::new(state, &u, true, true)))
}

#[utoipa::path(put, path = "/api/v3/core/users/{id}/", tag = "core", operation_id = "core_users_update",
    params(("id" = i32, Path)), request_body = UserRequest, responses((status = 200, body = UserSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UserRequest>,
) -> ApiResult<Json<UserSerializer>> {
    update_inner(&state, &auth, path_id::<i32>(&id)?, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/core/users/{id}/", tag = "core", operation_id = "core_users_partial_update",
    params(("id" = i32, Path)), request_body = UserRequest, responses((status = 200, body = UserSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UserRequest>,
) -> ApiResult<Json<UserSerializer>> {
    update_inner(&state, &auth, path_id::<i32>(&id)?, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/core/users/{id}/", tag = "core", operation_id = "core_users_destroy",
    params(("id" = i32, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id::<i32>(&id)?;
    visible(&state, &auth, id).await?;
    auth.require_superuser()?;
    state.store.delete_user(id, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/core/users/me/", tag = "core", operation_id = "core_users_me_retrieve",
    responses((status = 200, body = SessionUser), (status = 401)))]
pub async fn me(State(state): State<Arc<AppState>>, auth: Auth) -> ApiResult<Json<SessionUser>> {
    Ok(Json(SessionUser {
        user: UserSelf::new(&state, &auth.user),
        users: vec![UserSelf::new(&state, &auth.user)],
    }))
}

#[utoipa::path(post, path = "/api/v3/core/users/{id}/set_password/", tag = "core", operation_id = "core_users_set_password_create",
    params(("id" = i32, Path)), request_body = UserPasswordSetRequest, responses((status = 204), (status = 400), (status = 404)))]
pub async fn set_password(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UserPasswordSetRequest>,
) -> ApiResult<StatusCode> {
    let id = path_id::<i32>(&id)?;
    visible(&state, &auth, id).await?;
    if r.password.is_empty() {
        return Err(ApiError::field("password", "This field may not be blank."));
    }
    if r.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::field(
            "password",
            format!("Ensure this field has no more than {MAX_PASSWORD_LEN} characters."),
        ));
    }
    let hash = state.hasher.hash(r.password).await?;
    state
        .store
        .set_password(id, Some(hash), &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
