//! REST API v3 handlers, one module per resource, at authentik's paths.

pub mod applications;
pub mod blueprints;
pub mod brands;
pub mod certificates;
pub mod events;
pub mod flow_export;
pub mod flows;
pub mod groups;
pub mod policies;
pub mod prompts;
pub mod property_mappings;
pub mod providers;
pub mod stages;
pub mod tokens;
pub mod users;

use crate::error::ApiError;

/// Anything unrouted: a JSON 404 like the rest of the API.
pub async fn fallback() -> ApiError {
    ApiError::NotFound
}

/// A route without the request's method: DRF's JSON 405 (axum adds the `Allow` header).
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// Collects field errors into a result.
pub(crate) fn check(errors: portcullis_core::FieldErrors) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// "This field is required." for each `(name, present)` that is missing.
pub(crate) fn require(errors: &mut portcullis_core::FieldErrors, fields: &[(&str, bool)]) {
    for (name, present) in fields {
        if !present {
            errors.add(name, "This field is required.");
        }
    }
}

/// A textual id from the path (a slug, a token identifier). One with a NUL names nothing that
/// can be stored (PostgreSQL's text cannot hold it): 404 without asking the database.
/// An id from the URL path; one that cannot parse names nothing, so it is "not found".
pub(crate) fn path_id<T: std::str::FromStr>(id: &str) -> Result<T, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

pub(crate) fn path_key(id: &str) -> Result<&str, ApiError> {
    if id.contains('\0') {
        Err(ApiError::NotFound)
    } else {
        Ok(id)
    }
}

/// Refuses NUL characters anywhere in a JSON value, keys included: PostgreSQL stores them in
/// neither text nor JSON, so both databases refuse them alike (as DRF does for text).
pub(crate) fn no_nul_in_json(
    errors: &mut portcullis_core::FieldErrors,
    field: &str,
    value: &serde_json::Value,
) {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(value) {
        errors.add(field, "Null characters are not allowed.");
    }
}

/// A choice field: `None` when absent, else the parsed value, or DRF's "not a valid choice"
/// on `field` when it names no choice.
pub(crate) fn choice<T>(
    errors: &mut portcullis_core::FieldErrors,
    field: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Option<T> {
    let v = value?;
    let parsed = parse(v);
    if parsed.is_none() {
        let shown: String = v.chars().take(64).collect();
        errors.add(field, format!("\"{shown}\" is not a valid choice."));
    }
    parsed
}

/// A list query that returns everything (up to a bound no real configuration reaches).
pub(crate) fn everything() -> portcullis_store::ListQuery {
    portcullis_store::ListQuery {
        page: portcullis_core::PageRequest {
            page: 1,
            page_size: 10_000,
        },
        ..Default::default()
    }
}

/// A uuid query filter (`?target=`), with DRF's message when it is not one.
pub(crate) fn query_uuid(
    q: &crate::extract::QueryParams,
    key: &str,
) -> Result<Option<uuid::Uuid>, ApiError> {
    Ok(q.uuids(key)?.into_iter().next())
}

/// Normalizes a type's settings (`base` with `body` over it). serde names no field when a
/// value has the wrong type ("invalid type: string, expected a sequence"), so when the only
/// error is a `non_field_errors` one, the body key whose removal clears it is named instead,
/// as DRF names the field.
pub(crate) fn normalize_settings(
    base: &serde_json::Map<String, serde_json::Value>,
    body: serde_json::Map<String, serde_json::Value>,
    normalize: impl Fn(&serde_json::Value) -> Result<serde_json::Value, portcullis_core::FieldErrors>,
) -> Result<serde_json::Value, ApiError> {
    let mut merged = base.clone();
    merged.extend(body.clone());
    let errors = match normalize(&serde_json::Value::Object(merged.clone())) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let only_general = errors.0.len() == 1 && errors.0.contains_key("non_field_errors");
    if only_general {
        for key in body.keys() {
            let mut without = merged.clone();
            match base.get(key) {
                Some(v) => without.insert(key.clone(), v.clone()),
                None => without.remove(key),
            };
            let cleared = match normalize(&serde_json::Value::Object(without)) {
                Ok(_) => true,
                Err(e) => !e.0.contains_key("non_field_errors"),
            };
            if cleared {
                let messages = errors.0.into_values().flatten().collect::<Vec<_>>();
                let mut named = portcullis_core::FieldErrors::new();
                for m in messages {
                    named.add(key, m);
                }
                return Err(ApiError::Validation(named));
            }
        }
    }
    Err(ApiError::Validation(errors))
}
