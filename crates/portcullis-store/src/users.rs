//! Users and their passwords. Invariants: usernames are unique; a user's `is_superuser` is
//! true exactly when one of its groups is a superuser group; the password hash never leaves
//! this module except through `find_password_hash` and `find_user_for_login`, for a password
//! check. Writing a password counts as a change (`Store::changes`), so a per-request copy of a
//! user or hash read earlier is not used after it.

use std::collections::HashMap;

use portcullis_core::{
    Actor, EventAction, Group, NewEvent, NewUser, Page, User, UserPatch, UserType,
};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entity::{group, group_user, user};
use crate::events::record;
use crate::groups::group_to_domain;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

/// A user with the groups it belongs to, as most readers need both.
#[derive(Debug, Clone, PartialEq)]
pub struct UserWithGroups {
    pub user: User,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub pk: Option<i32>,
    pub uuid: Option<Uuid>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub is_active: Option<bool>,
    pub path: Option<String>,
    pub path_startswith: Option<String>,
    pub user_types: Vec<UserType>,
    /// Users in any of these groups (by name).
    pub groups_by_name: Vec<String>,
    /// Users in any of these groups (by uuid).
    pub groups_by_pk: Vec<Uuid>,
}

/// Marker stored instead of a hash when no password is set (Django's unusable password).
pub const UNUSABLE_PASSWORD: &str = "!";

/// Builds a user from its row, its direct groups, and whether any of those groups or their
/// ancestors is a superuser group (authentik inherits superuser status down the group tree).
pub(crate) fn to_domain(
    m: user::Model,
    (groups, is_superuser): (Vec<Group>, bool),
) -> Result<UserWithGroups, StoreError> {
    let user_type = UserType::parse(&m.user_type)
        .ok_or_else(|| StoreError::Corrupt(format!("user {} has type {:?}", m.id, m.user_type)))?;
    Ok(UserWithGroups {
        user: User {
            pk: m.id,
            uuid: m.uuid,
            username: m.username,
            name: m.name,
            email: m.email,
            is_active: m.is_active,
            last_login: m.last_login,
            date_joined: m.date_joined,
            password_change_date: m.password_change_date,
            last_updated: m.last_updated,
            attributes: m.attributes,
            path: m.path,
            user_type,
            is_superuser,
            has_password: !m.password.is_empty() && !m.password.starts_with(UNUSABLE_PASSWORD),
        },
        groups,
    })
}

