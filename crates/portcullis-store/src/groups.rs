//! Groups and membership. Invariants: names are unique; a group's parent chain never loops;
//! deleting a group removes its memberships and detaches its children.

use std::collections::HashMap;

use portcullis_core::{Actor, EventAction, Group, GroupPatch, NewEvent, NewGroup, Page, User};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::entity::{group, group_user, user};
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

/// The deepest parent chain accepted; deeper is treated as a loop.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupWithMembers {
    pub group: Group,
    pub parent_name: Option<String>,
    pub users: Vec<User>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub name: Option<String>,
    pub is_superuser: Option<bool>,
    /// Groups that have this user (pk) as a member.
    pub members_by_pk: Vec<i32>,
    pub members_by_username: Vec<String>,
}

pub(crate) fn group_to_domain(m: group::Model, parents: &HashMap<i32, (Uuid, String)>) -> Group {
    Group {
        uuid: m.uuid,
        num_pk: m.id,
        name: m.name,
        is_superuser: m.is_superuser,
        parent: m.parent_id.and_then(|p| parents.get(&p).map(|(u, _)| *u)),
        attributes: m.attributes,
    }
}

/// Which of `groups` make their members superusers: those that are superuser groups, and
/// those below one (walking up at most `MAX_DEPTH` levels, a level per query).
pub(crate) async fn superuser_groups<'a, C: ConnectionTrait>(
    db: &C,
    groups: impl Iterator<Item = &'a group::Model>,
) -> Result<std::collections::HashSet<i32>, StoreError> {
    let start: Vec<&group::Model> = groups.collect();
    let mut known: HashMap<i32, (bool, Option<i32>)> = start
        .iter()
        .map(|g| (g.id, (g.is_superuser, g.parent_id)))
        .collect();
    let mut frontier: Vec<i32> = known
        .values()
        .filter_map(|(_, p)| *p)
        .filter(|p| !known.contains_key(p))
        .collect();
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let found = group::Entity::find()
            .filter(group::Column::Id.is_in(frontier.clone()))
            .all(db)
            .await?;
        for g in &found {
            known.insert(g.id, (g.is_superuser, g.parent_id));
        }
        frontier = found
            .iter()
            .filter_map(|g| g.parent_id)
            .filter(|p| !known.contains_key(p))
            .collect();
        frontier.sort_unstable();
        frontier.dedup();
    }
    let mut out = std::collections::HashSet::new();
    for g in start {
        let mut cursor = Some(g.id);
        for _ in 0..=MAX_DEPTH {
            let Some(id) = cursor else { break };
            let Some((su, parent)) = known.get(&id) else {
                break;
            };
            if *su {
                out.insert(g.id);
                break;
            }
            cursor = *parent;
        }
    }
    Ok(out)
}

/// Uuid and name of the parents of `groups`, in one query.
pub(crate) async fn parent_uuids<'a, C: ConnectionTrait>(
    db: &C,
    groups: impl Iterator<Item = &'a group::Model>,
) -> Result<HashMap<i32, (Uuid, String)>, StoreError> {
    let ids: Vec<i32> = groups.filter_map(|g| g.parent_id).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(group::Entity::find()
        .filter(group::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|g| (g.id, (g.uuid, g.name)))
        .collect())
}

