//! The prompt stage: asks for the values of its prompt fields (a form), checks each by its type,
//! runs the stage's validation policies over the answers, and adds them to the plan's
//! `prompt_data` for later stages (user_write writes them to a user).
//!
//! ```text
//!  GET  ─> fields (sorted by order, earlier answers filled in) ─> ak-stage-prompt
//!  POST ─> each field: type checks ──errors──> Invalid (same form, errors per field_key)
//!            │ usernames not taken, two password fields equal
//!            v
//!          validation_policies (mode all, prompt_data = earlier + these answers)
//!            ──fail──> Invalid (the policies' messages under non_field_errors)
//!            v
//!          prompt_data merged into the plan's context ─> Next
//! ```
//! Nothing is stored until every check passed, so an invalid answer never advances the plan.

mod fields;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::{EventAction, NewEvent, PolicyEngineMode};
use portcullis_policy::{
    BindingTarget, PolicyBinding, PolicyCache, PolicyEngine, PolicyError, PolicyRequest,
    PolicyResult,
};
use portcullis_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use fields::{
    FIELD_TYPES, FieldType, MAX_FILE, MAX_PASSWORD, MAX_TEXT, PromptConfig, ResolvedField,
    normalize_prompt_config, resolve,
};

use super::{StageCx, StageView, Step};
use crate::challenge::Challenge;
use crate::context;
use crate::error::FlowError;
use crate::policies::TokioSleeper;

pub const COMPONENT: &str = "ak-stage-prompt";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Prompt uuids.
    #[serde(default)]
    pub fields: Vec<Uuid>,
    /// Policy uuids, all of which must pass (authentik evaluates them in mode `all`).
    #[serde(default)]
    pub validation_policies: Vec<Uuid>,
}

pub struct PromptStage;

