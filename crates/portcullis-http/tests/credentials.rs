//! Password checks against stored hashes, including hashes imported from authentik.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use portcullis_core::{Actor, NewUser};
use portcullis_http::credentials::verify_user_password;
use portcullis_testkit::{Backend, TestApp, both_backends};

/// A Django/authentik `pbkdf2_sha256$` hash of `password` (1000 iterations keep the test fast;
/// Django accepts any count, and so do we within our bound).
fn django_pbkdf2(password: &str) -> String {
    // Computed here rather than pasted, with Python's reference implementation semantics:
    // base64(pbkdf2_hmac_sha256(password, salt, iterations)).
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,base64,sys; p=sys.argv[1].encode(); s='saltsaltsalt12'; i=1000; \
             print('pbkdf2_sha256$%d$%s$%s' % (i, s, base64.b64encode(hashlib.pbkdf2_hmac('sha256', p, s.encode(), i)).decode()))",
            password,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn imported_hash_verifies_and_is_upgraded(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = &app.state.store;
    let mut new = NewUser::named("imported");
    new.password_hash = Some(django_pbkdf2("hunter2"));
    let u = store.create_user(new, &Actor::system()).await.unwrap();
    assert!(
        store
            .find_password_hash(u.user.pk)
            .await
            .unwrap()
            .unwrap()
            .starts_with("pbkdf2_sha256$")
    );

    assert!(
        !verify_user_password(&app.state, Some(u.user.pk), "wrong")
            .await
            .unwrap()
    );
    assert!(
        store
            .find_password_hash(u.user.pk)
            .await
            .unwrap()
            .unwrap()
            .starts_with("pbkdf2_sha256$"),
        "a failed check upgrades nothing"
    );
    assert!(
        verify_user_password(&app.state, Some(u.user.pk), "hunter2")
            .await
            .unwrap()
    );
    let upgraded = store.find_password_hash(u.user.pk).await.unwrap().unwrap();
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert!(
        verify_user_password(&app.state, Some(u.user.pk), "hunter2")
            .await
            .unwrap()
    );
}

async fn unknown_users_and_unusable_passwords_fail(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert!(
        !verify_user_password(&app.state, None, "anything")
            .await
            .unwrap()
    );
    assert!(
        !verify_user_password(&app.state, Some(9999), "anything")
            .await
            .unwrap()
    );
    // The bootstrap admin of TestApp has no password.
    assert!(
        !verify_user_password(&app.state, Some(app.admin_pk), "")
            .await
            .unwrap()
    );
}

both_backends!(
    imported_hash_verifies_and_is_upgraded,
    unknown_users_and_unusable_passwords_fail
);
