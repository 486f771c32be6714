//! The stage types Portcullis has, with authentik's names: the model name stored as a stage's
//! `kind`, the app label, the API path under `/api/v3/stages/`, the admin form component.

use serde_json::Value;

use crate::error::ConfigError;
use crate::stages;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageKind {
    /// `identificationstage`
    pub model: &'static str,
    /// `authentik_stages_identification`
    pub app: &'static str,
    /// `identification` (API path segment)
    pub path: &'static str,
    /// `ak-stage-identification-form`
    pub component: &'static str,
    pub verbose_name: &'static str,
    pub verbose_name_plural: &'static str,
}

macro_rules! kind {
    ($model:literal, $app:literal, $path:literal, $component:literal, $v:literal, $vp:literal) => {
        StageKind {
            model: $model,
            app: $app,
            path: $path,
            component: $component,
            verbose_name: $v,
            verbose_name_plural: $vp,
        }
    };
}

pub const STAGE_KINDS: &[StageKind] = &[
    kind!(
        "consentstage",
        "authentik_stages_consent",
        "consent",
        "ak-stage-consent-form",
        "Consent Stage",
        "Consent Stages"
    ),
    kind!(
        "denystage",
        "authentik_stages_deny",
        "deny",
        "ak-stage-deny-form",
        "Deny Stage",
        "Deny Stages"
    ),
    kind!(
        "dummystage",
        "authentik_stages_dummy",
        "dummy",
        "ak-stage-dummy-form",
        "Dummy Stage",
        "Dummy Stages"
    ),
    kind!(
        "identificationstage",
        "authentik_stages_identification",
        "identification",
        "ak-stage-identification-form",
        "Identification Stage",
        "Identification Stages"
    ),
    kind!(
        "passwordstage",
        "authentik_stages_password",
        "password",
        "ak-stage-password-form",
        "Password Stage",
        "Password Stages"
    ),
    kind!(
        "promptstage",
        "authentik_stages_prompt",
        "prompt/stages",
        "ak-stage-prompt-form",
        "Prompt Stage",
        "Prompt Stages"
    ),
    kind!(
        "redirectstage",
        "authentik_stages_redirect",
        "redirect",
        "ak-stage-redirect-form",
        "Redirect Stage",
        "Redirect Stages"
    ),
    kind!(
        "userloginstage",
        "authentik_stages_user_login",
        "user_login",
        "ak-stage-user-login-form",
        "User Login Stage",
        "User Login Stages"
    ),
    kind!(
        "userlogoutstage",
        "authentik_stages_user_logout",
        "user_logout",
        "ak-stage-user-logout-form",
        "User Logout Stage",
        "User Logout Stages"
    ),
    kind!(
        "userwritestage",
        "authentik_stages_user_write",
        "user_write",
        "ak-stage-user-write-form",
        "User Write Stage",
        "User Write Stages"
    ),
];

pub fn stage_kind(model: &str) -> Option<&'static StageKind> {
    STAGE_KINDS.iter().find(|k| k.model == model)
}

pub fn stage_kind_by_path(path: &str) -> Option<&'static StageKind> {
    STAGE_KINDS.iter().find(|k| k.path == path)
}

/// Validates a stage type's settings and returns them with defaults filled in, as stored.
/// References to other objects (flows, stages, prompts, policies, groups) are checked for shape
/// here and for existence by the caller, which has the store.
pub fn normalize_stage_config(model: &str, config: &Value) -> Result<Value, ConfigError> {
    stages::normalize(model, config)
}
