//! The redirect stage: ends the flow by sending the browser to a fixed URL, or to another flow
//! (planned at once, with this flow's context when `keep_context`, as authentik does: what an
//! identification stage found stays known in the next flow).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{StageCx, StageView, Step};
use crate::error::{ConfigError, FlowError};

fn t() -> bool {
    true
}
fn static_mode() -> String {
    "static".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default = "t")]
    pub keep_context: bool,
    #[serde(default = "static_mode")]
    pub mode: String,
    #[serde(default)]
    pub target_static: String,
    #[serde(default)]
    pub target_flow: Option<Uuid>,
}

pub(crate) fn validate(v: &Value) -> Result<(), ConfigError> {
    let c: Config = super::parse_config(v)?;
    match c.mode.as_str() {
        "static" if c.target_static.is_empty() => Err(ConfigError::single(
            "target_static",
            "Target URL should be present when mode is static.",
        )),
        "static" => {
            let mut errors = portcullis_core::FieldErrors::new();
            portcullis_core::validate::url(&mut errors, "target_static", &c.target_static);
            if errors.is_empty() {
                Ok(())
            } else {
                Err(ConfigError(errors))
            }
        }
        "flow" if c.target_flow.is_none() => Err(ConfigError::single(
            "target_flow",
            "Target flow should be present when mode is flow.",
        )),
        "flow" => Ok(()),
        other => Err(ConfigError::single(
            "mode",
            format!("\"{other}\" is not a valid choice."),
        )),
    }
}

pub struct Redirect;

#[async_trait]
impl StageView for Redirect {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let c: Config = cx.config()?;
        if c.mode == "flow" {
            let Some(target) = c.target_flow else {
                return Err(FlowError::Config(
                    "redirect stage without target flow".into(),
                ));
            };
            return Ok(Step::SwitchFlow {
                flow: target,
                keep_context: c.keep_context,
            });
        }
        Ok(Step::Redirect(c.target_static))
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        self.challenge(cx).await
    }
}