/// The direct groups of many users (in a few queries), each with whether the user is a
/// superuser through one of them or one of their ancestors.
pub(crate) async fn groups_of<C: ConnectionTrait>(
    db: &C,
    user_ids: &[i32],
) -> Result<HashMap<i32, (Vec<Group>, bool)>, StoreError> {
    let mut out: HashMap<i32, (Vec<Group>, bool)> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(out);
    }
    let links = group_user::Entity::find()
        .filter(group_user::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?;
    if links.is_empty() {
        return Ok(out);
    }
    let group_ids: Vec<i32> = links.iter().map(|l| l.group_id).collect();
    let groups: HashMap<i32, group::Model> = group::Entity::find()
        .filter(group::Column::Id.is_in(group_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|g| (g.id, g))
        .collect();
    let parents = crate::groups::parent_uuids(db, groups.values()).await?;
    let superuser = crate::groups::superuser_groups(db, groups.values()).await?;
    for l in links {
        if let Some(g) = groups.get(&l.group_id) {
            let entry = out.entry(l.user_id).or_default();
            entry.0.push(group_to_domain(g.clone(), &parents));
            entry.1 |= superuser.contains(&g.id);
        }
    }
    for v in out.values_mut() {
        v.0.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(out)
}

/// User `pk` with its direct groups, in one query (the memberships joined in); the group tree
/// above them costs a query only when those groups have parents.
async fn load_by_id<C: ConnectionTrait>(db: &C, pk: i32) -> Result<UserWithGroups, StoreError> {
    Ok(load_by_id_with_hash(db, pk).await?.0)
}

/// [`load_by_id`], and the user's usable password hash from the same row.
async fn load_by_id_with_hash<C: ConnectionTrait>(
    db: &C,
    pk: i32,
) -> Result<(UserWithGroups, Option<String>), StoreError> {
    use sea_orm::{JoinType, RelationDef};
    let membership: RelationDef = group_user::Entity::belongs_to(user::Entity)
        .from(group_user::Column::UserId)
        .to(user::Column::Id)
        .into();
    let to_group: RelationDef = group_user::Entity::belongs_to(group::Entity)
        .from(group_user::Column::GroupId)
        .to(group::Column::Id)
        .into();
    let rows = user::Entity::find_by_id(pk)
        .join_rev(JoinType::LeftJoin, membership)
        .join(JoinType::LeftJoin, to_group)
        .select_also(group::Entity)
        .all(db)
        .await?;
    let mut rows = rows.into_iter();
    let Some((m, first)) = rows.next() else {
        return Err(StoreError::NotFound);
    };
    let models: Vec<group::Model> = first
        .into_iter()
        .chain(rows.filter_map(|(_, g)| g))
        .collect();
    let parents = crate::groups::parent_uuids(db, models.iter()).await?;
    let superuser = crate::groups::superuser_groups(db, models.iter()).await?;
    let is_superuser = models.iter().any(|g| superuser.contains(&g.id));
    let mut groups: Vec<Group> = models
        .into_iter()
        .map(|g| group_to_domain(g, &parents))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let hash = usable_hash(&m.password);
    Ok((to_domain(m, (groups, is_superuser))?, hash))
}

/// The query of [`Store::identify_users`] (pk and is_active of at most two users), public so
/// that a test can ask the database for its plan; `None` for an unknown field.
#[doc(hidden)]
pub fn identify_select(
    backend: crate::Backend,
    field: &str,
    value: &str,
    case_insensitive: bool,
) -> Option<sea_orm::Select<user::Entity>> {
    use sea_orm::sea_query::{Expr, Func, SimpleExpr};
    let column: SimpleExpr = match field {
        "username" => Expr::col(user::Column::Username),
        "email" => Expr::col(user::Column::Email),
        "upn" => match backend {
            crate::Backend::Sqlite => Expr::cust("json_extract(\"attributes\", '$.upn')"),
            crate::Backend::Postgres => Expr::cust("(\"attributes\"::jsonb ->> 'upn')"),
        },
        _ => return None,
    };
    // Case-insensitive: `lower(column)`, which the expression indexes of migration m0009 cover
    // for username and email.
    let cond = if case_insensitive {
        Expr::expr(Func::lower(column)).eq(value.to_lowercase())
    } else {
        column.eq(value)
    };
    // Only what identifying needs: the stages that follow load the user they go on with.
    Some(
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::IsActive)
            .filter(cond)
            .order_by_asc(user::Column::Id)
            .limit(2),
    )
}

/// A user an identifier names (see [`Store::identify_users`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentifiedUser {
    pub pk: i32,
    pub is_active: bool,
}

/// The stored hash when it can verify a password (not empty, not marked unusable).
fn usable_hash(stored: &str) -> Option<String> {
    (!stored.is_empty() && !stored.starts_with(UNUSABLE_PASSWORD)).then(|| stored.to_owned())
}

async fn load<C: ConnectionTrait>(db: &C, m: user::Model) -> Result<UserWithGroups, StoreError> {
    let mut groups = groups_of(db, &[m.id]).await?;
    let g = groups.remove(&m.id).unwrap_or_default();
    to_domain(m, g)
}

/// Replaces the user's memberships with `groups` (by uuid). Unknown uuids are an error.
async fn set_groups<C: ConnectionTrait>(
    db: &C,
    user_id: i32,
    groups: &[Uuid],
) -> Result<(), StoreError> {
    let found = group::Entity::find()
        .filter(group::Column::Uuid.is_in(groups.iter().copied()))
        .all(db)
        .await?;
    if found.len() != {
        let mut g = groups.to_vec();
        g.sort();
        g.dedup();
        g.len()
    } {
        return Err(StoreError::InvalidReference {
            field: "groups".to_owned(),
        });
    }
    group_user::Entity::delete_many()
        .filter(group_user::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if !found.is_empty() {
        group_user::Entity::insert_many(found.iter().map(|g| group_user::ActiveModel {
            group_id: Set(g.id),
            user_id: Set(user_id),
        }))
        .exec(db)
        .await?;
    }
    Ok(())
}

fn user_event(action: EventAction, u: &user::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_core",
        "user",
        &u.id.to_string(),
        &u.username,
    )
}

