//! The deny stage: ends the flow with a message (usually bound behind a policy).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{StageCx, StageView, Step};
use crate::error::FlowError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub deny_message: String,
}

pub struct Deny;

#[async_trait]
impl StageView for Deny {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        Ok(Step::Deny(if c.deny_message.is_empty() {
            "Permission denied".into()
        } else {
            c.deny_message
        }))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        self.challenge(cx).await
    }
}
