//! The in-process session cache: a request with a session cookie finds its session without a
//! database round-trip.
//!
//! Used only where this process is the database's only writer of sessions (SQLite: one host,
//! one `portcullis serve`). The cache is written through: every session this process creates,
//! saves or deletes updates it, so a logout or a key rotation is seen at once. Two maps keep it
//! simple to get right: `by_uuid` holds the sessions, `by_key` only points a key hash at a uuid,
//! and a hit counts only when the session found still has that key hash (a rotated key misses
//! and the database, which no longer knows it, answers). Entries live at most [`TTL`], which
//! bounds how long a change made by another process (a CLI command on the same database) can
//! go unseen, and the cache holds at most [`CAPACITY`] sessions.
//!
//! Changes made inside a unit of work reach the cache only after the unit commits (see
//! `UnitOfWork`): until then the entry is removed, so nobody reads a change that may yet roll
//! back.
//!
//! Anonymous sessions (a flow in progress, nobody logged in yet) are kept here only, never
//! written to the database: they are disposable (a person whose half-done login is lost to a
//! restart starts it again), and a login then costs one commit to disk instead of one per step.
//! Keycloak keeps its authentication sessions the same way. At most [`VOLATILE_CAPACITY`] are
//! kept, each until [`VOLATILE_IDLE`] without use; when one logs in, the store writes it to the
//! database and it leaves this map.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use portcullis_core::Session;
use uuid::Uuid;

/// How long a cached session may be served without reading the database again.
pub(crate) const TTL: Duration = Duration::from_secs(30);
/// Most sessions kept in memory (least recently used ones go first).
pub(crate) const CAPACITY: u64 = 50_000;
/// Most anonymous sessions kept (least recently used ones are forgotten first: their flows
/// start again).
pub(crate) const VOLATILE_CAPACITY: u64 = 20_000;
/// How long an anonymous session is kept without use (Keycloak's login timeout is 30 minutes).
pub(crate) const VOLATILE_IDLE: Duration = Duration::from_secs(2 * 3600);

/// A change made inside a unit of work, applied to the cache once the unit commits. Only
/// removals: the next read after the commit loads the committed row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pending {
    Remove(Uuid),
    RemoveUser(i32, Option<Uuid>),
}

#[derive(Debug)]
pub(crate) struct SessionCache {
    /// Counts removals. A copy read from the database is kept only if no removal happened
    /// while it was read: otherwise a request that read a session just before a logout could
    /// put it back in the cache after the logout removed it.
    removals: AtomicU64,
    /// Sessions that are in the database (a copy).
    by_uuid: Cache<Uuid, Session>,
    /// Anonymous sessions, kept here only.
    volatile: Cache<Uuid, Session>,
    by_key: Cache<String, Uuid>,
}

impl SessionCache {
    pub(crate) fn new() -> Self {
        Self {
            removals: AtomicU64::new(0),
            by_uuid: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(TTL)
                .build(),
            volatile: Cache::builder()
                .max_capacity(VOLATILE_CAPACITY)
                .time_to_idle(VOLATILE_IDLE)
                .build(),
            by_key: Cache::builder()
                .max_capacity(CAPACITY + VOLATILE_CAPACITY)
                .time_to_idle(VOLATILE_IDLE)
                .build(),
        }
    }

    /// The session with this key hash (expiry is the caller's to check): an anonymous one kept
    /// here, or a cached copy of a stored one.
    pub(crate) fn get(&self, key_hash: &str) -> Option<Session> {
        let uuid = self.by_key.get(key_hash)?;
        self.volatile
            .get(&uuid)
            .or_else(|| self.by_uuid.get(&uuid))
            .filter(|s| s.key_hash == key_hash)
    }

    /// Keeps an anonymous session (here only).
    pub(crate) fn put_volatile(&self, s: &Session) {
        self.by_key.insert(s.key_hash.clone(), s.uuid);
        self.volatile.insert(s.uuid, s.clone());
    }

    /// Whether `uuid` is an anonymous session kept here only.
    pub(crate) fn is_volatile(&self, uuid: Uuid) -> bool {
        self.volatile.contains_key(&uuid)
    }

    /// Caches what this process just wrote to the database (it may have been kept in memory
    /// only until now), unless a removal happened since `seen` (read before the write): a save
    /// racing a logout must not bring the session back.
    pub(crate) fn put(&self, s: &Session, seen: u64) {
        self.volatile.invalidate(&s.uuid);
        if self.removals() != seen {
            self.by_uuid.invalidate(&s.uuid);
            return;
        }
        self.by_key.insert(s.key_hash.clone(), s.uuid);
        self.by_uuid.insert(s.uuid, s.clone());
        if self.removals() != seen {
            self.by_uuid.invalidate(&s.uuid);
        }
    }

    /// The removal count, to pass to [`SessionCache::fill`] after reading the database.
    pub(crate) fn removals(&self) -> u64 {
        self.removals.load(Ordering::SeqCst)
    }

