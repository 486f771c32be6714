//! `providers/oauth2/` (OAuth2/OpenID Connect providers, authentik's fields and defaults) and
//! `providers/all/` (every provider, whatever its kind). Superusers only.
//!
//! An OAuth2 provider's own settings live in the provider's `config` in the shape
//! `portcullis_oauth::OAuth2Config` owns; the client secret in it is encrypted with the server's
//! secret box and shown decrypted to superusers, as authentik shows it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::{Actor, FieldErrors, FlowDesignation, Provider, validate};
use portcullis_oauth::provider::{GRANT_TYPES, KIND};
use portcullis_oauth::redirect_uri::{MatchingMode, RedirectUri, RedirectUriType};
use portcullis_oauth::{ClientType, IssuerMode, LogoutMethod, OAuth2Config, SubMode};
use portcullis_store::{ApplicationFilter, ProviderFilter, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check, choice, everything, path_id, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{TypeCreate, nullable};

/// Length of a generated client id (authentik's `generate_id`).
const CLIENT_ID_LEN: usize = 40;
/// Length of a generated client secret (authentik's `generate_key`).
const CLIENT_SECRET_LEN: usize = 128;

/// authentik's `RedirectURI`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedirectUriSerializer {
    /// `strict` or `regex`.
    pub matching_mode: String,
    pub url: String,
    /// `authorization` (default) or `logout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri_type: Option<String>,
}

/// authentik's `OAuth2Provider`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuth2ProviderSerializer {
    pub pk: i32,
    pub name: String,
    pub authentication_flow: Option<Uuid>,
    pub authorization_flow: Option<Uuid>,
    pub invalidation_flow: Option<Uuid>,
    pub property_mappings: Vec<Uuid>,
    pub component: String,
    pub assigned_application_slug: Option<String>,
    pub assigned_application_name: Option<String>,
    pub assigned_backchannel_application_slug: Option<String>,
    pub assigned_backchannel_application_name: Option<String>,
    pub verbose_name: String,
    pub verbose_name_plural: String,
    pub meta_model_name: String,
    pub client_type: String,
    pub grant_types: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    pub access_code_validity: String,
    pub access_token_validity: String,
    pub refresh_token_validity: String,
    pub refresh_token_threshold: String,
    pub include_claims_in_id_token: bool,
    pub signing_key: Option<Uuid>,
    pub encryption_key: Option<Uuid>,
    pub redirect_uris: Vec<RedirectUriSerializer>,
    pub logout_uri: String,
    pub logout_method: String,
    pub sub_mode: String,
    pub issuer_mode: String,
    pub jwt_federation_sources: Vec<Uuid>,
    pub jwt_federation_providers: Vec<i32>,
    /// Beyond authentik: the client's public keys (a JWK Set) for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Value,
    /// Beyond authentik: for `sub_mode` `pairwise`, a URL whose host names the sector (empty:
    /// the one host of the redirect URIs).
    pub sector_identifier_uri: String,
}

/// authentik's `OAuth2ProviderRequest` (every field optional here: PATCH uses the same type).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OAuth2ProviderRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub authentication_flow: Option<Option<Uuid>>,
    pub authorization_flow: Option<Uuid>,
    pub invalidation_flow: Option<Uuid>,
    pub property_mappings: Option<Vec<Uuid>>,
    pub client_type: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub access_code_validity: Option<String>,
    pub access_token_validity: Option<String>,
    pub refresh_token_validity: Option<String>,
    pub refresh_token_threshold: Option<String>,
    pub include_claims_in_id_token: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub signing_key: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub encryption_key: Option<Option<Uuid>>,
    pub redirect_uris: Option<Vec<RedirectUriSerializer>>,
    pub logout_uri: Option<String>,
    pub logout_method: Option<String>,
    pub sub_mode: Option<String>,
    pub issuer_mode: Option<String>,
    pub jwt_federation_sources: Option<Vec<Uuid>>,
    pub jwt_federation_providers: Option<Vec<i32>>,
    /// Beyond authentik: the client's public keys (a JWK Set) for `private_key_jwt`; `null`
    /// removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Option<Value>>,
    /// Beyond authentik: for `sub_mode` `pairwise`, a URL whose host names the sector.
    pub sector_identifier_uri: Option<String>,
}