/// The answers earlier prompt stages gathered.
fn prompt_data(cx: &StageCx<'_>) -> Map<String, Value> {
    cx.plan
        .context
        .get(context::PROMPT_DATA)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Runs the fields' `placeholder`/`initial_value` expressions (on the blocking pool, within the
/// expression limits) with `user` (the pending user, else the logged-in one), `request` and the
/// flow's `context`; keyed by source. An expression that fails gives no value (and is logged).
async fn expression_values(
    cx: &StageCx<'_>,
    prompts: &[portcullis_core::Prompt],
) -> Result<std::collections::HashMap<String, Value>, FlowError> {
    let mut sources: Vec<String> = Vec::new();
    for p in prompts {
        let Ok(config) = super::parse_config::<PromptConfig>(&p.config) else {
            continue;
        };
        if config.placeholder_expression {
            sources.push(config.placeholder.clone());
        }
        if config.initial_value_expression {
            sources.push(config.initial_value.clone());
        }
    }
    if sources.is_empty() {
        return Ok(Default::default());
    }
    let req = cx.policy_request().await?;
    let limits = cx.svc.policies.limits;
    let name = cx.stage.name.clone();
    portcullis_policy::expression::off_thread(move || {
        sources
            .into_iter()
            .filter_map(|src| {
                let policy = portcullis_policy::ExpressionPolicy::new(name.clone(), src.clone())
                    .with_limits(limits);
                match policy.evaluate_value(&req) {
                    Ok(v) => Some((src, v)),
                    Err(e) => {
                        tracing::warn!(stage = %name, error = %e, "prompt expression failed");
                        None
                    }
                }
            })
            .collect()
    })
    .await
    .map_err(|e| FlowError::Internal(format!("prompt expressions: {e}")))
}

/// The stage's fields, resolved for this request, sorted by `order` (then as configured).
async fn load_fields(cx: &StageCx<'_>, c: &Config) -> Result<Vec<ResolvedField>, FlowError> {
    let stored = cx.svc.store.find_prompts(&c.fields).await?;
    let data = prompt_data(cx);
    let values = expression_values(cx, &stored).await?;
    let lookup = |source: &str| values.get(source).cloned();
    let mut out: Vec<(usize, ResolvedField)> = Vec::with_capacity(stored.len());
    for p in stored {
        let position = c
            .fields
            .iter()
            .position(|u| *u == p.uuid)
            .unwrap_or(usize::MAX);
        let config: PromptConfig = super::parse_config(&p.config)
            .map_err(|e| FlowError::Config(format!("prompt {:?}: {e}", p.name)))?;
        let kind = config.kind().ok_or_else(|| {
            FlowError::Config(format!(
                "prompt {:?}: unknown type {:?}",
                p.name, config.field_type
            ))
        })?;
        out.push((position, resolve(&config, kind, &data, &lookup)));
    }
    out.sort_by_key(|(position, f)| (f.config.order, *position));
    Ok(out.into_iter().map(|(_, f)| f).collect())
}

fn challenge(fields: &[ResolvedField]) -> Challenge {
    Challenge::new(COMPONENT).with(
        "fields",
        Value::Array(fields.iter().map(ResolvedField::to_json).collect()),
    )
}

#[async_trait]
impl StageView for PromptStage {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let fields = load_fields(cx, &c).await?;
        Ok(Step::Challenge(challenge(&fields)))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        let fields = load_fields(cx, &c).await?;
        let mut ch = challenge(&fields);
        let mut answers = Map::new();
        let mut failed = false;
        for f in &fields {
            match f.clean(response.get(&f.config.field_key)) {
                Ok(Some(v)) => {
                    answers.insert(f.config.field_key.clone(), v);
                }
                Ok(None) => {}
                Err(e) => {
                    failed = true;
                    ch = ch.error(&f.config.field_key, e);
                }
            }
        }
        // Usernames must be free (case-insensitively), except the pending user's own.
        let pending = cx.plan.pending_user();
        for f in fields.iter().filter(|f| f.kind == FieldType::Username) {
            let Some(name) = answers
                .get(&f.config.field_key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            else {
                continue;
            };
            let taken = cx
                .svc
                .store
                .identify_users("username", name, true)
                .await?
                .iter()
                .any(|u| Some(u.pk) != pending);
            if taken {
                failed = true;
                ch = ch.error(&f.config.field_key, "Username is already taken.");
            }
        }
        // authentik: with exactly two password fields, they must match.
        let passwords: Vec<&ResolvedField> = fields
            .iter()
            .filter(|f| f.kind == FieldType::Password)
            .collect();
        if let [a, b] = passwords.as_slice()
            && let (Some(x), Some(y)) = (
                answers.get(&a.config.field_key),
                answers.get(&b.config.field_key),
            )
            && x != y
        {
            failed = true;
            ch = ch.error("non_field_errors", "Passwords don't match.");
        }
        if failed {
            return Ok(Step::Invalid(ch));
        }

        let mut merged = prompt_data(cx);
        merged.extend(answers);
        if !c.validation_policies.is_empty() {
            let mut req = cx.policy_request().await?;
            req.context
                .insert(context::PROMPT_DATA.into(), Value::Object(merged.clone()));
            let messages = run_validation_policies(cx, &c.validation_policies, &req).await?;
            if let Some(messages) = messages {
                if messages.is_empty() {
                    ch = ch.error("non_field_errors", "The values entered were not accepted.");
                }
                for m in messages {
                    ch = ch.error("non_field_errors", m);
                }
                return Ok(Step::Invalid(ch));
            }
        }
        cx.plan
            .context
            .insert(context::PROMPT_DATA.into(), Value::Object(merged));
        Ok(Step::Next)
    }
}

/// A stored policy that could not be built: it fails like a policy that raised.
struct Broken(String);

#[async_trait]
impl portcullis_policy::Policy for Broken {
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

/// Runs the validation policies in mode `all`, uncached. `None` when they pass, else their
/// messages. A policy that fails to run counts as failing and records `policy_exception`.
async fn run_validation_policies(
    cx: &StageCx<'_>,
    uuids: &[Uuid],
    req: &PolicyRequest,
) -> Result<Option<Vec<String>>, FlowError> {
    let mut bindings = Vec::with_capacity(uuids.len());
    let mut policies = Vec::with_capacity(uuids.len());
    for (order, uuid) in uuids.iter().enumerate() {
        let p = match cx.svc.store.find_policy(*uuid).await {
            Ok(p) => p,
            // Deleted since the stage was saved: nothing to check.
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        let policy: Arc<dyn portcullis_policy::Policy> =
            match crate::policies::build(&cx.svc.policies, &p, req).await {
                Ok(policy) => policy,
                Err(e) => Arc::new(Broken(e.to_string())),
            };
        // A fresh binding id per policy: the engine keys its cache and outcomes by it.
        let mut b = PolicyBinding::new(
            Uuid::new_v4(),
            BindingTarget::Policy { pk: p.uuid, policy },
            i32::try_from(order).unwrap_or(i32::MAX),
        );
        b.timeout = Duration::from_secs(30);
        policies.push((b.pk, p));
        bindings.push(b);
    }
    let engine = PolicyEngine::new(PolicyEngineMode::All).with_timer(Arc::new(TokioSleeper));
    let result = engine.evaluate(&bindings, req, &PolicyCache::new()).await;
    let errors: Vec<(Uuid, String)> = result
        .errors()
        .map(|(o, e)| (o.binding, e.to_string()))
        .collect();
    if !errors.is_empty() {
        let actor = cx.actor().await;
        for (binding, message) in errors {
            let policy = policies.iter().find(|(b, _)| *b == binding).map(|(_, p)| p);
            tracing::warn!(stage = %cx.stage.name, error = %message, "a validation policy failed to run");
            let e = NewEvent {
                action: EventAction::PolicyException,
                app: "authentik.policies.process".into(),
                context: serde_json::json!({
                    "message": message,
                    "stage": {"pk": cx.stage.uuid.to_string(), "name": cx.stage.name},
                    "policy": policy.map(|p| serde_json::json!({
                        "pk": p.uuid.to_string(), "name": p.name, "model": p.kind,
                    })),
                }),
            };
            cx.svc.store.record_event(&actor, e).await?;
        }
    }
    Ok((!result.passing).then_some(result.messages))
}
