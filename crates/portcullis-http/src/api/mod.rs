//! REST API v3 handlers, one module per resource, at authentik's paths.

pub mod applications;
pub mod blueprints;
pub mod brands;
pub mod certificates;
pub mod events;
pub mod groups;
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
