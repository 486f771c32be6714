//! OAuth grants (codes, access tokens by `jti`, refresh tokens): created, found by the hash of
//! their secret, consumed once, revoked by family. See `portcullis_core::OAuthGrant` for the
//! invariants.
//!
//! Consuming is one conditional UPDATE (`used = false` → `true`), so two requests racing to
//! redeem one code cannot both win, on either database.

use chrono::{DateTime, Utc};
use portcullis_core::{OAuthGrant, OAuthGrantKind};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::entity::oauth_grant;
use crate::{Store, StoreError};

/// The grants matching `condition`, read from `conn`.
async fn grants_where(
    condition: sea_orm::sea_query::SimpleExpr,
    conn: &impl sea_orm::ConnectionTrait,
) -> Result<Vec<OAuthGrant>, StoreError> {
    oauth_grant::Entity::find()
        .filter(condition)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

fn to_domain(m: oauth_grant::Model) -> Result<OAuthGrant, StoreError> {
    Ok(OAuthGrant {
        id: m.id,
        kind: OAuthGrantKind::parse(&m.kind)
            .ok_or_else(|| StoreError::Config(format!("unknown oauth grant kind {:?}", m.kind)))?,
        key_hash: m.key_hash,
        provider: m.provider_id,
        user: m.user_id,
        family: m.family,
        session: m.session_uuid,
        scope: m.scope,
        data: m.data,
        created: m.created,
        expires: m.expires,
        used: m.used,
        revoked: m.revoked,
    })
}

/// The row of a new grant (`id` assigned by the database; `used` and `revoked` start false).
fn new_row(g: OAuthGrant) -> oauth_grant::ActiveModel {
    oauth_grant::ActiveModel {
        kind: Set(g.kind.as_str().to_owned()),
        key_hash: Set(g.key_hash),
        provider_id: Set(g.provider),
        user_id: Set(g.user),
        family: Set(g.family),
        session_uuid: Set(g.session),
        scope: Set(g.scope),
        data: Set(g.data),
        created: Set(g.created),
        expires: Set(g.expires),
        used: Set(false),
        revoked: Set(false),
        ..Default::default()
    }
}

impl Store {
    /// Stores a grant (`id` is assigned; `used` and `revoked` start false).
    pub async fn create_oauth_grant(&self, g: OAuthGrant) -> Result<OAuthGrant, StoreError> {
        to_domain(new_row(g).insert(&self.write).await?)
    }

    /// [`Store::create_oauth_grant`] without the stored row back: under load, many of these
    /// share one commit (what the token endpoint uses for the tokens it hands out). Returns
    /// once the grant is durable.
    pub async fn record_oauth_grant(&self, g: OAuthGrant) -> Result<(), StoreError> {
        let row = new_row(g);
        match self.write.pool() {
            Some(pool) => self.grant_writer.insert(pool, row).await,
            // Inside a unit of work: part of its transaction, as everything else.
            None => {
                row.insert(&self.write).await?;
                Ok(())
            }
        }
    }

    /// The grant of this kind whose secret hashes to `key_hash`, whatever its state (the caller
    /// decides what an expired, used or revoked one means).
    pub async fn find_oauth_grant(
        &self,
        kind: OAuthGrantKind,
        key_hash: &str,
    ) -> Result<Option<OAuthGrant>, StoreError> {
        oauth_grant::Entity::find()
            .filter(oauth_grant::Column::Kind.eq(kind.as_str()))
            .filter(oauth_grant::Column::KeyHash.eq(key_hash))
            .one(&self.write)
            .await?
            .map(to_domain)
            .transpose()
    }

    /// Every grant of a family.
    pub async fn list_oauth_family(&self, family: Uuid) -> Result<Vec<OAuthGrant>, StoreError> {
        grants_where(oauth_grant::Column::Family.eq(family), &self.write).await
    }

    /// Every grant of a provider (the admin's token lists; tests that nothing was issued).
    pub async fn list_oauth_grants_of_provider(
        &self,
        provider: i32,
    ) -> Result<Vec<OAuthGrant>, StoreError> {
        grants_where(oauth_grant::Column::ProviderId.eq(provider), &self.read).await
    }

    /// Every grant a browser session led to (for its logout).
    pub async fn list_oauth_grants_of_session(
        &self,
        session: Uuid,
    ) -> Result<Vec<OAuthGrant>, StoreError> {
        grants_where(oauth_grant::Column::SessionUuid.eq(session), &self.write).await
    }

    /// Marks the grant used if it was neither used nor revoked; true when this call did it
    /// (exactly one of any number of concurrent callers gets true).
    pub async fn consume_oauth_grant(&self, id: i32) -> Result<bool, StoreError> {
        let r = oauth_grant::Entity::update_many()
            .col_expr(oauth_grant::Column::Used, Expr::value(true))
            .filter(oauth_grant::Column::Id.eq(id))
            .filter(oauth_grant::Column::Used.eq(false))
            .filter(oauth_grant::Column::Revoked.eq(false))
            .exec(&self.write)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Gives an unapproved grant (a device code) its user: true when this call did it, on an
    /// unused, unrevoked, unexpired grant that had no user.
    pub async fn approve_oauth_grant(
        &self,
        id: i32,
        user: i32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = oauth_grant::Entity::update_many()
            .col_expr(oauth_grant::Column::UserId, Expr::value(user))
            .filter(oauth_grant::Column::Id.eq(id))
            .filter(oauth_grant::Column::UserId.is_null())
            .filter(oauth_grant::Column::Used.eq(false))
            .filter(oauth_grant::Column::Revoked.eq(false))
            .filter(oauth_grant::Column::Expires.gt(now))
            .exec(&self.write)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Revokes every grant of `family`; returns how many were still unrevoked.
    pub async fn revoke_oauth_family(&self, family: Uuid) -> Result<u64, StoreError> {
        let r = oauth_grant::Entity::update_many()
            .col_expr(oauth_grant::Column::Revoked, Expr::value(true))
            .filter(oauth_grant::Column::Family.eq(family))
            .filter(oauth_grant::Column::Revoked.eq(false))
            .exec(&self.write)
            .await?;
        Ok(r.rows_affected)
    }

    /// Revokes one grant; true when it was not revoked before.
    pub async fn revoke_oauth_grant(&self, id: i32) -> Result<bool, StoreError> {
        let r = oauth_grant::Entity::update_many()
            .col_expr(oauth_grant::Column::Revoked, Expr::value(true))
            .filter(oauth_grant::Column::Id.eq(id))
            .filter(oauth_grant::Column::Revoked.eq(false))
            .exec(&self.write)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Deletes grants that expired before `before` (housekeeping).
    pub async fn delete_expired_oauth_grants(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let r = oauth_grant::Entity::delete_many()
            .filter(oauth_grant::Column::Expires.lt(before))
            .exec(&self.write)
            .await?;
        Ok(r.rows_affected)
    }
}
