//! Providers of every kind. Invariants: names are unique; `client_id`, when set, is unique;
//! `kind` is authentik's model name, one [`provider_app_label`] knows, and never changes; the
//! flows it names exist (checked here; deleting a flow clears them, see `Store::delete_flow`);
//! its property mappings exist (checked here) and are a set, replaced as a whole on update and
//! losing a mapping when the mapping is deleted (foreign key). The kind's settings (`config`)
//! are checked by the protocol crate before they get here. Deleting a provider leaves the
//! applications that used it without one, in the same transaction.

use std::collections::BTreeSet;

use portcullis_core::{Actor, EventAction, NewEvent, Page, Provider};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::entity::{application, flow, property_mapping, provider, provider_property_mapping};
use crate::events::record;
use crate::property_mappings::mappings_of;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFilter {
    pub name: Option<String>,
    /// Only providers of these kinds (empty: all).
    pub kinds: Vec<String>,
    pub client_id: Option<String>,
}

/// authentik's (app label, model name) of a provider kind; `None` for kinds Portcullis does not
/// store yet.
pub fn provider_app_label(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "oauth2provider" => Some(("authentik_providers_oauth2", "oauth2provider")),
        _ => None,
    }
}

fn invalid(field: &str) -> StoreError {
    StoreError::InvalidReference {
        field: field.to_owned(),
    }
}

fn provider_event(action: EventAction, m: &provider::Model) -> Result<NewEvent, StoreError> {
    let (app, model) = provider_app_label(&m.kind).ok_or_else(|| invalid("kind"))?;
    Ok(NewEvent::model(
        action,
        app,
        model,
        &m.id.to_string(),
        &m.name,
    ))
}

fn provider_to_domain(m: provider::Model, property_mappings: Vec<Uuid>) -> Provider {
    Provider {
        pk: m.id,
        name: m.name,
        kind: m.kind,
        authentication_flow: m.authentication_flow,
        authorization_flow: m.authorization_flow,
        invalidation_flow: m.invalidation_flow,
        property_mappings,
        client_id: m.client_id,
        config: m.config,
    }
}

/// The provider rows with their mappings' uuids.
async fn hydrate<C: ConnectionTrait>(
    db: &C,
    rows: Vec<provider::Model>,
) -> Result<Vec<Provider>, StoreError> {
    let ids: Vec<i32> = rows.iter().map(|m| m.id).collect();
    let links = mappings_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let mappings = links
                .iter()
                .filter(|(p, _)| *p == m.id)
                .map(|(_, pm)| pm.uuid)
                .collect();
            provider_to_domain(m, mappings)
        })
        .collect())
}

