//! Prompt fields (authentik's `Prompt`): their settings, how they are shown, and how a submitted
//! value is checked. Pure functions over JSON, no store: the prompt stage adds the checks that
//! need one (a username already taken) and the validation policies.
//!
//! ```text
//!   stored config ──normalize_prompt_config──> PromptConfig (API, blueprints)
//!   PromptConfig + prompt_data ──resolve──> ResolvedField ──to_json──> challenge "fields"
//!   ResolvedField + submitted value ──clean──> Ok(Some(value)) stored in prompt_data
//!                                            Ok(None)        nothing stored (static, read-only)
//!                                            Err(message)    a field error
//! ```
//!
//! Expressions (`placeholder_expression`, `initial_value_expression`) are run by the prompt stage
//! (Starlark, with `user`, `request` and `context` in scope, within the expression limits) and
//! their values handed to [`resolve`]; a failed expression gives nothing (an empty value, no
//! choices), never its source text.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use portcullis_core::FieldErrors;
use portcullis_core::validate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ConfigError;

/// Longest value of a text-like field, in characters.
pub const MAX_TEXT: usize = 4096;
/// Longest password, as everywhere in flows.
pub const MAX_PASSWORD: usize = crate::stages::identification::MAX_PASSWORD;
/// Longest `file` value (a `data:` URI), in characters.
pub const MAX_FILE: usize = 256 * 1024;
/// Longest placeholder, initial value or help text an admin may store.
const MAX_SETTING: usize = 64 * 1024;
/// Most choices a radio group or dropdown offers.
const MAX_CHOICES: usize = 1000;

/// The field types, with authentik's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    TextArea,
    TextReadOnly,
    TextAreaReadOnly,
    Username,
    Email,
    Password,
    Number,
    Checkbox,
    RadioButtonGroup,
    Dropdown,
    Date,
    DateTime,
    File,
    Separator,
    Hidden,
    Static,
    AkLocale,
}

/// Every field type name, as stored in a prompt's `type`.
pub const FIELD_TYPES: &[&str] = &[
    "text",
    "text_area",
    "text_read_only",
    "text_area_read_only",
    "username",
    "email",
    "password",
    "number",
    "checkbox",
    "radio-button-group",
    "dropdown",
    "date",
    "date-time",
    "file",
    "separator",
    "hidden",
    "static",
    "ak-locale",
];

impl FieldType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "text_area" => Self::TextArea,
            "text_read_only" => Self::TextReadOnly,
            "text_area_read_only" => Self::TextAreaReadOnly,
            "username" => Self::Username,
            "email" => Self::Email,
            "password" => Self::Password,
            "number" => Self::Number,
            "checkbox" => Self::Checkbox,
            "radio-button-group" => Self::RadioButtonGroup,
            "dropdown" => Self::Dropdown,
            "date" => Self::Date,
            "date-time" => Self::DateTime,
            "file" => Self::File,
            "separator" => Self::Separator,
            "hidden" => Self::Hidden,
            "static" => Self::Static,
            "ak-locale" => Self::AkLocale,
            _ => return None,
        })
    }

    /// Radio groups and dropdowns: the value must be one of the choices.
    pub fn has_choices(self) -> bool {
        matches!(self, Self::RadioButtonGroup | Self::Dropdown)
    }

    /// Fields whose submitted value is never stored (shown only).
    pub fn is_display_only(self) -> bool {
        matches!(
            self,
            Self::TextReadOnly | Self::TextAreaReadOnly | Self::Separator | Self::Static
        )
    }
}

fn t() -> bool {
    true
}

/// A prompt's settings (authentik's `Prompt` minus its name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptConfig {
    /// Where the value goes in `prompt_data` (and so which user field user_write sets).
    pub field_key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default = "t")]
    pub required: bool,
    /// For radio groups and dropdowns: the choice (or, as an expression, the list of choices).
    #[serde(default)]
    pub placeholder: String,
    #[serde(default)]
    pub initial_value: String,
    #[serde(default)]
    pub order: i32,
    #[serde(default)]
    pub sub_text: String,
    #[serde(default)]
    pub placeholder_expression: bool,
    #[serde(default)]
    pub initial_value_expression: bool,
}

impl PromptConfig {
    pub fn kind(&self) -> Option<FieldType> {
        FieldType::parse(&self.field_type)
    }
}

