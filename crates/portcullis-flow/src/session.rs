//! The browser session as flows see it: who is logged in, and the flow plans in progress.
//!
//! Sessions live in the database (any process can continue a flow another one started). The
//! cookie carries a random key; the database row is found by the key's SHA-256. A session is
//! created only when something needs keeping (a plan, a login), so anonymous API calls and
//! health checks create nothing. Logging in replaces the key; logging out deletes the row.

use chrono::Duration;
use portcullis_core::{Actor, NewEvent, Session, User};
use portcullis_crypto::{random_string, sha256_hex};
use portcullis_store::{Store, StoreError, UserWithGroups};
use serde_json::{Map, Value};
use uuid::Uuid;

/// How long a session without a logged-in user lives (authentik's `SESSIONS__UNAUTHENTICATED_AGE`).
pub const UNAUTHENTICATED_AGE: Duration = Duration::days(1);
/// How long a logged-in session lives when the login stage sets no duration.
pub const DEFAULT_AUTHENTICATED_AGE: Duration = Duration::days(14);
/// Most flows one session may have in progress; the oldest is dropped beyond this.
const MAX_PLANS: usize = 8;
/// Length of the random cookie key.
const KEY_LEN: usize = 48;

/// What the HTTP layer must do with the cookie after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// Leave it as it is.
    None,
    /// Set the cookie to this key; `persistent` gives it a Max-Age of this many seconds, else it
    /// is a browser-session cookie.
    Set { key: String, max_age: Option<i64> },
    /// Delete the cookie.
    Clear,
}

/// What a login leaves behind besides the session: written together with it, in one
/// transaction, when the session is saved (a login is recorded if and only if it happened).
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user: i32,
    /// What the person typed to identify (the reputation key), else the username.
    pub identifier: String,
    pub ip: String,
    pub reputation_delta: i64,
    pub actor: Actor,
    pub event: NewEvent,
}

/// The session data key of the time of the last login.
pub const AUTH_TIME: &str = "auth_time";
/// Session data key: how the user logged in (`password`, `app_password`, ...), from the flow.
pub const AUTH_METHOD: &str = "auth_method";

/// One request's view of its session.
#[derive(Debug)]
pub struct SessionState {
    session: Option<Session>,
    login_record: Option<LoginRecord>,
    user: Option<UserWithGroups>,
    cookie: CookieChange,
    dirty: bool,
    /// Created in this request and not written yet: [`SessionState::save`] inserts it (one write
    /// instead of an insert and an update).
    unsaved: bool,
    /// Client facts recorded on the session.
    ip: String,
    user_agent: String,
}

impl SessionState {
    /// Loads the session the cookie `key` names (nothing when absent, unknown or expired).
    pub async fn load(
        store: &Store,
        key: Option<&str>,
        ip: &str,
        user_agent: &str,
    ) -> Result<Self, StoreError> {
        let mut state = Self {
            session: None,
            login_record: None,
            user: None,
            cookie: CookieChange::None,
            dirty: false,
            unsaved: false,
            ip: ip.chars().take(64).collect(),
            user_agent: user_agent.chars().take(512).collect(),
        };
        let Some(key) = key.filter(|k| k.len() == KEY_LEN) else {
            if key.is_some() {
                state.cookie = CookieChange::Clear;
            }
            return Ok(state);
        };
        let Some(session) = store.find_session(&sha256_hex(key.as_bytes())).await? else {
            state.cookie = CookieChange::Clear;
            return Ok(state);
        };
        if let Some(pk) = session.user {
            match store.find_user(pk).await {
                Ok(u) if u.user.is_active => state.user = Some(u),
                // A deactivated or deleted user's session ends.
                Ok(_) | Err(StoreError::NotFound) => {
                    store.delete_session(session.uuid).await?;
                    state.cookie = CookieChange::Clear;
                    return Ok(state);
                }
                Err(e) => return Err(e),
            }
        }
        state.session = Some(session);
        Ok(state)
    }

