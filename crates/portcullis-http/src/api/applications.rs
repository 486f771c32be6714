//! `core/applications/`, looked up by slug. Any authenticated user may read; only superusers
//! write. (Per-user filtering by policy arrives with the policy engine.)

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{Application, ApplicationPatch, FieldErrors, PolicyEngineMode, validate};

use super::{check, path_key, require};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{ApplicationRequest, ApplicationSerializer, PaginatedApplicationList};

/// The provider an application names must exist (its uniqueness is the store's: one provider,
/// one application).
async fn check_provider(
    store: &portcullis_store::Store,
    r: &ApplicationRequest,
    errors: &mut FieldErrors,
) -> ApiResult<()> {
    if let Some(Some(pk)) = r.provider {
        match store.find_provider(pk).await {
            Ok(_) => {}
            Err(portcullis_store::StoreError::NotFound) => {
                errors.add(
                    "provider",
                    format!("Invalid pk \"{pk}\" - object does not exist."),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn validate_request(r: &ApplicationRequest, errors: &mut FieldErrors) {
    if let Some(v) = &r.name {
        validate::text(errors, "name", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.slug {
        validate::slug(errors, "slug", v);
    }
    if let Some(v) = &r.meta_launch_url {
        validate::url(errors, "meta_launch_url", v);
    }
    for (field, v) in [
        ("meta_description", &r.meta_description),
        ("meta_publisher", &r.meta_publisher),
        ("group", &r.group),
        ("meta_icon", &r.meta_icon),
    ] {
        if let Some(v) = v {
            validate::text(errors, field, v, validate::TEXT_MAX, true);
        }
    }
    if r.backchannel_providers
        .as_ref()
        .is_some_and(|b| !b.is_empty())
    {
        // Backchannel providers (SCIM, RAC, ...) arrive with their own issues.
        errors.add(
            "backchannel_providers",
            "Invalid pk - object does not exist.",
        );
    }
}

#[utoipa::path(get, path = "/api/v3/core/applications/", tag = "core", operation_id = "core_applications_list",
    params(("name" = Option<String>, Query), ("slug" = Option<String>, Query), ("group" = Option<String>, Query), ("search" = Option<String>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedApplicationList)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedApplicationList>> {
    let lq = list_query(&q)?;
    let filter = portcullis_store::ApplicationFilter {
        name: q.string("name"),
        slug: q.string("slug"),
        group: q.string("group"),
        meta_publisher: q.string("meta_publisher"),
        provider: None,
    };
    let page = state.store.list_applications(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let results = page.items.iter().map(ApplicationSerializer::from).collect();
    Ok(Json(PaginatedApplicationList::new(
        &lq.page, page.count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/core/applications/", tag = "core", operation_id = "core_applications_create",
    request_body = ApplicationRequest, responses((status = 201, body = ApplicationSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<ApplicationRequest>,
) -> ApiResult<(StatusCode, Json<ApplicationSerializer>)> {
    auth.require_superuser()?;
    let created = create_application(&state.store, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApplicationSerializer::from(&created)),
    ))
}

/// Creates an application from a request, validated as the API validates it.
pub(crate) async fn create_application(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    r: ApplicationRequest,
) -> ApiResult<Application> {
    let mut errors = FieldErrors::new();
    require(
        &mut errors,
        &[("name", r.name.is_some()), ("slug", r.slug.is_some())],
    );
    validate_request(&r, &mut errors);
    check_provider(store, &r, &mut errors).await?;
    check(errors)?;
    let app = Application {
        uuid: uuid::Uuid::nil(),
        name: r.name.unwrap_or_default(),
        slug: r.slug.unwrap_or_default(),
        provider: r.provider.flatten(),
        group: r.group.unwrap_or_default(),
        meta_launch_url: r.meta_launch_url.unwrap_or_default(),
        meta_description: r.meta_description.unwrap_or_default(),
        meta_publisher: r.meta_publisher.unwrap_or_default(),
        meta_icon: r.meta_icon.filter(|i| !i.is_empty()),
        policy_engine_mode: r.policy_engine_mode.unwrap_or(PolicyEngineMode::Any),
        open_in_new_tab: r.open_in_new_tab.unwrap_or(false),
        meta_hide: r.meta_hide.unwrap_or(false),
    };
    Ok(store.create_application(app, actor).await?)
}

/// Changes an application from a request (`partial` as PATCH), validated as the API does.
pub(crate) async fn update_application(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    slug: &str,
    r: ApplicationRequest,
    partial: bool,
) -> ApiResult<Application> {
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[("name", r.name.is_some()), ("slug", r.slug.is_some())],
        );
    }
    validate_request(&r, &mut errors);
    check_provider(store, &r, &mut errors).await?;
    check(errors)?;
    let patch = ApplicationPatch {
        name: r.name,
        slug: r.slug,
        provider: r.provider,
        group: r.group,
        meta_launch_url: r.meta_launch_url,
        meta_description: r.meta_description,
        meta_publisher: r.meta_publisher,
        policy_engine_mode: r.policy_engine_mode,
        open_in_new_tab: r.open_in_new_tab,
        meta_hide: r.meta_hide,
        meta_icon: r.meta_icon.map(|i| Some(i).filter(|i| !i.is_empty())),
    };
    Ok(store.update_application(slug, patch, actor).await?)
}

#[utoipa::path(get, path = "/api/v3/core/applications/{slug}/", tag = "core", operation_id = "core_applications_retrieve",
    params(("slug" = String, Path)), responses((status = 200, body = ApplicationSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    _auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<Json<ApplicationSerializer>> {
    Ok(Json(ApplicationSerializer::from(
        &state.store.find_application(path_key(&slug)?).await?,
    )))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    slug: &str,
    r: ApplicationRequest,
    partial: bool,
) -> ApiResult<Json<ApplicationSerializer>> {
    auth.require_superuser()?;
    state.store.find_application(path_key(slug)?).await?;
    let a = update_application(&state.store, &auth.actor(), slug, r, partial).await?;
    Ok(Json(ApplicationSerializer::from(&a)))
}

#[utoipa::path(put, path = "/api/v3/core/applications/{slug}/", tag = "core", operation_id = "core_applications_update",
    params(("slug" = String, Path)), request_body = ApplicationRequest, responses((status = 200, body = ApplicationSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(r): ApiJson<ApplicationRequest>,
) -> ApiResult<Json<ApplicationSerializer>> {
    update_inner(&state, &auth, &slug, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/core/applications/{slug}/", tag = "core", operation_id = "core_applications_partial_update",
    params(("slug" = String, Path)), request_body = ApplicationRequest, responses((status = 200, body = ApplicationSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
    ApiJson(r): ApiJson<ApplicationRequest>,
) -> ApiResult<Json<ApplicationSerializer>> {
    update_inner(&state, &auth, &slug, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/core/applications/{slug}/", tag = "core", operation_id = "core_applications_destroy",
    params(("slug" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    state
        .store
        .delete_application(path_key(&slug)?, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether a user may access the application: its policy bindings (policies, groups, users) in
/// the application's engine mode, as authentik's `check_access`. `for_user` (superusers only)
/// checks another user; without it, the caller.
#[utoipa::path(get, path = "/api/v3/core/applications/{slug}/check_access/", tag = "core",
    operation_id = "core_applications_check_access_retrieve",
    params(("slug" = String, Path), ("for_user" = Option<i32>, Query)),
    responses((status = 200, body = crate::serializers::PolicyTestResult), (status = 400), (status = 403), (status = 404)))]
pub async fn check_access(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(slug): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<crate::serializers::PolicyTestResult>> {
    let app = state.store.find_application(&slug).await?;
    let user = match q.get("for_user") {
        None | Some("") => auth.user.clone(),
        Some(v) => {
            auth.require_superuser()?;
            let pk: i32 = v.parse().map_err(|_| {
                crate::error::ApiError::field("for_user", "A valid integer is required.")
            })?;
            match state.store.find_user(pk).await {
                Ok(u) => u,
                Err(portcullis_store::StoreError::NotFound) => {
                    return Err(crate::error::ApiError::field(
                        "for_user",
                        format!("Invalid pk \"{pk}\" - object does not exist."),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let req = portcullis_policy::PolicyRequest::new(portcullis_policy::PolicyUser::from_user(
        &user.user,
        &user.groups,
    ));
    let actor = portcullis_core::Actor {
        user: Some(portcullis_core::EventUser {
            pk: auth.user.user.pk,
            email: auth.user.user.email.clone(),
            username: auth.user.user.username.clone(),
        }),
        client_ip: auth.client_ip.clone(),
        brand: None,
    };
    let result = portcullis_flow::policies::evaluate_target(
        &state.flows.policies,
        app.uuid,
        app.policy_engine_mode,
        &req,
        &portcullis_policy::PolicyCache::new(),
        &actor,
    )
    .await?;
    Ok(Json(crate::serializers::PolicyTestResult {
        passing: result.passing,
        messages: result.messages,
        log_messages: Vec::new(),
    }))
}
