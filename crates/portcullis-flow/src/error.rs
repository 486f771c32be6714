use portcullis_core::FieldErrors;
use portcullis_store::StoreError;

/// Why a flow request could not be answered with a challenge.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// No flow with this slug.
    #[error("flow not found")]
    NotFound,
    /// The request itself is malformed (not a JSON object, a wrong component): HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// A stage's or policy's stored configuration is unusable.
    #[error("configuration error: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// A stage's or policy's settings that do not validate, per field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub FieldErrors);

impl ConfigError {
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        Self(FieldErrors::single(field, message))
    }
}
