//! The policy engine: combines the bindings of one object (a flow, a stage binding, an
//! application, a source) into one answer, as authentik's `PolicyEngine` and `PolicyProcess` do.
//!
//! ```text
//!  bindings ──drop disabled, sort by order──> for each binding:
//!      policy target ──memo hit?──yes──> cached outcome
//!                      └─no──> run (raced against `timeout` when a timer is set) ──> memo
//!          Ok(result)  ──> passing = result.passing XOR negate, messages kept
//!          Err(error)  ──> passing = failure_result (never negated), message = the error
//!      group target  ──> passing = request.user in group XOR negate
//!      user target   ──> passing = request.user is that user XOR negate
//!  combine: all/any over the outcomes; no outcomes ──> empty_result (true)
//! ```
//!
//! The memo ([`PolicyCache`]) lives as long as one request: a policy bound several times (or
//! re-checked by a later stage) runs once, keyed by the policy's pk. It stores the raw outcome,
//! before `negate`, so two bindings of one policy with different `negate` stay consistent.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use uuid::Uuid;

use crate::dummy::Sleeper;
use crate::error::PolicyError;
use crate::request::{PolicyRequest, PolicyResult};
use crate::{Policy, PolicyEngineMode};

/// What a binding points at (authentik: exactly one of `policy`, `group`, `user`).
#[derive(Clone)]
pub enum BindingTarget {
    Policy {
        pk: Uuid,
        policy: Arc<dyn Policy>,
    },
    /// Passes when `request.user` is in the group (directly or through a parent).
    Group {
        pk: Uuid,
    },
    /// Passes when `request.user` is this user.
    User {
        pk: i32,
    },
}

impl std::fmt::Debug for BindingTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindingTarget::Policy { pk, policy } => {
                write!(f, "Policy({pk}, {})", policy.kind())
            }
            BindingTarget::Group { pk } => write!(f, "Group({pk})"),
            BindingTarget::User { pk } => write!(f, "User({pk})"),
        }
    }
}

/// authentik's `PolicyBinding`, with its defaults.
#[derive(Debug, Clone)]
pub struct PolicyBinding {
    pub pk: Uuid,
    pub target: BindingTarget,
    /// Inverts a successful result; messages are unaffected; an error's `failure_result` is not.
    pub negate: bool,
    pub enabled: bool,
    pub order: i32,
    /// authentik's default is 30 seconds.
    pub timeout: Duration,
    /// The result an erroring or timed-out policy counts as.
    pub failure_result: bool,
}

impl PolicyBinding {
    pub fn new(pk: Uuid, target: BindingTarget, order: i32) -> Self {
        Self {
            pk,
            target,
            negate: false,
            enabled: true,
            order,
            timeout: Duration::from_secs(30),
            failure_result: false,
        }
    }
}

/// Per-request memo of policy outcomes, keyed by policy pk.
#[derive(Debug, Default)]
pub struct PolicyCache {
    results: Mutex<HashMap<Uuid, Result<PolicyResult, PolicyError>>>,
}

