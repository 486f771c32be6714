//! authentik's event matcher policy: passes when the event being handled (a notification rule's
//! `context["event"]`) matches every criterion that is set.
//!
//! ```text
//!  context["event"] ──missing, or not a JSON object──> fail
//!       └─> for action, client_ip, app, model (in this order), each one that is set:
//!             compare with the event ──> matched or not (one log line each)
//!           pass ⇔ every set criterion matched (none set: pass)
//! ```
//!
//! The event is JSON in authentik's shape, which `portcullis_core::Event` serialises to:
//! `{"action": "login", "app": "authentik.core", "client_ip": "192.0.2.1" | null,
//! "context": {"model": {"app": "authentik_core", "model_name": "user", ...}}, ...}`.
//! Criteria compare exactly, as in authentik ("strict matching, for network matching use an
//! Expression Policy"); a criterion of `None` matches anything, an empty string matches nothing
//! real. `model` is `app_label.model_name` and matches when the event's
//! `context.model.app + "." + context.model.model_name` equals it.
//!
//! Deliberate differences: authentik adds "Action matched." (and so on) to the result even when
//! the criterion did *not* match; here only matched criteria add their message. An event without
//! model information never matches a `model` criterion (authentik compares with the string
//! `"None.None"`). A non-object `event` fails instead of raising.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::Policy;
use crate::error::PolicyError;
use crate::request::{PolicyRequest, PolicyResult};

/// The context key the event is passed under (authentik's notification rules use `event`).
pub const CONTEXT_EVENT: &str = "event";

/// authentik's `EventMatcherPolicy`; every field is optional and `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventMatcherPolicy {
    /// An event action, e.g. `login_failed` or `model_created`.
    pub action: Option<String>,
    /// The event's client IP, compared as a string.
    pub client_ip: Option<String>,
    /// The Django app that created the event, e.g. `authentik.core` or `authentik.events.signals`.
    pub app: Option<String>,
    /// `app_label.model_name` of the object the event is about, e.g. `authentik_core.user`.
    pub model: Option<String>,
}

/// A string field of the event; any other JSON type, or its absence, matches nothing.
fn text<'a>(event: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    event.get(key).and_then(Value::as_str)
}

/// Whether `wanted` is `context.model.app` + `.` + `context.model.model_name`, compared without
/// building the joined string.
fn model_matches(wanted: &str, event: &Map<String, Value>) -> bool {
    let model = event.get("context").and_then(|c| c.get("model"));
    let app = model.and_then(|m| m.get("app")).and_then(Value::as_str);
    let name = model
        .and_then(|m| m.get("model_name"))
        .and_then(Value::as_str);
    match (app, name) {
        (Some(app), Some(name)) => {
            wanted
                .strip_prefix(app)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(name)
        }
        _ => false,
    }
}

impl EventMatcherPolicy {
    pub fn evaluate(&self, req: &PolicyRequest) -> PolicyResult {
        let event = match req.context.get(CONTEXT_EVENT) {
            Some(Value::Object(event)) => event,
            Some(_) => {
                let mut result = PolicyResult::new(false);
                result
                    .log
                    .push("debug: Event in the context is not a JSON object".to_owned());
                return result;
            }
            None => {
                let mut result = PolicyResult::new(false);
                result.log.push("debug: No event in the context".to_owned());
                return result;
            }
        };
        let checks = [
            (
                "passes_action",
                "Action matched.",
                self.action
                    .as_deref()
                    .map(|a| text(event, "action") == Some(a)),
            ),
            (
                "passes_client_ip",
                "Client IP matched.",
                self.client_ip
                    .as_deref()
                    .map(|ip| text(event, "client_ip") == Some(ip)),
            ),
            (
                "passes_app",
                "App matched.",
                self.app.as_deref().map(|a| text(event, "app") == Some(a)),
            ),
            (
                "passes_model",
                "Model matched.",
                self.model.as_deref().map(|m| model_matches(m, event)),
            ),
        ];
        let mut result = PolicyResult::new(true);
        for (checker, message, outcome) in checks {
            let Some(matched) = outcome else {
                continue;
            };
            result.log.push(format!(
                "debug: Event matcher check result checker={checker} result={matched}"
            ));
            if matched {
                result.messages.push(message.to_owned());
            } else {
                result.passing = false;
            }
        }
        result
    }
}

#[async_trait]
impl Policy for EventMatcherPolicy {
    fn kind(&self) -> &'static str {
        "eventmatcherpolicy"
    }

    async fn passes(&self, req: &PolicyRequest) -> Result<PolicyResult, PolicyError> {
        Ok(self.evaluate(req))
    }
}

#[cfg(test)]
mod tests;
