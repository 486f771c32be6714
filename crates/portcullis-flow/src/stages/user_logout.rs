//! The user logout stage: ends the session (the row is deleted, the cookie cleared) and records
//! `logout`. The rest of the flow continues in a fresh anonymous session, first with the
//! front-channel logout pages of the applications the session signed into, when there are any
//! (see [`super::iframe_logout`]).

use async_trait::async_trait;
use portcullis_core::{EventAction, NewEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{StageCx, StageView, Step, iframe_logout};
use crate::context;
use crate::error::FlowError;
use crate::plan::PlannedStage;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {}

pub struct UserLogout;

#[async_trait]
impl StageView for UserLogout {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let actor = cx.actor().await;
        let ended = cx.session.session().map(|s| s.uuid);
        let user = cx.session.logout(&cx.svc.store).await?;
        if let (Some(hook), Some(session), Some(u)) = (&cx.svc.session_end, ended, &user) {
            let urls = hook.session_ended(session, u.pk).await;
            if !urls.is_empty() {
                // Front-channel logout: the iframes come right after this stage.
                let at = cx.plan.stages.len().min(1);
                cx.plan
                    .stages
                    .insert(at, PlannedStage::in_memory(iframe_logout::stage(urls)));
            }
        }
        if user.is_some() {
            cx.svc
                .store
                .record_event(
                    &actor,
                    NewEvent {
                        action: EventAction::Logout,
                        app: "authentik.events.signals".into(),
                        context: json!({}),
                    },
                )
                .await?;
        }
        cx.plan
            .context
            .insert(context::LOGGED_OUT.into(), Value::Bool(true));
        Ok(Step::Next)
    }

    async fn respond(
        &self,
        cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        self.challenge(cx).await
    }
}
