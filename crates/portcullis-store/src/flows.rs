//! Flows and their stage bindings. Invariants: flow slugs are unique; a stage binding's flow and
//! stage exist (foreign keys, cascading); (flow, stage, order) is unique; deleting a flow or a
//! stage binding also deletes the policy bindings that guard it.

use portcullis_core::{
    Actor, DeniedAction, EventAction, Flow, FlowAuthentication, FlowDesignation, FlowLayout,
    FlowStageBinding, InvalidResponseAction, NewEvent, Page, PolicyEngineMode, Stage,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::entity::{flow, flow_stage_binding, policy_binding, stage};
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::stages::stage_to_domain;
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFilter {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub designation: Option<FlowDesignation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowBindingFilter {
    /// The flow's uuid.
    pub target: Option<Uuid>,
    pub stage: Option<Uuid>,
    pub order: Option<i32>,
}

fn corrupt(what: &str, slug: &str) -> StoreError {
    StoreError::Corrupt(format!("flow {slug}: {what}"))
}

fn flow_to_domain(m: flow::Model) -> Result<Flow, StoreError> {
    Ok(Flow {
        designation: FlowDesignation::parse(&m.designation)
            .ok_or_else(|| corrupt("designation", &m.slug))?,
        authentication: FlowAuthentication::parse(&m.authentication)
            .ok_or_else(|| corrupt("authentication", &m.slug))?,
        policy_engine_mode: PolicyEngineMode::parse(&m.policy_engine_mode)
            .ok_or_else(|| corrupt("policy_engine_mode", &m.slug))?,
        denied_action: DeniedAction::parse(&m.denied_action)
            .ok_or_else(|| corrupt("denied_action", &m.slug))?,
        layout: FlowLayout::parse(&m.layout).ok_or_else(|| corrupt("layout", &m.slug))?,
        uuid: m.uuid,
        pbm_uuid: m.pbm_uuid,
        name: m.name,
        slug: m.slug,
        title: m.title,
        background: m.background,
        compatibility_mode: m.compatibility_mode,
    })
}

fn binding_to_domain(m: flow_stage_binding::Model) -> Result<FlowStageBinding, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("flow stage binding {}: {what}", m.uuid));
    Ok(FlowStageBinding {
        invalid_response_action: InvalidResponseAction::parse(&m.invalid_response_action)
            .ok_or_else(|| bad("invalid_response_action"))?,
        policy_engine_mode: PolicyEngineMode::parse(&m.policy_engine_mode)
            .ok_or_else(|| bad("policy_engine_mode"))?,
        uuid: m.uuid,
        pbm_uuid: m.pbm_uuid,
        target: m.target,
        stage: m.stage,
        order: m.order,
        evaluate_on_plan: m.evaluate_on_plan,
        re_evaluate_policies: m.re_evaluate_policies,
    })
}

fn flow_event(action: EventAction, m: &flow::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_flows",
        "flow",
        &m.uuid.to_string(),
        &m.name,
    )
}

fn binding_event(action: EventAction, m: &flow_stage_binding::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_flows",
        "flowstagebinding",
        &m.uuid.to_string(),
        &format!("Flow-stage binding #{} to {}", m.order, m.target),
    )
}

fn new_uuid(u: Uuid) -> Uuid {
    if u.is_nil() { Uuid::new_v4() } else { u }
}

fn flow_active(f: &Flow) -> flow::ActiveModel {
    flow::ActiveModel {
        name: Set(f.name.clone()),
        slug: Set(f.slug.clone()),
        title: Set(f.title.clone()),
        designation: Set(f.designation.as_str().to_owned()),
        authentication: Set(f.authentication.as_str().to_owned()),
        policy_engine_mode: Set(f.policy_engine_mode.as_str().to_owned()),
        denied_action: Set(f.denied_action.as_str().to_owned()),
        layout: Set(f.layout.as_str().to_owned()),
        background: Set(f.background.clone()),
        compatibility_mode: Set(f.compatibility_mode),
        ..Default::default()
    }
}

