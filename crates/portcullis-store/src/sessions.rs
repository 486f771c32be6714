//! Browser sessions, consents and reputation scores: the state that flows leave behind.
//!
//! Invariants: a session is found only by the SHA-256 of its cookie key and only while it has not
//! expired; logging in replaces the key (no session fixation); deleting a user deletes its
//! sessions and consents (foreign keys). Reputation rows are unique per (identifier, ip) and
//! updated atomically with an upsert.

use chrono::{DateTime, Utc};
use portcullis_core::{Session, UserConsent};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::entity::{reputation, session, user_consent};
use crate::session_cache::Pending;
use crate::{Store, StoreError};

fn session_to_domain(m: session::Model) -> Session {
    Session {
        uuid: m.uuid,
        key_hash: m.key_hash,
        user: m.user_id,
        created: m.created,
        expires: m.expires,
        last_used: m.last_used,
        last_ip: m.last_ip,
        last_user_agent: m.last_user_agent,
        csrf_token: m.csrf_token,
        data: m.data,
    }
}

fn consent_to_domain(m: user_consent::Model) -> UserConsent {
    UserConsent {
        uuid: m.uuid,
        user: m.user_id,
        application: m.application,
        expires: m.expires,
        permissions: m.permissions,
    }
}

/// One stored reputation score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReputationRow {
    pub identifier: String,
    pub ip: String,
    pub score: i64,
}

impl Store {
    /// The session cache's removal count before a write (see `SessionCache::put`).
    fn removals(&self) -> u64 {
        self.session_cache.as_ref().map_or(0, |c| c.removals())
    }

