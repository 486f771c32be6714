//! The prompt stage (being written).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{StageCx, StageView, Step};
use crate::error::FlowError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub fields: Vec<Uuid>,
    #[serde(default)]
    pub validation_policies: Vec<Uuid>,
}

pub struct PromptStage;

#[async_trait]
impl StageView for PromptStage {
    async fn challenge(&self, _cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        Err(FlowError::Config("prompt stage not available yet".into()))
    }

    async fn respond(
        &self,
        _cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        Err(FlowError::Config("prompt stage not available yet".into()))
    }
}
