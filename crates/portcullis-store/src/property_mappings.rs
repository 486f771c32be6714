//! Property mappings of every kind. Invariants: names are unique; `managed`, when set, is
//! unique; `kind` is authentik's model name, one [`property_mapping_app_label`] knows, and never
//! changes; the expression and the kind's settings (`config`) are checked by their owners before
//! they get here. Deleting a mapping removes it from every provider that used it (foreign key).

use portcullis_core::{Actor, EventAction, NewEvent, Page, PropertyMapping};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::entity::{property_mapping, provider, provider_property_mapping};
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyMappingFilter {
    pub name: Option<String>,
    /// Only mappings of these kinds (empty: all).
    pub kinds: Vec<String>,
    /// Only managed (`Some(false)`) or unmanaged (`Some(true)`) mappings (authentik's
    /// `managed__isnull`).
    pub managed_is_null: Option<bool>,
}

/// authentik's (app label, model name) of a property mapping kind; `None` for kinds Portcullis
/// does not store yet.
pub fn property_mapping_app_label(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "scopemapping" => Some(("authentik_providers_oauth2", "scopemapping")),
        _ => None,
    }
}

fn invalid_kind() -> StoreError {
    StoreError::InvalidReference {
        field: "kind".into(),
    }
}

pub(crate) fn mapping_to_domain(m: property_mapping::Model) -> PropertyMapping {
    PropertyMapping {
        uuid: m.uuid,
        name: m.name,
        managed: m.managed,
        kind: m.kind,
        expression: m.expression,
        config: m.config,
    }
}

fn mapping_event(action: EventAction, m: &property_mapping::Model) -> Result<NewEvent, StoreError> {
    let (app, model) = property_mapping_app_label(&m.kind).ok_or_else(invalid_kind)?;
    Ok(NewEvent::model(
        action,
        app,
        model,
        &m.uuid.to_string(),
        &m.name,
    ))
}

async fn mapping_model<C: ConnectionTrait>(
    db: &C,
    uuid: Uuid,
) -> Result<property_mapping::Model, StoreError> {
    property_mapping::Entity::find()
        .filter(property_mapping::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

impl Store {
    pub async fn create_property_mapping(
        &self,
        p: PropertyMapping,
        actor: &Actor,
    ) -> Result<PropertyMapping, StoreError> {
        property_mapping_app_label(&p.kind).ok_or_else(invalid_kind)?;
        let txn = self.write.begin().await?;
        let m = property_mapping::ActiveModel {
            uuid: Set(if p.uuid.is_nil() {
                Uuid::new_v4()
            } else {
                p.uuid
            }),
            name: Set(p.name),
            managed: Set(p.managed),
            kind: Set(p.kind),
            expression: Set(p.expression),
            config: Set(p.config),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            mapping_event(EventAction::ModelCreated, &m)?,
        )
        .await?;
        txn.commit().await?;
        Ok(mapping_to_domain(m))
    }

    pub async fn find_property_mapping(&self, uuid: Uuid) -> Result<PropertyMapping, StoreError> {
        Ok(mapping_to_domain(mapping_model(&self.read, uuid).await?))
    }

    /// The mapping a blueprint manages under this key.
    pub async fn find_property_mapping_by_managed(
        &self,
        managed: &str,
    ) -> Result<PropertyMapping, StoreError> {
        let m = property_mapping::Entity::find()
            .filter(property_mapping::Column::Managed.eq(managed))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(mapping_to_domain(m))
    }

    pub async fn list_property_mappings(
        &self,
        f: &PropertyMappingFilter,
        q: &ListQuery,
    ) -> Result<Page<PropertyMapping>, StoreError> {
        let mut s = property_mapping::Entity::find();
        if let Some(v) = &f.name {
            s = s.filter(property_mapping::Column::Name.eq(v.as_str()));
        }
        if !f.kinds.is_empty() {
            s = s.filter(property_mapping::Column::Kind.is_in(f.kinds.clone()));
        }
        match f.managed_is_null {
            Some(true) => s = s.filter(property_mapping::Column::Managed.is_null()),
            Some(false) => s = s.filter(property_mapping::Column::Managed.is_not_null()),
            None => {}
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[property_mapping::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[("name", property_mapping::Column::Name)],
            (property_mapping::Column::Name, false),
            property_mapping::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(mapping_to_domain).collect(),
            count: page.count,
        })
    }

    /// The property mappings the provider `provider` (its pk) uses, ordered by name.
    pub async fn list_property_mappings_of(
        &self,
        provider: i32,
    ) -> Result<Vec<PropertyMapping>, StoreError> {
        provider::Entity::find_by_id(provider)
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(mappings_of(&self.read, &[provider])
            .await?
            .into_iter()
            .map(|(_, m)| mapping_to_domain(m))
            .collect())
    }

    /// Replaces the mapping's name, managed key, expression and settings (its uuid and kind
    /// never change).
    pub async fn update_property_mapping(
        &self,
        uuid: Uuid,
        p: PropertyMapping,
        actor: &Actor,
    ) -> Result<PropertyMapping, StoreError> {
        let txn = self.write.begin().await?;
        let old = mapping_model(&txn, uuid).await?;
        if old.kind != p.kind {
            return Err(invalid_kind());
        }
        let m = property_mapping::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(old.id),
            uuid: sea_orm::ActiveValue::Unchanged(old.uuid),
            kind: sea_orm::ActiveValue::Unchanged(old.kind),
            name: Set(p.name),
            managed: Set(p.managed),
            expression: Set(p.expression),
            config: Set(p.config),
        }
        .update(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            mapping_event(EventAction::ModelUpdated, &m)?,
        )
        .await?;
        txn.commit().await?;
        Ok(mapping_to_domain(m))
    }

    /// Deletes the mapping and its links to providers.
    pub async fn delete_property_mapping(
        &self,
        uuid: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = mapping_model(&txn, uuid).await?;
        provider_property_mapping::Entity::delete_many()
            .filter(provider_property_mapping::Column::MappingId.eq(m.id))
            .exec(&txn)
            .await?;
        property_mapping::Entity::delete_by_id(m.id)
            .exec(&txn)
            .await?;
        record(
            &txn,
            self,
            actor,
            mapping_event(EventAction::ModelDeleted, &m)?,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

/// The mappings linked to each of `providers` (their ids), as (provider id, mapping) pairs
/// ordered by mapping name (then id).
pub(crate) async fn mappings_of<C: ConnectionTrait>(
    db: &C,
    providers: &[i32],
) -> Result<Vec<(i32, property_mapping::Model)>, StoreError> {
    if providers.is_empty() {
        return Ok(Vec::new());
    }
    let links = provider_property_mapping::Entity::find()
        .filter(provider_property_mapping::Column::ProviderId.is_in(providers.to_vec()))
        .all(db)
        .await?;
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i32> = links.iter().map(|l| l.mapping_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mappings = property_mapping::Entity::find()
        .filter(property_mapping::Column::Id.is_in(ids))
        .order_by_asc(property_mapping::Column::Name)
        .order_by_asc(property_mapping::Column::Id)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(links.len());
    for m in mappings {
        for l in links.iter().filter(|l| l.mapping_id == m.id) {
            out.push((l.provider_id, m.clone()));
        }
    }
    Ok(out)
}
