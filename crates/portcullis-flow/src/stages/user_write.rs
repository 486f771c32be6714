//! The user write stage (being written).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{StageCx, StageView, Step};
use crate::error::{ConfigError, FlowError};

pub(crate) fn validate(_v: &Value) -> Result<(), ConfigError> {
    Ok(())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {}

pub struct UserWrite;

#[async_trait]
impl StageView for UserWrite {
    async fn challenge(&self, _cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        Err(FlowError::Config(
            "user write stage not available yet".into(),
        ))
    }

    async fn respond(
        &self,
        _cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        Err(FlowError::Config(
            "user write stage not available yet".into(),
        ))
    }
}