    /// The logged-in user.
    pub fn user(&self) -> Option<&UserWithGroups> {
        self.user.as_ref()
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The CSRF token of this session (empty when there is no session yet).
    pub fn csrf_token(&self) -> &str {
        self.session
            .as_ref()
            .map(|s| s.csrf_token.as_str())
            .unwrap_or("")
    }

    pub fn cookie_change(&self) -> &CookieChange {
        &self.cookie
    }

    /// Makes sure a session exists (an unauthenticated one, written by [`SessionState::save`]).
    pub async fn ensure(&mut self, store: &Store) -> Result<&mut Session, StoreError> {
        if self.session.is_none() {
            let now = store.clock().now();
            let key = random_string(KEY_LEN);
            let s = Session {
                uuid: Uuid::new_v4(),
                key_hash: sha256_hex(key.as_bytes()),
                user: None,
                created: now,
                expires: now + UNAUTHENTICATED_AGE,
                last_used: now,
                last_ip: self.ip.clone(),
                last_user_agent: self.user_agent.clone(),
                csrf_token: random_string(32),
                data: Value::Object(Map::new()),
            };
            self.cookie = CookieChange::Set { key, max_age: None };
            self.session = Some(s);
            self.unsaved = true;
            self.dirty = true;
        }
        self.session
            .as_mut()
            .ok_or_else(|| StoreError::Config("session vanished".into()))
    }

    /// When the logged-in user authenticated (seconds since the epoch), if recorded.
    pub fn auth_time(&self) -> Option<i64> {
        self.session.as_ref()?.data.get(AUTH_TIME)?.as_i64()
    }

    /// How the logged-in user authenticated (`password`, `app_password`, ...), if recorded.
    pub fn auth_method(&self) -> Option<&str> {
        self.session.as_ref()?.data.get(AUTH_METHOD)?.as_str()
    }

    /// A value other parts of the server keep in the session (`key` is theirs; `flows` and
    /// `auth_time` are the flow engine's).
    pub fn data(&self, key: &str) -> Option<&Value> {
        self.session.as_ref()?.data.get(key)
    }

    /// Stores (or with `None`, removes) a value in the session; saved by
    /// [`SessionState::save`]. Creates an anonymous session when there is none.
    pub async fn set_data(
        &mut self,
        store: &Store,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), StoreError> {
        if value.is_none() && self.data(key).is_none() {
            return Ok(());
        }
        let session = self.ensure(store).await?;
        if !session.data.is_object() {
            session.data = Value::Object(Map::new());
        }
        if let Some(data) = session.data.as_object_mut() {
            match value {
                Some(v) => {
                    data.insert(key.to_owned(), v);
                }
                None => {
                    data.remove(key);
                }
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// The stored plan of flow `slug`, as JSON.
    pub fn plan(&self, slug: &str) -> Option<&Value> {
        self.session.as_ref()?.data.get("flows")?.get(slug)
    }

    /// Stores the plan of flow `slug` (`None` removes it). Saved by [`SessionState::save`].
    pub async fn set_plan(
        &mut self,
        store: &Store,
        slug: &str,
        plan: Option<Value>,
    ) -> Result<(), StoreError> {
        if plan.is_none() && self.plan(slug).is_none() {
            return Ok(());
        }
        let session = self.ensure(store).await?;
        if !session.data.is_object() {
            session.data = Value::Object(Map::new());
        }
        let Some(data) = session.data.as_object_mut() else {
            return Ok(());
        };
        let flows = data
            .entry("flows")
            .or_insert_with(|| Value::Object(Map::new()));
        if !flows.is_object() {
            *flows = Value::Object(Map::new());
        }
        if let Some(flows) = flows.as_object_mut() {
            match plan {
                Some(p) => {
                    flows.remove(slug);
                    // Insertion order is age order: drop the oldest beyond the cap.
                    while flows.len() >= MAX_PLANS {
                        let Some(oldest) = flows.keys().next().cloned() else {
                            break;
                        };
                        flows.remove(&oldest);
                    }
                    flows.insert(slug.to_owned(), p);
                }
                None => {
                    flows.remove(slug);
                }
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Logs `user` in: a fresh key (no session fixation), the user recorded, the expiry set.
    /// `duration` of zero means a browser-session cookie with the default server-side lifetime.
    pub async fn login(
        &mut self,
        store: &Store,
        user: UserWithGroups,
        duration: Duration,
    ) -> Result<(), StoreError> {
        let now = store.clock().now();
        let key = random_string(KEY_LEN);
        let session = self.ensure(store).await?;
        session.key_hash = sha256_hex(key.as_bytes());
        session.user = Some(user.user.pk);
        session.csrf_token = random_string(32);
        let persistent = duration > Duration::zero();
        session.expires = now
            + if persistent {
                duration
            } else {
                DEFAULT_AUTHENTICATED_AGE
            };
        session.last_used = now;
        // When the person last proved who they are: OIDC's auth_time and max_age.
        if let Some(data) = session.data.as_object_mut() {
            data.insert(AUTH_TIME.into(), Value::from(now.timestamp()));
        } else {
            let mut data = Map::new();
            data.insert(AUTH_TIME.into(), Value::from(now.timestamp()));
            session.data = Value::Object(data);
        }
        self.cookie = CookieChange::Set {
            key,
            max_age: persistent.then(|| duration.num_seconds()),
        };
        self.user = Some(user);
        self.dirty = true;
        Ok(())
    }

    /// Records the login (last login, reputation, the `login` event) with the next
    /// [`SessionState::save`].
    pub fn record_login(&mut self, record: LoginRecord) {
        self.login_record = Some(record);
    }

    /// Ends the session: the row is deleted and the cookie cleared. Plans in progress are kept
    /// in a new, anonymous session if something stores one afterwards.
    pub async fn logout(&mut self, store: &Store) -> Result<Option<User>, StoreError> {
        let user = self.user.take().map(|u| u.user);
        if let Some(s) = self.session.take()
            && !self.unsaved
        {
            store.delete_session(s.uuid).await?;
        }
        self.unsaved = false;
        self.cookie = CookieChange::Clear;
        self.dirty = false;
        Ok(user)
    }

    /// Writes what changed. A session deleted meanwhile (logged out elsewhere) stays deleted.
    pub async fn save(&mut self, store: &Store) -> Result<(), StoreError> {
        if let Some(record) = self.login_record.take() {
            // One transaction, one commit to disk: the login's records and the session.
            let unit = store.begin_unit().await?;
            let tx = unit.store();
            tx.touch_last_login(record.user).await?;
            tx.add_reputation(&record.identifier, &record.ip, record.reputation_delta)
                .await?;
            tx.record_event(&record.actor, record.event).await?;
            self.write(tx).await?;
            unit.commit_without_invalidating().await?;
            return Ok(());
        }
        self.write(store).await
    }

    async fn write(&mut self, store: &Store) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(s) = &mut self.session {
            s.last_used = store.clock().now();
            s.last_ip = self.ip.clone();
            s.last_user_agent = self.user_agent.clone();
            if self.unsaved {
                store.create_session(s.clone()).await?;
                self.unsaved = false;
            } else {
                match store.save_session(s).await {
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.dirty = false;
        Ok(())
    }
}
