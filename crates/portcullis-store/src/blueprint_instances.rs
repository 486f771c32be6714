//! Blueprint instances. Invariants: at most one instance per path (files and built-ins);
//! recording the outcome of an apply is bookkeeping, not configuration, so it records no event,
//! while creating, changing or deleting an instance through the API does.

use portcullis_core::{Actor, BlueprintInstance, BlueprintStatus, EventAction, NewEvent, Page};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::blueprint_instance as bi;
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

fn to_domain(m: bi::Model) -> Result<BlueprintInstance, StoreError> {
    Ok(BlueprintInstance {
        uuid: m.uuid,
        status: BlueprintStatus::parse(&m.status)
            .ok_or_else(|| StoreError::Corrupt(format!("blueprint instance {} status", m.uuid)))?,
        name: m.name,
        path: m.path,
        context: m.context,
        last_applied: m.last_applied,
        last_applied_hash: m.last_applied_hash,
        enabled: m.enabled,
        managed_models: serde_json::from_value(m.managed_models).unwrap_or_default(),
        metadata: m.metadata,
        content: m.content,
        last_error: m.last_error,
    })
}

fn instance_event(action: EventAction, m: &bi::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_blueprints",
        "blueprintinstance",
        &m.uuid.to_string(),
        &m.name,
    )
}

async fn find_model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<bi::Model, StoreError> {
    bi::Entity::find()
        .filter(bi::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// What a new instance is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBlueprintInstance {
    pub name: String,
    pub path: String,
    pub context: serde_json::Value,
    pub enabled: bool,
    pub content: Option<String>,
}

/// A change to an instance's configuration; `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlueprintInstancePatch {
    pub name: Option<String>,
    pub path: Option<String>,
    pub context: Option<serde_json::Value>,
    pub enabled: Option<bool>,
    pub content: Option<Option<String>>,
}

/// The outcome of an apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    pub status: BlueprintStatus,
    pub hash: String,
    pub managed_models: Vec<String>,
    pub metadata: serde_json::Value,
    pub error: Option<String>,
}

impl Store {
    /// Adds an instance; `actor` is `None` for instances the server discovers itself (no event).
    pub async fn create_blueprint_instance(
        &self,
        new: NewBlueprintInstance,
        actor: Option<&Actor>,
    ) -> Result<BlueprintInstance, StoreError> {
        let txn = self.write.begin().await?;
        let m = bi::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            name: Set(new.name),
            path: Set(new.path),
            context: Set(new.context),
            last_applied: Set(self.clock.now()),
            last_applied_hash: Set(String::new()),
            status: Set(BlueprintStatus::Unknown.as_str().to_owned()),
            enabled: Set(new.enabled),
            managed_models: Set(serde_json::json!([])),
            metadata: Set(serde_json::json!({})),
            content: Set(new.content),
            last_error: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        if let Some(actor) = actor {
            record(
                &txn,
                self,
                actor,
                instance_event(EventAction::ModelCreated, &m),
            )
            .await?;
        }
        txn.commit().await?;
        to_domain(m)
    }

    pub async fn find_blueprint_instance(
        &self,
        uuid: Uuid,
    ) -> Result<BlueprintInstance, StoreError> {
        to_domain(find_model(&self.read, uuid).await?)
    }

    pub async fn find_blueprint_instance_by_path(
        &self,
        path: &str,
    ) -> Result<BlueprintInstance, StoreError> {
        let m = bi::Entity::find()
            .filter(bi::Column::Path.eq(path))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        to_domain(m)
    }

    pub async fn list_blueprint_instances(
        &self,
        name: Option<&str>,
        path: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<BlueprintInstance>, StoreError> {
        let mut s = bi::Entity::find();
        if let Some(n) = name {
            s = s.filter(bi::Column::Name.eq(n));
        }
        if let Some(p) = path {
            s = s.filter(bi::Column::Path.eq(p));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(
                term,
                &[bi::Column::Name, bi::Column::Path],
            ));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("name", bi::Column::Name),
                ("path", bi::Column::Path),
                ("last_applied", bi::Column::LastApplied),
            ],
            (bi::Column::Name, false),
            bi::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(to_domain)
                .collect::<Result<_, _>>()?,
            count: page.count,
        })
    }

    /// All instances (there are few), for discovery.
    pub async fn all_blueprint_instances(&self) -> Result<Vec<BlueprintInstance>, StoreError> {
        bi::Entity::find()
            .all(&self.read)
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    pub async fn update_blueprint_instance(
        &self,
        uuid: Uuid,
        p: BlueprintInstancePatch,
        actor: &Actor,
    ) -> Result<BlueprintInstance, StoreError> {
        let txn = self.write.begin().await?;
        let mut am = find_model(&txn, uuid).await?.into_active_model();
        if let Some(v) = p.name {
            am.name = Set(v);
        }
        if let Some(v) = p.path {
            am.path = Set(v);
        }
        if let Some(v) = p.context {
            am.context = Set(v);
        }
        if let Some(v) = p.enabled {
            am.enabled = Set(v);
        }
        if let Some(v) = p.content {
            am.content = Set(v);
        }
        // A changed configuration must apply again.
        am.last_applied_hash = Set(String::new());
        let m = am.update(&txn).await?;
        record(
            &txn,
            self,
            actor,
            instance_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        to_domain(m)
    }

    /// Records how an apply went (no event: this is the server's bookkeeping).
    pub async fn record_blueprint_outcome(
        &self,
        uuid: Uuid,
        outcome: ApplyOutcome,
    ) -> Result<BlueprintInstance, StoreError> {
        let mut am = find_model(&self.write, uuid).await?.into_active_model();
        am.status = Set(outcome.status.as_str().to_owned());
        am.last_applied_hash = Set(outcome.hash);
        am.last_applied = Set(self.clock.now());
        am.managed_models = Set(serde_json::json!(outcome.managed_models));
        am.metadata = Set(outcome.metadata);
        am.last_error = Set(outcome.error);
        to_domain(am.update(&self.write).await?)
    }

    /// Marks an instance whose file is gone.
    pub async fn mark_blueprint_orphaned(&self, uuid: Uuid) -> Result<(), StoreError> {
        let mut am = find_model(&self.write, uuid).await?.into_active_model();
        am.status = Set(BlueprintStatus::Orphaned.as_str().to_owned());
        am.update(&self.write).await?;
        Ok(())
    }

    pub async fn delete_blueprint_instance(
        &self,
        uuid: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, uuid).await?;
        bi::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            instance_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