    /// A session was written: cached as written outside a unit of work; inside one, forgotten
    /// once the unit commits (the next read loads the committed row).
    fn cache_session(&self, s: &Session, seen: u64) {
        let Some(cache) = &self.session_cache else {
            return;
        };
        match &self.unit_sessions {
            None => cache.put(s, seen),
            Some(pending) => pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Pending::Remove(s.uuid)),
        }
    }

    /// Whether `s` is kept in memory only (see `session_cache`): an anonymous session, where
    /// this process is the database's only user, written outside a unit of work.
    fn keeps_in_memory(&self, s: &Session) -> bool {
        s.user.is_none() && self.unit_sessions.is_none() && self.session_cache.is_some()
    }

    pub(crate) fn uncache_sessions(&self, p: Pending) {
        let Some(cache) = &self.session_cache else {
            return;
        };
        cache.apply(vec![p]);
        if let Some(pending) = &self.unit_sessions {
            pending.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        }
    }

    /// Stores a new session. Anonymous ones stay in memory where the store keeps a session
    /// cache (SQLite), until they log in.
    pub async fn create_session(&self, mut s: Session) -> Result<Session, StoreError> {
        if s.uuid.is_nil() {
            s.uuid = Uuid::new_v4();
        }
        if self.keeps_in_memory(&s)
            && let Some(cache) = &self.session_cache
        {
            cache.put_volatile(&s);
            return Ok(s);
        }
        let seen = self.removals();
        let s = self.insert_session_row(s).await?;
        self.cache_session(&s, seen);
        Ok(s)
    }

    async fn insert_session_row(&self, s: Session) -> Result<Session, StoreError> {
        let m = session::ActiveModel {
            uuid: Set(s.uuid),
            key_hash: Set(s.key_hash),
            user_id: Set(s.user),
            created: Set(s.created),
            expires: Set(s.expires),
            last_used: Set(s.last_used),
            last_ip: Set(s.last_ip),
            last_user_agent: Set(s.last_user_agent),
            csrf_token: Set(s.csrf_token),
            data: Set(s.data),
            ..Default::default()
        }
        .insert(&self.write)
        .await?;
        Ok(session_to_domain(m))
    }

    /// The live session whose key hashes to `key_hash`; `None` when unknown or expired.
    pub async fn find_session(&self, key_hash: &str) -> Result<Option<Session>, StoreError> {
        let now = self.clock.now();
        let cache = self
            .session_cache
            .as_ref()
            .filter(|_| self.unit_sessions.is_none());
        if let Some(s) = cache.and_then(|c| c.get(key_hash)) {
            return Ok((s.expires > now).then_some(s));
        }
        let seen = cache.map(|c| c.removals());
        let s = session::Entity::find()
            .filter(session::Column::KeyHash.eq(key_hash))
            .filter(session::Column::Expires.gt(now))
            .one(&self.read)
            .await?
            .map(session_to_domain);
        if let (Some(cache), Some(s), Some(seen)) = (cache, &s, seen) {
            cache.fill(s, seen);
        }
        Ok(s)
    }

    /// Writes everything mutable of the session `s.uuid` (key, user, expiry, data, last use).
    /// Returns `NotFound` when the session was deleted meanwhile (logged out elsewhere).
    pub async fn save_session(&self, s: &Session) -> Result<(), StoreError> {
        if let Some(cache) = &self.session_cache
            && cache.is_volatile(s.uuid)
        {
            if self.keeps_in_memory(s) {
                cache.put_volatile(s);
            } else {
                // Logged in: from now on the session is stored.
                let seen = self.removals();
                self.insert_session_row(s.clone()).await?;
                self.cache_session(s, seen);
            }
            return Ok(());
        }
        let seen = self.removals();
        let res = session::Entity::update_many()
            .col_expr(session::Column::KeyHash, Expr::value(s.key_hash.clone()))
            .col_expr(session::Column::UserId, Expr::value(s.user))
            .col_expr(session::Column::Expires, Expr::value(s.expires))
            .col_expr(session::Column::LastUsed, Expr::value(s.last_used))
            .col_expr(session::Column::LastIp, Expr::value(s.last_ip.clone()))
            .col_expr(
                session::Column::LastUserAgent,
                Expr::value(s.last_user_agent.clone()),
            )
            .col_expr(
                session::Column::CsrfToken,
                Expr::value(s.csrf_token.clone()),
            )
            .col_expr(session::Column::Data, Expr::value(s.data.clone()))
            .filter(session::Column::Uuid.eq(s.uuid))
            .exec(&self.write)
            .await?;
        if res.rows_affected == 0 {
            self.uncache_sessions(Pending::Remove(s.uuid));
            return Err(StoreError::NotFound);
        }
        self.cache_session(s, seen);
        Ok(())
    }

    pub async fn delete_session(&self, uuid: Uuid) -> Result<(), StoreError> {
        session::Entity::delete_many()
            .filter(session::Column::Uuid.eq(uuid))
            .exec(&self.write)
            .await?;
        self.uncache_sessions(Pending::Remove(uuid));
        Ok(())
    }

    /// Ends every session of `user` but `keep` (user_login's `terminate_other_sessions`).
    pub async fn delete_user_sessions(
        &self,
        user: i32,
        keep: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let mut q = session::Entity::delete_many().filter(session::Column::UserId.eq(user));
        if let Some(k) = keep {
            q = q.filter(session::Column::Uuid.ne(k));
        }
        let n = q.exec(&self.write).await?.rows_affected;
        self.uncache_sessions(Pending::RemoveUser(user, keep));
        Ok(n)
    }

    /// The live sessions of `user`, newest first.
    pub async fn list_user_sessions(&self, user: i32) -> Result<Vec<Session>, StoreError> {
        let now = self.clock.now();
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user))
            .filter(session::Column::Expires.gt(now))
            .order_by_desc(session::Column::LastUsed)
            .all(&self.read)
            .await?
            .into_iter()
            .map(session_to_domain)
            .collect())
    }

    /// Deletes the sessions that expired (those kept in memory too); returns how many.
    pub async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let stored = session::Entity::delete_many()
            .filter(session::Column::Expires.lte(now))
            .exec(&self.write)
            .await?
            .rows_affected;
        let in_memory = self
            .session_cache
            .as_ref()
            .map_or(0, |c| c.purge_expired(now));
        Ok(stored + in_memory)
    }

    /// The user's live consent to the application, if any.
    pub async fn find_consent(
        &self,
        user: i32,
        application: Uuid,
    ) -> Result<Option<UserConsent>, StoreError> {
        let now = self.clock.now();
        Ok(user_consent::Entity::find()
            .filter(user_consent::Column::UserId.eq(user))
            .filter(user_consent::Column::Application.eq(application))
            .filter(
                Condition::any()
                    .add(user_consent::Column::Expires.is_null())
                    .add(user_consent::Column::Expires.gt(now)),
            )
            .one(&self.read)
            .await?
            .map(consent_to_domain))
    }

    /// Records (or replaces) the user's consent to the application.
    pub async fn save_consent(
        &self,
        user: i32,
        application: Uuid,
        expires: Option<DateTime<Utc>>,
        permissions: &str,
    ) -> Result<UserConsent, StoreError> {
        // One statement, so two saves racing (a double-submitted form) both succeed.
        user_consent::Entity::insert(user_consent::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            user_id: Set(user),
            application: Set(application),
            expires: Set(expires),
            permissions: Set(permissions.to_owned()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                user_consent::Column::UserId,
                user_consent::Column::Application,
            ])
            .update_columns([
                user_consent::Column::Expires,
                user_consent::Column::Permissions,
            ])
            .to_owned(),
        )
        .exec(&self.write)
        .await?;
        let m = user_consent::Entity::find()
            .filter(user_consent::Column::UserId.eq(user))
            .filter(user_consent::Column::Application.eq(application))
            .one(&self.write)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(consent_to_domain(m))
    }

    /// Adds `delta` to the score of (identifier, ip), creating the row at `delta`.
    pub async fn add_reputation(
        &self,
        identifier: &str,
        ip: &str,
        delta: i64,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let identifier: String = identifier.chars().take(256).collect();
        let ip: String = ip.chars().take(64).collect();
        reputation::Entity::insert(reputation::ActiveModel {
            identifier: Set(identifier),
            ip: Set(ip),
            score: Set(delta),
            updated: Set(now),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([reputation::Column::Identifier, reputation::Column::Ip])
                .value(
                    reputation::Column::Score,
                    Expr::col((reputation::Entity, reputation::Column::Score)).add(delta),
                )
                .value(reputation::Column::Updated, now)
                .to_owned(),
        )
        .exec(&self.write)
        .await?;
        Ok(())
    }

    /// Every score whose IP is `ip` or whose identifier is `identifier` (the reputation policy's
    /// question).
    pub async fn reputation_rows(
        &self,
        ip: Option<&str>,
        identifier: Option<&str>,
    ) -> Result<Vec<ReputationRow>, StoreError> {
        let mut cond = Condition::any();
        if let Some(ip) = ip {
            cond = cond.add(reputation::Column::Ip.eq(ip));
        }
        if let Some(id) = identifier {
            cond = cond.add(reputation::Column::Identifier.eq(id));
        }
        let mut q = reputation::Entity::find();
        if ip.is_some() || identifier.is_some() {
            q = q.filter(cond);
        }
        Ok(q.all(&self.read)
            .await?
            .into_iter()
            .map(|m| ReputationRow {
                identifier: m.identifier,
                ip: m.ip,
                score: m.score,
            })
            .collect())
    }
}
