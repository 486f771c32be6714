//! The built-in stages, one per file. A stage answers two questions: what to ask
//! ([`StageView::challenge`], on GET) and what to make of the answer ([`StageView::respond`], on
//! POST). Stages that ask nothing (user_login, user_logout, deny, user_write, redirect) answer
//! the first question with a [`Step`] right away.

use async_trait::async_trait;
use portcullis_core::{Actor, EventUser, Flow, Stage};
use portcullis_policy::{PolicyRequest, PolicyUser};
use portcullis_store::{StoreError, UserWithGroups};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::challenge::Challenge;
use crate::error::{ConfigError, FlowError};
use crate::executor::{FlowRequest, FlowServices};
use crate::plan::FlowPlan;
use crate::session::SessionState;

pub mod consent;
pub mod deny;
pub mod dummy;
pub mod identification;
pub mod iframe_logout;
pub mod password;
pub mod prompt;
pub mod redirect;
pub mod user_login;
pub mod user_logout;
pub mod user_write;

/// What a stage decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Ask this.
    Challenge(Challenge),
    /// The stage is done; go on.
    Next,
    /// The response was not acceptable; ask again with these errors.
    Invalid(Challenge),
    /// Stop the flow with this message for the person.
    Deny(String),
    /// End the flow by sending the browser here.
    Redirect(String),
    /// End the flow and continue in flow `flow`, planned now, with this flow's context when
    /// `keep_context` (authentik's redirect stage in flow mode).
    SwitchFlow {
        flow: uuid::Uuid,
        keep_context: bool,
    },
}

/// Everything a stage may look at and change while it runs.
pub struct StageCx<'a> {
    pub svc: &'a FlowServices,
    pub flow: &'a Flow,
    pub stage: &'a Stage,
    pub plan: &'a mut FlowPlan,
    pub session: &'a mut SessionState,
    pub request: &'a FlowRequest,
    pub users: &'a UserMemo,
}

/// The pending user as loaded earlier in this request: stages, policies and events all ask
/// for it, and one load serves them (until something changes, e.g. user_write saves it). The
/// same read brings the user's password hash, for a password stage in the same request.
#[derive(Debug, Default)]
pub struct UserMemo(std::sync::Mutex<Option<Memo>>);

struct Memo {
    generation: u64,
    user: UserWithGroups,
    hash: Option<String>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("generation", &self.generation)
            .field("user", &self.user.user.pk)
            .field("hash", &self.hash.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl UserMemo {
    fn fresh<T>(
        &self,
        store: &portcullis_store::Store,
        pk: i32,
        f: impl FnOnce(&Memo) -> T,
    ) -> Option<T> {
        let generation = store.changes();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|m| m.generation == generation && m.user.user.pk == pk)
            .map(f)
    }

    /// User `pk` with groups, from the memo when this process changed nothing since.
    pub async fn get(
        &self,
        store: &portcullis_store::Store,
        pk: i32,
    ) -> Result<UserWithGroups, StoreError> {
        if let Some(u) = self.fresh(store, pk, |m| m.user.clone()) {
            return Ok(u);
        }
        let generation = store.changes();
        let (user, hash) = store.find_user_for_login(pk).await?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Memo {
            generation,
            user: user.clone(),
            hash,
        });
        Ok(user)
    }

    /// User `pk`'s usable password hash: from the memo when it holds that user and this
    /// process changed nothing since, else read (`NotFound` when there is no such user).
    pub async fn password_hash(
        &self,
        store: &portcullis_store::Store,
        pk: i32,
    ) -> Result<Option<String>, StoreError> {
        if let Some(h) = self.fresh(store, pk, |m| m.hash.clone()) {
            return Ok(h);
        }
        store.find_password_hash(pk).await
    }
}