async fn find_model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<group::Model, StoreError> {
    group::Entity::find()
        .filter(group::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn members_of<C: ConnectionTrait>(
    db: &C,
    group_ids: &[i32],
) -> Result<HashMap<i32, Vec<User>>, StoreError> {
    let mut out: HashMap<i32, Vec<User>> = HashMap::new();
    if group_ids.is_empty() {
        return Ok(out);
    }
    let links = group_user::Entity::find()
        .filter(group_user::Column::GroupId.is_in(group_ids.iter().copied()))
        .all(db)
        .await?;
    let user_ids: Vec<i32> = links.iter().map(|l| l.user_id).collect();
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(user_ids.clone()))
        .all(db)
        .await?;
    let mut user_groups = crate::users::groups_of(db, &user_ids).await?;
    let mut by_id: HashMap<i32, User> = HashMap::new();
    for u in users {
        let id = u.id;
        let g = user_groups.remove(&id).unwrap_or_default();
        by_id.insert(id, crate::users::to_domain(u, g)?.user);
    }
    for l in links {
        if let Some(u) = by_id.get(&l.user_id) {
            out.entry(l.group_id).or_default().push(u.clone());
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|u| u.pk);
    }
    Ok(out)
}

async fn load<C: ConnectionTrait>(db: &C, m: group::Model) -> Result<GroupWithMembers, StoreError> {
    let parents = parent_uuids(db, std::iter::once(&m)).await?;
    let mut members = members_of(db, &[m.id]).await?;
    let users = members.remove(&m.id).unwrap_or_default();
    let parent_name = m
        .parent_id
        .and_then(|p| parents.get(&p).map(|(_, n)| n.clone()));
    Ok(GroupWithMembers {
        group: group_to_domain(m, &parents),
        parent_name,
        users,
    })
}

/// Resolves a parent uuid to its id, refusing unknown parents and loops through `self_id`.
async fn resolve_parent<C: ConnectionTrait>(
    db: &C,
    parent: Option<Uuid>,
    self_id: Option<i32>,
) -> Result<Option<i32>, StoreError> {
    let Some(parent) = parent else {
        return Ok(None);
    };
    let p = group::Entity::find()
        .filter(group::Column::Uuid.eq(parent))
        .one(db)
        .await?
        .ok_or(StoreError::InvalidReference {
            field: "parent".to_owned(),
        })?;
    let mut cursor = Some(p.clone());
    let mut depth = 0;
    while let Some(g) = cursor {
        if Some(g.id) == self_id || depth > MAX_DEPTH {
            return Err(StoreError::InvalidReference {
                field: "parent".to_owned(),
            });
        }
        depth += 1;
        cursor = match g.parent_id {
            Some(pid) => group::Entity::find_by_id(pid).one(db).await?,
            None => None,
        };
    }
    Ok(Some(p.id))
}

async fn set_users<C: ConnectionTrait>(
    db: &C,
    group_id: i32,
    users: &[i32],
) -> Result<(), StoreError> {
    let mut wanted = users.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let found = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.is_in(wanted.clone()))
        .into_tuple::<i32>()
        .all(db)
        .await?;
    if found.len() != wanted.len() {
        return Err(StoreError::InvalidReference {
            field: "users".to_owned(),
        });
    }
    group_user::Entity::delete_many()
        .filter(group_user::Column::GroupId.eq(group_id))
        .exec(db)
        .await?;
    if !wanted.is_empty() {
        group_user::Entity::insert_many(wanted.iter().map(|u| group_user::ActiveModel {
            group_id: Set(group_id),
            user_id: Set(*u),
        }))
        .exec(db)
        .await?;
    }
    Ok(())
}

fn group_event(action: EventAction, g: &group::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_core",
        "group",
        &g.uuid.to_string(),
        &g.name,
    )
}

impl Store {
    pub async fn create_group(
        &self,
        new: NewGroup,
        actor: &Actor,
    ) -> Result<GroupWithMembers, StoreError> {
        let txn = self.write.begin().await?;
        let parent_id = resolve_parent(&txn, new.parent, None).await?;
        let m = group::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            name: Set(new.name),
            is_superuser: Set(new.is_superuser),
            parent_id: Set(parent_id),
            attributes: Set(new.attributes),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        set_users(&txn, m.id, &new.users).await?;
        record(
            &txn,
            self,
            actor,
            group_event(EventAction::ModelCreated, &m),
        )
        .await?;
        let out = load(&txn, m).await?;
        txn.commit().await?;
        Ok(out)
    }

    pub async fn find_group(&self, uuid: Uuid) -> Result<GroupWithMembers, StoreError> {
        let m = find_model(&self.read, uuid).await?;
        load(&self.read, m).await
    }

    pub async fn find_group_by_name(&self, name: &str) -> Result<GroupWithMembers, StoreError> {
        let m = group::Entity::find()
            .filter(group::Column::Name.eq(name))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        load(&self.read, m).await
    }

