//! The user login stage: the pending user becomes the session's user. The session key is
//! replaced (no fixation), its lifetime set from `session_duration` (plus `remember_me_offset`
//! when the person asked to be remembered), other sessions optionally ended, and `login`
//! recorded with how the user authenticated.

use async_trait::async_trait;
use chrono::Duration;
use portcullis_core::{EventAction, NewEvent, validate::parse_timedelta};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{StageCx, StageView, Step};
use crate::context;
use crate::error::{ConfigError, FlowError};
use crate::session::LoginRecord;

fn zero() -> String {
    "seconds=0".into()
}
fn no_binding() -> String {
    "no_binding".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "zero")]
    pub session_duration: String,
    #[serde(default)]
    pub terminate_other_sessions: bool,
    #[serde(default = "zero")]
    pub remember_me_offset: String,
    #[serde(default = "no_binding")]
    pub network_binding: String,
    #[serde(default = "no_binding")]
    pub geoip_binding: String,
}

pub(crate) fn validate(v: &Value) -> Result<(), ConfigError> {
    let c: Config = super::parse_config(v)?;
    parse_timedelta(&c.session_duration).map_err(|e| ConfigError::single("session_duration", e))?;
    parse_timedelta(&c.remember_me_offset)
        .map_err(|e| ConfigError::single("remember_me_offset", e))?;
    for (field, value) in [
        ("network_binding", &c.network_binding),
        ("geoip_binding", &c.geoip_binding),
    ] {
        if value != "no_binding" {
            return Err(ConfigError::single(
                field,
                format!("\"{value}\": only no_binding is supported."),
            ));
        }
    }
    Ok(())
}

pub struct UserLogin;

#[async_trait]
impl StageView for UserLogin {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let Some(user) = cx.pending_user().await? else {
            return Ok(Step::Deny("No Pending user to login.".into()));
        };
        if !user.user.is_active {
            return Ok(Step::Deny("User is not active.".into()));
        }
        let mut duration = parse_timedelta(&c.session_duration)
            .map_err(|e| FlowError::Config(format!("session_duration: {e}")))?;
        if matches!(
            cx.plan.context.get(context::REMEMBER_ME),
            Some(Value::Bool(true))
        ) {
            duration += parse_timedelta(&c.remember_me_offset)
                .map_err(|e| FlowError::Config(format!("remember_me_offset: {e}")))?;
        }
        let store = &cx.svc.store;
        cx.session
            .login(store, user.clone(), duration.max(Duration::zero()))
            .await?;
        if c.terminate_other_sessions {
            let keep = cx.session.session().map(|s| s.uuid);
            store.delete_user_sessions(user.user.pk, keep).await?;
        }
        let ip = cx
            .request
            .http
            .client_ip
            .clone()
            .unwrap_or_else(|| "255.255.255.255".into());
        let identifier = cx
            .plan
            .context
            .get(context::PENDING_USER_IDENTIFIER)
            .and_then(Value::as_str)
            .unwrap_or(&user.user.username)
            .to_owned();
        let method = cx
            .plan
            .context
            .get(context::AUTH_METHOD)
            .cloned()
            .unwrap_or_else(|| json!("password"));
        // Kept with the session: what OIDC's `amr` says later.
        cx.session
            .set_data(
                &cx.svc.store,
                crate::session::AUTH_METHOD,
                Some(method.clone()),
            )
            .await?;
        let actor = cx.actor().await;
        // Written with the session, in one transaction (see SessionState::save).
        cx.session.record_login(LoginRecord {
            user: user.user.pk,
            identifier,
            ip,
            reputation_delta: portcullis_policy::reputation::LOGIN_DELTA,
            actor,
            event: NewEvent {
                action: EventAction::Login,
                app: "authentik.events.signals".into(),
                context: json!({
                    "auth_method": method,
                    "auth_method_args": {},
                    "flow": {"pk": cx.flow.uuid.to_string(), "slug": cx.flow.slug},
                }),
            },
        });
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