fn binding_active(b: &FlowStageBinding) -> flow_stage_binding::ActiveModel {
    flow_stage_binding::ActiveModel {
        target: Set(b.target),
        stage: Set(b.stage),
        order: Set(b.order),
        evaluate_on_plan: Set(b.evaluate_on_plan),
        re_evaluate_policies: Set(b.re_evaluate_policies),
        invalid_response_action: Set(b.invalid_response_action.as_str().to_owned()),
        policy_engine_mode: Set(b.policy_engine_mode.as_str().to_owned()),
        ..Default::default()
    }
}

async fn flow_model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<flow::Model, StoreError> {
    flow::Entity::find()
        .filter(flow::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn binding_model<C: ConnectionTrait>(
    db: &C,
    uuid: Uuid,
) -> Result<flow_stage_binding::Model, StoreError> {
    flow_stage_binding::Entity::find()
        .filter(flow_stage_binding::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Deletes the policy bindings that guard any of `targets`.
pub(crate) async fn delete_policy_bindings_of<C: ConnectionTrait>(
    db: &C,
    targets: Vec<Uuid>,
) -> Result<(), StoreError> {
    if targets.is_empty() {
        return Ok(());
    }
    policy_binding::Entity::delete_many()
        .filter(policy_binding::Column::Target.is_in(targets))
        .exec(db)
        .await?;
    Ok(())
}

/// A flow's stage bindings, in order, each with its stage.
pub type PlannedBindings = Vec<(FlowStageBinding, Stage)>;

impl Store {
    pub async fn create_flow(&self, f: Flow, actor: &Actor) -> Result<Flow, StoreError> {
        let txn = self.write.begin().await?;
        let mut am = flow_active(&f);
        am.uuid = Set(new_uuid(f.uuid));
        am.pbm_uuid = Set(new_uuid(f.pbm_uuid));
        let m = am.insert(&txn).await?;
        record(&txn, self, actor, flow_event(EventAction::ModelCreated, &m)).await?;
        txn.commit().await?;
        flow_to_domain(m)
    }

    pub async fn find_flow(&self, uuid: Uuid) -> Result<Flow, StoreError> {
        flow_to_domain(flow_model(&self.read, uuid).await?)
    }

    pub async fn find_flow_by_slug(&self, slug: &str) -> Result<Flow, StoreError> {
        let m = flow::Entity::find()
            .filter(flow::Column::Slug.eq(slug))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        flow_to_domain(m)
    }

    /// The first flow (by slug) with this designation: the fallback when a brand names none.
    pub async fn find_flow_by_designation(
        &self,
        designation: FlowDesignation,
    ) -> Result<Option<Flow>, StoreError> {
        flow::Entity::find()
            .filter(flow::Column::Designation.eq(designation.as_str()))
            .order_by_asc(flow::Column::Slug)
            .one(&self.read)
            .await?
            .map(flow_to_domain)
            .transpose()
    }

    pub async fn list_flows(
        &self,
        f: &FlowFilter,
        q: &ListQuery,
    ) -> Result<Page<Flow>, StoreError> {
        let mut s = flow::Entity::find();
        if let Some(v) = &f.slug {
            s = s.filter(flow::Column::Slug.eq(v.as_str()));
        }
        if let Some(v) = &f.name {
            s = s.filter(flow::Column::Name.eq(v.as_str()));
        }
        if let Some(v) = f.designation {
            s = s.filter(flow::Column::Designation.eq(v.as_str()));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(
                term,
                &[flow::Column::Name, flow::Column::Slug, flow::Column::Title],
            ));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("slug", flow::Column::Slug),
                ("name", flow::Column::Name),
                ("designation", flow::Column::Designation),
                ("title", flow::Column::Title),
            ],
            (flow::Column::Slug, false),
            flow::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(flow_to_domain)
                .collect::<Result<_, _>>()?,
            count: page.count,
        })
    }

    /// Replaces every field of the flow `uuid` but its uuids.
    pub async fn update_flow(
        &self,
        uuid: Uuid,
        f: Flow,
        actor: &Actor,
    ) -> Result<Flow, StoreError> {
        let txn = self.write.begin().await?;
        let old = flow_model(&txn, uuid).await?;
        let mut am = flow_active(&f);
        am.id = sea_orm::ActiveValue::Unchanged(old.id);
        am.uuid = sea_orm::ActiveValue::Unchanged(old.uuid);
        am.pbm_uuid = sea_orm::ActiveValue::Unchanged(old.pbm_uuid);
        let m = am.update(&txn).await?;
        record(&txn, self, actor, flow_event(EventAction::ModelUpdated, &m)).await?;
        txn.commit().await?;
        flow_to_domain(m)
    }

    pub async fn delete_flow(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = flow_model(&txn, uuid).await?;
        let bindings = flow_stage_binding::Entity::find()
            .filter(flow_stage_binding::Column::Target.eq(uuid))
            .all(&txn)
            .await?;
        let mut targets: Vec<Uuid> = bindings.iter().map(|b| b.pbm_uuid).collect();
        targets.push(m.pbm_uuid);
        delete_policy_bindings_of(&txn, targets).await?;
        // Brands that named the flow fall back to the default flow (authentik's SET_NULL).
        {
            use crate::entity::brand::{Column as B, Entity as Brands};
            for column in [
                B::FlowAuthentication,
                B::FlowInvalidation,
                B::FlowRecovery,
                B::FlowUnenrollment,
                B::FlowUserSettings,
                B::FlowDeviceCode,
            ] {
                Brands::update_many()
                    .col_expr(column, sea_orm::sea_query::Expr::value(None::<Uuid>))
                    .filter(column.eq(uuid))
                    .exec(&txn)
                    .await?;
            }
        }
        // Providers that named it lose it through their columns' foreign keys (SET NULL).
        flow::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(&txn, self, actor, flow_event(EventAction::ModelDeleted, &m)).await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn create_flow_binding(
        &self,
        b: FlowStageBinding,
        actor: &Actor,
    ) -> Result<FlowStageBinding, StoreError> {
        let txn = self.write.begin().await?;
        // Named errors rather than a bare foreign-key failure.
        flow_model(&txn, b.target)
            .await
            .map_err(|_| StoreError::InvalidReference {
                field: "target".into(),
            })?;
        crate::stages::stage_model(&txn, b.stage)
            .await
            .map_err(|_| StoreError::InvalidReference {
                field: "stage".into(),
            })?;
        let mut am = binding_active(&b);
        am.uuid = Set(new_uuid(b.uuid));
        am.pbm_uuid = Set(new_uuid(b.pbm_uuid));
        let m = am.insert(&txn).await?;
        record(
            &txn,
            self,
            actor,
            binding_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        binding_to_domain(m)
    }

    pub async fn find_flow_binding(&self, uuid: Uuid) -> Result<FlowStageBinding, StoreError> {
        binding_to_domain(binding_model(&self.read, uuid).await?)
    }

    /// The binding whose `pbm_uuid` this is (what a policy binding's `target` names).
    pub async fn find_flow_binding_by_pbm(
        &self,
        pbm_uuid: Uuid,
    ) -> Result<Option<FlowStageBinding>, StoreError> {
        flow_stage_binding::Entity::find()
            .filter(flow_stage_binding::Column::PbmUuid.eq(pbm_uuid))
            .one(&self.read)
            .await?
            .map(binding_to_domain)
            .transpose()
    }

    /// The flow whose `pbm_uuid` this is.
    pub async fn find_flow_by_pbm(&self, pbm_uuid: Uuid) -> Result<Option<Flow>, StoreError> {
        flow::Entity::find()
            .filter(flow::Column::PbmUuid.eq(pbm_uuid))
            .one(&self.read)
            .await?
            .map(flow_to_domain)
            .transpose()
    }

    pub async fn list_flow_bindings(
        &self,
        f: &FlowBindingFilter,
        q: &ListQuery,
    ) -> Result<Page<FlowStageBinding>, StoreError> {
        let mut s = flow_stage_binding::Entity::find();
        if let Some(v) = f.target {
            s = s.filter(flow_stage_binding::Column::Target.eq(v));
        }
        if let Some(v) = f.stage {
            s = s.filter(flow_stage_binding::Column::Stage.eq(v));
        }
        if let Some(v) = f.order {
            s = s.filter(flow_stage_binding::Column::Order.eq(v));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("order", flow_stage_binding::Column::Order),
                ("target", flow_stage_binding::Column::Target),
                ("pk", flow_stage_binding::Column::Uuid),
            ],
            (flow_stage_binding::Column::Order, false),
            flow_stage_binding::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(binding_to_domain)
                .collect::<Result<_, _>>()?,
            count: page.count,
        })
    }

    /// Every stage binding of the flow `flow_uuid`, ordered by `order`, each with its stage.
    pub async fn flow_plan_bindings(&self, flow_uuid: Uuid) -> Result<PlannedBindings, StoreError> {
        let rows = flow_stage_binding::Entity::find()
            .filter(flow_stage_binding::Column::Target.eq(flow_uuid))
            .order_by_asc(flow_stage_binding::Column::Order)
            .order_by_asc(flow_stage_binding::Column::Id)
            .find_also_related_manual(&self.read)
            .await?;
        rows.into_iter()
            .map(|(b, s)| Ok((binding_to_domain(b)?, stage_to_domain(s)?)))
            .collect()
    }

    pub async fn update_flow_binding(
        &self,
        uuid: Uuid,
        b: FlowStageBinding,
        actor: &Actor,
    ) -> Result<FlowStageBinding, StoreError> {
        let txn = self.write.begin().await?;
        let old = binding_model(&txn, uuid).await?;
        flow_model(&txn, b.target)
            .await
            .map_err(|_| StoreError::InvalidReference {
                field: "target".into(),
            })?;
        crate::stages::stage_model(&txn, b.stage)
            .await
            .map_err(|_| StoreError::InvalidReference {
                field: "stage".into(),
            })?;
        let mut am = binding_active(&b);
        am.id = sea_orm::ActiveValue::Unchanged(old.id);
        am.uuid = sea_orm::ActiveValue::Unchanged(old.uuid);
        am.pbm_uuid = sea_orm::ActiveValue::Unchanged(old.pbm_uuid);
        let m = am.update(&txn).await?;
        record(
            &txn,
            self,
            actor,
            binding_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        binding_to_domain(m)
    }

    pub async fn delete_flow_binding(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = binding_model(&txn, uuid).await?;
        delete_policy_bindings_of(&txn, vec![m.pbm_uuid]).await?;
        flow_stage_binding::Entity::delete_by_id(m.id)
            .exec(&txn)
            .await?;
        record(
            &txn,
            self,
            actor,
            binding_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

/// Joins bindings to their stages without a declared relation (the entities keep none).
trait FindAlsoStage {
    async fn find_also_related_manual<C: ConnectionTrait>(
        self,
        db: &C,
    ) -> Result<Vec<(flow_stage_binding::Model, stage::Model)>, StoreError>;
}

impl FindAlsoStage for sea_orm::Select<flow_stage_binding::Entity> {
    async fn find_also_related_manual<C: ConnectionTrait>(
        self,
        db: &C,
    ) -> Result<Vec<(flow_stage_binding::Model, stage::Model)>, StoreError> {
        let bindings = self.all(db).await?;
        let uuids: Vec<Uuid> = bindings.iter().map(|b| b.stage).collect();
        let stages = stage::Entity::find()
            .filter(stage::Column::Uuid.is_in(uuids))
            .all(db)
            .await?;
        bindings
            .into_iter()
            .map(|b| {
                let s = stages
                    .iter()
                    .find(|s| s.uuid == b.stage)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("binding {}: stage", b.uuid)))?;
                Ok((b, s))
            })
            .collect()
    }
}
