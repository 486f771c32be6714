//! The domain model, with authentik's names so its documentation reads true for Portcullis.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Expands a string enum with `as_str`/`parse` in authentik's spelling.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// authentik's `UserTypeEnum`.
    UserType {
        Internal => "internal",
        External => "external",
        ServiceAccount => "service_account",
        InternalServiceAccount => "internal_service_account",
    }
);

string_enum!(
    /// authentik's `IntentEnum` for tokens.
    TokenIntent {
        Verification => "verification",
        Api => "api",
        Recovery => "recovery",
        AppPassword => "app_password",
    }
);

string_enum!(
    /// How several policy results combine.
    PolicyEngineMode {
        All => "all",
        Any => "any",
    }
);

string_enum!(
    /// The audit actions Portcullis records so far (authentik's `EventActions`).
    EventAction {
        Login => "login",
        LoginFailed => "login_failed",
        Logout => "logout",
        UserWrite => "user_write",
        SuspiciousRequest => "suspicious_request",
        PasswordSet => "password_set",
        SecretView => "secret_view",
        SecretRotate => "secret_rotate",
        InvitationUsed => "invitation_used",
        AuthorizeApplication => "authorize_application",
        SourceLinked => "source_linked",
        ImpersonationStarted => "impersonation_started",
        ImpersonationEnded => "impersonation_ended",
        FlowExecution => "flow_execution",
        PolicyExecution => "policy_execution",
        PolicyException => "policy_exception",
        PropertyMappingException => "property_mapping_exception",
        SystemTaskExecution => "system_task_execution",
        SystemTaskException => "system_task_exception",
        SystemException => "system_exception",
        ConfigurationError => "configuration_error",
        ModelCreated => "model_created",
        ModelUpdated => "model_updated",
        ModelDeleted => "model_deleted",
        EmailSent => "email_sent",
        UpdateAvailable => "update_available",
        Custom => "custom_",
    }
);

/// The path new users get unless told otherwise (authentik's default).
pub const DEFAULT_USER_PATH: &str = "users";
/// Name of the superuser group the bootstrap creates.
pub const ADMIN_GROUP_NAME: &str = "Portcullis Admins";
/// Username of the bootstrap administrator.
pub const ADMIN_USERNAME: &str = "admin";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub pk: i32,
    pub uuid: Uuid,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    pub last_login: Option<DateTime<Utc>>,
    pub date_joined: DateTime<Utc>,
    pub password_change_date: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub attributes: Value,
    pub path: String,
    pub user_type: UserType,
    /// True when any of the user's groups is a superuser group.
    pub is_superuser: bool,
    /// Whether a usable password is set (the hash itself never leaves the store).
    pub has_password: bool,
}

impl User {
    /// authentik's `uid`: a stable, non-reversible identifier derived from the pk and the
    /// installation's secret, computed by the caller that has the secret.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.username
        } else {
            &self.name
        }
    }
}

/// A user as it is created: everything but what the database assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    pub attributes: Value,
    pub path: String,
    pub user_type: UserType,
    /// Group uuids the user joins.
    pub groups: Vec<Uuid>,
    /// An already hashed password, when one is set at creation.
    pub password_hash: Option<String>,
}

