//! Checking a user's password: the one place that verifies a presented password against the
//! stored hash, treats unknown users and unusable passwords with the same cost as real ones,
//! and upgrades imported or outdated hashes (authentik's `pbkdf2_sha256$`, `argon2$`,
//! `bcrypt_sha256$`) to argon2id after a successful check. The password stage and the
//! blueprint models call it.

use portcullis_store::StoreError;

use crate::executor::FlowServices;

/// Whether `password` is `user_pk`'s password. `None` (no such user) costs a dummy check.
pub async fn verify_user_password(
    svc: &FlowServices,
    user_pk: Option<i32>,
    password: &str,
) -> Result<bool, StoreError> {
    let stored = match user_pk {
        Some(pk) => match svc.store.find_password_hash(pk).await {
            Ok(h) => h,
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    verify_stored(svc, user_pk.zip(stored), password).await
}

/// Whether `password` matches the hash `user` (pk, stored hash) has; `None` (no such user, or
/// no usable hash) costs a dummy check. Upgrades an outdated hash after a match.
pub async fn verify_stored(
    svc: &FlowServices,
    user: Option<(i32, String)>,
    password: &str,
) -> Result<bool, StoreError> {
    let Some((pk, stored)) = user else {
        svc.hasher.verify_dummy(password.to_owned()).await;
        return Ok(false);
    };
    let v = svc.hasher.verify(stored.clone(), password.to_owned()).await;
    if v.valid && v.needs_rehash {
        // A failure to upgrade must not fail the login: the old hash still works.
        match svc.hasher.hash(password.to_owned()).await {
            Ok(new) => {
                if let Err(e) = svc.store.upgrade_password_hash(pk, &stored, new).await {
                    tracing::warn!(user = pk, error = %e, "could not upgrade a password hash");
                }
            }
            Err(e) => tracing::warn!(user = pk, error = %e, "could not rehash a password"),
        }
    }
    Ok(v.valid)
}
