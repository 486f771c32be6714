//! Stored policies made runnable, and the one place policy bindings are evaluated for flows,
//! stage bindings and applications.
//!
//! Each policy type's settings are a JSON object with authentik's field names. [`PolicyKind`]
//! lists the types with their API names; [`normalize_config`] validates an admin's settings and
//! fills in defaults (the API and blueprints call it before storing); [`build`] turns a stored
//! policy into a [`portcullis_policy::Policy`]. Expressions are CPU-bound, so they run on the
//! blocking pool, bounded by their tick, heap, depth and wall-clock limits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::{
    Actor, Clock, EventAction, NewEvent, Policy as StoredPolicy, PolicyEngineMode,
};
use portcullis_policy::reputation::ReputationRecord;
use portcullis_policy::{
    BindingTarget, BreachedPasswords, DummyPolicy, EngineResult, EventMatcherPolicy,
    ExpressionLimits, ExpressionPolicy, PasswordExpiryPolicy, PasswordPolicy, Policy,
    PolicyBinding, PolicyCache, PolicyEngine, PolicyError, PolicyRequest, PolicyResult, PolicyUser,
    ReputationPolicy, SleepFuture, Sleeper, UserDirectory, UserFilter,
};
use portcullis_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ConfigError;
use crate::stages::parse_config;

/// A policy type: authentik's model name, app label, API path segment and component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyKind {
    /// `expressionpolicy`
    pub model: &'static str,
    /// `authentik_policies_expression`
    pub app: &'static str,
    /// The path under `/api/v3/policies/`: `expression`
    pub path: &'static str,
    /// `ak-policy-expression-form`
    pub component: &'static str,
    pub verbose_name: &'static str,
    pub verbose_name_plural: &'static str,
}

pub const POLICY_KINDS: &[PolicyKind] = &[
    PolicyKind {
        model: "dummypolicy",
        app: "authentik_policies_dummy",
        path: "dummy",
        component: "ak-policy-dummy-form",
        verbose_name: "Dummy Policy",
        verbose_name_plural: "Dummy Policies",
    },
    PolicyKind {
        model: "eventmatcherpolicy",
        app: "authentik_policies_event_matcher",
        path: "event_matcher",
        component: "ak-policy-event-matcher-form",
        verbose_name: "Event Matcher Policy",
        verbose_name_plural: "Event Matcher Policies",
    },
    PolicyKind {
        model: "passwordexpirypolicy",
        app: "authentik_policies_expiry",
        path: "password_expiry",
        component: "ak-policy-password-expiry-form",
        verbose_name: "Password Expiry Policy",
        verbose_name_plural: "Password Expiry Policies",
    },
    PolicyKind {
        model: "expressionpolicy",
        app: "authentik_policies_expression",
        path: "expression",
        component: "ak-policy-expression-form",
        verbose_name: "Expression Policy",
        verbose_name_plural: "Expression Policies",
    },
    PolicyKind {
        model: "passwordpolicy",
        app: "authentik_policies_password",
        path: "password",
        component: "ak-policy-password-form",
        verbose_name: "Password Policy",
        verbose_name_plural: "Password Policies",
    },
    PolicyKind {
        model: "reputationpolicy",
        app: "authentik_policies_reputation",
        path: "reputation",
        component: "ak-policy-reputation-form",
        verbose_name: "Reputation Policy",
        verbose_name_plural: "Reputation Policies",
    },
];

pub fn policy_kind(model: &str) -> Option<&'static PolicyKind> {
    POLICY_KINDS.iter().find(|k| k.model == model)
}

pub fn policy_kind_by_path(path: &str) -> Option<&'static PolicyKind> {
    POLICY_KINDS.iter().find(|k| k.path == path)
}