impl NewUser {
    pub fn named(username: &str) -> Self {
        Self {
            username: username.to_owned(),
            name: String::new(),
            email: String::new(),
            is_active: true,
            attributes: Value::Object(Default::default()),
            path: DEFAULT_USER_PATH.to_owned(),
            user_type: UserType::Internal,
            groups: Vec::new(),
            password_hash: None,
        }
    }
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub is_active: Option<bool>,
    pub attributes: Option<Value>,
    pub path: Option<String>,
    pub user_type: Option<UserType>,
    pub groups: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub uuid: Uuid,
    /// A small integer id (authentik's `num_pk`).
    pub num_pk: i32,
    pub name: String,
    pub is_superuser: bool,
    pub parent: Option<Uuid>,
    pub attributes: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    pub name: String,
    pub is_superuser: bool,
    pub parent: Option<Uuid>,
    pub attributes: Value,
    pub users: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub is_superuser: Option<bool>,
    pub parent: Option<Option<Uuid>>,
    pub attributes: Option<Value>,
    pub users: Option<Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub provider: Option<i32>,
    pub group: String,
    pub meta_launch_url: String,
    pub meta_description: String,
    pub meta_publisher: String,
    pub meta_icon: Option<String>,
    pub policy_engine_mode: PolicyEngineMode,
    pub open_in_new_tab: bool,
    pub meta_hide: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplicationPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub provider: Option<Option<i32>>,
    pub group: Option<String>,
    pub meta_launch_url: Option<String>,
    pub meta_description: Option<String>,
    pub meta_publisher: Option<String>,
    pub policy_engine_mode: Option<PolicyEngineMode>,
    pub open_in_new_tab: Option<bool>,
    pub meta_hide: Option<bool>,
    pub meta_icon: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub uuid: Uuid,
    pub identifier: String,
    pub intent: TokenIntent,
    pub user_pk: i32,
    pub description: String,
    pub expires: Option<DateTime<Utc>>,
    pub expiring: bool,
    pub managed: Option<String>,
}

impl Token {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiring && self.expires.is_some_and(|e| e <= now)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewToken {
    pub identifier: String,
    pub intent: TokenIntent,
    pub user_pk: i32,
    pub description: String,
    pub expires: Option<DateTime<Utc>>,
    pub expiring: bool,
    pub managed: Option<String>,
    /// The secret itself; the store keeps it encrypted and a hash of it for lookup.
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenPatch {
    pub identifier: Option<String>,
    pub intent: Option<TokenIntent>,
    pub user_pk: Option<i32>,
    pub description: Option<String>,
    pub expires: Option<Option<DateTime<Utc>>>,
    pub expiring: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateKeyPair {
    pub uuid: Uuid,
    pub name: String,
    pub certificate_pem: String,
    pub has_private_key: bool,
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
    pub not_after: DateTime<Utc>,
    pub subject: String,
    pub private_key_type: Option<String>,
    pub managed: Option<String>,
    pub created: DateTime<Utc>,
}

/// Facts computed from a certificate when it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateFacts {
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
    pub not_after: DateTime<Utc>,
    pub subject: String,
    pub private_key_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCertificateKeyPair {
    pub name: String,
    pub certificate_pem: String,
    /// PEM of the private key, already encrypted at rest by the caller's secret box.
    pub private_key_encrypted: Option<String>,
    pub facts: CertificateFacts,
    pub managed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brand {
    pub uuid: Uuid,
    pub domain: String,
    pub default: bool,
    pub branding_title: String,
    pub branding_logo: String,
    pub branding_favicon: String,
    pub branding_custom_css: String,
    pub branding_default_flow_background: String,
    pub web_certificate: Option<Uuid>,
    pub attributes: Value,
    #[serde(default)]
    pub flows: BrandFlows,
}

/// The flows a brand names (authentik's `flow_*` fields); `None` means the default flow of that
/// designation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandFlows {
    pub authentication: Option<Uuid>,
    pub invalidation: Option<Uuid>,
    pub recovery: Option<Uuid>,
    pub unenrollment: Option<Uuid>,
    pub user_settings: Option<Uuid>,
    pub device_code: Option<Uuid>,
}

impl Brand {
    /// The brand authentik serves when no brand matches: nothing stored yet.
    pub fn fallback() -> Self {
        Self {
            uuid: Uuid::nil(),
            domain: "fallback".to_owned(),
            default: false,
            branding_title: "Portcullis".to_owned(),
            branding_logo: "/static/dist/assets/icons/icon_left_brand.svg".to_owned(),
            branding_favicon: "/static/dist/assets/icons/icon.png".to_owned(),
            branding_custom_css: String::new(),
            branding_default_flow_background: "/static/dist/assets/images/flow_background.jpg"
                .to_owned(),
            web_certificate: None,
            attributes: Value::Object(Default::default()),
            flows: BrandFlows::default(),
        }
    }

    /// Whether this brand serves `host`: the domain equals the host or is a suffix of it at a
    /// label boundary (authentik matches brands by domain suffix).
    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let domain = self.domain.to_ascii_lowercase();
        host == domain || host.ends_with(&format!(".{domain}"))
    }
}

/// The snapshot of a user stored with an event: enough to know who it was even after the user
/// is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventUser {
    pub pk: i32,
    pub email: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub uuid: Uuid,
    /// The acting user's pk, when a user acted.
    pub user_pk: Option<i32>,
    pub user: Value,
    pub action: String,
    pub app: String,
    pub context: Value,
    pub client_ip: Option<String>,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub brand: Value,
}

/// Who did something, and from where: recorded with every change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Actor {
    pub user: Option<EventUser>,
    pub client_ip: Option<String>,
    pub brand: Option<Value>,
}