    /// Caches a session read from the database, unless a removal happened since `seen` (see
    /// `removals`) or a writer cached a newer copy meanwhile.
    pub(crate) fn fill(&self, s: &Session, seen: u64) {
        if self.removals() != seen {
            return;
        }
        self.by_key.insert(s.key_hash.clone(), s.uuid);
        self.by_uuid.entry(s.uuid).or_insert_with(|| s.clone());
        // A removal between the check and the insert: undo. (Removers count first and remove
        // second, so either this sees their count or they remove what was inserted.)
        if self.removals() != seen {
            self.by_uuid.invalidate(&s.uuid);
        }
    }

    fn removing(&self) {
        self.removals.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn remove(&self, uuid: Uuid) {
        self.removing();
        self.by_uuid.invalidate(&uuid);
        self.volatile.invalidate(&uuid);
    }

    /// Forgets every session of `user` except `keep`.
    pub(crate) fn remove_user(&self, user: i32, keep: Option<Uuid>) {
        self.removing();
        let doomed: Vec<Uuid> = self
            .by_uuid
            .iter()
            .filter(|(uuid, s)| s.user == Some(user) && Some(**uuid) != keep)
            .map(|(uuid, _)| *uuid)
            .collect();
        for uuid in doomed {
            self.by_uuid.invalidate(&uuid);
        }
    }

    /// Forgets the anonymous sessions that expired at `now`; returns how many.
    pub(crate) fn purge_expired(&self, now: chrono::DateTime<chrono::Utc>) -> u64 {
        let expired: Vec<Uuid> = self
            .volatile
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(uuid, _)| *uuid)
            .collect();
        for uuid in &expired {
            self.volatile.invalidate(uuid);
        }
        expired.len() as u64
    }

    pub(crate) fn apply(&self, pending: Vec<Pending>) {
        for p in pending {
            match p {
                Pending::Remove(uuid) => self.remove(uuid),
                Pending::RemoveUser(user, keep) => self.remove_user(user, keep),
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn clear(&self) {
        self.removing();
        self.by_uuid.invalidate_all();
        self.volatile.invalidate_all();
        self.by_key.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn session(key: &str, user: Option<i32>) -> Session {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        Session {
            uuid: Uuid::new_v4(),
            key_hash: key.into(),
            user,
            created: now,
            expires: now,
            last_used: now,
            last_ip: String::new(),
            last_user_agent: String::new(),
            csrf_token: "t".into(),
            data: json!({}),
        }
    }

    #[test]
    fn a_rotated_key_misses() {
        let c = SessionCache::new();
        let mut s = session("k1", None);
        c.put(&s, c.removals());
        assert_eq!(c.get("k1").unwrap().uuid, s.uuid);
        s.key_hash = "k2".into();
        c.put(&s, c.removals());
        assert!(
            c.get("k1").is_none(),
            "the old key must not find the session"
        );
        assert_eq!(c.get("k2").unwrap().uuid, s.uuid);
    }

    #[test]
    fn a_copy_read_before_a_removal_is_not_cached() {
        let c = SessionCache::new();
        let s = session("k", Some(1));
        // Read from the database, then a logout removes the session, then the reader fills.
        let seen = c.removals();
        c.remove(s.uuid);
        c.fill(&s, seen);
        assert!(c.get("k").is_none(), "a logged-out session came back");
        // Without a removal in between, the copy is cached.
        let seen = c.removals();
        c.fill(&s, seen);
        assert_eq!(c.get("k").unwrap().uuid, s.uuid);
    }

    #[test]
    fn a_save_racing_a_logout_does_not_bring_the_session_back() {
        let c = SessionCache::new();
        let s = session("k", Some(1));
        c.put(&s, c.removals());
        // The save's write reached the database before the logout's delete; its cache update
        // comes after the logout's removal.
        let seen = c.removals();
        c.remove(s.uuid);
        c.put(&s, seen);
        assert!(c.get("k").is_none(), "a logged-out session came back");
    }

    #[test]
    fn a_fill_does_not_replace_what_a_writer_cached() {
        let c = SessionCache::new();
        let old = session("k", None);
        let mut new = old.clone();
        new.data = json!({"flows": {"f": 2}});
        let seen = c.removals();
        c.put(&new, c.removals());
        c.fill(&old, seen);
        assert_eq!(c.get("k").unwrap().data, new.data);
    }

    #[test]
    fn anonymous_sessions_are_kept_until_removed() {
        let c = SessionCache::new();
        let s = session("v", None);
        c.put_volatile(&s);
        assert!(c.is_volatile(s.uuid));
        assert_eq!(c.get("v").unwrap().uuid, s.uuid);
        c.remove(s.uuid);
        assert!(!c.is_volatile(s.uuid));
        assert!(c.get("v").is_none());
    }

    #[test]
    fn removal_by_uuid_and_by_user() {
        let c = SessionCache::new();
        let a = session("a", Some(1));
        let b = session("b", Some(1));
        let other = session("o", Some(2));
        for s in [&a, &b, &other] {
            c.put(s, c.removals());
        }
        c.remove(a.uuid);
        assert!(c.get("a").is_none());
        c.remove_user(1, Some(b.uuid));
        assert!(c.get("b").is_some(), "kept");
        c.remove_user(1, None);
        assert!(c.get("b").is_none());
        assert!(c.get("o").is_some(), "another user's session stays");
        c.clear();
        assert!(c.get("o").is_none());
    }
}
