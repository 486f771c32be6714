//! Checking a user's password: the one place that verifies a presented password against the
//! stored hash, treats unknown users and unusable passwords with the same cost as real ones,
//! and upgrades imported or outdated hashes (authentik's `pbkdf2_sha256$`, `argon2$`,
//! `bcrypt_sha256$`) to argon2id after a successful check. The login stages of the flow engine
//! call `portcullis_flow::credentials`; the HTTP side (blueprint models) calls it through here.

use crate::AppState;
use crate::error::ApiError;

/// Whether `password` is `user_pk`'s password (see `portcullis_flow::credentials`).
pub async fn verify_user_password(
    state: &AppState,
    user_pk: Option<i32>,
    password: &str,
) -> Result<bool, ApiError> {
    Ok(portcullis_flow::credentials::verify_user_password(&state.flows, user_pk, password).await?)
}
