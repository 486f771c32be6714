//! A flow plan: the stages this request will walk, where it is, and what the stages have learnt
//! so far (the context). Plans are stored in the session as JSON, so any process can continue one.

use chrono::{DateTime, Utc};
use portcullis_core::{InvalidResponseAction, PolicyEngineMode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One stage of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStage {
    /// The flow stage binding.
    pub binding: Uuid,
    /// The binding's `pbm_uuid`, which its policy bindings target.
    pub pbm_uuid: Uuid,
    pub stage: Uuid,
    pub re_evaluate_policies: bool,
    pub policy_engine_mode: PolicyEngineMode,
    pub invalid_response_action: InvalidResponseAction,
    /// A stage that exists only in this plan (authentik's `in_memory_stage`), e.g. the consent
    /// an OIDC `prompt=consent` adds; `stage` is then its own uuid, not a stored stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<portcullis_core::Stage>,
}

impl PlannedStage {
    /// A plan step running `stage`, which is not stored: no binding, no policies.
    pub fn in_memory(stage: portcullis_core::Stage) -> Self {
        PlannedStage {
            binding: Uuid::nil(),
            pbm_uuid: Uuid::nil(),
            stage: stage.uuid,
            re_evaluate_policies: false,
            policy_engine_mode: PolicyEngineMode::Any,
            invalid_response_action: InvalidResponseAction::Retry,
            inline: Some(stage),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowPlan {
    pub flow: Uuid,
    pub flow_slug: String,
    /// The stages still to walk; the first is the current one.
    pub stages: Vec<PlannedStage>,
    pub context: Map<String, Value>,
    /// The original query of the page that started the flow (carries `next`).
    pub query: String,
    pub created: DateTime<Utc>,
    /// The component of the challenge last shown for the current stage: a response must name it.
    #[serde(default)]
    pub challenge: Option<String>,
}

impl FlowPlan {
    pub fn current(&self) -> Option<&PlannedStage> {
        self.stages.first()
    }

    /// Drops the current stage.
    pub fn advance(&mut self) {
        if !self.stages.is_empty() {
            self.stages.remove(0);
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        serde_json::from_value(v.clone()).ok()
    }

    /// The pending user's pk, when a stage identified one.
    pub fn pending_user(&self) -> Option<i32> {
        self.context
            .get(crate::context::PENDING_USER)
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
    }
}
