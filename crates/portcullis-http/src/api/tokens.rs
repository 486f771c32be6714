//! `core/tokens/`, looked up by identifier. Users see and manage their own tokens; superusers
//! all. The key is returned only by `view_key/`, which records `secret_view`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Duration;
use portcullis_core::{FieldErrors, NewToken, Token, TokenIntent, TokenPatch, validate};
use portcullis_store::TokenFilter;

use super::{check, path_key, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{PaginatedTokenList, TokenRequest, TokenSerializer, TokenView};

/// Length of generated token keys.
pub const TOKEN_KEY_LEN: usize = 64;
/// How long a token lives when it expires and no expiry was given (authentik's default).
pub const DEFAULT_TOKEN_DURATION_MINUTES: i64 = 30;

/// A new random token key with its lookup hash and its encrypted form.
pub fn new_key(state: &AppState) -> ApiResult<(String, String, String)> {
    let key = portcullis_crypto::random_string(TOKEN_KEY_LEN);
    let hash = portcullis_crypto::sha256_hex(key.as_bytes());
    let enc = state.secrets.encrypt_str(&key)?;
    Ok((key, hash, enc))
}

pub(crate) fn validate_request(r: &TokenRequest, errors: &mut FieldErrors) {
    if let Some(v) = &r.identifier {
        if v.len() > 255 {
            errors.add(
                "identifier",
                "Ensure this field has no more than 255 characters.",
            );
        } else if v.is_empty()
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.add(
                "identifier",
                "Enter a valid identifier consisting of letters, numbers, underscores or hyphens.",
            );
        }
    }
    if let Some(v) = &r.description {
        validate::text(errors, "description", v, validate::TEXT_MAX, true);
    }
    if let Some(i) = r.intent
        && !matches!(i, TokenIntent::Api | TokenIntent::AppPassword)
    {
        errors.add(
            "intent",
            format!(
                "Invalid intent {i}: only api and app_password can be created through the API."
            ),
        );
    }
    if let Some(Some(m)) = &r.managed {
        validate::text(errors, "managed", m, 255, false);
    }
}

/// Tokens that never expire are for superusers to make (authentik forces expiry on everyone
/// else).
fn check_expiry(auth: &Auth, r: &TokenRequest) -> ApiResult<()> {
    if auth.is_superuser() {
        return Ok(());
    }
    if r.expiring == Some(false) {
        return Err(ApiError::field(
            "expiring",
            "Only superusers can make tokens that do not expire.",
        ));
    }
    if r.expires == Some(None) {
        return Err(ApiError::field(
            "expires",
            "Only superusers can make tokens that do not expire.",
        ));
    }
    Ok(())
}

async fn find_visible(state: &AppState, auth: &Auth, identifier: &str) -> ApiResult<Token> {
    let t = state.store.find_token(path_key(identifier)?).await?;
    if !auth.is_superuser() && t.user_pk != auth.pk() {
        return Err(ApiError::NotFound);
    }
    Ok(t)
}

pub(crate) async fn serialize(state: &AppState, t: &Token) -> ApiResult<TokenSerializer> {
    let owner = state.store.find_user(t.user_pk).await?;
    Ok(TokenSerializer::new(state, t, &owner))
}

