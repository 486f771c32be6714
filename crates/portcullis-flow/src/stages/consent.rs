//! The consent stage: the person agrees to sign into an application (and to the permissions it
//! asks for), once, for a while, or every time.
//!
//! ```text
//!  GET ─> application in context, mode != always_require, a live stored consent that covers
//!         every requested permission ─> Next
//!      ─> otherwise ak-stage-consent {header_text, permissions, additional_permissions, token}
//!  POST ─> token == the one issued (constant time) ──no──> Invalid
//!      ─> permanent: store consent (no expiry) · expiring: store until now + consent_expire_in
//!         · always_require (or no application): store nothing ─> Next
//! ```
//! The token is random per challenge and kept in the plan (so only this flow's session can
//! answer it): a response that did not come from the page the person saw is refused. Without an
//! application (a terms-of-service page in an enrollment flow) the stage asks every time and
//! stores nothing, as authentik.

use std::collections::BTreeSet;

use async_trait::async_trait;
use portcullis_core::validate::parse_timedelta;
use portcullis_crypto::{constant_time_eq, random_string};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{StageCx, StageView, Step, response_str};
use crate::challenge::Challenge;
use crate::context;
use crate::error::{ConfigError, FlowError};

pub const COMPONENT: &str = "ak-stage-consent";
/// Where the issued token is kept in the plan's context.
pub const TOKEN_KEY: &str = "consent_token";
/// A header set by whoever injected the stage (authentik's `consent_header`).
pub const HEADER_KEY: &str = "consent_header";
/// Permissions asked for beyond an earlier consent (authentik's `consent_additional_permissions`).
pub const EXTRA_PERMISSIONS_KEY: &str = "consent_additional_permissions";

pub const ALWAYS_REQUIRE: &str = "always_require";
pub const PERMANENT: &str = "permanent";
pub const EXPIRING: &str = "expiring";

const TOKEN_LEN: usize = 32;

fn always_require() -> String {
    ALWAYS_REQUIRE.into()
}
fn four_weeks() -> String {
    "weeks=4".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "always_require")]
    pub mode: String,
    #[serde(default = "four_weeks")]
    pub consent_expire_in: String,
}

pub(crate) fn validate(v: &Value) -> Result<(), ConfigError> {
    let c: Config = super::parse_config(v)?;
    if ![ALWAYS_REQUIRE, PERMANENT, EXPIRING].contains(&c.mode.as_str()) {
        return Err(ConfigError::single(
            "mode",
            format!("\"{}\" is not a valid choice.", c.mode),
        ));
    }
    parse_timedelta(&c.consent_expire_in)
        .map_err(|e| ConfigError::single("consent_expire_in", e))?;
    Ok(())
}

pub struct Consent;

/// The application the flow authorizes: its uuid and name.
fn application(cx: &StageCx<'_>) -> Option<(Uuid, String)> {
    let app = cx.plan.context.get(context::APPLICATION)?;
    let pk = app
        .get("pk")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())?;
    let name = app
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some((pk, name))
}