/// authentik's `Provider` (`providers/all/`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderSerializer {
    pub pk: i32,
    pub name: String,
    pub authentication_flow: Option<Uuid>,
    pub authorization_flow: Option<Uuid>,
    pub invalidation_flow: Option<Uuid>,
    pub property_mappings: Vec<Uuid>,
    pub component: String,
    pub assigned_application_slug: Option<String>,
    pub assigned_application_name: Option<String>,
    pub assigned_backchannel_application_slug: Option<String>,
    pub assigned_backchannel_application_name: Option<String>,
    pub verbose_name: String,
    pub verbose_name_plural: String,
    pub meta_model_name: String,
}

crate::paginated!(PaginatedOAuth2ProviderList, OAuth2ProviderSerializer);
crate::paginated!(PaginatedProviderList, ProviderSerializer);

/// The application a provider serves, if any: (slug, name).
async fn assigned_application(
    store: &Store,
    pk: i32,
) -> ApiResult<(Option<String>, Option<String>)> {
    let page = store
        .list_applications(
            &ApplicationFilter {
                provider: Some(pk),
                ..Default::default()
            },
            &everything(),
        )
        .await?;
    Ok(match page.items.into_iter().next() {
        Some(a) => (Some(a.slug), Some(a.name)),
        None => (None, None),
    })
}

/// What the UI shows for a kind of provider: (component, verbose name, plural).
fn kind_names(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        KIND => (
            "ak-provider-oauth2-form",
            "OAuth2/OpenID Provider",
            "OAuth2/OpenID Providers",
        ),
        _ => ("", "Provider", "Providers"),
    }
}

/// A provider of any kind as `providers/all/` shows it.
pub(crate) async fn provider_serializer(
    store: &Store,
    p: &Provider,
) -> ApiResult<ProviderSerializer> {
    let (slug, name) = assigned_application(store, p.pk).await?;
    let (component, verbose, plural) = kind_names(&p.kind);
    Ok(ProviderSerializer {
        pk: p.pk,
        name: p.name.clone(),
        authentication_flow: p.authentication_flow,
        authorization_flow: p.authorization_flow,
        invalidation_flow: p.invalidation_flow,
        property_mappings: p.property_mappings.clone(),
        component: component.to_owned(),
        assigned_application_slug: slug,
        assigned_application_name: name,
        assigned_backchannel_application_slug: None,
        assigned_backchannel_application_name: None,
        verbose_name: verbose.to_owned(),
        verbose_name_plural: plural.to_owned(),
        meta_model_name: format!("authentik_providers_oauth2.{}", p.kind),
    })
}

/// An OAuth2 provider as the API shows it, its client secret decrypted.
pub(crate) async fn oauth2_serializer(
    state: &AppState,
    p: &Provider,
) -> ApiResult<OAuth2ProviderSerializer> {
    let base = provider_serializer(&state.store, p).await?;
    let c = OAuth2Config::from_value(&p.config);
    let client_secret = if c.client_secret.is_empty() {
        String::new()
    } else {
        state.secrets.decrypt_str(&c.client_secret)?
    };
    Ok(OAuth2ProviderSerializer {
        pk: base.pk,
        name: base.name,
        authentication_flow: base.authentication_flow,
        authorization_flow: base.authorization_flow,
        invalidation_flow: base.invalidation_flow,
        property_mappings: base.property_mappings,
        component: base.component,
        assigned_application_slug: base.assigned_application_slug,
        assigned_application_name: base.assigned_application_name,
        assigned_backchannel_application_slug: None,
        assigned_backchannel_application_name: None,
        verbose_name: base.verbose_name,
        verbose_name_plural: base.verbose_name_plural,
        meta_model_name: base.meta_model_name,
        client_type: c.client_type.as_str().to_owned(),
        grant_types: c.grant_types.clone(),
        client_id: p.client_id.clone().unwrap_or_default(),
        client_secret,
        access_code_validity: c.access_code_validity.clone(),
        access_token_validity: c.access_token_validity.clone(),
        refresh_token_validity: c.refresh_token_validity.clone(),
        refresh_token_threshold: c.refresh_token_threshold.clone(),
        include_claims_in_id_token: c.include_claims_in_id_token,
        signing_key: c.signing_key,
        encryption_key: c.encryption_key,
        redirect_uris: c
            .redirect_uris
            .iter()
            .map(|r| RedirectUriSerializer {
                matching_mode: match r.matching_mode {
                    MatchingMode::Strict => "strict",
                    MatchingMode::Regex => "regex",
                }
                .to_owned(),
                url: r.url.clone(),
                redirect_uri_type: Some(r.redirect_uri_type.as_str().to_owned()),
            })
            .collect(),
        logout_uri: c.logout_uri.clone(),
        logout_method: c.logout_method.as_str().to_owned(),
        sub_mode: c.sub_mode.as_str().to_owned(),
        issuer_mode: c.issuer_mode.as_str().to_owned(),
        jwt_federation_sources: c.jwt_federation_sources.clone(),
        jwt_federation_providers: c.jwt_federation_providers.clone(),
        jwks: c.jwks.clone(),
        sector_identifier_uri: c.sector_identifier_uri.clone(),
    })
}