/// Validates a prompt's settings and returns them with defaults filled in, as stored.
pub fn normalize_prompt_config(config: &Value) -> Result<Value, ConfigError> {
    let c: PromptConfig = crate::stages::parse_config(config)?;
    let mut errors = FieldErrors::new();
    if !is_valid_field_key(&c.field_key) {
        errors.add(
            "field_key",
            "Enter a valid field key: letters, digits, '_' and '-', in '.'-separated parts.",
        );
    }
    validate::text(&mut errors, "label", &c.label, MAX_TEXT, false);
    if c.kind().is_none() {
        errors.add(
            "type",
            format!("\"{}\" is not a valid choice.", c.field_type),
        );
    }
    for (field, value) in [
        ("placeholder", &c.placeholder),
        ("initial_value", &c.initial_value),
        ("sub_text", &c.sub_text),
    ] {
        if value.chars().count() > MAX_SETTING {
            errors.add(
                field,
                format!("Ensure this field has no more than {MAX_SETTING} characters."),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ConfigError(errors));
    }
    serde_json::to_value(&c).map_err(|e| ConfigError::single("non_field_errors", e.to_string()))
}

/// `username`, `attributes.settings.locale`, `password_repeat`: dot-separated parts of letters,
/// digits, `_` and `-`.
fn is_valid_field_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A field as this request shows it: expressions resolved, choices listed, earlier answers
/// filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedField {
    pub config: PromptConfig,
    pub kind: FieldType,
    pub placeholder: String,
    pub initial_value: String,
    pub choices: Option<Vec<String>>,
}

