//! The user write stage: writes what prompt stages gathered (`prompt_data`) to the pending user,
//! creating one when there is none (enrollment). Asks nothing.
//!
//! ```text
//!  no prompt_data ─> Deny "No Pending data."
//!  pending user and mode != always_create ─> update it
//!  otherwise: never_create ─> Deny · else create (active unless create_users_as_inactive,
//!             of user_type, at path, in create_users_group)
//!  ─> user_write event ─> pending_user = the user ─> Next (a user_login stage logs it in)
//! ```
//! Keys written, as authentik: `username`, `email`, `name`, `path`, `password` (hashed),
//! `attributes` (an object merged into the user's) and `attributes.a.b` (a nested value). Other
//! keys are ignored; in particular nothing in `prompt_data` can set `is_active`, the user type,
//! groups or superuser status. The plain password leaves the plan once it is written.

use async_trait::async_trait;
use portcullis_core::validate::{self, NAME_MAX};
use portcullis_core::{
    DEFAULT_USER_PATH, EventAction, FieldErrors, NewEvent, NewUser, UserPatch, UserType,
};
use portcullis_store::{StoreError, UserWithGroups};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{StageCx, StageView, Step};
use crate::context;
use crate::error::{ConfigError, FlowError};

pub const NEVER_CREATE: &str = "never_create";
pub const CREATE_WHEN_REQUIRED: &str = "create_when_required";
pub const ALWAYS_CREATE: &str = "always_create";

fn create_when_required() -> String {
    CREATE_WHEN_REQUIRED.into()
}
fn external() -> String {
    UserType::External.as_str().into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "create_when_required")]
    pub user_creation_mode: String,
    #[serde(default)]
    pub create_users_as_inactive: bool,
    #[serde(default)]
    pub create_users_group: Option<Uuid>,
    #[serde(default = "external")]
    pub user_type: String,
    #[serde(default)]
    pub user_path_template: String,
}

pub(crate) fn validate(v: &Value) -> Result<(), ConfigError> {
    let c: Config = super::parse_config(v)?;
    let mut errors = FieldErrors::new();
    if ![NEVER_CREATE, CREATE_WHEN_REQUIRED, ALWAYS_CREATE].contains(&c.user_creation_mode.as_str())
    {
        errors.add(
            "user_creation_mode",
            format!("\"{}\" is not a valid choice.", c.user_creation_mode),
        );
    }
    if UserType::parse(&c.user_type).is_none() {
        errors.add(
            "user_type",
            format!("\"{}\" is not a valid choice.", c.user_type),
        );
    }
    if !c.user_path_template.is_empty() {
        validate::user_path(&mut errors, "user_path_template", &c.user_path_template);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(errors))
    }
}

/// Prompt data keys holding a plain password, removed from the plan once written.
const PASSWORD_KEYS: &[&str] = &["password", "password_repeat"];

/// What `prompt_data` asks to write.
#[derive(Debug, Default)]
struct Writes {
    username: Option<String>,
    email: Option<String>,
    name: Option<String>,
    path: Option<String>,
    password: Option<String>,
    /// The user's attributes after the writes, when any attribute key was given.
    attributes: Option<Value>,
}

/// Reads the writes from `data` onto `attributes` (the user's current ones), checking them.
fn writes(data: &Map<String, Value>, attributes: &Value) -> Result<Writes, String> {
    let mut w = Writes::default();
    let mut attrs = match attributes {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut attrs_changed = false;
    let string = |key: &str, v: &Value| -> Result<String, String> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("Invalid value for {key}."))
    };
    for (key, value) in data {
        match key.as_str() {
            "username" => w.username = Some(string(key, value)?),
            "email" => w.email = Some(string(key, value)?),
            "name" => w.name = Some(string(key, value)?),
            "path" => w.path = Some(string(key, value)?),
            "password" => w.password = Some(string(key, value)?),
            "attributes" => {
                if let Value::Object(m) = value {
                    attrs.extend(m.clone());
                    attrs_changed = true;
                }
            }
            k => {
                if let Some(path) = k.strip_prefix("attributes.") {
                    set_path(&mut attrs, path, value.clone());
                    attrs_changed = true;
                }
                // Anything else is not a user field: ignored, as authentik discards it.
            }
        }
    }
    let mut errors = FieldErrors::new();
    if let Some(u) = &w.username {
        validate::username(&mut errors, "username", u);
    }
    if let Some(e) = &w.email {
        validate::email(&mut errors, "email", e);
    }
    if let Some(n) = &w.name {
        validate::text(&mut errors, "name", n, NAME_MAX, true);
    }
    if let Some(p) = &w.path {
        validate::user_path(&mut errors, "path", p);
    }
    if attrs_changed {
        let v = Value::Object(attrs);
        validate::attributes(&mut errors, "attributes", &v);
        w.attributes = Some(v);
    }
    if !errors.is_empty() {
        return Err(errors.to_string());
    }
    Ok(w)
}

