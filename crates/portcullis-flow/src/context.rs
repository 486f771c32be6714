//! Keys of the flow plan's context, with authentik's names so expressions read the same.

/// The user a flow is about (identified, not yet logged in): its pk.
pub const PENDING_USER: &str = "pending_user";
/// What the person typed to identify themselves, kept for unknown users too.
pub const PENDING_USER_IDENTIFIER: &str = "pending_user_identifier";
/// The values prompt stages collected.
pub const PROMPT_DATA: &str = "prompt_data";
/// Where to send the browser when the flow is done.
pub const REDIRECT: &str = "redirect";
/// The application a flow authorizes (set by providers): `{"pk", "name", "slug"}`.
pub const APPLICATION: &str = "application";
/// The backend that authenticated the user.
pub const USER_BACKEND: &str = "user_backend";
/// How the user authenticated (`password`, `app_password`, ...), for the login event.
pub const AUTH_METHOD: &str = "auth_method";
/// Failed password attempts in this flow.
pub const INVALID_ATTEMPTS: &str = "user_invalid_login_attempts";
/// The permissions a consent stage asks for: `[{"id", "name"}]`.
pub const CONSENT_PERMISSIONS: &str = "consent_permissions";
/// The identification stage's "remember me" choice.
pub const REMEMBER_ME: &str = "remember_me";
/// Who the application expects to log in (OIDC's `login_hint`, passed as `login_hint` in the
/// flow page's query): the identification stage fills it in. Only a suggestion.
pub const LOGIN_HINT: &str = "login_hint";
/// Set by the user_logout stage, so later stages know the person logged out.
pub const LOGGED_OUT: &str = "logged_out";

pub const BACKEND_INBUILT: &str = "authentik.core.auth.InbuiltBackend";
pub const BACKEND_TOKEN: &str = "authentik.core.auth.TokenBackend";
