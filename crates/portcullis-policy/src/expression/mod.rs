//! Expression policies: authentik's Python expressions, run as sandboxed Starlark.
//!
//! The admin's code is the body of a function, exactly as in authentik, so
//! `return ak_is_group_member(request.user, name="admins")` runs unchanged:
//!
//! ```text
//!   source ──indent──> def handler():      ──parse (Starlark, f-strings, no load)──> AST
//!                          <admin's code>        ──rewrite `a * b` to a size-checked call──> AST'
//!   AST' ──eval with limits──> handler defined ──call──> value ──truthiness──> PolicyResult
//! ```
//!
//! Every run is bounded (see [`ExpressionLimits`]): a tick budget (one tick is a function call or a
//! loop iteration; this is the CPU bound), a Starlark heap limit, a call-stack depth limit and a
//! wall-clock deadline. Starlark only checks the tick, heap and deadline limits every thousand
//! ticks, so Portcullis also checks the heap and the deadline before every statement (a loop
//! doubling a list needs only thirty iterations to reach gigabytes). A single native call can
//! still do a lot of work inside one statement, so two shapes of native work are bounded up front: `range()` refuses a range longer than the tick budget (it
//! could never be iterated within it), and `*` refuses to build a string, list or tuple larger
//! than the heap limit. `x *= n` is rejected at parse time because it cannot be checked.
//!
//! What the expression sees, with authentik's names: `request` (`.user`, `.context`,
//! `.http_request`, `.obj`), `context`, `http_request`, `ak_client_ip` (a string),
//! `ak_is_sso_flow`, `ak_message`, `ak_logger`, `ak_is_group_member`, `ak_user_by`,
//! `regex_match`, `regex_replace` and `list_flatten`. As in authentik, a `None` result fails.
//!
//! Residual risk, as the starlark crate itself warns: the heap limit is best-effort. A single
//! native call such as `"".join(...)` over a large list can allocate past it before the next check.
//! Expressions are written by administrators (authentik runs them with `exec`), so the limits
//! exist to stop mistakes (runaway loops, runaway recursion), not a hostile admin.

mod convert;
mod globals;
mod run;
#[cfg(test)]
mod tests;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use portcullis_core::pool::WorkerPool;

use async_trait::async_trait;

use crate::Policy;
use crate::error::PolicyError;
use crate::request::{NoUsers, PolicyRequest, PolicyResult, UserDirectory};

/// The threads expressions run on (`portcullis-expr-N`, twice the CPUs, at least four): off
/// the async workers, as they are CPU-bound, and never more than these at once, however many
/// requests evaluate one. A run that hits its wall-clock limit holds one thread that long.
static THREADS: LazyLock<WorkerPool> = LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    WorkerPool::new("portcullis-expr", (2 * cpus).max(4))
});

/// Runs `work` (expression runs) on the expression threads and waits for it.
///
/// # Errors
/// [`PolicyError::Runtime`] when the work panicked or the threads are gone.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PolicyError> {
    THREADS.run(work).await.map_err(|e| PolicyError::Runtime {
        line: None,
        message: format!("expression task failed: {e}"),
    })
}

/// The resource limits of one expression run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpressionLimits {
    /// Function calls plus loop iterations. 100 000 runs in a few milliseconds (see the tests).
    pub max_ticks: u64,
    /// Bytes of Starlark heap.
    pub max_heap_bytes: usize,
    /// Nested Starlark calls, including the wrapper function itself.
    pub max_call_depth: usize,
    /// Hard deadline for the whole run, checked with the tick limit.
    pub wall_clock: Duration,
    /// Longest source accepted, in bytes.
    pub max_source_bytes: usize,
}

impl Default for ExpressionLimits {
    fn default() -> Self {
        Self {
            max_ticks: 100_000,
            max_heap_bytes: 32 * 1024 * 1024,
            max_call_depth: 64,
            wall_clock: Duration::from_secs(1),
            max_source_bytes: 64 * 1024,
        }
    }
}

/// authentik's `ExpressionPolicy`.
#[derive(Clone)]
pub struct ExpressionPolicy {
    /// The policy's name; it is also the file name in error messages.
    pub name: String,
    pub expression: String,
    pub limits: ExpressionLimits,
    users: Arc<dyn UserDirectory>,
}

impl std::fmt::Debug for ExpressionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpressionPolicy")
            .field("name", &self.name)
            .field("expression", &self.expression)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ExpressionPolicy {
    pub fn new(name: impl Into<String>, expression: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            expression: expression.into(),
            limits: ExpressionLimits::default(),
            users: Arc::new(NoUsers),
        }
    }

    pub fn with_limits(mut self, limits: ExpressionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The directory `ak_user_by` looks users up in (by default, nobody is found).
    pub fn with_users(mut self, users: Arc<dyn UserDirectory>) -> Self {
        self.users = users;
        self
    }

    /// Checks that the expression parses, without running it (authentik's `validate`, used when
    /// an admin saves a policy).
    pub fn validate(&self) -> Result<(), PolicyError> {
        run::compile(&self.name, &self.expression, &self.limits).map(|_| ())
    }

    /// Runs the expression against `req`. Synchronous and CPU-bound, bounded by `self.limits`.
    pub fn evaluate(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        run::evaluate(self, req, Arc::clone(&self.users))
    }

    /// Runs the expression for the value it returns (as JSON), within the same limits: what
    /// prompt fields' `initial_value`/`placeholder` expressions need. `None` is JSON `null`.
    pub fn evaluate_value(&self, req: &PolicyRequest) -> Result<serde_json::Value, PolicyError> {
        run::evaluate_value(self, req, Arc::clone(&self.users))
    }
}

#[async_trait]
impl Policy for ExpressionPolicy {
    fn kind(&self) -> &'static str {
        "expressionpolicy"
    }

    async fn passes(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        self.evaluate(req)
    }
}
