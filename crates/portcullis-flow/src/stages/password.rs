//! The password stage: checks the pending user's password with the configured backends
//! (`authentik.core.auth.InbuiltBackend`: the user's password; `authentik.core.auth.TokenBackend`:
//! an app password token of the user). Unknown users, inactive users and users without a usable
//! password cost one dummy argon2id check, like a real one, and get the same answer.
//!
//! A wrong password records `login_failed` (with the reason, never the password) and lowers the
//! reputation of the identifier and the client IP; after `failed_attempts_before_cancel` wrong
//! answers the flow is cancelled.

use async_trait::async_trait;
use portcullis_core::{EventAction, NewEvent, TokenIntent};
use portcullis_crypto::sha256_hex;
use portcullis_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{StageCx, StageView, Step, response_str};
use crate::challenge::Challenge;
use crate::context::{self, BACKEND_INBUILT, BACKEND_TOKEN};
use crate::error::{ConfigError, FlowError};
use crate::stages::identification::MAX_PASSWORD;

pub const COMPONENT: &str = "ak-stage-password";
pub const INVALID_PASSWORD: &str = "Invalid password";

fn default_backends() -> Vec<String> {
    vec![BACKEND_INBUILT.into(), BACKEND_TOKEN.into()]
}
fn five() -> u32 {
    5
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "default_backends")]
    pub backends: Vec<String>,
    #[serde(default)]
    pub configure_flow: Option<Uuid>,
    #[serde(default = "five")]
    pub failed_attempts_before_cancel: u32,
    #[serde(default)]
    pub allow_show_password: bool,
}

pub(crate) fn validate(v: &Value) -> Result<(), ConfigError> {
    let c: Config = super::parse_config(v)?;
    if c.backends.is_empty() {
        return Err(ConfigError::single(
            "backends",
            "This list may not be empty.",
        ));
    }
    // authentik's LDAP and Kerberos source backends are accepted (blueprints written for
    // authentik name them) and find nobody until those sources exist.
    const KNOWN: &[&str] = &[
        BACKEND_INBUILT,
        BACKEND_TOKEN,
        "authentik.sources.ldap.auth.LDAPBackend",
        "authentik.sources.kerberos.auth.KerberosBackend",
    ];
    for b in &c.backends {
        if !KNOWN.contains(&b.as_str()) {
            return Err(ConfigError::single(
                "backends",
                format!("\"{b}\" is not a valid choice."),
            ));
        }
    }
    Ok(())
}

pub struct Password;

fn challenge(cx: &StageCx<'_>, c: &Config) -> Challenge {
    let identifier = cx
        .plan
        .context
        .get(context::PENDING_USER_IDENTIFIER)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Challenge::new(COMPONENT)
        .with("pending_user", identifier)
        .with(
            "pending_user_avatar",
            "/static/dist/assets/images/user_default.png",
        )
        .with("allow_show_password", c.allow_show_password)
}

/// Checks `password` for the user `usable` (the pk of an active user; `None` for unknown or
/// inactive ones, which cost the same) with the stage's (or the default) backends. Records the
/// outcome: `login_failed` and a reputation penalty on failure. On success the plan's context
/// names the backend that accepted it.
pub(crate) async fn authenticate(
    cx: &mut StageCx<'_>,
    usable: Option<i32>,
    password: &str,
    identifier: &str,
) -> Result<bool, FlowError> {
    let backends = cx
        .config::<Config>()
        .map(|c| c.backends)
        .unwrap_or_else(|_| default_backends());
    let mut accepted: Option<&str> = None;
    if backends.iter().any(|b| b == BACKEND_INBUILT) && check_password(cx, usable, password).await?
    {
        accepted = Some(BACKEND_INBUILT);
    }
    // Looked up for unknown users too, so both cost the same.
    if accepted.is_none()
        && backends.iter().any(|b| b == BACKEND_TOKEN)
        && check_app_password(cx, usable, password).await?
    {
        accepted = Some(BACKEND_TOKEN);
    }
    match accepted {
        Some(backend) => {
            cx.plan
                .context
                .insert(context::USER_BACKEND.into(), json!(backend));
            cx.plan.context.insert(
                context::AUTH_METHOD.into(),
                json!(if backend == BACKEND_TOKEN {
                    "app_password"
                } else {
                    "password"
                }),
            );
            Ok(true)
        }
        None => {
            login_failed(cx, identifier, "invalid_password").await?;
            Ok(false)
        }
    }
}

