//! Checking a user's password: the one place that verifies a presented password against the
//! stored hash, treats unknown users and unusable passwords with the same cost as real ones,
//! and upgrades imported or outdated hashes (authentik's `pbkdf2_sha256$`, `argon2$`,
//! `bcrypt_sha256$`) to argon2id after a successful check. The login stages of the flow engine
//! call it; when `portcullis-flow` exists this moves there.

use portcullis_store::StoreError;

use crate::AppState;
use crate::error::ApiError;

/// Whether `password` is `user_pk`'s password. `None` (no such user) costs a dummy check.
pub async fn verify_user_password(
    state: &AppState,
    user_pk: Option<i32>,
    password: &str,
) -> Result<bool, ApiError> {
    let stored = match user_pk {
        Some(pk) => match state.store.find_password_hash(pk).await {
            Ok(h) => h,
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let (Some(pk), Some(stored)) = (user_pk, stored) else {
        state.hasher.verify_dummy(password.to_owned()).await;
        return Ok(false);
    };
    let v = state
        .hasher
        .verify(stored.clone(), password.to_owned())
        .await;
    if v.valid && v.needs_rehash {
        // A failure to upgrade must not fail the login: the old hash still works.
        match state.hasher.hash(password.to_owned()).await {
            Ok(new) => {
                if let Err(e) = state.store.upgrade_password_hash(pk, &stored, new).await {
                    tracing::warn!(user = pk, error = %e, "could not upgrade a password hash");
                }
            }
            Err(e) => tracing::warn!(user = pk, error = %e, "could not rehash a password"),
        }
    }
    Ok(v.valid)
}
