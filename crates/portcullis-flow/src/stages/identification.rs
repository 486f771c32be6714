//! The identification stage: who is this? Looks the identifier up by the configured user fields
//! (username, email, upn), optionally checks a password on the same page, and records the
//! pending user for the stages after it.
//!
//! With `pretend_user_exists` (the default) an unknown identifier gets exactly the answer a known
//! one gets: the flow moves on to the password stage, which then fails the same way and with the
//! same cost (a dummy password check). Nothing in the answers tells the two apart.

use async_trait::async_trait;
use portcullis_store::IdentifiedUser;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{StageCx, StageView, Step, response_str};
use crate::challenge::Challenge;
use crate::context;
use crate::error::{ConfigError, FlowError};

pub const COMPONENT: &str = "ak-stage-identification";

fn default_user_fields() -> Vec<String> {
    vec!["email".into(), "username".into()]
}
fn t() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "default_user_fields")]
    pub user_fields: Vec<String>,
    #[serde(default)]
    pub password_stage: Option<Uuid>,
    #[serde(default)]
    pub captcha_stage: Option<Uuid>,
    #[serde(default = "t")]
    pub case_insensitive_matching: bool,
    #[serde(default = "t")]
    pub show_matched_user: bool,
    #[serde(default)]
    pub enrollment_flow: Option<Uuid>,
    #[serde(default)]
    pub recovery_flow: Option<Uuid>,
    #[serde(default)]
    pub passwordless_flow: Option<Uuid>,
    #[serde(default)]
    pub sources: Vec<Uuid>,
    #[serde(default)]
    pub show_source_labels: bool,
    #[serde(default = "t")]
    pub pretend_user_exists: bool,
    #[serde(default)]
    pub enable_remember_me: bool,
    #[serde(default)]
    pub webauthn_stage: Option<Uuid>,
}

pub(crate) fn validate(v: &Value) -> Result<(), ConfigError> {
    let c: Config = super::parse_config(v)?;
    for f in &c.user_fields {
        if !matches!(f.as_str(), "username" | "email" | "upn") {
            return Err(ConfigError::single(
                "user_fields",
                format!("\"{f}\" is not a valid choice."),
            ));
        }
    }
    if c.user_fields.is_empty() && c.sources.is_empty() && c.passwordless_flow.is_none() {
        return Err(ConfigError::single(
            "non_field_errors",
            "When no user fields are selected, at least one source must be selected",
        ));
    }
    Ok(())
}

/// Longest identifier accepted (authentik's username limit is 150; emails reach 254).
const MAX_IDENTIFIER: usize = 256;
/// Longest password accepted anywhere in a flow (argon2 accepts more; nobody needs more).
pub const MAX_PASSWORD: usize = 1024;

pub struct Identification;

impl Identification {
    fn challenge_for(&self, cx: &StageCx<'_>, c: &Config, links: &Links) -> Challenge {
        let mut ch = Challenge::new(COMPONENT)
            .with("user_fields", json!(c.user_fields))
            .with("password_fields", c.password_stage.is_some())
            .with("allow_show_password", false)
            .with("flow_designation", cx.flow.designation.as_str())
            .with("primary_action", primary_action(cx))
            .with("sources", json!([]))
            .with("show_source_labels", c.show_source_labels)
            .with("enable_remember_me", c.enable_remember_me);
        for (key, url) in links {
            ch = ch.with(key, url.clone());
        }
        if let Some(app) = cx
            .plan
            .context
            .get(context::APPLICATION)
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
        {
            ch = ch.with("application_pre", app);
        }
        if let Some(id) = [context::PENDING_USER_IDENTIFIER, context::LOGIN_HINT]
            .iter()
            .find_map(|k| cx.plan.context.get(*k).and_then(Value::as_str))
        {
            ch = ch.with("pending_user_identifier", id);
        }
        ch
    }
}

