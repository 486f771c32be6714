//! What a policy looks at ([`PolicyRequest`]) and what it answers ([`PolicyResult`]), plus the
//! one lookup expressions may make into the store ([`UserDirectory`], behind `ak_user_by`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A group a user belongs to, directly or through a parent (authentik's `all_groups()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub pk: Uuid,
    pub name: String,
}

/// The user as policies see it: authentik's attribute names, plus the user's groups.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyUser {
    pub pk: i32,
    pub uuid: Uuid,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    pub is_superuser: bool,
    /// Whether the user has a usable password (Django's `has_usable_password()`).
    pub has_usable_password: bool,
    /// False only for the anonymous user (nobody is logged in yet).
    pub is_authenticated: bool,
    pub attributes: Value,
    /// Every group the user is in, including groups inherited through parents.
    pub groups: Vec<GroupRef>,
    /// When the user's password was last set; `None` when the user has no usable password
    /// (nothing to expire) and for the anonymous user.
    pub password_change_date: Option<DateTime<Utc>>,
}

impl PolicyUser {
    /// Django's `AnonymousUser`, which is what `request.user` is before anyone logs in.
    pub fn anonymous() -> Self {
        Self {
            pk: -1,
            uuid: Uuid::nil(),
            username: "AnonymousUser".to_owned(),
            name: String::new(),
            email: String::new(),
            is_active: false,
            is_superuser: false,
            has_usable_password: false,
            is_authenticated: false,
            attributes: Value::Object(Map::new()),
            groups: Vec::new(),
            password_change_date: None,
        }
    }

    /// Builds the policy view of a stored user and the groups it belongs to (including parents).
    pub fn from_user(user: &portcullis_core::User, groups: &[portcullis_core::Group]) -> Self {
        Self {
            pk: user.pk,
            uuid: user.uuid,
            username: user.username.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            has_usable_password: user.has_password,
            is_authenticated: true,
            attributes: user.attributes.clone(),
            groups: groups
                .iter()
                .map(|g| GroupRef {
                    pk: g.uuid,
                    name: g.name.clone(),
                })
                .collect(),
            // authentik keeps the date on the password device, which only a user with a local
            // password has: a user without a usable password has nothing to expire.
            password_change_date: user.has_password.then_some(user.password_change_date),
        }
    }

    /// Whether the user is in a group with this name (authentik's `ak_is_group_member(name=...)`).
    pub fn is_member_of(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.name == name)
    }
}

/// The parts of the HTTP request a policy may look at (authentik's `request.http_request`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpRequestInfo {
    pub path: String,
    pub method: String,
    /// Header names lower-cased; never includes `Cookie` or `Authorization` (the caller strips them).
    pub headers: Vec<(String, String)>,
    /// The client IP as the trusted-proxy logic resolved it.
    pub client_ip: Option<String>,
}

/// One policy question: who, in which context, through which HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRequest {
    pub user: PolicyUser,
    /// The flow plan's context (`prompt_data`, `pending_user_identifier`, ...), as JSON.
    pub context: Map<String, Value>,
    /// The user being identified or enrolled; exposed as `context["pending_user"]`.
    pub pending_user: Option<PolicyUser>,
    pub http_request: Option<HttpRequestInfo>,
}

impl PolicyRequest {
    pub fn new(user: PolicyUser) -> Self {
        Self {
            user,
            context: Map::new(),
            pending_user: None,
            http_request: None,
        }
    }

    /// The client IP, or authentik's placeholder `255.255.255.255` when unknown.
    pub fn client_ip(&self) -> &str {
        self.http_request
            .as_ref()
            .and_then(|h| h.client_ip.as_deref())
            .unwrap_or("255.255.255.255")
    }
}

/// What a policy answers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyResult {
    pub passing: bool,
    /// Messages for the user (authentik's `ak_message`).
    pub messages: Vec<String>,
    /// Log lines the policy wrote (`ak_logger`), for the admin's policy test view and the logs.
    pub log: Vec<String>,
    /// Values the policy asks the flow to put into its plan's context (`ak_set_context`), e.g.
    /// `pending_user` for the initial-setup flow. Applied only when the policy passes.
    pub context: Map<String, Value>,
}

impl PolicyResult {
    pub fn new(passing: bool) -> Self {
        Self {
            passing,
            messages: Vec::new(),
            log: Vec::new(),
            context: Map::new(),
        }
    }

    pub fn with_message(passing: bool, message: impl Into<String>) -> Self {
        Self {
            passing,
            messages: vec![message.into()],
            log: Vec::new(),
            context: Map::new(),
        }
    }
}

/// How `ak_user_by(**filters)` may look a user up. Only these filters are supported; any other
/// keyword makes `ak_user_by` return `None`, as authentik does on a `FieldError`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserFilter {
    pub username: Option<String>,
    pub email: Option<String>,
    pub pk: Option<i32>,
    pub uuid: Option<Uuid>,
}

/// The user lookup behind `ak_user_by`.
///
/// Called synchronously from inside a running expression, so it must be quick; an implementation
/// over an async store resolves on a blocking thread. All set fields of the filter must match;
/// the first match (lowest pk) is returned, or `None`.
pub trait UserDirectory: Send + Sync {
    fn find_user(&self, filter: &UserFilter) -> Result<Option<PolicyUser>, String>;
}

/// A directory with nobody in it, for expressions that never call `ak_user_by`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUsers;

impl UserDirectory for NoUsers {
    fn find_user(&self, _filter: &UserFilter) -> Result<Option<PolicyUser>, String> {
        Ok(None)
    }
}
