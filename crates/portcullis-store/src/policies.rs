//! Policies of every type and their bindings. Invariants: policy names are unique; a binding
//! names exactly one of policy, group and user (checked here), each of which exists (foreign
//! keys, cascading on delete); a binding's `target` is a flow's or stage binding's `pbm_uuid` or
//! an application's uuid (checked here on write).

use portcullis_core::{Actor, EventAction, NewEvent, Page, Policy, PolicyBinding};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::entity::{application, flow, flow_stage_binding, group, policy, policy_binding, user};
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFilter {
    pub name: Option<String>,
    pub kinds: Vec<String>,
    /// Only policies bound to nothing (authentik's `bindings__isnull`).
    pub unbound: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyBindingFilter {
    pub target: Option<Uuid>,
    pub policy: Option<Uuid>,
    pub group: Option<Uuid>,
    pub user: Option<i32>,
    pub enabled: Option<bool>,
    pub order: Option<i32>,
}

fn policy_to_domain(m: policy::Model) -> Policy {
    Policy {
        uuid: m.uuid,
        name: m.name,
        kind: m.kind,
        execution_logging: m.execution_logging,
        config: m.config,
    }
}

fn binding_to_domain(m: policy_binding::Model) -> PolicyBinding {
    PolicyBinding {
        uuid: m.uuid,
        target: m.target,
        policy: m.policy,
        group: m.group,
        user: m.user_id,
        negate: m.negate,
        enabled: m.enabled,
        order: m.order,
        timeout: m.timeout,
        failure_result: m.failure_result,
    }
}

/// authentik's app label of a policy kind: `expressionpolicy` → `authentik_policies_expression`.
pub fn policy_app_label(kind: &str) -> String {
    let base = match kind {
        "passwordexpirypolicy" => "expiry",
        "eventmatcherpolicy" => "event_matcher",
        other => other.strip_suffix("policy").unwrap_or(other),
    };
    format!("authentik_policies_{base}")
}

fn policy_event(action: EventAction, m: &policy::Model) -> NewEvent {
    NewEvent::model(
        action,
        &policy_app_label(&m.kind),
        &m.kind,
        &m.uuid.to_string(),
        &m.name,
    )
}

fn binding_event(action: EventAction, m: &policy_binding::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_policies",
        "policybinding",
        &m.uuid.to_string(),
        &format!("Binding from {} #{}", m.target, m.order),
    )
}