    pub async fn list_groups(
        &self,
        filter: &GroupFilter,
        q: &ListQuery,
    ) -> Result<Page<GroupWithMembers>, StoreError> {
        let mut s = group::Entity::find();
        if let Some(n) = &filter.name {
            s = s.filter(group::Column::Name.eq(n.as_str()));
        }
        if let Some(v) = filter.is_superuser {
            s = s.filter(group::Column::IsSuperuser.eq(v));
        }
        if !filter.members_by_pk.is_empty() || !filter.members_by_username.is_empty() {
            let uq = user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .filter(
                    sea_orm::Condition::any()
                        .add(user::Column::Id.is_in(filter.members_by_pk.iter().copied()))
                        .add(
                            user::Column::Username
                                .is_in(filter.members_by_username.iter().map(String::as_str)),
                        ),
                );
            let gids = group_user::Entity::find()
                .select_only()
                .column(group_user::Column::GroupId)
                .filter(
                    group_user::Column::UserId.in_subquery(sea_orm::QueryTrait::into_query(uq)),
                );
            s = s.filter(group::Column::Id.in_subquery(sea_orm::QueryTrait::into_query(gids)));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[group::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("name", group::Column::Name),
                ("is_superuser", group::Column::IsSuperuser),
            ],
            (group::Column::Name, false),
            group::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        let parents = parent_uuids(&self.read, page.items.iter()).await?;
        let ids: Vec<i32> = page.items.iter().map(|g| g.id).collect();
        let mut members = members_of(&self.read, &ids).await?;
        let items = page
            .items
            .into_iter()
            .map(|m| {
                let users = members.remove(&m.id).unwrap_or_default();
                let parent_name = m
                    .parent_id
                    .and_then(|p| parents.get(&p).map(|(_, n)| n.clone()));
                GroupWithMembers {
                    group: group_to_domain(m, &parents),
                    parent_name,
                    users,
                }
            })
            .collect();
        Ok(Page {
            items,
            count: page.count,
        })
    }

    pub async fn update_group(
        &self,
        uuid: Uuid,
        patch: GroupPatch,
        actor: &Actor,
    ) -> Result<GroupWithMembers, StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, uuid).await?;
        let id = m.id;
        let mut am = m.into_active_model();
        if let Some(v) = patch.name {
            am.name = Set(v);
        }
        if let Some(v) = patch.is_superuser {
            am.is_superuser = Set(v);
        }
        if let Some(v) = patch.attributes {
            am.attributes = Set(v);
        }
        if let Some(parent) = patch.parent {
            am.parent_id = Set(resolve_parent(&txn, parent, Some(id)).await?);
        }
        let m = am.update(&txn).await?;
        if let Some(users) = patch.users {
            set_users(&txn, id, &users).await?;
        }
        record(
            &txn,
            self,
            actor,
            group_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        let out = load(&txn, m).await?;
        txn.commit().await?;
        Ok(out)
    }

    pub async fn delete_group(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, uuid).await?;
        // Detach children and memberships explicitly: both databases, whatever the FK mode.
        group::Entity::update_many()
            .col_expr(
                group::Column::ParentId,
                sea_orm::sea_query::Expr::value(Option::<i32>::None),
            )
            .filter(group::Column::ParentId.eq(m.id))
            .exec(&txn)
            .await?;
        group_user::Entity::delete_many()
            .filter(group_user::Column::GroupId.eq(m.id))
            .exec(&txn)
            .await?;
        group::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            group_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Adds a user to a group; adding a member again changes nothing.
    pub async fn add_user_to_group(
        &self,
        uuid: Uuid,
        user_pk: i32,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.change_membership(uuid, user_pk, true, actor).await
    }

    /// Removes a user from a group; removing a non-member changes nothing.
    pub async fn remove_user_from_group(
        &self,
        uuid: Uuid,
        user_pk: i32,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.change_membership(uuid, user_pk, false, actor).await
    }

    async fn change_membership(
        &self,
        uuid: Uuid,
        user_pk: i32,
        add: bool,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let g = find_model(&txn, uuid).await?;
        user::Entity::find_by_id(user_pk)
            .one(&txn)
            .await?
            .ok_or(StoreError::InvalidReference {
                field: "pk".to_owned(),
            })?;
        let existing = group_user::Entity::find_by_id((g.id, user_pk))
            .one(&txn)
            .await?;
        match (add, existing) {
            (true, None) => {
                let inserted = group_user::ActiveModel {
                    group_id: Set(g.id),
                    user_id: Set(user_pk),
                }
                .insert(&txn)
                .await;
                match inserted.map_err(StoreError::from) {
                    Ok(_) => {}
                    // A concurrent request added the same member first: nothing left to do.
                    Err(StoreError::Conflict { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            (false, Some(_)) => {
                group_user::Entity::delete_by_id((g.id, user_pk))
                    .exec(&txn)
                    .await?;
            }
            _ => return Ok(()),
        }
        record(
            &txn,
            self,
            actor,
            group_event(EventAction::ModelUpdated, &g),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

impl Store {
    /// The direct children of a group.
    pub async fn list_group_children(&self, uuid: Uuid) -> Result<Vec<Group>, StoreError> {
        let parent = find_model(&self.read, uuid).await?;
        let children = group::Entity::find()
            .filter(group::Column::ParentId.eq(parent.id))
            .all(&self.read)
            .await?;
        let mut parents = HashMap::new();
        parents.insert(parent.id, (parent.uuid, parent.name));
        let mut out: Vec<Group> = children
            .into_iter()
            .map(|c| group_to_domain(c, &parents))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
