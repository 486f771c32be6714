//! Portcullis' policies: the answer to "may this request pass?".
//!
//! A policy looks at a [`PolicyRequest`] (the user, the flow context, the HTTP request) and returns
//! a [`PolicyResult`]. The built-in types each live in their own module (one policy type per file):
//! [`expression`] (sandboxed Starlark with authentik's helper names), [`password`],
//! [`password_expiry`], [`reputation`], [`event_matcher`] and [`dummy`]. The [`engine`] combines the bindings of one object (a flow, a stage binding, an
//! application) in `all` or `any` mode, with authentik's per-binding `negate`, `enabled`, `order`,
//! `timeout` and `failure_result`, and memoises results for the length of one request.
//!
//! Nothing here touches a database or the network: whatever a policy needs from the store (users
//! for `ak_user_by`, reputation scores) comes in through small traits the caller implements.

pub mod dummy;
pub mod engine;
pub mod error;
pub mod event_matcher;
pub mod expression;
pub mod password;
pub mod password_expiry;
pub mod reputation;
pub mod request;

pub use dummy::{DummyPolicy, SleepFuture, Sleeper, ThreadSleeper};
pub use engine::{
    BindingOutcome, BindingTarget, EngineResult, PolicyBinding, PolicyCache, PolicyEngine,
};
pub use error::{Budget, PolicyError};
pub use event_matcher::EventMatcherPolicy;
pub use expression::{ExpressionLimits, ExpressionPolicy};
pub use password::{BreachedPasswords, PasswordPolicy};
pub use password_expiry::PasswordExpiryPolicy;
pub use portcullis_core::PolicyEngineMode;
pub use reputation::{ReputationPolicy, ReputationScores};
pub use request::{
    GroupRef, HttpRequestInfo, NoUsers, PolicyRequest, PolicyResult, PolicyUser, UserDirectory,
    UserFilter,
};

use async_trait::async_trait;

/// One policy: a pure decision over a request.
///
/// Implementations return `Err` when they cannot decide (a broken expression, an exceeded budget,
/// a missing dependency); the engine then records the error and uses the binding's
/// `failure_result`, as authentik does for a `PolicyException`.
#[async_trait]
pub trait Policy: Send + Sync {
    /// authentik's model name of this policy type, e.g. `expressionpolicy`.
    fn kind(&self) -> &'static str;

    /// Decides whether `req` passes.
    async fn passes(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError>;
}
