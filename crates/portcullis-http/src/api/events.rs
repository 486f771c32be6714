//! `events/events/`: read-only. Superusers see every event; other users their own.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use portcullis_store::EventFilter;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{EventSerializer, PaginatedEventList};

#[utoipa::path(get, path = "/api/v3/events/events/", tag = "events", operation_id = "events_events_list",
    params(("action" = Option<String>, Query), ("username" = Option<String>, Query), ("client_ip" = Option<String>, Query),
        ("context_model_app" = Option<String>, Query), ("context_model_name" = Option<String>, Query), ("context_model_pk" = Option<String>, Query),
        ("search" = Option<String>, Query), ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedEventList)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedEventList>> {
    let lq = list_query(&q)?;
    let mut filter = EventFilter {
        action: q.string("action").filter(|s| !s.is_empty()),
        username: q.string("username"),
        client_ip: q.string("client_ip"),
        context_model_app: q.string("context_model_app").filter(|s| !s.is_empty()),
        context_model_name: q.string("context_model_name").filter(|s| !s.is_empty()),
        context_model_pk: q.string("context_model_pk").filter(|s| !s.is_empty()),
        user_pk: None,
    };
    if !auth.is_superuser() {
        // Their own events only, by pk: a username may have belonged to a deleted user.
        filter.user_pk = Some(auth.pk());
    }
    let page = state.store.list_events(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    Ok(Json(PaginatedEventList::new(
        &lq.page,
        page.count,
        page.items.iter().map(EventSerializer::from).collect(),
    )))
}

#[utoipa::path(get, path = "/api/v3/events/events/{event_uuid}/", tag = "events", operation_id = "events_events_retrieve",
    params(("event_uuid" = Uuid, Path)), responses((status = 200, body = EventSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EventSerializer>> {
    let uuid: Uuid = super::path_id(&id)?;
    let e = state.store.find_event(uuid).await?;
    if !auth.is_superuser() && e.user_pk != Some(auth.pk()) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(EventSerializer::from(&e)))
}
