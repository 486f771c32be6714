//! The front-channel logout stage (authentik's `IframeLogoutStageView`): after the user_logout
//! stage ended a session, the browser loads each application's front-channel logout URL in a
//! hidden iframe, so applications that keep their own session in the browser end it too
//! (OpenID Connect Front-Channel Logout 1.0; later SAML single logout over the redirect binding).
//!
//! ```text
//!  user_logout ─> SessionEndHook gives the front-channel URLs of the session's applications
//!      ─> none: the flow goes on   ─> some: this stage is planned next (in memory, never stored)
//!  GET  ─> ak-provider-iframe-logout {logout_urls: [{url, provider_name, binding}]}
//!  POST ─> Next (the page posts when every iframe loaded, or after a timeout; without
//!          JavaScript the person presses Continue)
//! ```
//! The stage cannot be created over the API: it exists only in the plan that needs it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{StageCx, StageView, Step};
use crate::challenge::Challenge;
use crate::error::FlowError;

pub const COMPONENT: &str = "ak-provider-iframe-logout";
/// The stage kind of the in-memory stage (not a stored stage type).
pub const KIND: &str = "iframelogoutstage";
/// The binding of an URL loaded in an iframe with a GET.
pub const BINDING_REDIRECT: &str = "redirect";

/// One page to load in an iframe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutUrl {
    pub url: String,
    pub provider_name: String,
    pub binding: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub logout_urls: Vec<LogoutUrl>,
}

/// The in-memory stage that loads `urls`.
pub fn stage(urls: Vec<LogoutUrl>) -> portcullis_core::Stage {
    portcullis_core::Stage {
        uuid: Uuid::new_v4(),
        name: "front-channel-logout".to_owned(),
        kind: KIND.to_owned(),
        config: json!({ "logout_urls": urls }),
    }
}

pub struct IframeLogout;

#[async_trait]
impl StageView for IframeLogout {
    async fn challenge(&self, cx: &mut StageCx<'_>) -> Result<Step, FlowError> {
        let mut c: Config = cx.config()?;
        // Only web pages: never a `javascript:` or `data:` URL in a frame.
        c.logout_urls.retain(|u| {
            let lower = u.url.to_ascii_lowercase();
            lower.starts_with("https://") || lower.starts_with("http://")
        });
        if c.logout_urls.is_empty() {
            return Ok(Step::Next);
        }
        let urls = serde_json::to_value(&c.logout_urls)
            .map_err(|e| FlowError::Internal(format!("logout urls: {e}")))?;
        Ok(Step::Challenge(
            Challenge::new(COMPONENT).with("logout_urls", urls),
        ))
    }

    async fn respond(
        &self,
        _cx: &mut StageCx<'_>,
        _response: &Map<String, Value>,
    ) -> Result<Step, FlowError> {
        Ok(Step::Next)
    }
}