impl Actor {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn user_json(&self) -> Value {
        match &self.user {
            Some(u) => serde_json::json!({"pk": u.pk, "email": u.email, "username": u.username}),
            None => serde_json::json!({}),
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub action: EventAction,
    pub app: String,
    pub context: Value,
}

impl NewEvent {
    /// `model_created`/`model_updated`/`model_deleted` for an object, in authentik's context
    /// shape: `{"model": {"app", "model_name", "pk", "name"}}`.
    pub fn model(action: EventAction, app: &str, model_name: &str, pk: &str, name: &str) -> Self {
        Self {
            action,
            app: "authentik.events.signals".to_owned(),
            context: serde_json::json!({
                "model": {"app": app, "model_name": model_name, "pk": pk, "name": name}
            }),
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub count: u64,
}

/// What a list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based.
    pub page: u64,
    pub page_size: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: 100,
        }
    }
}

/// Sort order of a list: a field name the list understands, and its direction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ordering {
    pub field: Option<String>,
    pub descending: bool,
}

impl Ordering {
    /// Parses DRF's `?ordering=-field` (only the first of a comma-separated list is used).
    pub fn parse(s: &str) -> Self {
        let first = s.split(',').next().unwrap_or("").trim();
        match first.strip_prefix('-') {
            Some(f) => Self {
                field: Some(f.to_owned()),
                descending: true,
            },
            None if first.is_empty() => Self::default(),
            None => Self {
                field: Some(first.to_owned()),
                descending: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for t in UserType::ALL {
            assert_eq!(UserType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(
            TokenIntent::parse("app_password"),
            Some(TokenIntent::AppPassword)
        );
        assert_eq!(TokenIntent::parse("nope"), None);
    }

    #[test]
    fn brand_matching() {
        let mut b = Brand::fallback();
        b.domain = "example.com".into();
        assert!(b.matches_host("example.com"));
        assert!(b.matches_host("auth.example.com:9000"));
        assert!(!b.matches_host("badexample.com"));
    }

    #[test]
    fn ordering() {
        assert_eq!(
            Ordering::parse("-username").field.as_deref(),
            Some("username")
        );
        assert!(Ordering::parse("-username").descending);
        assert_eq!(Ordering::parse(""), Ordering::default());
    }
}

string_enum!(
    /// authentik's `BlueprintInstanceStatusEnum`.
    BlueprintStatus {
        Successful => "successful",
        Warning => "warning",
        Error => "error",
        Orphaned => "orphaned",
        Unknown => "unknown",
    }
);

/// A blueprint Portcullis knows of: a file in the blueprints directory, a built-in one, or
/// content stored in the database; with the outcome of its last apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlueprintInstance {
    pub uuid: Uuid,
    pub name: String,
    /// Relative to the blueprints directory, or `builtin/...` for the embedded ones; empty
    /// when the content is stored in the database.
    pub path: String,
    pub context: Value,
    pub last_applied: DateTime<Utc>,
    pub last_applied_hash: String,
    pub status: BlueprintStatus,
    pub enabled: bool,
    pub managed_models: Vec<String>,
    pub metadata: Value,
    pub content: Option<String>,
    /// Why the last apply failed, when it did.
    pub last_error: Option<String>,
}