fn t() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpressionConfig {
    pub expression: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordConfig {
    #[serde(default = "password_field")]
    pub password_field: String,
    #[serde(default)]
    pub amount_digits: u32,
    #[serde(default)]
    pub amount_uppercase: u32,
    #[serde(default)]
    pub amount_lowercase: u32,
    #[serde(default)]
    pub amount_symbols: u32,
    #[serde(default)]
    pub length_min: u32,
    #[serde(default = "symbol_charset")]
    pub symbol_charset: String,
    #[serde(default)]
    pub error_message: String,
    #[serde(default = "t")]
    pub check_static_rules: bool,
    #[serde(default = "t")]
    pub check_have_i_been_pwned: bool,
    #[serde(default = "t")]
    pub check_zxcvbn: bool,
    #[serde(default)]
    pub hibp_allowed_count: u32,
    #[serde(default = "zxcvbn_threshold")]
    pub zxcvbn_score_threshold: u8,
}

fn password_field() -> String {
    "password".into()
}
fn symbol_charset() -> String {
    "!\\\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ".into()
}
fn zxcvbn_threshold() -> u8 {
    2
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordExpiryConfig {
    pub days: u32,
    #[serde(default)]
    pub deny_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReputationConfig {
    #[serde(default = "t")]
    pub check_ip: bool,
    #[serde(default = "t")]
    pub check_username: bool,
    #[serde(default = "reputation_threshold")]
    pub threshold: i64,
}

fn reputation_threshold() -> i64 {
    -5
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMatcherConfig {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DummyConfig {
    #[serde(default)]
    pub result: bool,
    #[serde(default = "wait_min")]
    pub wait_min: u64,
    #[serde(default = "wait_max")]
    pub wait_max: u64,
}

fn wait_min() -> u64 {
    5
}
fn wait_max() -> u64 {
    30
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, ConfigError> {
    serde_json::to_value(v).map_err(|e| ConfigError::single("non_field_errors", e.to_string()))
}

/// Validates a policy type's settings and returns them with defaults filled in, as stored.
pub fn normalize_config(model: &str, config: &Value) -> Result<Value, ConfigError> {
    match model {
        "expressionpolicy" => {
            let c: ExpressionConfig = parse_config(config)?;
            ExpressionPolicy::new("expression", c.expression.clone())
                .validate()
                .map_err(|e| ConfigError::single("expression", e.to_string()))?;
            to_value(&c)
        }
        "passwordpolicy" => {
            let c: PasswordConfig = parse_config(config)?;
            if c.zxcvbn_score_threshold > 4 {
                return Err(ConfigError::single(
                    "zxcvbn_score_threshold",
                    "Ensure this value is less than or equal to 4.",
                ));
            }
            if !c.check_static_rules && !c.check_have_i_been_pwned && !c.check_zxcvbn {
                return Err(ConfigError::single(
                    "non_field_errors",
                    "At least one of the checks must be enabled.",
                ));
            }
            to_value(&c)
        }
        "passwordexpirypolicy" => {
            let c: PasswordExpiryConfig = parse_config(config)?;
            if c.days == 0 {
                return Err(ConfigError::single(
                    "days",
                    "Ensure this value is greater than or equal to 1.",
                ));
            }
            to_value(&c)
        }
        "reputationpolicy" => {
            let c: ReputationConfig = parse_config(config)?;
            to_value(&c)
        }
        "eventmatcherpolicy" => {
            let c: EventMatcherConfig = parse_config(config)?;
            to_value(&c)
        }
        "dummypolicy" => {
            let c: DummyConfig = parse_config(config)?;
            if c.wait_min > c.wait_max || c.wait_max > 3600 {
                return Err(ConfigError::single(
                    "wait_max",
                    "wait_max must be at least wait_min and at most 3600.",
                ));
            }
            to_value(&c)
        }
        other => Err(ConfigError::single(
            "non_field_errors",
            format!("unknown policy type {other:?}"),
        )),
    }
}

/// What building policies needs from the server.
#[derive(Clone)]
pub struct PolicyServices {
    pub store: Store,
    /// Cached flow definitions (shared with [`crate::FlowServices`]).
    pub cache: Arc<crate::cache::DefinitionCache>,
    pub clock: Arc<dyn Clock>,
    pub breached: Arc<BreachedPasswords>,
    pub limits: ExpressionLimits,
}

/// The tokio timer, for binding timeouts and the dummy policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// `ak_user_by` over the store. Called from the blocking pool (expressions run there), so it may
/// wait for the async store.
struct StoreUsers {
    store: Store,
    handle: tokio::runtime::Handle,
}

impl UserDirectory for StoreUsers {
    fn find_user(&self, f: &UserFilter) -> Result<Option<PolicyUser>, String> {
        let filter = portcullis_store::UserFilter {
            pk: f.pk,
            uuid: f.uuid,
            username: f.username.clone(),
            email: f.email.clone(),
            ..Default::default()
        };
        let q = portcullis_store::ListQuery {
            page: portcullis_core::PageRequest {
                page: 1,
                page_size: 1,
            },
            ..Default::default()
        };
        let store = self.store.clone();
        let page = self
            .handle
            .block_on(async move { store.list_users(&filter, &q).await })
            .map_err(|e| e.to_string())?;
        Ok(page
            .items
            .into_iter()
            .next()
            .map(|u| PolicyUser::from_user(&u.user, &u.groups)))
    }
}

/// Runs an expression on the expression threads.
struct BlockingExpression(Arc<ExpressionPolicy>);

#[async_trait]
impl Policy for BlockingExpression {
    fn kind(&self) -> &'static str {
        "expressionpolicy"
    }

    async fn passes(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        let policy = Arc::clone(&self.0);
        let req = req.clone();
        portcullis_policy::expression::off_thread(move || policy.evaluate(&req)).await?
    }
}

/// Turns a stored policy into a runnable one. Reputation scores are read now (the policy's
/// lookup is synchronous), for the request's IP and user.
pub async fn build(
    svc: &PolicyServices,
    p: &StoredPolicy,
    req: &PolicyRequest,
) -> Result<Arc<dyn Policy>, ConfigError> {
    Ok(match p.kind.as_str() {
        "expressionpolicy" => {
            let c: ExpressionConfig = parse_config(&p.config)?;
            let users = StoreUsers {
                store: svc.store.clone(),
                handle: tokio::runtime::Handle::current(),
            };
            Arc::new(BlockingExpression(Arc::new(
                ExpressionPolicy::new(p.name.clone(), c.expression)
                    .with_limits(svc.limits)
                    .with_users(Arc::new(users)),
            )))
        }
        "passwordpolicy" => {
            let c: PasswordConfig = parse_config(&p.config)?;
            Arc::new(PasswordPolicy {
                password_field: c.password_field,
                check_static_rules: c.check_static_rules,
                check_have_i_been_pwned: c.check_have_i_been_pwned,
                check_zxcvbn: c.check_zxcvbn,
                amount_digits: c.amount_digits,
                amount_uppercase: c.amount_uppercase,
                amount_lowercase: c.amount_lowercase,
                amount_symbols: c.amount_symbols,
                length_min: c.length_min,
                symbol_charset: c.symbol_charset,
                error_message: c.error_message,
                hibp_allowed_count: c.hibp_allowed_count,
                zxcvbn_score_threshold: c.zxcvbn_score_threshold,
                breached: Arc::clone(&svc.breached),
            })
        }
        "passwordexpirypolicy" => {
            let c: PasswordExpiryConfig = parse_config(&p.config)?;
            Arc::new(PasswordExpiryPolicy::new(
                c.days,
                c.deny_only,
                Arc::clone(&svc.clock),
            ))
        }
        "reputationpolicy" => {
            let c: ReputationConfig = parse_config(&p.config)?;
            let ip = c.check_ip.then(|| req.client_ip().to_owned());
            let username = c.check_username.then(|| req.user.username.clone());
            let rows = svc
                .store
                .reputation_rows(ip.as_deref(), username.as_deref())
                .await
                .map_err(|e| ConfigError::single("non_field_errors", e.to_string()))?;
            let records: Vec<ReputationRecord> = rows
                .into_iter()
                .map(|r| ReputationRecord {
                    identifier: r.identifier,
                    ip: r.ip,
                    score: r.score,
                })
                .collect();
            let mut policy = ReputationPolicy::new(Arc::new(records));
            policy.check_ip = c.check_ip;
            policy.check_username = c.check_username;
            policy.threshold = c.threshold;
            Arc::new(policy)
        }
        "eventmatcherpolicy" => {
            let c: EventMatcherConfig = parse_config(&p.config)?;
            Arc::new(EventMatcherPolicy {
                action: c.action,
                client_ip: c.client_ip,
                app: c.app,
                model: c.model,
            })
        }
        "dummypolicy" => {
            let c: DummyConfig = parse_config(&p.config)?;
            Arc::new(DummyPolicy::new(
                c.result,
                c.wait_min,
                c.wait_max,
                Arc::new(TokioSleeper),
            ))
        }
        other => {
            return Err(ConfigError::single(
                "non_field_errors",
                format!("unknown policy type {other:?}"),
            ));
        }
    })
}

/// A policy that could not be built: it fails like a policy that raised.
struct Broken(String);

#[async_trait]
impl Policy for Broken {
    fn kind(&self) -> &'static str {
        "broken"
    }

    async fn passes(&self, _req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        Err(PolicyError::Runtime {
            line: None,
            message: self.0.clone(),
        })
    }
}

/// Evaluates every binding guarding `target` (a flow's or stage binding's `pbm_uuid`, or an
/// application's uuid) for `req`, records a `policy_exception` event for each policy that failed
/// to run and a `policy_execution` event for policies with execution logging, and returns the
/// engine's answer.
pub async fn evaluate_target(
    svc: &PolicyServices,
    target: Uuid,
    mode: PolicyEngineMode,
    req: &PolicyRequest,
    cache: &PolicyCache,
    actor: &Actor,
) -> Result<EngineResult, portcullis_store::StoreError> {
    let rows = cached_policy_bindings(svc, target).await?;
    evaluate_bindings(svc, rows, target, mode, req, cache, actor).await
}

/// The bindings guarding `target`, each with its policy, from the definition cache.
pub async fn cached_policy_bindings(
    svc: &PolicyServices,
    target: Uuid,
) -> Result<Vec<(portcullis_core::PolicyBinding, Option<StoredPolicy>)>, portcullis_store::StoreError>
{
    let generation = svc.store.changes();
    if let Some(rows) = svc.cache.policy_bindings.get(&target, generation) {
        return Ok(rows);
    }
    let rows = svc.store.policy_bindings_for(target).await?;
    svc.cache
        .policy_bindings
        .put(target, generation, rows.clone());
    Ok(rows)
}

/// The result of a target without bindings: it passes (authentik's empty result).
pub fn unbound() -> EngineResult {
    EngineResult {
        passing: true,
        messages: Vec::new(),
        outcomes: Vec::new(),
    }
}

/// [`evaluate_target`] over bindings already read (callers that skip building the request when
/// nothing is bound: most stage bindings have no policies).
pub async fn evaluate_bindings(
    svc: &PolicyServices,
    rows: Vec<(portcullis_core::PolicyBinding, Option<StoredPolicy>)>,
    target: Uuid,
    mode: PolicyEngineMode,
    req: &PolicyRequest,
    cache: &PolicyCache,
    actor: &Actor,
) -> Result<EngineResult, portcullis_store::StoreError> {
    if rows.is_empty() {
        return Ok(unbound());
    }
    let mut bindings = Vec::with_capacity(rows.len());
    let mut logged: Vec<(Uuid, StoredPolicy)> = Vec::new();
    for (b, p) in &rows {
        let target = if let Some(p) = p {
            let policy: Arc<dyn Policy> = match build(svc, p, req).await {
                Ok(policy) => policy,
                Err(e) => Arc::new(Broken(e.to_string())),
            };
            if p.execution_logging {
                logged.push((b.uuid, p.clone()));
            }
            BindingTarget::Policy { pk: p.uuid, policy }
        } else if let Some(g) = b.group {
            BindingTarget::Group { pk: g }
        } else if let Some(u) = b.user {
            BindingTarget::User { pk: u }
        } else {
            continue;
        };
        bindings.push(PolicyBinding {
            pk: b.uuid,
            target,
            negate: b.negate,
            enabled: b.enabled,
            order: b.order,
            timeout: Duration::from_secs(u64::try_from(b.timeout.max(1)).unwrap_or(30)),
            failure_result: b.failure_result,
        });
    }
    let engine = PolicyEngine::new(mode).with_timer(Arc::new(TokioSleeper));
    let result = engine.evaluate(&bindings, req, cache).await;
    for (outcome, error) in result.errors() {
        let policy = rows
            .iter()
            .find(|(b, _)| b.uuid == outcome.binding)
            .and_then(|(_, p)| p.as_ref());
        let e = NewEvent {
            action: EventAction::PolicyException,
            app: "authentik.policies.process".into(),
            context: serde_json::json!({
                "message": error.to_string(),
                "binding": {"pk": outcome.binding.to_string(), "target": target.to_string()},
                "policy": policy.map(|p| serde_json::json!({
                    "pk": p.uuid.to_string(), "name": p.name, "model": p.kind,
                })),
            }),
        };
        svc.store.record_event(actor, e).await?;
    }
    for (binding, p) in logged {
        if let Some(o) = result
            .outcomes
            .iter()
            .find(|o| o.binding == binding && !o.cached)
        {
            let e = NewEvent {
                action: EventAction::PolicyExecution,
                app: "authentik.policies.process".into(),
                context: serde_json::json!({
                    "policy": {"pk": p.uuid.to_string(), "name": p.name, "model": p.kind},
                    "result": {"passing": o.passing, "messages": o.messages},
                }),
            };
            svc.store.record_event(actor, e).await?;
        }
    }
    Ok(result)
}

/// Runs one policy on its own (the admin's `policies/all/{pk}/test/`).
pub async fn test_policy(
    svc: &PolicyServices,
    p: &StoredPolicy,
    req: &PolicyRequest,
) -> Result<PolicyResult, PolicyError> {
    match build(svc, p, req).await {
        Ok(policy) => policy.passes(req).await,
        Err(e) => Err(PolicyError::Runtime {
            line: None,
            message: e.to_string(),
        }),
    }
}