/// The enrollment, recovery and passwordless links: `/if/flow/<slug>/` of the configured flows
/// (a flow deleted since is left out).
type Links = Vec<(&'static str, String)>;

async fn links(cx: &StageCx<'_>, c: &Config) -> Result<Links, FlowError> {
    let mut out = Vec::new();
    for (key, flow) in [
        ("enroll_url", c.enrollment_flow),
        ("recovery_url", c.recovery_flow),
        ("passwordless_url", c.passwordless_flow),
    ] {
        let Some(uuid) = flow else { continue };
        match cx.svc.store.find_flow(uuid).await {
            Ok(f) => out.push((key, format!("/if/flow/{}/", f.slug))),
            Err(portcullis_store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

fn primary_action(cx: &StageCx<'_>) -> &'static str {
    match cx.flow.designation {
        portcullis_core::FlowDesignation::Enrollment => "Continue",
        portcullis_core::FlowDesignation::Recovery => "Continue",
        _ => "Log in",
    }
}

/// Finds the user `uid` names by one of `fields`, in their order.
pub(crate) async fn find_user(
    cx: &StageCx<'_>,
    uid: &str,
    fields: &[String],
    case_insensitive: bool,
) -> Result<Option<IdentifiedUser>, FlowError> {
    for field in fields {
        let found = cx
            .svc
            .store
            .identify_users(field, uid, case_insensitive)
            .await?;
        // An ambiguous identifier (two users share an email) identifies nobody.
        if found.len() == 1 {
            return Ok(found.into_iter().next());
        }
    }
    Ok(None)
}

#[async_trait]
impl StageView for Identification {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let links = links(cx, &c).await?;
        Ok(Step::Challenge(self.challenge_for(cx, &c, &links)))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let links = links(cx, &c).await?;

        let uid = match response_str(response, "uid_field", MAX_IDENTIFIER) {
            Ok(Some(u)) if !u.trim().is_empty() => u.trim().to_owned(),
            Ok(_) => {
                return Ok(Step::Invalid(
                    self.challenge_for(cx, &c, &links)
                        .error("uid_field", "This field is required."),
                ));
            }
            Err(e) => {
                return Ok(Step::Invalid(
                    self.challenge_for(cx, &c, &links).error("uid_field", &e),
                ));
            }
        };
        if uid.chars().any(char::is_control) {
            return Ok(Step::Invalid(
                self.challenge_for(cx, &c, &links)
                    .error("uid_field", "Failed to authenticate."),
            ));
        }
        let password = match response_str(response, "password", MAX_PASSWORD) {
            Ok(p) => p.map(str::to_owned),
            Err(e) => {
                return Ok(Step::Invalid(
                    self.challenge_for(cx, &c, &links).error("password", &e),
                ));
            }
        };
        if c.enable_remember_me {
            let remember = matches!(response.get("remember_me"), Some(Value::Bool(true)));
            cx.plan
                .context
                .insert(context::REMEMBER_ME.into(), Value::Bool(remember));
        }
        let user = find_user(cx, &uid, &c.user_fields, c.case_insensitive_matching).await?;
        cx.plan.context.insert(
            context::PENDING_USER_IDENTIFIER.into(),
            Value::String(uid.clone()),
        );
        cx.plan.context.remove(context::PENDING_USER);
        if let Some(u) = &user {
            cx.plan
                .context
                .insert(context::PENDING_USER.into(), json!(u.pk));
        }
        if c.password_stage.is_some() {
            // The password is checked here, with the password stage's backends.
            let Some(password) = password.filter(|p| !p.is_empty()) else {
                return Ok(Step::Invalid(
                    self.challenge_for(cx, &c, &links)
                        .error("password", "Password not set"),
                ));
            };
            let usable = user.filter(|u| u.is_active).map(|u| u.pk);
            let ok = super::password::authenticate(cx, usable, &password, &uid).await?;
            if !ok {
                cx.plan.context.remove(context::PENDING_USER);
                return Ok(Step::Invalid(
                    self.challenge_for(cx, &c, &links)
                        .error("non_field_errors", "Failed to authenticate."),
                ));
            }
            return Ok(Step::Next);
        }
        if user.is_none() && !c.pretend_user_exists {
            return Ok(Step::Invalid(
                self.challenge_for(cx, &c, &links)
                    .error("non_field_errors", "Failed to authenticate."),
            ));
        }
        Ok(Step::Next)
    }
}
