//! Prompt stage fields. Invariant: names are unique; settings are validated by the flow crate.

use portcullis_core::{Actor, EventAction, NewEvent, Page, Prompt};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::entity::prompt;
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

fn to_domain(m: prompt::Model) -> Prompt {
    Prompt {
        uuid: m.uuid,
        name: m.name,
        config: m.config,
    }
}

fn prompt_event(action: EventAction, m: &prompt::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_stages_prompt",
        "prompt",
        &m.uuid.to_string(),
        &m.name,
    )
}

async fn model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<prompt::Model, StoreError> {
    prompt::Entity::find()
        .filter(prompt::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

impl Store {
    pub async fn create_prompt(&self, p: Prompt, actor: &Actor) -> Result<Prompt, StoreError> {
        let txn = self.write.begin().await?;
        let m = prompt::ActiveModel {
            uuid: Set(if p.uuid.is_nil() {
                Uuid::new_v4()
            } else {
                p.uuid
            }),
            name: Set(p.name),
            config: Set(p.config),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            prompt_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    pub async fn find_prompt(&self, uuid: Uuid) -> Result<Prompt, StoreError> {
        Ok(to_domain(model(&self.read, uuid).await?))
    }

    pub async fn find_prompt_by_name(&self, name: &str) -> Result<Prompt, StoreError> {
        prompt::Entity::find()
            .filter(prompt::Column::Name.eq(name))
            .one(&self.read)
            .await?
            .map(to_domain)
            .ok_or(StoreError::NotFound)
    }

    /// The prompts with these uuids, in no particular order (missing ones are skipped).
    pub async fn find_prompts(&self, uuids: &[Uuid]) -> Result<Vec<Prompt>, StoreError> {
        if uuids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(prompt::Entity::find()
            .filter(prompt::Column::Uuid.is_in(uuids.to_vec()))
            .all(&self.read)
            .await?
            .into_iter()
            .map(to_domain)
            .collect())
    }

    pub async fn list_prompts(
        &self,
        name: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<Prompt>, StoreError> {
        let mut s = prompt::Entity::find();
        if let Some(v) = name {
            s = s.filter(prompt::Column::Name.eq(v));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[prompt::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[("name", prompt::Column::Name)],
            (prompt::Column::Name, false),
            prompt::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(to_domain).collect(),
            count: page.count,
        })
    }

    pub async fn update_prompt(
        &self,
        uuid: Uuid,
        p: Prompt,
        actor: &Actor,
    ) -> Result<Prompt, StoreError> {
        let txn = self.write.begin().await?;
        let old = model(&txn, uuid).await?;
        let m = prompt::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(old.id),
            uuid: sea_orm::ActiveValue::Unchanged(old.uuid),
            name: Set(p.name),
            config: Set(p.config),
        }
        .update(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            prompt_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    pub async fn delete_prompt(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = model(&txn, uuid).await?;
        prompt::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            prompt_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