impl PolicyCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, pk: &Uuid) -> Option<Result<PolicyResult, PolicyError>> {
        self.results.lock().ok().and_then(|m| m.get(pk).cloned())
    }

    fn insert(&self, pk: Uuid, outcome: Result<PolicyResult, PolicyError>) {
        if let Ok(mut m) = self.results.lock() {
            m.insert(pk, outcome);
        }
    }

    pub fn len(&self) -> usize {
        self.results.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How one binding came out.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingOutcome {
    pub binding: Uuid,
    pub order: i32,
    /// After `negate` (or the `failure_result` on error).
    pub passing: bool,
    pub messages: Vec<String>,
    pub log: Vec<String>,
    /// The policy's error, for the `policy_exception` event.
    pub error: Option<PolicyError>,
    /// Context values the policy set (`ak_set_context`).
    pub context: serde_json::Map<String, serde_json::Value>,
    /// Whether the outcome came from the per-request memo.
    pub cached: bool,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineResult {
    pub passing: bool,
    /// Every binding's messages, in binding order.
    pub messages: Vec<String>,
    pub outcomes: Vec<BindingOutcome>,
}

impl EngineResult {
    /// The context values set by the policies that passed, in binding order (a later binding's
    /// value wins), when the whole result passes; nothing otherwise.
    pub fn context_updates(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if self.passing {
            for o in self
                .outcomes
                .iter()
                .filter(|o| o.passing && o.error.is_none())
            {
                for (k, v) in &o.context {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }

    /// The bindings whose policy failed to run (each deserves a `policy_exception` event).
    /// A memoised error is reported once, by the binding that ran it.
    pub fn errors(&self) -> impl Iterator<Item = (&BindingOutcome, &PolicyError)> {
        self.outcomes
            .iter()
            .filter(|o| !o.cached)
            .filter_map(|o| o.error.as_ref().map(|e| (o, e)))
    }
}

/// Combines bindings in `all` or `any` mode.
#[derive(Clone)]
pub struct PolicyEngine {
    pub mode: PolicyEngineMode,
    /// The answer when no enabled binding exists (authentik: pass).
    pub empty_result: bool,
    timer: Option<Arc<dyn Sleeper>>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("mode", &self.mode)
            .field("empty_result", &self.empty_result)
            .field("timer", &self.timer.is_some())
            .finish()
    }
}

impl PolicyEngine {
    pub fn new(mode: PolicyEngineMode) -> Self {
        Self {
            mode,
            empty_result: true,
            timer: None,
        }
    }

    /// Enforces each binding's `timeout` with this timer. Without one, only the policies' own
    /// bounds apply (an expression's wall-clock and tick limits).
    pub fn with_timer(mut self, timer: Arc<dyn Sleeper>) -> Self {
        self.timer = Some(timer);
        self
    }

    pub async fn evaluate(
        &self,
        bindings: &[PolicyBinding],
        req: &PolicyRequest,
        cache: &PolicyCache,
    ) -> EngineResult {
        let mut active: Vec<&PolicyBinding> = bindings.iter().filter(|b| b.enabled).collect();
        active.sort_by_key(|b| b.order);
        let mut outcomes = Vec::with_capacity(active.len());
        for binding in active {
            outcomes.push(self.evaluate_binding(binding, req, cache).await);
        }
        let passing = if outcomes.is_empty() {
            self.empty_result
        } else {
            match self.mode {
                PolicyEngineMode::All => outcomes.iter().all(|o| o.passing),
                PolicyEngineMode::Any => outcomes.iter().any(|o| o.passing),
            }
        };
        let messages = outcomes
            .iter()
            .flat_map(|o| o.messages.iter().cloned())
            .collect();
        EngineResult {
            passing,
            messages,
            outcomes,
        }
    }

    async fn evaluate_binding(
        &self,
        binding: &PolicyBinding,
        req: &PolicyRequest,
        cache: &PolicyCache,
    ) -> BindingOutcome {
        let outcome = |passing: bool| BindingOutcome {
            binding: binding.pk,
            order: binding.order,
            passing: passing != binding.negate,
            messages: Vec::new(),
            log: Vec::new(),
            error: None,
            context: serde_json::Map::new(),
            cached: false,
        };
        match &binding.target {
            BindingTarget::Group { pk } => outcome(req.user.groups.iter().any(|g| g.pk == *pk)),
            BindingTarget::User { pk } => outcome(req.user.is_authenticated && req.user.pk == *pk),
            BindingTarget::Policy { pk, policy } => {
                let (result, cached) = match cache.get(pk) {
                    Some(hit) => (hit, true),
                    None => {
                        let fresh = self.run(policy.as_ref(), binding.timeout, req).await;
                        cache.insert(*pk, fresh.clone());
                        (fresh, false)
                    }
                };
                match result {
                    Ok(r) => BindingOutcome {
                        messages: r.messages,
                        log: r.log,
                        context: r.context,
                        cached,
                        ..outcome(r.passing)
                    },
                    Err(e) => BindingOutcome {
                        binding: binding.pk,
                        order: binding.order,
                        passing: binding.failure_result,
                        messages: vec![e.to_string()],
                        log: Vec::new(),
                        error: Some(e),
                        context: serde_json::Map::new(),
                        cached,
                    },
                }
            }
        }
    }

    async fn run(
        &self,
        policy: &dyn Policy,
        timeout: Duration,
        req: &PolicyRequest,
    ) -> Result<PolicyResult, PolicyError> {
        let Some(timer) = &self.timer else {
            return policy.passes(req).await;
        };
        match race(policy.passes(req), timer.sleep(timeout)).await {
            Some(result) => result,
            None => Err(PolicyError::Timeout(timeout)),
        }
    }
}

/// Polls `work` first, then `deadline`: `None` when the deadline came first.
async fn race<T>(work: impl Future<Output = T>, deadline: impl Future<Output = ()>) -> Option<T> {
    let mut work = pin!(work);
    let mut deadline = pin!(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests;