impl StageCx<'_> {
    /// Who acts, for events: the logged-in user, else the pending user.
    pub async fn actor(&self) -> Actor {
        let user = self.session.user().map(|u| &u.user);
        let pending = match user {
            Some(_) => None,
            None => self.pending_user().await.ok().flatten(),
        };
        let user = user.or(pending.as_ref().map(|u| &u.user));
        Actor {
            user: user.map(|u| EventUser {
                pk: u.pk,
                email: u.email.clone(),
                username: u.username.clone(),
            }),
            client_ip: self.request.http.client_ip.clone(),
            brand: Some(serde_json::json!({
                "pk": self.request.brand.uuid.to_string(),
                "domain": self.request.brand.domain,
                "branding_title": self.request.brand.branding_title,
            })),
        }
    }

    /// The user the flow is about (identified by an earlier stage), with groups.
    pub async fn pending_user(&self) -> Result<Option<UserWithGroups>, StoreError> {
        let Some(pk) = self.plan.pending_user() else {
            return Ok(None);
        };
        match self.users.get(&self.svc.store, pk).await {
            Ok(u) => Ok(Some(u)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The policy question for this request: the logged-in user (or anonymous), the plan's
    /// context and the HTTP request.
    pub async fn policy_request(&self) -> Result<PolicyRequest, StoreError> {
        policy_request(
            self.session,
            self.plan,
            self.request,
            self.pending_user().await?,
        )
    }

    /// The stage's settings, typed.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, FlowError> {
        parse_config(&self.stage.config)
            .map_err(|e| FlowError::Config(format!("stage {:?}: {e}", self.stage.name)))
    }
}

pub(crate) fn policy_request(
    session: &SessionState,
    plan: &FlowPlan,
    request: &FlowRequest,
    pending: Option<UserWithGroups>,
) -> Result<PolicyRequest, StoreError> {
    let user = match session.user() {
        Some(u) => PolicyUser::from_user(&u.user, &u.groups),
        None => PolicyUser::anonymous(),
    };
    let mut req = PolicyRequest::new(user);
    req.context = plan.context.clone();
    req.pending_user = pending.map(|u| PolicyUser::from_user(&u.user, &u.groups));
    req.http_request = Some(request.http.clone());
    Ok(req)
}

/// A stage type's behaviour.
#[async_trait]
pub trait StageView: Send + Sync {
    /// What to ask when the stage becomes current (or is fetched again).
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError>;

    /// What the response to the challenge means. `response` is a JSON object whose `component`
    /// matched the challenge's.
    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        response: &Map<String, Value>,
    ) -> Result<Step, FlowError>;
}

/// The behaviour of a stage kind.
pub fn view(kind: &str) -> Option<&'static dyn StageView> {
    Some(match kind {
        "identificationstage" => &identification::Identification,
        "passwordstage" => &password::Password,
        "userloginstage" => &user_login::UserLogin,
        "userlogoutstage" => &user_logout::UserLogout,
        "denystage" => &deny::Deny,
        "dummystage" => &dummy::Dummy,
        "promptstage" => &prompt::PromptStage,
        "userwritestage" => &user_write::UserWrite,
        "redirectstage" => &redirect::Redirect,
        "consentstage" => &consent::Consent,
        iframe_logout::KIND => &iframe_logout::IframeLogout,
        _ => return None,
    })
}

pub(crate) fn parse_config<T: DeserializeOwned>(config: &Value) -> Result<T, ConfigError> {
    let mut config = config.clone();
    if let Value::Object(m) = &mut config {
        m.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(config).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("non_field_errors")
            .to_owned();
        ConfigError::single(&field, msg)
    })
}

fn normalized<T: DeserializeOwned + Serialize>(config: &Value) -> Result<Value, ConfigError> {
    let c: T = parse_config(config)?;
    serde_json::to_value(&c).map_err(|e| ConfigError::single("non_field_errors", e.to_string()))
}

/// Validates a stage type's settings and fills in defaults.
pub(crate) fn normalize(model: &str, config: &Value) -> Result<Value, ConfigError> {
    let v = match model {
        "identificationstage" => normalized::<identification::Config>(config)?,
        "passwordstage" => normalized::<password::Config>(config)?,
        "userloginstage" => normalized::<user_login::Config>(config)?,
        "userlogoutstage" => normalized::<user_logout::Config>(config)?,
        "denystage" => normalized::<deny::Config>(config)?,
        "dummystage" => normalized::<dummy::Config>(config)?,
        "promptstage" => normalized::<prompt::Config>(config)?,
        "userwritestage" => normalized::<user_write::Config>(config)?,
        "redirectstage" => normalized::<redirect::Config>(config)?,
        "consentstage" => normalized::<consent::Config>(config)?,
        other => {
            return Err(ConfigError::single(
                "non_field_errors",
                format!("unknown stage type {other:?}"),
            ));
        }
    };
    validate(model, &v)?;
    Ok(v)
}

fn validate(model: &str, v: &Value) -> Result<(), ConfigError> {
    match model {
        "userloginstage" => user_login::validate(v),
        "passwordstage" => password::validate(v),
        "identificationstage" => identification::validate(v),
        "consentstage" => consent::validate(v),
        "redirectstage" => redirect::validate(v),
        "userwritestage" => user_write::validate(v),
        _ => Ok(()),
    }
}

/// A string field of a response: absent, or a string of at most `max` characters.
pub(crate) fn response_str<'a>(
    response: &'a Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<&'a str>, String> {
    match response.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.as_str())),
        Some(Value::String(_)) => Err(format!(
            "Ensure this field has no more than {max} characters."
        )),
        Some(_) => Err("Not a valid string.".to_owned()),
    }
}
