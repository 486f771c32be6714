//! `core/brands/`: superusers manage brands; `current/` is public and answers with the brand
//! that matches the request's host.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use portcullis_core::{Brand, FieldErrors, validate};
use uuid::Uuid;

use super::{check, no_nul_in_json, path_id, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{BrandRequest, BrandSerializer, CurrentBrand, PaginatedBrandList};

fn validate_request(r: &BrandRequest, errors: &mut FieldErrors) {
    if let Some(d) = &r.domain {
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
        if !ok {
            errors.add("domain", "Enter a valid domain.");
        }
    }
    for (field, v, blank) in [
        ("branding_title", &r.branding_title, false),
        ("branding_logo", &r.branding_logo, false),
        ("branding_favicon", &r.branding_favicon, false),
        (
            "branding_default_flow_background",
            &r.branding_default_flow_background,
            false,
        ),
        ("branding_map_tiles", &r.branding_map_tiles, true),
    ] {
        if let Some(v) = v {
            validate::text(errors, field, v, 2000, blank);
        }
    }
    if let Some(css) = &r.branding_custom_css {
        if css.len() > 256 * 1024 {
            errors.add(
                "branding_custom_css",
                "Custom CSS is too large (at most 256 KiB).",
            );
        } else if css.contains('\0') {
            errors.add("branding_custom_css", "Null characters are not allowed.");
        }
    }
    if let Some(a) = &r.attributes {
        validate::attributes(errors, "attributes", a);
        no_nul_in_json(errors, "attributes", a);
    }
    // Not supported yet (the user-switch, lockdown and request flows, default applications):
    // refused rather than ignored.
    for (field, v) in [
        ("flow_user_switch", &r.flow_user_switch),
        ("flow_lockdown", &r.flow_lockdown),
        ("flow_request", &r.flow_request),
        ("default_application", &r.default_application),
    ] {
        if let Some(Some(_)) = v {
            errors.add(field, "Invalid pk - object does not exist.");
        }
    }
    if r.client_certificates
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        errors.add(
            "client_certificates",
            "Client certificates are not supported yet.",
        );
    }
}

/// Applies a request to a brand (missing fields keep their values).
fn apply(b: &mut Brand, r: BrandRequest) {
    if let Some(v) = r.domain {
        b.domain = v;
    }
    if let Some(v) = r.default {
        b.default = v;
    }
    if let Some(v) = r.branding_title {
        b.branding_title = v;
    }
    if let Some(v) = r.branding_logo {
        b.branding_logo = v;
    }
    if let Some(v) = r.branding_favicon {
        b.branding_favicon = v;
    }
    if let Some(v) = r.branding_custom_css {
        b.branding_custom_css = v;
    }
    if let Some(v) = r.branding_default_flow_background {
        b.branding_default_flow_background = v;
    }
    if let Some(v) = r.web_certificate {
        b.web_certificate = v;
    }
    if let Some(v) = r.attributes {
        b.attributes = v;
    }
    for (slot, v) in [
        (&mut b.flows.authentication, r.flow_authentication),
        (&mut b.flows.invalidation, r.flow_invalidation),
        (&mut b.flows.recovery, r.flow_recovery),
        (&mut b.flows.unenrollment, r.flow_unenrollment),
        (&mut b.flows.user_settings, r.flow_user_settings),
        (&mut b.flows.device_code, r.flow_device_code),
    ] {
        if let Some(v) = v {
            *slot = v;
        }
    }
    if let Some(v) = r.branding_map_tiles
        && let Some(obj) = b.attributes.as_object_mut()
    {
        if v.is_empty() {
            obj.remove("branding_map_tiles");
        } else {
            obj.insert("branding_map_tiles".into(), v.into());
        }
    }
}

