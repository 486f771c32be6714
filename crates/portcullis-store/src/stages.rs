//! Stages of every type. Invariants: names are unique; `kind` is authentik's model name; the
//! type's settings (`config`) are validated by the flow crate before they get here. Deleting a
//! stage deletes its flow bindings (foreign key) and the policy bindings that guarded them.

use portcullis_core::{Actor, EventAction, NewEvent, Page, Stage};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::entity::{flow_stage_binding, stage};
use crate::events::record;
use crate::flows::delete_policy_bindings_of;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageFilter {
    pub name: Option<String>,
    /// Only stages of these kinds (empty: all).
    pub kinds: Vec<String>,
}

pub(crate) fn stage_to_domain(m: stage::Model) -> Result<Stage, StoreError> {
    Ok(Stage {
        uuid: m.uuid,
        name: m.name,
        kind: m.kind,
        config: m.config,
    })
}

/// authentik's app label of a stage kind: `identificationstage` → `authentik_stages_identification`.
pub fn stage_app_label(kind: &str) -> String {
    let base = match kind {
        "userloginstage" => "user_login",
        "userlogoutstage" => "user_logout",
        "userwritestage" => "user_write",
        other => other.strip_suffix("stage").unwrap_or(other),
    };
    format!("authentik_stages_{base}")
}

fn stage_event(action: EventAction, m: &stage::Model) -> NewEvent {
    NewEvent::model(
        action,
        &stage_app_label(&m.kind),
        &m.kind,
        &m.uuid.to_string(),
        &m.name,
    )
}

pub(crate) async fn stage_model<C: ConnectionTrait>(
    db: &C,
    uuid: Uuid,
) -> Result<stage::Model, StoreError> {
    stage::Entity::find()
        .filter(stage::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

impl Store {
    pub async fn create_stage(&self, s: Stage, actor: &Actor) -> Result<Stage, StoreError> {
        let txn = self.write.begin().await?;
        let m = stage::ActiveModel {
            uuid: Set(if s.uuid.is_nil() {
                Uuid::new_v4()
            } else {
                s.uuid
            }),
            name: Set(s.name),
            kind: Set(s.kind),
            config: Set(s.config),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            stage_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        stage_to_domain(m)
    }

    pub async fn find_stage(&self, uuid: Uuid) -> Result<Stage, StoreError> {
        stage_to_domain(stage_model(&self.read, uuid).await?)
    }

    pub async fn find_stage_by_name(&self, name: &str) -> Result<Stage, StoreError> {
        let m = stage::Entity::find()
            .filter(stage::Column::Name.eq(name))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        stage_to_domain(m)
    }

    pub async fn list_stages(
        &self,
        f: &StageFilter,
        q: &ListQuery,
    ) -> Result<Page<Stage>, StoreError> {
        let mut s = stage::Entity::find();
        if let Some(v) = &f.name {
            s = s.filter(stage::Column::Name.eq(v.as_str()));
        }
        if !f.kinds.is_empty() {
            s = s.filter(stage::Column::Kind.is_in(f.kinds.clone()));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[stage::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[("name", stage::Column::Name)],
            (stage::Column::Name, false),
            stage::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(stage_to_domain)
                .collect::<Result<_, _>>()?,
            count: page.count,
        })
    }

    /// The flows (uuids) each of these stages is bound in (authentik's `flow_set`).
    pub async fn stage_flows(&self, stage: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let mut flows: Vec<Uuid> = flow_stage_binding::Entity::find()
            .filter(flow_stage_binding::Column::Stage.eq(stage))
            .all(&self.read)
            .await?
            .into_iter()
            .map(|b| b.target)
            .collect();
        flows.sort();
        flows.dedup();
        Ok(flows)
    }

    /// Replaces the stage's name and settings (its kind never changes).
    pub async fn update_stage(
        &self,
        uuid: Uuid,
        s: Stage,
        actor: &Actor,
    ) -> Result<Stage, StoreError> {
        let txn = self.write.begin().await?;
        let old = stage_model(&txn, uuid).await?;
        if old.kind != s.kind {
            return Err(StoreError::InvalidReference {
                field: "kind".into(),
            });
        }
        let m = stage::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(old.id),
            uuid: sea_orm::ActiveValue::Unchanged(old.uuid),
            kind: sea_orm::ActiveValue::Unchanged(old.kind),
            name: Set(s.name),
            config: Set(s.config),
        }
        .update(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            stage_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        stage_to_domain(m)
    }

    pub async fn delete_stage(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = stage_model(&txn, uuid).await?;
        let bindings = flow_stage_binding::Entity::find()
            .filter(flow_stage_binding::Column::Stage.eq(uuid))
            .all(&txn)
            .await?;
        delete_policy_bindings_of(&txn, bindings.iter().map(|b| b.pbm_uuid).collect()).await?;
        flow_stage_binding::Entity::delete_many()
            .filter(flow_stage_binding::Column::Stage.eq(uuid))
            .exec(&txn)
            .await?;
        stage::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            stage_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
