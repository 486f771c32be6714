//! The dummy stage: a page with a button, for testing flows (and `throw_error` to test how a
//! failing stage is handled).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{StageCx, StageView, Step};
use crate::challenge::Challenge;
use crate::error::FlowError;

pub const COMPONENT: &str = "ak-stage-dummy";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub throw_error: bool,
}

pub struct Dummy;

#[async_trait]
impl StageView for Dummy {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        Ok(Step::Challenge(
            Challenge::new(COMPONENT).with("title", cx.stage.name.clone()),
        ))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        if c.throw_error {
            return Err(FlowError::Internal(format!(
                "dummy stage {:?} was told to fail",
                cx.stage.name
            )));
        }
        Ok(Step::Next)
    }
}