async fn provider_model<C: ConnectionTrait>(
    db: &C,
    pk: i32,
) -> Result<provider::Model, StoreError> {
    provider::Entity::find_by_id(pk)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Checks the provider's references, naming the offending field; returns the ids of its
/// property mappings, without duplicates.
async fn check_references<C: ConnectionTrait>(
    db: &C,
    p: &Provider,
) -> Result<Vec<i32>, StoreError> {
    for (field, value) in [
        ("authentication_flow", p.authentication_flow),
        ("authorization_flow", p.authorization_flow),
        ("invalidation_flow", p.invalidation_flow),
    ] {
        if let Some(uuid) = value
            && flow::Entity::find()
                .filter(flow::Column::Uuid.eq(uuid))
                .one(db)
                .await?
                .is_none()
        {
            return Err(invalid(field));
        }
    }
    let wanted: BTreeSet<Uuid> = p.property_mappings.iter().copied().collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let found = property_mapping::Entity::find()
        .filter(property_mapping::Column::Uuid.is_in(wanted.iter().copied().collect::<Vec<_>>()))
        .all(db)
        .await?;
    if found.len() != wanted.len() {
        return Err(invalid("property_mappings"));
    }
    Ok(found.into_iter().map(|m| m.id).collect())
}

/// Makes `mappings` (ids) the provider's whole set of property mappings.
async fn set_mappings<C: ConnectionTrait>(
    db: &C,
    provider: i32,
    mappings: Vec<i32>,
) -> Result<(), StoreError> {
    provider_property_mapping::Entity::delete_many()
        .filter(provider_property_mapping::Column::ProviderId.eq(provider))
        .exec(db)
        .await?;
    if mappings.is_empty() {
        return Ok(());
    }
    provider_property_mapping::Entity::insert_many(mappings.into_iter().map(|mapping_id| {
        provider_property_mapping::ActiveModel {
            provider_id: Set(provider),
            mapping_id: Set(mapping_id),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

impl Store {
    /// Creates the provider (its `pk` is assigned) with its property mappings.
    pub async fn create_provider(
        &self,
        p: Provider,
        actor: &Actor,
    ) -> Result<Provider, StoreError> {
        provider_app_label(&p.kind).ok_or_else(|| invalid("kind"))?;
        let txn = self.write.begin().await?;
        let mappings = check_references(&txn, &p).await?;
        let m = provider::ActiveModel {
            name: Set(p.name),
            kind: Set(p.kind),
            authentication_flow: Set(p.authentication_flow),
            authorization_flow: Set(p.authorization_flow),
            invalidation_flow: Set(p.invalidation_flow),
            client_id: Set(p.client_id),
            config: Set(p.config),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        set_mappings(&txn, m.id, mappings).await?;
        record(
            &txn,
            self,
            actor,
            provider_event(EventAction::ModelCreated, &m)?,
        )
        .await?;
        let created = hydrate(&txn, vec![m]).await?;
        txn.commit().await?;
        created.into_iter().next().ok_or(StoreError::NotFound)
    }

    pub async fn find_provider(&self, pk: i32) -> Result<Provider, StoreError> {
        let m = provider_model(&self.read, pk).await?;
        hydrate(&self.read, vec![m])
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// The provider whose client id this is (OAuth2 and proxy providers).
    pub async fn find_provider_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Provider, StoreError> {
        let m = provider::Entity::find()
            .filter(provider::Column::ClientId.eq(client_id))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        hydrate(&self.read, vec![m])
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    pub async fn list_providers(
        &self,
        f: &ProviderFilter,
        q: &ListQuery,
    ) -> Result<Page<Provider>, StoreError> {
        let mut s = provider::Entity::find();
        if let Some(v) = &f.name {
            s = s.filter(provider::Column::Name.eq(v.as_str()));
        }
        if !f.kinds.is_empty() {
            s = s.filter(provider::Column::Kind.is_in(f.kinds.clone()));
        }
        if let Some(v) = &f.client_id {
            s = s.filter(provider::Column::ClientId.eq(v.as_str()));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[provider::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[("name", provider::Column::Name)],
            (provider::Column::Name, false),
            provider::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: hydrate(&self.read, page.items).await?,
            count: page.count,
        })
    }

    /// Replaces every field of the provider `pk` but its pk and kind (which never change), its
    /// property mappings included.
    pub async fn update_provider(
        &self,
        pk: i32,
        p: Provider,
        actor: &Actor,
    ) -> Result<Provider, StoreError> {
        let txn = self.write.begin().await?;
        let old = provider_model(&txn, pk).await?;
        if old.kind != p.kind {
            return Err(invalid("kind"));
        }
        let mappings = check_references(&txn, &p).await?;
        let m = provider::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(old.id),
            kind: sea_orm::ActiveValue::Unchanged(old.kind),
            name: Set(p.name),
            authentication_flow: Set(p.authentication_flow),
            authorization_flow: Set(p.authorization_flow),
            invalidation_flow: Set(p.invalidation_flow),
            client_id: Set(p.client_id),
            config: Set(p.config),
        }
        .update(&txn)
        .await?;
        set_mappings(&txn, m.id, mappings).await?;
        record(
            &txn,
            self,
            actor,
            provider_event(EventAction::ModelUpdated, &m)?,
        )
        .await?;
        let updated = hydrate(&txn, vec![m]).await?;
        txn.commit().await?;
        updated.into_iter().next().ok_or(StoreError::NotFound)
    }

    /// Deletes the provider and its links to property mappings; the applications that used it
    /// are left without a provider (authentik's SET_NULL).
    pub async fn delete_provider(&self, pk: i32, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = provider_model(&txn, pk).await?;
        application::Entity::update_many()
            .col_expr(
                application::Column::ProviderId,
                sea_orm::sea_query::Expr::value(None::<i32>),
            )
            .filter(application::Column::ProviderId.eq(m.id))
            .exec(&txn)
            .await?;
        provider_property_mapping::Entity::delete_many()
            .filter(provider_property_mapping::Column::ProviderId.eq(m.id))
            .exec(&txn)
            .await?;
        provider::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            provider_event(EventAction::ModelDeleted, &m)?,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