/// A flow field must name a flow of the right designation (authentik limits the choices).
async fn check_flow(
    store: &Store,
    errors: &mut FieldErrors,
    field: &str,
    uuid: Uuid,
    designation: FlowDesignation,
) -> ApiResult<()> {
    match store.find_flow(uuid).await {
        Ok(f) if f.designation == designation => {}
        Ok(_) | Err(StoreError::NotFound) => {
            errors.add(
                field,
                format!("Invalid pk \"{uuid}\" - object does not exist."),
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn parse_redirect_uris(
    errors: &mut FieldErrors,
    list: &[RedirectUriSerializer],
) -> Option<Vec<RedirectUri>> {
    let mut out = Vec::with_capacity(list.len());
    for r in list {
        let matching_mode = match r.matching_mode.as_str() {
            "strict" => MatchingMode::Strict,
            "regex" => MatchingMode::Regex,
            other => {
                let shown: String = other.chars().take(64).collect();
                errors.add(
                    "redirect_uris",
                    format!("\"{shown}\" is not a valid matching_mode."),
                );
                return None;
            }
        };
        let redirect_uri_type = match r.redirect_uri_type.as_deref() {
            None | Some("authorization") => RedirectUriType::Authorization,
            Some("logout") => RedirectUriType::Logout,
            Some(other) => {
                let shown: String = other.chars().take(64).collect();
                errors.add(
                    "redirect_uris",
                    format!("\"{shown}\" is not a valid redirect_uri_type."),
                );
                return None;
            }
        };
        out.push(RedirectUri {
            matching_mode,
            url: r.url.clone(),
            redirect_uri_type,
        });
    }
    if let Err(problem) = portcullis_oauth::redirect_uri::validate(&out) {
        errors.add("redirect_uris", problem);
        return None;
    }
    Some(out)
}

/// Applies a request to a provider (`partial` as PATCH): the provider to store, validated as
/// authentik validates it. The client secret is encrypted here.
async fn apply(
    state: &AppState,
    existing: Option<&Provider>,
    r: OAuth2ProviderRequest,
    partial: bool,
) -> ApiResult<Provider> {
    let store = &state.store;
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("name", r.name.is_some()),
                ("authorization_flow", r.authorization_flow.is_some()),
                ("invalidation_flow", r.invalidation_flow.is_some()),
                ("redirect_uris", r.redirect_uris.is_some()),
            ],
        );
    }
    if let Some(v) = &r.name {
        validate::text(&mut errors, "name", v, validate::NAME_MAX, false);
    }
    if let Some(v) = &r.client_id {
        validate::text(&mut errors, "client_id", v, 255, false);
    }
    if let Some(v) = &r.client_secret {
        validate::text(&mut errors, "client_secret", v, 255, true);
    }
    if let Some(v) = &r.logout_uri {
        validate::text(&mut errors, "logout_uri", v, validate::TEXT_MAX, true);
        if !v.is_empty() {
            validate::url(&mut errors, "logout_uri", v);
        }
    }
    for (field, v) in [
        ("access_code_validity", &r.access_code_validity),
        ("access_token_validity", &r.access_token_validity),
        ("refresh_token_validity", &r.refresh_token_validity),
        ("refresh_token_threshold", &r.refresh_token_threshold),
    ] {
        if let Some(v) = v
            && let Err(m) = validate::parse_timedelta(v)
        {
            errors.add(field, m);
        }
    }
    let client_type = choice(
        &mut errors,
        "client_type",
        r.client_type.as_deref(),
        ClientType::parse,
    );
    let sub_mode = choice(
        &mut errors,
        "sub_mode",
        r.sub_mode.as_deref(),
        SubMode::parse,
    );
    let issuer_mode = choice(
        &mut errors,
        "issuer_mode",
        r.issuer_mode.as_deref(),
        IssuerMode::parse,
    );
    let logout_method = choice(
        &mut errors,
        "logout_method",
        r.logout_method.as_deref(),
        LogoutMethod::parse,
    );
    if let Some(grants) = &r.grant_types {
        for g in grants {
            if !GRANT_TYPES.contains(&g.as_str()) {
                let shown: String = g.chars().take(64).collect();
                errors.add("grant_types", format!("\"{shown}\" is not a valid choice."));
            }
        }
    }
    let redirect_uris = r
        .redirect_uris
        .as_deref()
        .and_then(|l| parse_redirect_uris(&mut errors, l));
    if let Some(Some(u)) = r.authentication_flow {
        check_flow(
            store,
            &mut errors,
            "authentication_flow",
            u,
            FlowDesignation::Authentication,
        )
        .await?;
    }
    if let Some(u) = r.authorization_flow {
        check_flow(
            store,
            &mut errors,
            "authorization_flow",
            u,
            FlowDesignation::Authorization,
        )
        .await?;
    }
    if let Some(u) = r.invalidation_flow {
        check_flow(
            store,
            &mut errors,
            "invalidation_flow",
            u,
            FlowDesignation::Invalidation,
        )
        .await?;
    }
    if let Some(Some(jwks)) = &r.jwks
        && let Err(m) = portcullis_oauth::provider::validate_client_jwks(jwks)
    {
        errors.add("jwks", m);
    }
    for (field, key) in [
        ("signing_key", r.signing_key),
        ("encryption_key", r.encryption_key),
    ] {
        if let Some(Some(u)) = key {
            match store.find_certificate_keypair(u).await {
                Ok(kp) if field == "encryption_key" => {
                    if portcullis_crypto::jwe::JweEncrypter::from_certificate_pem(
                        &kp.certificate_pem,
                    )
                    .is_err()
                    {
                        errors.add(field, "Encrypted tokens need an RSA certificate.");
                    }
                }
                Ok(kp) if kp.has_private_key => {}
                Ok(_) => errors.add(field, "This certificate-key pair has no private key."),
                Err(StoreError::NotFound) => {
                    errors.add(
                        field,
                        format!("Invalid pk \"{u}\" - object does not exist."),
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if r.jwt_federation_sources
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        // Federation sources arrive with the sources; until then none exists.
        errors.add(
            "jwt_federation_sources",
            "Invalid pk - object does not exist.",
        );
    }
    if let Some(list) = &r.jwt_federation_providers {
        for pk in list {
            match store.find_provider(*pk).await {
                Ok(p) if p.kind == KIND => {}
                Ok(_) | Err(StoreError::NotFound) => {
                    errors.add(
                        "jwt_federation_providers",
                        format!("Invalid pk \"{pk}\" - object does not exist."),
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    check(errors)?;

    let mut c = existing.map_or_else(OAuth2Config::default, |p| {
        OAuth2Config::from_value(&p.config)
    });
    if let Some(v) = client_type {
        c.client_type = v;
    }
    if let Some(v) = r.grant_types {
        c.grant_types = v;
    }
    if let Some(v) = redirect_uris {
        c.redirect_uris = v;
    }
    for (target, v) in [
        (&mut c.access_code_validity, r.access_code_validity),
        (&mut c.access_token_validity, r.access_token_validity),
        (&mut c.refresh_token_validity, r.refresh_token_validity),
        (&mut c.refresh_token_threshold, r.refresh_token_threshold),
        (&mut c.logout_uri, r.logout_uri),
    ] {
        if let Some(v) = v {
            *target = v;
        }
    }
    if let Some(v) = r.include_claims_in_id_token {
        c.include_claims_in_id_token = v;
    }
    if let Some(v) = r.signing_key {
        c.signing_key = v;
    }
    if let Some(v) = r.encryption_key {
        c.encryption_key = v;
    }
    if let Some(v) = logout_method {
        c.logout_method = v;
    }
    if let Some(v) = sub_mode {
        c.sub_mode = v;
    }
    if let Some(v) = issuer_mode {
        c.issuer_mode = v;
    }
    if let Some(v) = r.jwt_federation_sources {
        c.jwt_federation_sources = v;
    }
    if let Some(v) = r.jwt_federation_providers {
        c.jwt_federation_providers = v;
    }
    if let Some(v) = r.jwks {
        c.jwks = v.unwrap_or(Value::Null);
    }
    if let Some(v) = r.sector_identifier_uri {
        c.sector_identifier_uri = v;
    }
    let mut errors = FieldErrors::default();
    if !c.sector_identifier_uri.is_empty()
        && url::Url::parse(&c.sector_identifier_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_none()
    {
        errors.add("sector_identifier_uri", "Enter a valid URL.");
    } else if c.sub_mode == SubMode::Pairwise && c.sector().is_none() {
        errors.add(
            "sub_mode",
            "Pairwise subjects need a sector: redirect URIs on one host (strict), or a sector_identifier_uri.",
        );
    }
    check(errors)?;
    match r.client_secret {
        Some(s) if s.is_empty() => c.client_secret = String::new(),
        Some(s) => c.client_secret = state.secrets.encrypt_str(&s)?,
        None if existing.is_none() => {
            let s = portcullis_crypto::random::random_string(CLIENT_SECRET_LEN);
            c.client_secret = state.secrets.encrypt_str(&s)?;
        }
        None => {}
    }
    let client_id = r
        .client_id
        .or_else(|| existing.and_then(|p| p.client_id.clone()))
        .unwrap_or_else(|| portcullis_crypto::random::random_string(CLIENT_ID_LEN));
    Ok(Provider {
        pk: existing.map_or(0, |p| p.pk),
        name: r
            .name
            .or_else(|| existing.map(|p| p.name.clone()))
            .unwrap_or_default(),
        kind: KIND.to_owned(),
        authentication_flow: match r.authentication_flow {
            Some(v) => v,
            None => existing.and_then(|p| p.authentication_flow),
        },
        authorization_flow: r
            .authorization_flow
            .or_else(|| existing.and_then(|p| p.authorization_flow)),
        invalidation_flow: r
            .invalidation_flow
            .or_else(|| existing.and_then(|p| p.invalidation_flow)),
        property_mappings: r
            .property_mappings
            .or_else(|| existing.map(|p| p.property_mappings.clone()))
            .unwrap_or_default(),
        client_id: Some(client_id),
        config: c.to_value(),
    })
}

/// Creates an OAuth2 provider from a request, validated as the API validates it.
pub(crate) async fn create_oauth2(
    state: &AppState,
    actor: &Actor,
    r: OAuth2ProviderRequest,
) -> ApiResult<Provider> {
    let p = apply(state, None, r, false).await?;
    Ok(state.store.create_provider(p, actor).await?)
}

/// Changes an OAuth2 provider from a request (`partial` as PATCH).
pub(crate) async fn update_oauth2(
    state: &AppState,
    actor: &Actor,
    existing: &Provider,
    r: OAuth2ProviderRequest,
    partial: bool,
) -> ApiResult<Provider> {
    let p = apply(state, Some(existing), r, partial).await?;
    Ok(state.store.update_provider(existing.pk, p, actor).await?)
}

/// The OAuth2 provider with this pk (another kind is "not found" here).
pub(crate) async fn find_oauth2(store: &Store, pk: i32) -> ApiResult<Provider> {
    let p = store.find_provider(pk).await?;
    if p.kind == KIND {
        Ok(p)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(get, path = "/api/v3/providers/oauth2/", tag = "providers", operation_id = "providers_oauth2_list",
    params(("name" = Option<String>, Query), ("client_id" = Option<String>, Query), ("search" = Option<String>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedOAuth2ProviderList), (status = 403)))]
pub async fn oauth2_list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedOAuth2ProviderList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let filter = ProviderFilter {
        name: q.string("name").filter(|n| !n.is_empty()),
        kinds: vec![KIND.to_owned()],
        client_id: q.string("client_id").filter(|n| !n.is_empty()),
    };
    let page = state.store.list_providers(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for p in &page.items {
        results.push(oauth2_serializer(&state, p).await?);
    }
    Ok(Json(PaginatedOAuth2ProviderList::new(
        &lq.page, page.count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/providers/oauth2/", tag = "providers", operation_id = "providers_oauth2_create",
    request_body = OAuth2ProviderRequest, responses((status = 201, body = OAuth2ProviderSerializer), (status = 400), (status = 403)))]
pub async fn oauth2_create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<OAuth2ProviderRequest>,
) -> ApiResult<(StatusCode, Json<OAuth2ProviderSerializer>)> {
    auth.require_superuser()?;
    let p = create_oauth2(&state, &auth.actor(), r).await?;
    Ok((
        StatusCode::CREATED,
        Json(oauth2_serializer(&state, &p).await?),
    ))
}

#[utoipa::path(get, path = "/api/v3/providers/oauth2/{id}/", tag = "providers", operation_id = "providers_oauth2_retrieve",
    params(("id" = i32, Path)), responses((status = 200, body = OAuth2ProviderSerializer), (status = 403), (status = 404)))]
pub async fn oauth2_retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OAuth2ProviderSerializer>> {
    auth.require_superuser()?;
    let p = find_oauth2(&state.store, path_id(&id)?).await?;
    Ok(Json(oauth2_serializer(&state, &p).await?))
}

async fn oauth2_update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: OAuth2ProviderRequest,
    partial: bool,
) -> ApiResult<Json<OAuth2ProviderSerializer>> {
    auth.require_superuser()?;
    let existing = find_oauth2(&state.store, path_id(id)?).await?;
    let p = update_oauth2(state, &auth.actor(), &existing, r, partial).await?;
    Ok(Json(oauth2_serializer(state, &p).await?))
}

#[utoipa::path(put, path = "/api/v3/providers/oauth2/{id}/", tag = "providers", operation_id = "providers_oauth2_update",
    params(("id" = i32, Path)), request_body = OAuth2ProviderRequest, responses((status = 200, body = OAuth2ProviderSerializer), (status = 400), (status = 404)))]
pub async fn oauth2_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<OAuth2ProviderRequest>,
) -> ApiResult<Json<OAuth2ProviderSerializer>> {
    oauth2_update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/providers/oauth2/{id}/", tag = "providers", operation_id = "providers_oauth2_partial_update",
    params(("id" = i32, Path)), request_body = OAuth2ProviderRequest, responses((status = 200, body = OAuth2ProviderSerializer), (status = 400), (status = 404)))]
pub async fn oauth2_partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<OAuth2ProviderRequest>,
) -> ApiResult<Json<OAuth2ProviderSerializer>> {
    oauth2_update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/providers/oauth2/{id}/", tag = "providers", operation_id = "providers_oauth2_destroy",
    params(("id" = i32, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn oauth2_destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let p = find_oauth2(&state.store, path_id(&id)?).await?;
    state.store.delete_provider(p.pk, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/providers/all/", tag = "providers", operation_id = "providers_all_list",
    params(("search" = Option<String>, Query), ("ordering" = Option<String>, Query),
        ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedProviderList), (status = 403)))]
pub async fn all_list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedProviderList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let page = state
        .store
        .list_providers(&ProviderFilter::default(), &lq)
        .await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for p in &page.items {
        results.push(provider_serializer(&state.store, p).await?);
    }
    Ok(Json(PaginatedProviderList::new(
        &lq.page, page.count, results,
    )))
}

#[utoipa::path(get, path = "/api/v3/providers/all/{id}/", tag = "providers", operation_id = "providers_all_retrieve",
    params(("id" = i32, Path)), responses((status = 200, body = ProviderSerializer), (status = 403), (status = 404)))]
pub async fn all_retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProviderSerializer>> {
    auth.require_superuser()?;
    let p = state.store.find_provider(path_id(&id)?).await?;
    Ok(Json(provider_serializer(&state.store, &p).await?))
}

#[utoipa::path(delete, path = "/api/v3/providers/all/{id}/", tag = "providers", operation_id = "providers_all_destroy",
    params(("id" = i32, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn all_destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    let pk: i32 = path_id(&id)?;
    state.store.delete_provider(pk, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/providers/all/types/", tag = "providers", operation_id = "providers_all_types_list",
    responses((status = 200, body = Vec<TypeCreate>), (status = 403)))]
pub async fn all_types(auth: Auth) -> ApiResult<Json<Vec<TypeCreate>>> {
    auth.require_superuser()?;
    let (component, verbose, _) = kind_names(KIND);
    Ok(Json(vec![TypeCreate {
        name: verbose.to_owned(),
        description: "OAuth2 Provider for generic OAuth and OpenID Connect Applications."
            .to_owned(),
        component: component.to_owned(),
        model_name: KIND.to_owned(),
        icon_url: None,
        requires_enterprise: false,
        deprecated: false,
    }]))
}