/// Resolves `config` against the `prompt_data` gathered so far.
/// `expression` gives the value of an expression source (already run by the caller), if any.
pub fn resolve(
    config: &PromptConfig,
    kind: FieldType,
    prompt_data: &Map<String, Value>,
    expression: &dyn Fn(&str) -> Option<Value>,
) -> ResolvedField {
    let placeholder = if config.placeholder_expression {
        expression(&config.placeholder)
            .map(|v| value_text(&v))
            .unwrap_or_default()
    } else {
        config.placeholder.clone()
    };
    let earlier = prompt_data
        .get(&config.field_key)
        .filter(|_| kind != FieldType::Password);
    let choices = kind.has_choices().then(|| {
        let raw = match earlier {
            Some(v) => v.clone(),
            None if config.placeholder_expression => {
                expression(&config.placeholder).unwrap_or(Value::Null)
            }
            None => Value::String(config.placeholder.clone()),
        };
        let list = match raw {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut out: Vec<String> = Vec::new();
        for c in list.iter().map(value_text).filter(|c| !c.is_empty()) {
            if out.len() >= MAX_CHOICES {
                break;
            }
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    });
    let mut initial_value = match earlier {
        Some(v) => value_text(v),
        None if config.initial_value_expression => expression(&config.initial_value)
            .map(|v| value_text(&v))
            .unwrap_or_default(),
        None => config.initial_value.clone(),
    };
    if let Some(choices) = &choices
        && !choices.contains(&initial_value)
    {
        initial_value = choices.first().cloned().unwrap_or_default();
    }
    ResolvedField {
        config: config.clone(),
        kind,
        placeholder,
        initial_value,
        choices,
    }
}

impl ResolvedField {
    /// The field in authentik's `StagePrompt` shape.
    pub fn to_json(&self) -> Value {
        json!({
            "field_key": self.config.field_key,
            "label": self.config.label,
            "type": self.config.field_type,
            "required": self.config.required,
            "placeholder": self.placeholder,
            "initial_value": self.initial_value,
            "order": self.config.order,
            "sub_text": self.config.sub_text,
            "choices": self.choices,
        })
    }

    /// Checks the submitted `raw` value: `Ok(Some(v))` is stored under the field key,
    /// `Ok(None)` stores nothing, `Err` is the field's error message.
    pub fn clean(&self, raw: Option<&Value>) -> Result<Option<Value>, String> {
        const REQUIRED: &str = "This field is required.";
        let raw = raw.filter(|v| !v.is_null());
        let required = self.config.required;
        match self.kind {
            FieldType::Separator
            | FieldType::Static
            | FieldType::TextReadOnly
            | FieldType::TextAreaReadOnly => Ok(None),
            // Never what the client sent: what the server put there.
            FieldType::Hidden => Ok(Some(Value::String(self.initial_value.clone()))),
            FieldType::Checkbox => {
                let v = match raw {
                    None => false,
                    Some(v) => parse_bool(v).ok_or("Must be a valid boolean.")?,
                };
                if required && !v {
                    return Err(REQUIRED.into());
                }
                Ok(Some(Value::Bool(v)))
            }
            FieldType::Number => {
                let n = match raw {
                    None => None,
                    Some(Value::Number(n)) => {
                        Some(n.as_i64().ok_or("A valid integer is required.")?)
                    }
                    Some(Value::String(s)) if s.len() > 64 => {
                        return Err("A valid integer is required.".into());
                    }
                    Some(Value::String(s)) if s.trim().is_empty() => None,
                    Some(Value::String(s)) => Some(
                        s.trim()
                            .parse::<i64>()
                            .map_err(|_| "A valid integer is required.")?,
                    ),
                    Some(_) => return Err("A valid integer is required.".into()),
                };
                match n {
                    Some(n) => Ok(Some(json!(n))),
                    None if required => Err(REQUIRED.into()),
                    None => Ok(None),
                }
            }
            _ => {
                let max = match self.kind {
                    FieldType::Password => MAX_PASSWORD,
                    FieldType::File => MAX_FILE,
                    _ => MAX_TEXT,
                };
                let s = match raw {
                    None => None,
                    Some(Value::String(s)) => {
                        // Bytes first: a huge string is refused without counting characters.
                        if s.len() > max * 4 || s.chars().count() > max {
                            return Err(format!(
                                "Ensure this field has no more than {max} characters."
                            ));
                        }
                        Some(s.as_str())
                    }
                    Some(_) => return Err("Not a valid string.".into()),
                };
                let blank = s.is_none_or(|s| s.trim().is_empty());
                if blank {
                    return if required {
                        Err(match s {
                            None => REQUIRED.into(),
                            Some(_) => "This field may not be blank.".into(),
                        })
                    } else if s.is_some() && self.kind != FieldType::Password {
                        Ok(Some(Value::String(String::new())))
                    } else {
                        Ok(None)
                    };
                }
                let s = s.unwrap_or_default();
                self.clean_string(s).map(|v| Some(Value::String(v)))
            }
        }
    }

    /// A non-blank, length-checked string of a text-like type.
    fn clean_string(&self, s: &str) -> Result<String, String> {
        let first_error = |errors: FieldErrors| -> Result<(), String> {
            match errors.0.into_values().flatten().next() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        };
        match self.kind {
            FieldType::Password => Ok(s.to_owned()),
            FieldType::Text | FieldType::TextArea => {
                let multiline = self.kind == FieldType::TextArea;
                if s.chars()
                    .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
                {
                    return Err("Control characters are not allowed.".into());
                }
                Ok(s.to_owned())
            }
            FieldType::Username => {
                let mut e = FieldErrors::new();
                validate::username(&mut e, "", s);
                first_error(e)?;
                Ok(s.to_owned())
            }
            FieldType::Email => {
                let s = s.trim();
                let mut e = FieldErrors::new();
                validate::email(&mut e, "", s);
                first_error(e)?;
                Ok(s.to_owned())
            }
            FieldType::RadioButtonGroup | FieldType::Dropdown => {
                let choices = self.choices.as_deref().unwrap_or_default();
                if choices.iter().any(|c| c == s) {
                    Ok(s.to_owned())
                } else {
                    Err(format!("\"{}\" is not a valid choice.", truncate(s, 64)))
                }
            }
            FieldType::Date => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(|d| d.format("%Y-%m-%d").to_string())
                .map_err(|_| {
                    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
                        .to_owned()
                }),
            FieldType::DateTime => parse_date_time(s.trim()).ok_or_else(|| {
                "Datetime has wrong format. Use one of these formats instead: \
                 YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                    .to_owned()
            }),
            FieldType::File => {
                if s.starts_with("data:") && !s.chars().any(char::is_whitespace) {
                    Ok(s.to_owned())
                } else {
                    Err("The submitted data was not a file.".into())
                }
            }
            FieldType::AkLocale => {
                let s = s.trim();
                if s.len() <= 16
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    Ok(s.to_owned())
                } else {
                    Err("Not a valid locale.".into())
                }
            }
            // Handled by `clean`.
            FieldType::TextReadOnly
            | FieldType::TextAreaReadOnly
            | FieldType::Separator
            | FieldType::Static
            | FieldType::Hidden
            | FieldType::Checkbox
            | FieldType::Number => Ok(s.to_owned()),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Django REST framework's `BooleanField` inputs.
fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "y" | "1" => Some(true),
            "false" | "off" | "no" | "n" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// RFC 3339 (kept with its offset), or a browser's `datetime-local` value
/// (`YYYY-MM-DDTHH:MM[:SS]`, kept without one).
fn parse_date_time(s: &str) -> Option<String> {
    if s.len() > 64 {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.to_rfc3339());
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn field(kind: &str, required: bool) -> ResolvedField {
        let c: PromptConfig = serde_json::from_value(json!({
            "field_key": "f", "label": "F", "type": kind, "required": required,
            "placeholder": "", "initial_value": "init",
        }))
        .unwrap();
        resolve(&c, c.kind().unwrap(), &Map::new(), &|_| None)
    }

    #[test]
    fn normalizes_with_defaults_and_refuses_bad_settings() {
        let v = normalize_prompt_config(&json!({
            "field_key": "attributes.settings.locale", "label": "Locale", "type": "ak-locale",
        }))
        .unwrap();
        assert_eq!(v["required"], json!(true));
        assert_eq!(v["order"], json!(0));
        assert_eq!(v["placeholder"], json!(""));
        for bad in [
            json!({"field_key": "", "label": "x", "type": "text"}),
            json!({"field_key": "a..b", "label": "x", "type": "text"}),
            json!({"field_key": "a b", "label": "x", "type": "text"}),
            json!({"field_key": "a", "label": "x", "type": "nope"}),
            json!({"field_key": "a", "label": "", "type": "text"}),
            json!({"field_key": "a", "label": "x"}),
            json!({"field_key": ["a"], "label": "x", "type": "text"}),
            json!("text"),
        ] {
            assert!(normalize_prompt_config(&bad).is_err(), "{bad}");
        }
        for t in FIELD_TYPES {
            assert!(FieldType::parse(t).is_some());
        }
    }

    #[test]
    fn expression_values_come_from_the_caller() {
        let c: PromptConfig = serde_json::from_value(json!({
            "field_key": "f", "label": "F", "type": "text",
            "initial_value": "return request.user.name", "initial_value_expression": true,
        }))
        .unwrap();
        // Never the expression's source: its value, or nothing when it gave none.
        assert_eq!(
            resolve(&c, FieldType::Text, &Map::new(), &|_| None).initial_value,
            ""
        );
        let r = resolve(&c, FieldType::Text, &Map::new(), &|src| {
            (src == "return request.user.name").then(|| json!("Ada"))
        });
        assert_eq!(r.initial_value, "Ada");
    }

    #[test]
    fn choices_come_from_the_placeholder() {
        let c: PromptConfig = serde_json::from_value(json!({
            "field_key": "f", "label": "F", "type": "dropdown",
            "placeholder": "return [\"red\", \"green\"]", "placeholder_expression": true,
            "initial_value": "green",
        }))
        .unwrap();
        let r = resolve(&c, FieldType::Dropdown, &Map::new(), &|_| {
            Some(json!(["red", "green"]))
        });
        assert_eq!(r.choices, Some(vec!["red".to_owned(), "green".to_owned()]));
        assert_eq!(r.initial_value, "green");
        assert_eq!(r.clean(Some(&json!("red"))), Ok(Some(json!("red"))));
        assert!(r.clean(Some(&json!("blue"))).is_err());
        assert!(r.clean(None).is_err());
        let single: PromptConfig = serde_json::from_value(json!({
            "field_key": "f", "label": "F", "type": "radio-button-group", "placeholder": "only",
        }))
        .unwrap();
        let r = resolve(&single, FieldType::RadioButtonGroup, &Map::new(), &|_| None);
        assert_eq!(r.choices, Some(vec!["only".to_owned()]));
        assert_eq!(r.initial_value, "only");
    }

    #[test]
    fn cleans_each_type() {
        assert_eq!(
            field("text", true).clean(Some(&json!("hi"))),
            Ok(Some(json!("hi")))
        );
        assert!(field("text", true).clean(None).is_err());
        assert!(field("text", true).clean(Some(&json!("  "))).is_err());
        assert!(field("text", true).clean(Some(&json!(["a"]))).is_err());
        assert!(field("text", true).clean(Some(&json!({"a": 1}))).is_err());
        assert!(field("text", true).clean(Some(&json!("a\u{0}b"))).is_err());
        assert!(
            field("text", true)
                .clean(Some(&json!("x".repeat(4097))))
                .is_err()
        );
        assert_eq!(field("text", false).clean(None), Ok(None));
        assert_eq!(
            field("text_area", true).clean(Some(&json!("a\nb"))),
            Ok(Some(json!("a\nb")))
        );
        assert_eq!(
            field("email", true).clean(Some(&json!("a@b.c"))),
            Ok(Some(json!("a@b.c")))
        );
        assert!(field("email", true).clean(Some(&json!("nope"))).is_err());
        assert_eq!(
            field("number", true).clean(Some(&json!("42"))),
            Ok(Some(json!(42)))
        );
        assert_eq!(
            field("number", true).clean(Some(&json!(-3))),
            Ok(Some(json!(-3)))
        );
        assert!(field("number", true).clean(Some(&json!("4x"))).is_err());
        assert!(field("number", true).clean(Some(&json!(1.5))).is_err());
        assert!(field("number", true).clean(Some(&json!(true))).is_err());
        assert_eq!(field("checkbox", false).clean(None), Ok(Some(json!(false))));
        assert_eq!(
            field("checkbox", false).clean(Some(&json!("on"))),
            Ok(Some(json!(true)))
        );
        assert!(field("checkbox", true).clean(Some(&json!(false))).is_err());
        assert!(
            field("checkbox", false)
                .clean(Some(&json!([true])))
                .is_err()
        );
        assert_eq!(
            field("date", true).clean(Some(&json!("2024-02-29"))),
            Ok(Some(json!("2024-02-29")))
        );
        assert!(
            field("date", true)
                .clean(Some(&json!("2023-02-29")))
                .is_err()
        );
        assert!(
            field("date", true)
                .clean(Some(&json!("29.02.2024")))
                .is_err()
        );
        assert_eq!(
            field("date-time", true).clean(Some(&json!("2024-01-02T03:04"))),
            Ok(Some(json!("2024-01-02T03:04:00")))
        );
        assert_eq!(
            field("date-time", true).clean(Some(&json!("2024-01-02T03:04:05Z"))),
            Ok(Some(json!("2024-01-02T03:04:05+00:00")))
        );
        assert!(
            field("date-time", true)
                .clean(Some(&json!("yesterday")))
                .is_err()
        );
        assert_eq!(
            field("hidden", true).clean(Some(&json!("forged"))),
            Ok(Some(json!("init")))
        );
        assert_eq!(field("static", true).clean(Some(&json!("x"))), Ok(None));
        assert_eq!(field("separator", true).clean(None), Ok(None));
        assert_eq!(
            field("text_read_only", true).clean(Some(&json!("x"))),
            Ok(None)
        );
        assert!(
            field("username", true)
                .clean(Some(&json!(" admin")))
                .is_err()
        );
        assert!(
            field("password", true)
                .clean(Some(&json!("x".repeat(1025))))
                .is_err()
        );
        assert_eq!(
            field("password", true).clean(Some(&json!(" p "))),
            Ok(Some(json!(" p ")))
        );
        assert!(
            field("file", true)
                .clean(Some(&json!("not a file")))
                .is_err()
        );
        assert_eq!(
            field("ak-locale", false).clean(Some(&json!("de_DE"))),
            Ok(Some(json!("de_DE")))
        );
        assert!(
            field("ak-locale", false)
                .clean(Some(&json!("<script>")))
                .is_err()
        );
    }

    #[test]
    fn earlier_answers_fill_in_but_passwords_never() {
        let mut data = Map::new();
        data.insert("f".into(), json!("before"));
        for (kind, expected) in [("text", "before"), ("password", "init")] {
            let c: PromptConfig = serde_json::from_value(json!({
                "field_key": "f", "label": "F", "type": kind, "initial_value": "init",
            }))
            .unwrap();
            assert_eq!(
                resolve(&c, c.kind().unwrap(), &data, &|_| None).initial_value,
                expected
            );
        }
    }
}
