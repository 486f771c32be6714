//! Flows, stages, policies and the bindings between them, and sessions: authentik's model of
//! interactive authentication, with its names and defaults.
//!
//! ```text
//!   Flow ──(FlowStageBinding, ordered)──> Stage          (kind + typed config)
//!    │             │
//!    └─ pbm_uuid   └─ pbm_uuid      Application.uuid
//!          ^             ^                 ^
//!          └──── PolicyBinding.target ─────┘ ──> Policy | Group | User
//! ```
//! A policy binding's `target` is the "policy binding model" uuid of what it guards: a flow's or
//! a stage binding's `pbm_uuid`, or an application's uuid (as in authentik, where the
//! application's primary key is its policy binding model).
//!
//! Stages and policies come in many types. Their common columns are fields here; each type's own
//! settings are a JSON object (`config`) whose shape the type's module in `portcullis-flow` /
//! `portcullis-policy` owns, so a new type needs no migration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{PolicyEngineMode, string_enum};

string_enum!(
    /// What a flow is for (authentik's `FlowDesignation`).
    FlowDesignation {
        Authentication => "authentication",
        Authorization => "authorization",
        Invalidation => "invalidation",
        Enrollment => "enrollment",
        Unenrollment => "unenrollment",
        Recovery => "recovery",
        StageConfiguration => "stage_configuration",
    }
);

string_enum!(
    /// Who may start a flow (authentik's `FlowAuthenticationRequirement`).
    FlowAuthentication {
        None => "none",
        RequireAuthenticated => "require_authenticated",
        RequireUnauthenticated => "require_unauthenticated",
        RequireSuperuser => "require_superuser",
        RequireRedirect => "require_redirect",
        RequireOutpost => "require_outpost",
    }
);

string_enum!(
    /// What happens when the flow's own policies deny access.
    DeniedAction {
        MessageContinue => "message_continue",
        Message => "message",
        Continue => "continue",
    }
);

string_enum!(
    /// How the flow page is laid out.
    FlowLayout {
        Stacked => "stacked",
        ContentLeft => "content_left",
        ContentRight => "content_right",
        SidebarLeft => "sidebar_left",
        SidebarRight => "sidebar_right",
    }
);

string_enum!(
    /// What an invalid response to a stage does to the flow.
    InvalidResponseAction {
        Retry => "retry",
        Restart => "restart",
        RestartWithContext => "restart_with_context",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub uuid: Uuid,
    /// The uuid policy bindings name as their `target`.
    pub pbm_uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub title: String,
    pub designation: FlowDesignation,
    pub authentication: FlowAuthentication,
    pub policy_engine_mode: PolicyEngineMode,
    pub denied_action: DeniedAction,
    pub layout: FlowLayout,
    /// A URL or path of the background image; empty for the brand's default.
    pub background: String,
    pub compatibility_mode: bool,
}

impl Flow {
    /// A flow with authentik's defaults for everything but its name, slug and designation.
    pub fn new(name: &str, slug: &str, designation: FlowDesignation) -> Self {
        Self {
            uuid: Uuid::nil(),
            pbm_uuid: Uuid::nil(),
            name: name.to_owned(),
            slug: slug.to_owned(),
            title: name.to_owned(),
            designation,
            authentication: FlowAuthentication::None,
            policy_engine_mode: PolicyEngineMode::Any,
            denied_action: DeniedAction::MessageContinue,
            layout: FlowLayout::Stacked,
            background: String::new(),
            compatibility_mode: false,
        }
    }
}

/// A stage of any type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub uuid: Uuid,
    pub name: String,
    /// authentik's model name, e.g. `identificationstage`.
    pub kind: String,
    /// The type's own settings, as the type's API serializer shows them.
    pub config: Value,
}

/// A field of a prompt stage (authentik's `Prompt`); its settings (`field_key`, `label`, `type`,
/// `required`, ...) are a JSON object the prompt stage owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub uuid: Uuid,
    pub name: String,
    pub config: Value,
}

/// A stage in a flow, at a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowStageBinding {
    pub uuid: Uuid,
    pub pbm_uuid: Uuid,
    /// The flow's uuid.
    pub target: Uuid,
    /// The stage's uuid.
    pub stage: Uuid,
    pub order: i32,
    pub evaluate_on_plan: bool,
    pub re_evaluate_policies: bool,
    pub invalid_response_action: InvalidResponseAction,
    pub policy_engine_mode: PolicyEngineMode,
}

impl FlowStageBinding {
    /// A binding with authentik's defaults.
    pub fn new(target: Uuid, stage: Uuid, order: i32) -> Self {
        Self {
            uuid: Uuid::nil(),
            pbm_uuid: Uuid::nil(),
            target,
            stage,
            order,
            evaluate_on_plan: false,
            re_evaluate_policies: true,
            invalid_response_action: InvalidResponseAction::Retry,
            policy_engine_mode: PolicyEngineMode::Any,
        }
    }
}

/// A policy of any type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub uuid: Uuid,
    pub name: String,
    /// authentik's model name, e.g. `expressionpolicy`.
    pub kind: String,
    /// Record a `policy_execution` event each time it runs.
    pub execution_logging: bool,
    pub config: Value,
}

/// A policy, a group or a user, bound to something it guards. Exactly one of `policy`, `group`
/// and `user` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyBinding {
    pub uuid: Uuid,
    pub target: Uuid,
    pub policy: Option<Uuid>,
    pub group: Option<Uuid>,
    pub user: Option<i32>,
    pub negate: bool,
    pub enabled: bool,
    pub order: i32,
    /// Seconds.
    pub timeout: i32,
    pub failure_result: bool,
}

impl PolicyBinding {
    pub fn new(target: Uuid, order: i32) -> Self {
        Self {
            uuid: Uuid::nil(),
            target,
            policy: None,
            group: None,
            user: None,
            negate: false,
            enabled: true,
            order,
            timeout: 30,
            failure_result: false,
        }
    }
}

/// A browser session. The cookie holds a random key; the database holds only its SHA-256, so a
/// database dump does not let anyone take over a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub uuid: Uuid,
    pub key_hash: String,
    /// The logged-in user; `None` while a visitor is still walking a flow.
    pub user: Option<i32>,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub last_used: DateTime<Utc>,
    pub last_ip: String,
    pub last_user_agent: String,
    /// The token HTML forms and `X-authentik-CSRF` must echo.
    pub csrf_token: String,
    /// Flow plans and their context, keyed by flow slug; owned by the flow engine.
    pub data: Value,
}

/// A user's recorded consent to an application sharing data (the consent stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserConsent {
    pub uuid: Uuid,
    pub user: i32,
    pub application: Uuid,
    /// `None` for permanent consent.
    pub expires: Option<DateTime<Utc>>,
    /// Space-separated permissions (e.g. OAuth scopes) consented to.
    pub permissions: String,
}
