//! Challenges: what a stage asks of the person (or client) walking a flow, in authentik's JSON
//! shape. The HTML interface renders these same objects; it never asks anything else.
//!
//! ```json
//! {"component": "ak-stage-password", "flow_info": {...}, "response_errors": {"password":
//!   [{"string": "Invalid password", "code": "invalid"}]}, "pending_user": "admin", ...}
//! ```

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// The flow around a challenge (authentik's `ContextualFlowInfo`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowInfo {
    pub title: String,
    pub background: String,
    pub cancel_url: String,
    pub layout: String,
}

/// One error message about one field (authentik's `ErrorDetail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    pub string: String,
    pub code: String,
}

impl ErrorDetail {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            string: message.into(),
            code: "invalid".to_owned(),
        }
    }
}

/// A challenge: a component name and the component's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub component: String,
    pub flow_info: Option<FlowInfo>,
    pub response_errors: BTreeMap<String, Vec<ErrorDetail>>,
    pub fields: Map<String, Value>,
}

pub const REDIRECT: &str = "xak-flow-redirect";
pub const ACCESS_DENIED: &str = "ak-stage-access-denied";
pub const FLOW_ERROR: &str = "ak-stage-flow-error";
pub const SESSION_END: &str = "ak-stage-session-end";

impl Challenge {
    pub fn new(component: &str) -> Self {
        Self {
            component: component.to_owned(),
            flow_info: None,
            response_errors: BTreeMap::new(),
            fields: Map::new(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Adds an error about `field` (`non_field_errors` for the whole response).
    pub fn error(mut self, field: &str, message: impl Into<String>) -> Self {
        self.response_errors
            .entry(field.to_owned())
            .or_default()
            .push(ErrorDetail::invalid(message));
        self
    }

    /// `xak-flow-redirect`: the flow is over (or hands over); go to `to`.
    pub fn redirect(to: &str) -> Self {
        Self::new(REDIRECT).with("to", to)
    }

    /// `ak-stage-access-denied` with a message for the person.
    pub fn access_denied(message: &str) -> Self {
        Self::new(ACCESS_DENIED).with("error_message", message)
    }

    /// `ak-stage-flow-error`: something broke. `detail` is shown to superusers only.
    pub fn flow_error(message: &str, detail: Option<&str>) -> Self {
        let c = Self::new(FLOW_ERROR).with("error", message);
        match detail {
            Some(d) => c.with("traceback", d),
            None => c,
        }
    }

    pub fn field_str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// The challenge as JSON, in authentik's flat shape.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("component".into(), Value::String(self.component.clone()));
        if let Some(info) = &self.flow_info
            && let Ok(v) = serde_json::to_value(info)
        {
            out.insert("flow_info".into(), v);
        }
        if !self.response_errors.is_empty()
            && let Ok(v) = serde_json::to_value(&self.response_errors)
        {
            out.insert("response_errors".into(), v);
        }
        for (k, v) in &self.fields {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(out)
    }
}

impl Serialize for Challenge {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}