/// Sets `a.b.c` in `m`, making the objects on the way (replacing non-objects).
fn set_path(m: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            m.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = m
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

pub struct UserWrite;

impl UserWrite {
    async fn hash(cx: &StageCx<'_>, password: Option<String>) -> Result<Option<String>, FlowError> {
        match password {
            Some(p) => Ok(Some(cx.svc.hasher.hash(p).await.map_err(|e| {
                FlowError::Internal(format!("could not hash a password: {e}"))
            })?)),
            None => Ok(None),
        }
    }

    /// Whether `username` belongs to someone other than `pk`.
    async fn is_taken(
        cx: &StageCx<'_>,
        username: &str,
        pk: Option<i32>,
    ) -> Result<bool, FlowError> {
        match cx.svc.store.find_user_by_username(username).await {
            Ok(u) => Ok(Some(u.user.pk) != pk),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn create(
        cx: &mut StageCx<'_>,
        c: &Config,
        w: Writes,
    ) -> Result<Result<UserWithGroups, String>, FlowError> {
        let Some(username) = w.username.filter(|u| !u.is_empty()) else {
            return Ok(Err("Failed to create user: no username given.".into()));
        };
        if Self::is_taken(cx, &username, None).await? {
            return Ok(Err(TAKEN.into()));
        }
        let user_type = UserType::parse(&c.user_type).ok_or_else(|| {
            FlowError::Config(format!("user write stage: user_type {:?}", c.user_type))
        })?;
        let mut new = NewUser::named(&username);
        new.email = w.email.unwrap_or_default();
        new.name = w.name.unwrap_or_default();
        new.is_active = !c.create_users_as_inactive;
        new.user_type = user_type;
        new.path = w.path.unwrap_or_else(|| {
            if c.user_path_template.is_empty() {
                DEFAULT_USER_PATH.to_owned()
            } else {
                c.user_path_template.clone()
            }
        });
        if let Some(a) = w.attributes {
            new.attributes = a;
        }
        if let Some(g) = c.create_users_group {
            match cx.svc.store.find_group(g).await {
                Ok(_) => new.groups.push(g),
                // Deleted since the stage was saved (authentik's SET_NULL): no group.
                Err(StoreError::NotFound) => {
                    tracing::warn!(stage = %cx.stage.name, group = %g, "create_users_group no longer exists");
                }
                Err(e) => return Err(e.into()),
            }
        }
        new.password_hash = Self::hash(cx, w.password).await?;
        let actor = cx.actor().await;
        match cx.svc.store.create_user(new, &actor).await {
            Ok(u) => Ok(Ok(u)),
            Err(StoreError::Conflict { .. }) => Ok(Err(TAKEN.into())),
            Err(e) => Err(e.into()),
        }
    }

    async fn update(
        cx: &mut StageCx<'_>,
        user: UserWithGroups,
        w: Writes,
    ) -> Result<Result<UserWithGroups, String>, FlowError> {
        let pk = user.user.pk;
        if let Some(u) = &w.username {
            if u.is_empty() {
                return Ok(Err("Failed to update user: the username is empty.".into()));
            }
            if Self::is_taken(cx, u, Some(pk)).await? {
                return Ok(Err(TAKEN.into()));
            }
        }
        let actor = cx.actor().await;
        let patch = UserPatch {
            username: w.username,
            name: w.name,
            email: w.email,
            attributes: w.attributes,
            path: w.path,
            ..Default::default()
        };
        let mut updated = if patch == UserPatch::default() {
            user
        } else {
            match cx.svc.store.update_user(pk, patch, &actor).await {
                Ok(u) => u,
                Err(StoreError::Conflict { .. }) => return Ok(Err(TAKEN.into())),
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(hash) = Self::hash(cx, w.password).await? {
            cx.svc.store.set_password(pk, Some(hash), &actor).await?;
            updated.user.has_password = true;
        }
        Ok(Ok(updated))
    }
}

const TAKEN: &str = "Username is already taken.";

#[async_trait]
impl StageView for UserWrite {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let Some(data) = cx
            .plan
            .context
            .get(context::PROMPT_DATA)
            .and_then(Value::as_object)
            .cloned()
        else {
            return Ok(Step::Deny("No Pending data.".into()));
        };
        let pending = if c.user_creation_mode == ALWAYS_CREATE {
            None
        } else {
            cx.pending_user().await?
        };
        if pending.is_none() && c.user_creation_mode == NEVER_CREATE {
            return Ok(Step::Deny(
                "No user found and can't create new user.".into(),
            ));
        }
        let current = pending
            .as_ref()
            .map(|u| u.user.attributes.clone())
            .unwrap_or_else(|| json!({}));
        let w = match writes(&data, &current) {
            Ok(w) => w,
            Err(e) => return Ok(Step::Deny(format!("Failed to update user: {e}"))),
        };
        let created = pending.is_none();
        let result = match pending {
            Some(u) => Self::update(cx, u, w).await?,
            None => Self::create(cx, &c, w).await?,
        };
        let user = match result {
            Ok(u) => u,
            Err(message) => return Ok(Step::Deny(message)),
        };
        cx.plan
            .context
            .insert(context::PENDING_USER.into(), json!(user.user.pk));
        if let Some(Value::Object(d)) = cx.plan.context.get_mut(context::PROMPT_DATA) {
            for k in PASSWORD_KEYS {
                d.remove(*k);
            }
        }
        // The event carries what was written, never a password.
        let written: Map<String, Value> = data
            .into_iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().contains("password"))
            .collect();
        let actor = cx.actor().await;
        cx.svc
            .store
            .record_event(
                &actor,
                NewEvent {
                    action: EventAction::UserWrite,
                    app: "authentik.stages.user_write.signals".into(),
                    context: json!({
                        "created": created,
                        "data": written,
                        "user": {
                            "pk": user.user.pk,
                            "username": user.user.username,
                            "email": user.user.email,
                        },
                        "flow": {"pk": cx.flow.uuid.to_string(), "slug": cx.flow.slug},
                    }),
                },
            )
            .await?;
        Ok(Step::Next)
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        self.challenge(cx).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let v = crate::stages::normalize("userwritestage", &json!({})).unwrap();
        assert_eq!(v["user_creation_mode"], json!("create_when_required"));
        assert_eq!(v["user_type"], json!("external"));
        assert_eq!(v["create_users_as_inactive"], json!(false));
        for bad in [
            json!({"user_creation_mode": "sometimes"}),
            json!({"user_type": "root"}),
            json!({"user_path_template": "/abs/"}),
            json!({"create_users_group": "not-a-uuid"}),
        ] {
            assert!(
                crate::stages::normalize("userwritestage", &bad).is_err(),
                "{bad}"
            );
        }
        assert!(
            crate::stages::normalize(
                "userwritestage",
                &json!({"user_path_template": "users/enrolled"})
            )
            .is_ok()
        );
    }

    #[test]
    fn dotted_attribute_keys_nest() {
        let data = json!({
            "attributes.settings.locale": "de",
            "attributes": {"a": 1},
            "attributes.x": {"y": true},
            "is_superuser": true,
            "is_active": false,
        });
        let w = writes(
            data.as_object().unwrap(),
            &json!({"settings": "flat", "keep": 1}),
        )
        .unwrap();
        assert_eq!(
            w.attributes.unwrap(),
            json!({"settings": {"locale": "de"}, "keep": 1, "a": 1, "x": {"y": true}})
        );
        assert!(writes(json!({"email": "nope"}).as_object().unwrap(), &json!({})).is_err());
        assert!(writes(json!({"username": ["a"]}).as_object().unwrap(), &json!({})).is_err());
    }
}