async fn policy_model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<policy::Model, StoreError> {
    policy::Entity::find()
        .filter(policy::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn binding_model<C: ConnectionTrait>(
    db: &C,
    uuid: Uuid,
) -> Result<policy_binding::Model, StoreError> {
    policy_binding::Entity::find()
        .filter(policy_binding::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

fn invalid(field: &str) -> StoreError {
    StoreError::InvalidReference {
        field: field.to_owned(),
    }
}

/// Checks what a binding refers to, naming the offending field.
async fn check_binding<C: ConnectionTrait>(db: &C, b: &PolicyBinding) -> Result<(), StoreError> {
    let set = [b.policy.is_some(), b.group.is_some(), b.user.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if set != 1 {
        return Err(invalid("non_field_errors"));
    }
    let target_exists = flow::Entity::find()
        .filter(flow::Column::PbmUuid.eq(b.target))
        .one(db)
        .await?
        .is_some()
        || flow_stage_binding::Entity::find()
            .filter(flow_stage_binding::Column::PbmUuid.eq(b.target))
            .one(db)
            .await?
            .is_some()
        || application::Entity::find()
            .filter(application::Column::Uuid.eq(b.target))
            .one(db)
            .await?
            .is_some();
    if !target_exists {
        return Err(invalid("target"));
    }
    if let Some(p) = b.policy {
        policy_model(db, p).await.map_err(|_| invalid("policy"))?;
    }
    if let Some(g) = b.group
        && group::Entity::find()
            .filter(group::Column::Uuid.eq(g))
            .one(db)
            .await?
            .is_none()
    {
        return Err(invalid("group"));
    }
    if let Some(u) = b.user
        && user::Entity::find_by_id(u).one(db).await?.is_none()
    {
        return Err(invalid("user"));
    }
    Ok(())
}

fn binding_active(b: &PolicyBinding) -> policy_binding::ActiveModel {
    policy_binding::ActiveModel {
        target: Set(b.target),
        policy: Set(b.policy),
        group: Set(b.group),
        user_id: Set(b.user),
        negate: Set(b.negate),
        enabled: Set(b.enabled),
        order: Set(b.order),
        timeout: Set(b.timeout),
        failure_result: Set(b.failure_result),
        ..Default::default()
    }
}

impl Store {
    pub async fn create_policy(&self, p: Policy, actor: &Actor) -> Result<Policy, StoreError> {
        let txn = self.write.begin().await?;
        let m = policy::ActiveModel {
            uuid: Set(if p.uuid.is_nil() {
                Uuid::new_v4()
            } else {
                p.uuid
            }),
            name: Set(p.name),
            kind: Set(p.kind),
            execution_logging: Set(p.execution_logging),
            config: Set(p.config),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            policy_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(policy_to_domain(m))
    }

    pub async fn find_policy(&self, uuid: Uuid) -> Result<Policy, StoreError> {
        Ok(policy_to_domain(policy_model(&self.read, uuid).await?))
    }

    pub async fn find_policy_by_name(&self, name: &str) -> Result<Policy, StoreError> {
        let m = policy::Entity::find()
            .filter(policy::Column::Name.eq(name))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(policy_to_domain(m))
    }

    pub async fn list_policies(
        &self,
        f: &PolicyFilter,
        q: &ListQuery,
    ) -> Result<Page<Policy>, StoreError> {
        let mut s = policy::Entity::find();
        if let Some(v) = &f.name {
            s = s.filter(policy::Column::Name.eq(v.as_str()));
        }
        if !f.kinds.is_empty() {
            s = s.filter(policy::Column::Kind.is_in(f.kinds.clone()));
        }
        if let Some(unbound) = f.unbound {
            let bound: Vec<Uuid> = policy_binding::Entity::find()
                .filter(policy_binding::Column::Policy.is_not_null())
                .all(&self.read)
                .await?
                .into_iter()
                .filter_map(|b| b.policy)
                .collect();
            s = if unbound {
                s.filter(policy::Column::Uuid.is_not_in(bound))
            } else {
                s.filter(policy::Column::Uuid.is_in(bound))
            };
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[policy::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[("name", policy::Column::Name)],
            (policy::Column::Name, false),
            policy::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(policy_to_domain).collect(),
            count: page.count,
        })
    }

    /// How many bindings use the policy (authentik's `bound_to`).
    pub async fn policy_bound_to(&self, uuid: Uuid) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(policy_binding::Entity::find()
            .filter(policy_binding::Column::Policy.eq(uuid))
            .count(&self.read)
            .await?)
    }

    /// Replaces the policy's name, logging flag and settings (its kind never changes).
    pub async fn update_policy(
        &self,
        uuid: Uuid,
        p: Policy,
        actor: &Actor,
    ) -> Result<Policy, StoreError> {
        let txn = self.write.begin().await?;
        let old = policy_model(&txn, uuid).await?;
        if old.kind != p.kind {
            return Err(invalid("kind"));
        }
        let m = policy::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(old.id),
            uuid: sea_orm::ActiveValue::Unchanged(old.uuid),
            kind: sea_orm::ActiveValue::Unchanged(old.kind),
            name: Set(p.name),
            execution_logging: Set(p.execution_logging),
            config: Set(p.config),
        }
        .update(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            policy_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(policy_to_domain(m))
    }

    /// Deletes the policy and (by foreign key) its bindings.
    pub async fn delete_policy(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = policy_model(&txn, uuid).await?;
        policy_binding::Entity::delete_many()
            .filter(policy_binding::Column::Policy.eq(uuid))
            .exec(&txn)
            .await?;
        policy::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            policy_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn create_policy_binding(
        &self,
        b: PolicyBinding,
        actor: &Actor,
    ) -> Result<PolicyBinding, StoreError> {
        let txn = self.write.begin().await?;
        check_binding(&txn, &b).await?;
        let mut am = binding_active(&b);
        am.uuid = Set(if b.uuid.is_nil() {
            Uuid::new_v4()
        } else {
            b.uuid
        });
        let m = am.insert(&txn).await?;
        record(
            &txn,
            self,
            actor,
            binding_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(binding_to_domain(m))
    }

    pub async fn find_policy_binding(&self, uuid: Uuid) -> Result<PolicyBinding, StoreError> {
        Ok(binding_to_domain(binding_model(&self.read, uuid).await?))
    }

    pub async fn list_policy_bindings(
        &self,
        f: &PolicyBindingFilter,
        q: &ListQuery,
    ) -> Result<Page<PolicyBinding>, StoreError> {
        let mut s = policy_binding::Entity::find();
        if let Some(v) = f.target {
            s = s.filter(policy_binding::Column::Target.eq(v));
        }
        if let Some(v) = f.policy {
            s = s.filter(policy_binding::Column::Policy.eq(v));
        }
        if let Some(v) = f.group {
            s = s.filter(policy_binding::Column::Group.eq(v));
        }
        if let Some(v) = f.user {
            s = s.filter(policy_binding::Column::UserId.eq(v));
        }
        if let Some(v) = f.enabled {
            s = s.filter(policy_binding::Column::Enabled.eq(v));
        }
        if let Some(v) = f.order {
            s = s.filter(policy_binding::Column::Order.eq(v));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("order", policy_binding::Column::Order),
                ("target", policy_binding::Column::Target),
                ("pk", policy_binding::Column::Uuid),
            ],
            (policy_binding::Column::Order, false),
            policy_binding::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(binding_to_domain).collect(),
            count: page.count,
        })
    }

    /// Every binding guarding `target`, by order, each with its policy when it binds one: what
    /// the policy engine evaluates.
    pub async fn policy_bindings_for(
        &self,
        target: Uuid,
    ) -> Result<Vec<(PolicyBinding, Option<Policy>)>, StoreError> {
        let bindings = policy_binding::Entity::find()
            .filter(policy_binding::Column::Target.eq(target))
            .order_by_asc(policy_binding::Column::Order)
            .order_by_asc(policy_binding::Column::Id)
            .all(&self.read)
            .await?;
        if bindings.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Uuid> = bindings.iter().filter_map(|b| b.policy).collect();
        let policies = if wanted.is_empty() {
            Vec::new()
        } else {
            policy::Entity::find()
                .filter(policy::Column::Uuid.is_in(wanted))
                .all(&self.read)
                .await?
        };
        Ok(bindings
            .into_iter()
            .map(|b| {
                let p = b
                    .policy
                    .and_then(|u| policies.iter().find(|p| p.uuid == u).cloned())
                    .map(policy_to_domain);
                (binding_to_domain(b), p)
            })
            .collect())
    }

    pub async fn update_policy_binding(
        &self,
        uuid: Uuid,
        b: PolicyBinding,
        actor: &Actor,
    ) -> Result<PolicyBinding, StoreError> {
        let txn = self.write.begin().await?;
        let old = binding_model(&txn, uuid).await?;
        check_binding(&txn, &b).await?;
        let mut am = binding_active(&b);
        am.id = sea_orm::ActiveValue::Unchanged(old.id);
        am.uuid = sea_orm::ActiveValue::Unchanged(old.uuid);
        let m = am.update(&txn).await?;
        record(
            &txn,
            self,
            actor,
            binding_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(binding_to_domain(m))
    }

    pub async fn delete_policy_binding(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = binding_model(&txn, uuid).await?;
        policy_binding::Entity::delete_by_id(m.id)
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