/// The user's own password. No user (or no usable hash) costs a dummy check. The hash comes
/// from the user read earlier in this request when there was one (the pending user).
async fn check_password(
    cx: &StageCx<'_>,
    user: Option<i32>,
    password: &str,
) -> Result<bool, FlowError> {
    let stored = match user {
        Some(pk) => match cx.users.password_hash(&cx.svc.store, pk).await {
            Ok(h) => h.map(|h| (pk, h)),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(crate::credentials::verify_stored(cx.svc, stored, password).await?)
}

/// An unexpired app-password token of `user` whose key is `password`.
async fn check_app_password(
    cx: &StageCx<'_>,
    user: Option<i32>,
    password: &str,
) -> Result<bool, FlowError> {
    let token = match cx
        .svc
        .store
        .find_token_by_key_hash(&sha256_hex(password.as_bytes()))
        .await
    {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    Ok(token.intent == TokenIntent::AppPassword
        && user == Some(token.user_pk)
        && !token.is_expired(cx.svc.clock.now()))
}

/// Records `login_failed` and lowers the reputation of the identifier and the client IP.
pub(crate) async fn login_failed(
    cx: &StageCx<'_>,
    identifier: &str,
    reason: &str,
) -> Result<(), FlowError> {
    let ip = cx
        .request
        .http
        .client_ip
        .clone()
        .unwrap_or_else(|| "255.255.255.255".into());
    cx.svc
        .store
        .add_reputation(
            identifier,
            &ip,
            portcullis_policy::reputation::LOGIN_FAILED_DELTA,
        )
        .await?;
    let identifier: String = identifier.chars().take(256).collect();
    let mut actor = cx.actor().await;
    // The failed login is nobody's action: the identifier goes into the context.
    actor.user = None;
    cx.svc
        .store
        .record_event(
            &actor,
            NewEvent {
                action: EventAction::LoginFailed,
                app: "authentik.events.signals".into(),
                context: json!({
                    "username": identifier,
                    "reason": reason,
                    "stage": {"pk": cx.stage.uuid.to_string(), "name": cx.stage.name, "kind": cx.stage.kind},
                    "flow": {"pk": cx.flow.uuid.to_string(), "slug": cx.flow.slug},
                }),
            },
        )
        .await?;
    Ok(())
}

#[async_trait]
impl StageView for Password {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        if !cx.plan.context.contains_key(context::PENDING_USER)
            && !cx
                .plan
                .context
                .contains_key(context::PENDING_USER_IDENTIFIER)
        {
            return Ok(Step::Deny("No pending user.".into()));
        }
        Ok(Step::Challenge(challenge(cx, &c)))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let password = match response_str(response, "password", MAX_PASSWORD) {
            Ok(Some(p)) if !p.is_empty() => p.to_owned(),
            Ok(_) => {
                return Ok(Step::Invalid(
                    challenge(cx, &c).error("password", "This field is required."),
                ));
            }
            Err(e) => return Ok(Step::Invalid(challenge(cx, &c).error("password", e))),
        };
        let identifier = cx
            .plan
            .context
            .get(context::PENDING_USER_IDENTIFIER)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let usable = cx
            .pending_user()
            .await?
            .filter(|u| u.user.is_active)
            .map(|u| u.user.pk);
        if authenticate(cx, usable, &password, &identifier).await? {
            cx.plan.context.remove(context::INVALID_ATTEMPTS);
            return Ok(Step::Next);
        }
        let attempts = cx
            .plan
            .context
            .get(context::INVALID_ATTEMPTS)
            .and_then(Value::as_u64)
            .unwrap_or(0)
            + 1;
        cx.plan
            .context
            .insert(context::INVALID_ATTEMPTS.into(), json!(attempts));
        if c.failed_attempts_before_cancel > 0
            && attempts >= u64::from(c.failed_attempts_before_cancel)
        {
            return Ok(Step::Deny(INVALID_PASSWORD.into()));
        }
        Ok(Step::Invalid(
            challenge(cx, &c).error("password", INVALID_PASSWORD),
        ))
    }
}