/// The brand's flows must exist.
async fn check_flows(store: &portcullis_store::Store, r: &BrandRequest) -> ApiResult<()> {
    let mut errors = FieldErrors::new();
    for (field, v) in [
        ("flow_authentication", r.flow_authentication),
        ("flow_invalidation", r.flow_invalidation),
        ("flow_recovery", r.flow_recovery),
        ("flow_unenrollment", r.flow_unenrollment),
        ("flow_user_settings", r.flow_user_settings),
        ("flow_device_code", r.flow_device_code),
    ] {
        if let Some(Some(uuid)) = v {
            match store.find_flow(uuid).await {
                Ok(_) => {}
                Err(portcullis_store::StoreError::NotFound) => {
                    errors.add(field, "Invalid pk - object does not exist.");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    check(errors)
}

async fn check_certificate(store: &portcullis_store::Store, r: &BrandRequest) -> ApiResult<()> {
    if let Some(Some(kp)) = r.web_certificate {
        match store.find_certificate_keypair(kp).await {
            Ok(_) => {}
            Err(portcullis_store::StoreError::NotFound) => {
                return Err(ApiError::field(
                    "web_certificate",
                    "Invalid pk - object does not exist.",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v3/core/brands/", tag = "core", operation_id = "core_brands_list",
    params(("domain" = Option<String>, Query), ("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
        ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedBrandList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedBrandList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let page = state.store.list_brands(q.get("domain"), &lq).await?;
    check_page(&lq.page, page.count)?;
    Ok(Json(PaginatedBrandList::new(
        &lq.page,
        page.count,
        page.items.iter().map(BrandSerializer::from).collect(),
    )))
}

#[utoipa::path(post, path = "/api/v3/core/brands/", tag = "core", operation_id = "core_brands_create",
    request_body = BrandRequest, responses((status = 201, body = BrandSerializer), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<BrandRequest>,
) -> ApiResult<(StatusCode, Json<BrandSerializer>)> {
    auth.require_superuser()?;
    let created = create_brand(&state.store, &auth.actor(), r).await?;
    Ok((StatusCode::CREATED, Json(BrandSerializer::from(&created))))
}

/// Creates a brand from a request, validated as the API validates it.
pub(crate) async fn create_brand(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    r: BrandRequest,
) -> ApiResult<Brand> {
    let mut errors = FieldErrors::new();
    require(&mut errors, &[("domain", r.domain.is_some())]);
    validate_request(&r, &mut errors);
    check(errors)?;
    check_certificate(store, &r).await?;
    check_flows(store, &r).await?;
    let mut b = Brand::fallback();
    b.uuid = Uuid::nil();
    apply(&mut b, r);
    Ok(store.create_brand(b, actor).await?)
}

/// Changes a brand from a request (`partial` as PATCH), validated as the API validates it.
pub(crate) async fn update_brand(
    store: &portcullis_store::Store,
    actor: &portcullis_core::Actor,
    uuid: Uuid,
    r: BrandRequest,
    partial: bool,
) -> ApiResult<Brand> {
    let mut b = store.find_brand(uuid).await?;
    let mut errors = FieldErrors::new();
    if !partial {
        require(&mut errors, &[("domain", r.domain.is_some())]);
    }
    validate_request(&r, &mut errors);
    check(errors)?;
    check_certificate(store, &r).await?;
    check_flows(store, &r).await?;
    apply(&mut b, r);
    Ok(store.update_brand(uuid, b, actor).await?)
}

#[utoipa::path(get, path = "/api/v3/core/brands/{brand_uuid}/", tag = "core", operation_id = "core_brands_retrieve",
    params(("brand_uuid" = Uuid, Path)), responses((status = 200, body = BrandSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<BrandSerializer>> {
    auth.require_superuser()?;
    Ok(Json(BrandSerializer::from(
        &state.store.find_brand(path_id::<Uuid>(&id)?).await?,
    )))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: BrandRequest,
    partial: bool,
) -> ApiResult<Json<BrandSerializer>> {
    auth.require_superuser()?;
    let uuid = path_id::<Uuid>(id)?;
    let updated = update_brand(&state.store, &auth.actor(), uuid, r, partial).await?;
    Ok(Json(BrandSerializer::from(&updated)))
}

#[utoipa::path(put, path = "/api/v3/core/brands/{brand_uuid}/", tag = "core", operation_id = "core_brands_update",
    params(("brand_uuid" = Uuid, Path)), request_body = BrandRequest, responses((status = 200, body = BrandSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<BrandRequest>,
) -> ApiResult<Json<BrandSerializer>> {
    update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/core/brands/{brand_uuid}/", tag = "core", operation_id = "core_brands_partial_update",
    params(("brand_uuid" = Uuid, Path)), request_body = BrandRequest, responses((status = 200, body = BrandSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<BrandRequest>,
) -> ApiResult<Json<BrandSerializer>> {
    update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/core/brands/{brand_uuid}/", tag = "core", operation_id = "core_brands_destroy",
    params(("brand_uuid" = Uuid, Path)), responses((status = 204), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    state
        .store
        .delete_brand(path_id::<Uuid>(&id)?, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The brand for a host: the longest matching domain, else the default brand, else the
/// built-in fallback.
pub async fn brand_for_host(state: &AppState, host: &str) -> ApiResult<Brand> {
    let cache = &state.flows.policies.cache.brands;
    let generation = state.store.changes();
    let brands = match cache.get(&(), generation) {
        Some(b) => b,
        None => {
            let b = state.store.all_brands().await?;
            cache.put((), generation, b.clone());
            b
        }
    };
    let matched = brands
        .iter()
        .filter(|b| b.matches_host(host))
        .max_by_key(|b| b.domain.len());
    Ok(matched
        .or_else(|| brands.iter().find(|b| b.default))
        .cloned()
        .unwrap_or_else(Brand::fallback))
}

#[utoipa::path(get, path = "/api/v3/core/brands/current/", tag = "core", operation_id = "core_brands_current_retrieve",
    responses((status = 200, body = CurrentBrand)))]
pub async fn current(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    _q: QueryParams,
) -> ApiResult<Json<CurrentBrand>> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let brand = brand_for_host(&state, host).await?;
    let mut current = CurrentBrand::from(&brand);
    // The flows' slugs; a flow deleted meanwhile is left out.
    for (slot, uuid) in [
        (&mut current.flow_authentication, brand.flows.authentication),
        (&mut current.flow_invalidation, brand.flows.invalidation),
        (&mut current.flow_recovery, brand.flows.recovery),
        (&mut current.flow_unenrollment, brand.flows.unenrollment),
        (&mut current.flow_user_settings, brand.flows.user_settings),
        (&mut current.flow_device_code, brand.flows.device_code),
    ] {
        if let Some(uuid) = uuid {
            match state.store.find_flow(uuid).await {
                Ok(f) => *slot = Some(f.slug),
                Err(portcullis_store::StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Json(current))
}
