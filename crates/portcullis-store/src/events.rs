//! Audit events: written in the same transaction as the change they record, read back with
//! authentik's filters. Events are never updated; they expire after the retention period.

use chrono::Duration;
use portcullis_core::{Actor, Event, NewEvent, Page};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::entity::event;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

/// How long events are kept (authentik's default retention: 365 days).
pub const EVENT_RETENTION_DAYS: i64 = 365;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub action: Option<String>,
    pub username: Option<String>,
    pub client_ip: Option<String>,
    /// Only events whose context names this model's app label (e.g. `authentik_core`).
    pub context_model_app: Option<String>,
    /// Only events whose context names this model (`context.model.model_name`, e.g. `user`).
    pub context_model_name: Option<String>,
    /// Only events whose context names this object (`context.model.pk`, compared as text).
    pub context_model_pk: Option<String>,
    /// Only events caused by this user (by pk: a username can be reused).
    pub user_pk: Option<i32>,
}

fn to_domain(m: event::Model) -> Event {
    Event {
        user_pk: m.user_pk,
        uuid: m.uuid,
        user: m.user,
        action: m.action,
        app: m.app,
        context: m.context,
        client_ip: m.client_ip,
        created: m.created,
        expires: m.expires,
        brand: m.brand,
    }
}

/// Records `e` by `actor`, on `db` (normally the transaction of the change it describes).
pub(crate) async fn record<C: ConnectionTrait>(
    db: &C,
    store: &Store,
    actor: &Actor,
    e: NewEvent,
) -> Result<(), StoreError> {
    let now = store.clock.now();
    if matches!(
        e.action,
        portcullis_core::EventAction::ModelCreated
            | portcullis_core::EventAction::ModelUpdated
            | portcullis_core::EventAction::ModelDeleted
    ) {
        store.changed();
    }
    event::ActiveModel {
        uuid: Set(Uuid::new_v4()),
        user: Set(actor.user_json()),
        username: Set(actor.user.as_ref().map(|u| u.username.clone())),
        user_pk: Set(actor.user.as_ref().map(|u| u.pk)),
        action: Set(e.action.as_str().to_owned()),
        app: Set(e.app),
        context: Set(e.context),
        client_ip: Set(actor.client_ip.clone()),
        created: Set(now),
        expires: Set(now + Duration::days(EVENT_RETENTION_DAYS)),
        brand: Set(actor.brand.clone().unwrap_or_else(|| serde_json::json!({}))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

impl Store {
    /// Records an event on its own (for things that change nothing else, like a failed login).
    pub async fn record_event(&self, actor: &Actor, e: NewEvent) -> Result<(), StoreError> {
        record(&self.write, self, actor, e).await
    }

    pub async fn find_event(&self, uuid: Uuid) -> Result<Event, StoreError> {
        event::Entity::find()
            .filter(event::Column::Uuid.eq(uuid))
            .one(&self.read)
            .await?
            .map(to_domain)
            .ok_or(StoreError::NotFound)
    }

    pub async fn list_events(
        &self,
        filter: &EventFilter,
        q: &ListQuery,
    ) -> Result<Page<Event>, StoreError> {
        let mut select = event::Entity::find();
        if let Some(a) = &filter.action {
            // authentik filters `action` by "contains".
            select = select.filter(search_condition(a, &[event::Column::Action]));
        }
        if let Some(u) = &filter.username {
            select = select.filter(event::Column::Username.eq(u.as_str()));
        }
        if let Some(pk) = filter.user_pk {
            select = select.filter(event::Column::UserPk.eq(pk));
        }
        if let Some(ip) = &filter.client_ip {
            select = select.filter(event::Column::ClientIp.eq(ip.as_str()));
        }
        // authentik's filters on the model an event is about (the admin UI's "events of this
        // object"): `context.model.{app,model_name,pk}`.
        for (key, value) in [
            ("app", &filter.context_model_app),
            ("model_name", &filter.context_model_name),
            ("pk", &filter.context_model_pk),
        ] {
            use sea_orm::sea_query::ExprTrait as _;
            let Some(value) = value else { continue };
            let path = match self.backend {
                crate::Backend::Sqlite => {
                    format!("CAST(json_extract(\"context\", '$.model.{key}') AS TEXT)")
                }
                crate::Backend::Postgres => {
                    format!("(\"context\"::jsonb -> 'model' ->> '{key}')")
                }
            };
            select = select.filter(sea_orm::sea_query::Expr::cust(path).eq(value.as_str()));
        }
        if let Some(term) = q.search.as_deref().filter(|s| !s.is_empty()) {
            select = select.filter(search_condition(
                term,
                &[
                    event::Column::Action,
                    event::Column::Username,
                    event::Column::ClientIp,
                    event::Column::App,
                ],
            ));
        }
        let select = ordered(
            select,
            &q.ordering,
            &[
                ("created", event::Column::Created),
                ("action", event::Column::Action),
                ("client_ip", event::Column::ClientIp),
                ("user", event::Column::Username),
                ("app", event::Column::App),
            ],
            (event::Column::Created, true),
            event::Column::Id,
        );
        let page = paged(&self.read, select, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(to_domain).collect(),
            count: page.count,
        })
    }

    /// Deletes expired events; returns how many went.
    pub async fn delete_expired_events(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let r = event::Entity::delete_many()
            .filter(event::Column::Expires.lte(now))
            .exec(&self.write)
            .await?;
        Ok(r.rows_affected)
    }
}