#[utoipa::path(get, path = "/api/v3/core/tokens/", tag = "core", operation_id = "core_tokens_list",
    params(("identifier" = Option<String>, Query), ("intent" = Option<String>, Query), ("user__username" = Option<String>, Query),
        ("description" = Option<String>, Query), ("managed" = Option<String>, Query), ("search" = Option<String>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedTokenList)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedTokenList>> {
    let lq = list_query(&q)?;
    let mut user_pk = if auth.is_superuser() {
        None
    } else {
        Some(auth.pk())
    };
    if let Some(username) = q.get("user__username") {
        match state.store.find_user_by_username(username).await {
            Ok(u) if user_pk.is_none() || user_pk == Some(u.user.pk) => user_pk = Some(u.user.pk),
            Ok(_) | Err(portcullis_store::StoreError::NotFound) => user_pk = Some(-1),
            Err(e) => return Err(e.into()),
        }
    }
    let intent = match q.get("intent") {
        Some(i) if !i.is_empty() => Some(
            TokenIntent::parse(i)
                .ok_or_else(|| ApiError::field("intent", "Select a valid choice."))?,
        ),
        _ => None,
    };
    let filter = TokenFilter {
        user_pk,
        identifier: q.string("identifier"),
        intent,
        managed: q.string("managed"),
        description: q.string("description"),
    };
    let page = state.store.list_tokens(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let mut results = Vec::with_capacity(page.items.len());
    for t in &page.items {
        results.push(serialize(&state, t).await?);
    }
    Ok(Json(PaginatedTokenList::new(&lq.page, page.count, results)))
}

#[utoipa::path(post, path = "/api/v3/core/tokens/", tag = "core", operation_id = "core_tokens_create",
    request_body = TokenRequest, responses((status = 201, body = TokenSerializer), (status = 400)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenSerializer>)> {
    let mut errors = FieldErrors::new();
    require(&mut errors, &[("identifier", r.identifier.is_some())]);
    validate_request(&r, &mut errors);
    check(errors)?;
    // `managed` marks objects that blueprints own; only superusers may claim that.
    if matches!(r.managed, Some(Some(_))) {
        auth.require_superuser()?;
    }
    let user_pk = r.user.unwrap_or(auth.pk());
    if user_pk != auth.pk() {
        auth.require_superuser()?;
        if let Err(portcullis_store::StoreError::NotFound) = state.store.find_user(user_pk).await {
            return Err(ApiError::field(
                "user",
                "Invalid pk - object does not exist.",
            ));
        }
    }
    check_expiry(&auth, &r)?;
    let expiring = r.expiring.unwrap_or(true);
    let expires = match r.expires {
        Some(Some(e)) => Some(e),
        // An expiring token always has a date: without one it would never expire.
        _ if expiring => {
            Some(state.clock.now() + Duration::minutes(DEFAULT_TOKEN_DURATION_MINUTES))
        }
        _ => None,
    };
    let (key, hash, enc) = new_key(&state)?;
    let t = state
        .store
        .create_token(
            NewToken {
                identifier: r.identifier.unwrap_or_default(),
                intent: r.intent.unwrap_or(TokenIntent::Api),
                user_pk,
                description: r.description.unwrap_or_default(),
                expires,
                expiring,
                managed: r.managed.flatten(),
                key,
            },
            hash,
            enc,
            &auth.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(serialize(&state, &t).await?)))
}

#[utoipa::path(get, path = "/api/v3/core/tokens/{identifier}/", tag = "core", operation_id = "core_tokens_retrieve",
    params(("identifier" = String, Path)), responses((status = 200, body = TokenSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(identifier): Path<String>,
) -> ApiResult<Json<TokenSerializer>> {
    let t = find_visible(&state, &auth, &identifier).await?;
    Ok(Json(serialize(&state, &t).await?))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    identifier: &str,
    r: TokenRequest,
    partial: bool,
) -> ApiResult<Json<TokenSerializer>> {
    find_visible(state, auth, identifier).await?;
    let mut errors = FieldErrors::new();
    if !partial {
        require(&mut errors, &[("identifier", r.identifier.is_some())]);
    }
    validate_request(&r, &mut errors);
    check(errors)?;
    check_expiry(auth, &r)?;
    let current = state.store.find_token(identifier).await?;
    if r.expires == Some(None) && r.expiring.unwrap_or(current.expiring) {
        return Err(ApiError::field(
            "expires",
            "An expiring token needs an expiry date.",
        ));
    }
    if r.user.is_some_and(|u| u != auth.pk()) {
        auth.require_superuser()?;
        if let Some(u) = r.user
            && let Err(portcullis_store::StoreError::NotFound) = state.store.find_user(u).await
        {
            return Err(ApiError::field(
                "user",
                "Invalid pk - object does not exist.",
            ));
        }
    }
    let patch = TokenPatch {
        identifier: r.identifier,
        intent: r.intent,
        user_pk: r.user,
        description: r.description,
        expires: r.expires,
        expiring: r.expiring,
    };
    let t = state
        .store
        .update_token(identifier, patch, &auth.actor())
        .await?;
    Ok(Json(serialize(state, &t).await?))
}

#[utoipa::path(put, path = "/api/v3/core/tokens/{identifier}/", tag = "core", operation_id = "core_tokens_update",
    params(("identifier" = String, Path)), request_body = TokenRequest, responses((status = 200, body = TokenSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(identifier): Path<String>,
    ApiJson(r): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenSerializer>> {
    update_inner(&state, &auth, &identifier, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/core/tokens/{identifier}/", tag = "core", operation_id = "core_tokens_partial_update",
    params(("identifier" = String, Path)), request_body = TokenRequest, responses((status = 200, body = TokenSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(identifier): Path<String>,
    ApiJson(r): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenSerializer>> {
    update_inner(&state, &auth, &identifier, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/core/tokens/{identifier}/", tag = "core", operation_id = "core_tokens_destroy",
    params(("identifier" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(identifier): Path<String>,
) -> ApiResult<StatusCode> {
    find_visible(&state, &auth, &identifier).await?;
    state.store.delete_token(&identifier, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v3/core/tokens/{identifier}/view_key/", tag = "core", operation_id = "core_tokens_view_key_retrieve",
    params(("identifier" = String, Path)), responses((status = 200, body = TokenView), (status = 404)))]
pub async fn view_key(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(identifier): Path<String>,
) -> ApiResult<Json<TokenView>> {
    find_visible(&state, &auth, &identifier).await?;
    let enc = state
        .store
        .view_token_key(&identifier, &auth.actor())
        .await?;
    Ok(Json(TokenView {
        key: state.secrets.decrypt_str(&enc)?,
    }))
}