/// A permission list from the context: `[{"id", "name"}]`, anything else dropped.
fn permission_list(cx: &StageCx<'_>, key: &str) -> Vec<Value> {
    cx.plan
        .context
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|p| p.get("id").is_some_and(Value::is_string))
                .map(|p| {
                    json!({
                        "id": p.get("id").cloned().unwrap_or(Value::Null),
                        "name": p.get("name").and_then(Value::as_str).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn permission_ids(perms: &[Value]) -> BTreeSet<String> {
    perms
        .iter()
        .filter_map(|p| p.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Who consents: the pending user, else the logged-in user (authentik's order).
async fn consenting_user(cx: &StageCx<'_>) -> Result<Option<i32>, FlowError> {
    if let Some(u) = cx.pending_user().await? {
        return Ok(Some(u.user.pk));
    }
    Ok(cx.session.user().map(|u| u.user.pk))
}

/// A fresh challenge, with a fresh token kept in the plan.
fn challenge(cx: &mut StageCx<'_>) -> Challenge {
    let token = random_string(TOKEN_LEN);
    cx.plan
        .context
        .insert(TOKEN_KEY.into(), Value::String(token.clone()));
    let header = match cx.plan.context.get(HEADER_KEY).and_then(Value::as_str) {
        Some(h) => h.to_owned(),
        None => match application(cx) {
            Some((_, name)) => format!("You're about to sign into {name}."),
            None => String::new(),
        },
    };
    Challenge::new(COMPONENT)
        .with("header_text", header)
        .with(
            "permissions",
            Value::Array(permission_list(cx, context::CONSENT_PERMISSIONS)),
        )
        .with(
            "additional_permissions",
            Value::Array(permission_list(cx, EXTRA_PERMISSIONS_KEY)),
        )
        .with("token", token)
}

#[async_trait]
impl StageView for Consent {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let Some((app, _)) = application(cx) else {
            return Ok(Step::Challenge(challenge(cx)));
        };
        if c.mode == ALWAYS_REQUIRE {
            return Ok(Step::Challenge(challenge(cx)));
        }
        let Some(user) = consenting_user(cx).await? else {
            return Ok(Step::Deny("No Pending user.".into()));
        };
        let Some(consent) = cx.svc.store.find_consent(user, app).await? else {
            return Ok(Step::Challenge(challenge(cx)));
        };
        let requested = permission_list(cx, context::CONSENT_PERMISSIONS);
        let allowed: BTreeSet<String> = consent
            .permissions
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if permission_ids(&requested).is_subset(&allowed) {
            return Ok(Step::Next);
        }
        // Asks again, showing what was agreed before apart from what is new.
        let (known, extra): (Vec<Value>, Vec<Value>) = requested.into_iter().partition(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| allowed.contains(id))
        });
        if let Some((_, name)) = application(cx) {
            cx.plan.context.insert(
                HEADER_KEY.into(),
                json!(format!("{name} is requesting additional permissions.")),
            );
        }
        cx.plan
            .context
            .insert(context::CONSENT_PERMISSIONS.into(), Value::Array(known));
        cx.plan
            .context
            .insert(EXTRA_PERMISSIONS_KEY.into(), Value::Array(extra));
        Ok(Step::Challenge(challenge(cx)))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let expected = cx
            .plan
            .context
            .get(TOKEN_KEY)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let given = response_str(response, "token", 256)
            .ok()
            .flatten()
            .unwrap_or("");
        if expected.is_empty() || !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Ok(Step::Invalid(challenge(cx).error(
                "token",
                "Invalid consent token, refresh the page and try again",
            )));
        }
        cx.plan.context.remove(TOKEN_KEY);
        let Some((app, _)) = application(cx) else {
            return Ok(Step::Next);
        };
        let expires = match c.mode.as_str() {
            PERMANENT => None,
            EXPIRING => {
                let d = parse_timedelta(&c.consent_expire_in)
                    .map_err(|e| FlowError::Config(format!("consent_expire_in: {e}")))?;
                Some(cx.svc.clock.now() + d)
            }
            _ => return Ok(Step::Next),
        };
        let Some(user) = consenting_user(cx).await? else {
            return Ok(Step::Deny("No Pending user.".into()));
        };
        let mut perms = permission_list(cx, context::CONSENT_PERMISSIONS);
        perms.extend(permission_list(cx, EXTRA_PERMISSIONS_KEY));
        let ids = permission_ids(&perms)
            .into_iter()
            .collect::<Vec<_>>()
            .join(" ");
        cx.svc.store.save_consent(user, app, expires, &ids).await?;
        Ok(Step::Next)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let v = crate::stages::normalize("consentstage", &json!({})).unwrap();
        assert_eq!(
            v,
            json!({"mode": "always_require", "consent_expire_in": "weeks=4"})
        );
        assert!(crate::stages::normalize("consentstage", &json!({"mode": "sometimes"})).is_err());
        assert!(
            crate::stages::normalize(
                "consentstage",
                &json!({"consent_expire_in": "fortnights=2"})
            )
            .is_err()
        );
        assert!(
            crate::stages::normalize(
                "consentstage",
                &json!({"mode": "expiring", "consent_expire_in": "days=1;hours=2"})
            )
            .is_ok()
        );
    }
}