impl Store {
    pub async fn create_user(
        &self,
        new: NewUser,
        actor: &Actor,
    ) -> Result<UserWithGroups, StoreError> {
        let now = self.clock.now();
        let txn = self.write.begin().await?;
        let has_password = new.password_hash.is_some();
        let m = user::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            username: Set(new.username),
            name: Set(new.name),
            email: Set(new.email),
            is_active: Set(new.is_active),
            last_login: Set(None),
            date_joined: Set(now),
            password: Set(new
                .password_hash
                .unwrap_or_else(|| UNUSABLE_PASSWORD.to_owned())),
            password_change_date: Set(now),
            last_updated: Set(now),
            attributes: Set(new.attributes),
            path: Set(new.path),
            user_type: Set(new.user_type.as_str().to_owned()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        set_groups(&txn, m.id, &new.groups).await?;
        record(&txn, self, actor, user_event(EventAction::ModelCreated, &m)).await?;
        if has_password {
            record(&txn, self, actor, password_event(&m)).await?;
        }
        let out = load(&txn, m).await?;
        txn.commit().await?;
        Ok(out)
    }

    pub async fn find_user(&self, pk: i32) -> Result<UserWithGroups, StoreError> {
        load_by_id(&self.read, pk).await
    }

    /// [`Store::find_user`] and [`Store::find_password_hash`] in one read, for a login that
    /// needs both.
    pub async fn find_user_for_login(
        &self,
        pk: i32,
    ) -> Result<(UserWithGroups, Option<String>), StoreError> {
        load_by_id_with_hash(&self.read, pk).await
    }

    pub async fn find_user_by_username(
        &self,
        username: &str,
    ) -> Result<UserWithGroups, StoreError> {
        let m = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        load(&self.read, m).await
    }

    /// The users (at most two: more means "ambiguous") whose `field` equals `value`, for logins.
    /// `field` is `username`, `email` or `upn` (the `upn` attribute); `case_insensitive`
    /// compares lower-cased (ASCII-only on SQLite).
    pub async fn identify_users(
        &self,
        field: &str,
        value: &str,
        case_insensitive: bool,
    ) -> Result<Vec<IdentifiedUser>, StoreError> {
        let Some(select) = identify_select(self.backend, field, value, case_insensitive) else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i32, bool)> = select.into_tuple().all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|(pk, is_active)| IdentifiedUser { pk, is_active })
            .collect())
    }

    pub async fn list_users(
        &self,
        filter: &UserFilter,
        q: &ListQuery,
    ) -> Result<Page<UserWithGroups>, StoreError> {
        let mut s = user::Entity::find();
        if let Some(pk) = filter.pk {
            s = s.filter(user::Column::Id.eq(pk));
        }
        if let Some(u) = filter.uuid {
            s = s.filter(user::Column::Uuid.eq(u));
        }
        if let Some(v) = &filter.username {
            s = s.filter(user::Column::Username.eq(v.as_str()));
        }
        if let Some(v) = &filter.email {
            s = s.filter(user::Column::Email.eq(v.as_str()));
        }
        if let Some(v) = &filter.name {
            s = s.filter(user::Column::Name.eq(v.as_str()));
        }
        if let Some(v) = filter.is_active {
            s = s.filter(user::Column::IsActive.eq(v));
        }
        if let Some(v) = &filter.path {
            s = s.filter(user::Column::Path.eq(v.as_str()));
        }
        if let Some(v) = &filter.path_startswith {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            s = s.filter(
                sea_orm::sea_query::Expr::col(user::Column::Path)
                    .like(sea_orm::sea_query::LikeExpr::new(format!("{escaped}%")).escape('\\')),
            );
        }
        if !filter.user_types.is_empty() {
            s = s
                .filter(user::Column::UserType.is_in(filter.user_types.iter().map(|t| t.as_str())));
        }
        if !filter.groups_by_name.is_empty() || !filter.groups_by_pk.is_empty() {
            let mut gq = group::Entity::find()
                .select_only()
                .column(group::Column::Id);
            let mut cond = sea_orm::Condition::any();
            if !filter.groups_by_name.is_empty() {
                cond = cond.add(
                    group::Column::Name.is_in(filter.groups_by_name.iter().map(String::as_str)),
                );
            }
            if !filter.groups_by_pk.is_empty() {
                cond = cond.add(group::Column::Uuid.is_in(filter.groups_by_pk.iter().copied()));
            }
            gq = gq.filter(cond);
            let member_ids = group_user::Entity::find()
                .select_only()
                .column(group_user::Column::UserId)
                .filter(
                    group_user::Column::GroupId.in_subquery(sea_orm::QueryTrait::into_query(gq)),
                );
            s = s.filter(user::Column::Id.in_subquery(sea_orm::QueryTrait::into_query(member_ids)));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(
                term,
                &[
                    user::Column::Username,
                    user::Column::Name,
                    user::Column::Email,
                ],
            ));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("username", user::Column::Username),
                ("name", user::Column::Name),
                ("email", user::Column::Email),
                ("pk", user::Column::Id),
                ("last_login", user::Column::LastLogin),
                ("date_joined", user::Column::DateJoined),
                ("is_active", user::Column::IsActive),
                ("path", user::Column::Path),
                ("type", user::Column::UserType),
                ("last_updated", user::Column::LastUpdated),
            ],
            (user::Column::Username, false),
            user::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        let ids: Vec<i32> = page.items.iter().map(|m| m.id).collect();
        let mut groups = groups_of(&self.read, &ids).await?;
        let items = page
            .items
            .into_iter()
            .map(|m| {
                let g = groups.remove(&m.id).unwrap_or_default();
                to_domain(m, g)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            count: page.count,
        })
    }

    pub async fn update_user(
        &self,
        pk: i32,
        patch: UserPatch,
        actor: &Actor,
    ) -> Result<UserWithGroups, StoreError> {
        let txn = self.write.begin().await?;
        let m = user::Entity::find_by_id(pk)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am = m.into_active_model();
        if let Some(v) = patch.username {
            am.username = Set(v);
        }
        if let Some(v) = patch.name {
            am.name = Set(v);
        }
        if let Some(v) = patch.email {
            am.email = Set(v);
        }
        if let Some(v) = patch.is_active {
            am.is_active = Set(v);
        }
        if let Some(v) = patch.attributes {
            am.attributes = Set(v);
        }
        if let Some(v) = patch.path {
            am.path = Set(v);
        }
        if let Some(v) = patch.user_type {
            am.user_type = Set(v.as_str().to_owned());
        }
        am.last_updated = Set(self.clock.now());
        let m = am.update(&txn).await?;
        if let Some(groups) = patch.groups {
            set_groups(&txn, m.id, &groups).await?;
        }
        record(&txn, self, actor, user_event(EventAction::ModelUpdated, &m)).await?;
        let out = load(&txn, m).await?;
        txn.commit().await?;
        Ok(out)
    }

    pub async fn delete_user(&self, pk: i32, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = user::Entity::find_by_id(pk)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        user::Entity::delete_by_id(pk).exec(&txn).await?;
        record(&txn, self, actor, user_event(EventAction::ModelDeleted, &m)).await?;
        txn.commit().await?;
        // Its sessions went with it (foreign key).
        self.uncache_sessions(crate::session_cache::Pending::RemoveUser(pk, None));
        Ok(())
    }

    /// Stores a new password hash (or the unusable marker when `hash` is `None`) and records
    /// `password_set`.
    pub async fn set_password(
        &self,
        pk: i32,
        hash: Option<String>,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let txn = self.write.begin().await?;
        let m = user::Entity::find_by_id(pk)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am = m.clone().into_active_model();
        am.password = Set(hash.unwrap_or_else(|| UNUSABLE_PASSWORD.to_owned()));
        am.password_change_date = Set(now);
        am.last_updated = Set(now);
        am.update(&txn).await?;
        record(&txn, self, actor, password_event(&m)).await?;
        txn.commit().await?;
        // A user (and hash) read before this in the process is out of date.
        self.changed();
        Ok(())
    }

    /// Replaces `old` with `new` after a successful check against an outdated hash (no event:
    /// the password itself did not change). Only when the stored hash is still `old`: a password
    /// set in the meantime (an administrator's reset) is never overwritten. Returns whether it
    /// replaced anything.
    pub async fn upgrade_password_hash(
        &self,
        pk: i32,
        old: &str,
        new: String,
    ) -> Result<bool, StoreError> {
        let r = user::Entity::update_many()
            .col_expr(user::Column::Password, sea_orm::sea_query::Expr::value(new))
            .filter(user::Column::Id.eq(pk))
            .filter(user::Column::Password.eq(old))
            .exec(&self.write)
            .await?;
        if r.rows_affected == 1 {
            self.changed();
        }
        Ok(r.rows_affected == 1)
    }

    /// The stored password hash; `None` when the user has no usable password.
    pub async fn find_password_hash(&self, pk: i32) -> Result<Option<String>, StoreError> {
        let m = user::Entity::find_by_id(pk)
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(usable_hash(&m.password))
    }

    pub async fn touch_last_login(&self, pk: i32) -> Result<(), StoreError> {
        let res = user::Entity::update_many()
            .col_expr(
                user::Column::LastLogin,
                sea_orm::sea_query::Expr::value(Some(self.clock.now())),
            )
            .filter(user::Column::Id.eq(pk))
            .exec(&self.write)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

fn password_event(m: &user::Model) -> NewEvent {
    NewEvent {
        action: EventAction::PasswordSet,
        app: "authentik.core.signals".to_owned(),
        context: serde_json::json!({"user": {"pk": m.id, "username": m.username, "email": m.email}}),
    }
}
