//! The one place where errors become HTTP responses, in authentik's (DRF's) shapes:
//! `{"detail": "..."}` for request-level errors and `{"field": ["message"]}` for validation.
//! Internal errors are logged once here with the request's id and answered without detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::{CoreError, FieldErrors};
use portcullis_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// No credentials presented.
    Unauthenticated,
    /// Credentials presented but not valid.
    InvalidCredentials,
    Forbidden,
    NotFound,
    /// The path exists but not with this method (names the method).
    MethodNotAllowed(String),
    Validation(FieldErrors),
    BadRequest(String),
    PayloadTooLarge,
    UnsupportedMediaType,
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(FieldErrors::single(field, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            ApiError::Unauthenticated => {
                json!({"detail": "Authentication credentials were not provided."})
            }
            ApiError::InvalidCredentials => json!({"detail": "Token invalid/expired"}),
            ApiError::Forbidden => {
                json!({"detail": "You do not have permission to perform this action."})
            }
            ApiError::NotFound => json!({"detail": "Not found."}),
            ApiError::MethodNotAllowed(method) => {
                json!({"detail": format!("Method \"{method}\" not allowed.")})
            }
            ApiError::Validation(errors) => json!(errors),
            ApiError::BadRequest(detail) => json!({"detail": detail}),
            ApiError::PayloadTooLarge => json!({"detail": "Request body too large."}),
            ApiError::UnsupportedMediaType => {
                json!({"detail": "Unsupported media type in request; expected application/json."})
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                json!({"detail": "Internal server error."})
            }
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"api\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict { field } => {
                let field = api_field(&field);
                ApiError::field(
                    field,
                    format!("An object with this {field} already exists."),
                )
            }
            StoreError::InvalidReference { field } => {
                ApiError::field(api_field(&field), "Invalid pk - object does not exist.")
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(errors) => ApiError::Validation(errors),
            CoreError::NotFound => ApiError::NotFound,
            CoreError::Forbidden => ApiError::Forbidden,
            CoreError::Conflict(m) => ApiError::field("non_field_errors", m),
        }
    }
}

impl From<portcullis_crypto::CryptoError> for ApiError {
    fn from(e: portcullis_crypto::CryptoError) -> Self {
        ApiError::Internal(format!("crypto: {e}"))
    }
}

/// Column names that differ from the API's field names.
fn api_field(column: &str) -> &str {
    match column {
        "parent" => "parents",
        "is_default" => "default",
        "user_type" => "type",
        "key_hash" => "key",
        "provider_id" => "provider",
        other => other,
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<portcullis_flow::FlowError> for ApiError {
    fn from(e: portcullis_flow::FlowError) -> Self {
        use portcullis_flow::FlowError;
        match e {
            FlowError::NotFound => ApiError::NotFound,
            FlowError::BadRequest(m) => ApiError::BadRequest(m),
            FlowError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
