//! `events/events/`: filters, retrieval, what a non-superuser sees (only their own events), and
//! that no event anywhere holds a password, a token key or a private key.

use portcullis_testkit::both_backends;

use crate::common::*;

const EVENTS: &str = "/api/v3/events/events/";

async fn event_filters(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let (bob, t) = ctx.app.regular_user("bob").await;
    ctx.post("/api/v3/core/groups/", a, json!({"name": "eng"}))
        .await
        .created();
    ctx.post(
        "/api/v3/core/applications/",
        a,
        json!({"name": "Wiki", "slug": "wiki"}),
    )
    .await
    .created();
    ctx.patch(
        &format!("/api/v3/core/users/{bob}/"),
        &t,
        json!({"name": "Bob"}),
    )
    .await
    .ok();

    let all = ctx.get(EVENTS, a).await;
    all.ok();
    let first = &all.results()[0];
    for key in [
        "pk",
        "user",
        "action",
        "app",
        "context",
        "client_ip",
        "created",
        "expires",
        "brand",
    ] {
        assert!(first.get(key).is_some(), "event without {key}: {first}");
    }
    // Newest first.
    let created = all.column("created");
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    let created_events = ctx.events("action=model_created").await;
    assert!(created_events.len() >= 2);
    assert!(
        created_events
            .iter()
            .all(|e| e["action"] == "model_created")
    );
    let by_admin = ctx.events("username=admin").await;
    assert_eq!(by_admin.len(), 2);
    assert!(by_admin.iter().all(|e| e["user"]["username"] == "admin"));
    let by_bob = ctx.events("username=bob").await;
    assert_eq!(by_bob.len(), 1);
    assert_eq!(by_bob[0]["action"], "model_updated");
    assert_eq!(by_bob[0]["user"]["pk"], bob);
    let local = ctx.events("client_ip=127.0.0.1").await;
    assert_eq!(local.len(), 3);
    assert!(local.iter().all(|e| e["client_ip"] == "127.0.0.1"));
    assert!(ctx.events("client_ip=10.0.0.1").await.is_empty());
    assert!(ctx.events("action=no_such_action").await.is_empty());
    assert_eq!(
        ctx.events("action=model_created&username=admin")
            .await
            .len(),
        2
    );
    // The model an event is about (authentik's context_model_* filters).
    let groups = ctx.events("context_model_name=group").await;
    let mut names: Vec<&str> = groups
        .iter()
        .map(|e| e["context"]["model"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Portcullis Admins", "eng"], "{groups:?}");
    let eng = groups
        .iter()
        .find(|e| e["context"]["model"]["name"] == "eng")
        .unwrap();
    let eng_pk = eng["context"]["model"]["pk"].as_str().unwrap();
    let only_eng = ctx
        .events(&format!(
            "context_model_name=group&context_model_pk={eng_pk}"
        ))
        .await;
    assert_eq!(only_eng.len(), 1);
    assert_eq!(only_eng[0]["pk"], eng["pk"]);
    let bobs_events = ctx
        .events(&format!(
            "context_model_app=authentik_core&context_model_name=user&context_model_pk={bob}"
        ))
        .await;
    assert!(
        bobs_events
            .iter()
            .any(|e| e["action"] == "model_updated" && e["user"]["username"] == "bob"),
        "{bobs_events:?}"
    );
    assert!(bobs_events.iter().all(|e| {
        e["context"]["model"]["model_name"] == "user"
            && e["context"]["model"]["pk"].to_string().trim_matches('"') == bob.to_string()
    }));
    assert!(
        ctx.events("context_model_app=authentik_nothing")
            .await
            .is_empty()
    );
    assert!(
        ctx.events("context_model_name=user&context_model_pk=999999")
            .await
            .is_empty()
    );
    // Search covers action, user, client address and app.
    assert_eq!(ctx.events("search=BOB").await.len(), 1);
    assert_eq!(
        ctx.events("search=signals&client_ip=127.0.0.1").await.len(),
        3
    );
    let paged = ctx.get(&format!("{EVENTS}?page_size=1&page=2"), a).await;
    assert_eq!(paged.results().len(), 1);
    ctx.get(&format!("{EVENTS}?page=1000"), a)
        .await
        .detail(StatusCode::NOT_FOUND);

    let pk = first["pk"].as_str().unwrap();
    let one = ctx.get(&format!("{EVENTS}{pk}/"), a).await;
    assert_eq!(one.ok(), first);

    // Bob sees his own events only, whatever he asks for.
    let mine = ctx.get(EVENTS, &t).await;
    mine.ok();
    assert_eq!(mine.count(), 1);
    assert_eq!(mine.results()[0]["user"]["username"], "bob");
    for query in ["?username=admin", "?action=model_created", "?search=admin"] {
        let r = ctx.get(&format!("{EVENTS}{query}"), &t).await;
        r.ok();
        assert!(
            r.results().iter().all(|e| e["user"]["username"] == "bob"),
            "{query}: {}",
            r.text
        );
    }
    let bobs = mine.results()[0]["pk"].as_str().unwrap().to_owned();
    ctx.get(&format!("{EVENTS}{bobs}/"), &t).await.ok();
    let admins = by_admin[0]["pk"].as_str().unwrap();
    ctx.not_found(Method::GET, &format!("{EVENTS}{admins}/"), &t, Body::None)
        .await;
    // System events (no user) are not a regular user's either.
    let system = ctx
        .events("")
        .await
        .into_iter()
        .find(|e| e["user"] == json!({}))
        .expect("a system event (the testkit's tokens)");
    ctx.not_found(
        Method::GET,
        &format!("{EVENTS}{}/", system["pk"].as_str().unwrap()),
        &t,
        Body::None,
    )
    .await;
}

/// Passwords, token keys and private keys never reach an event, through the API or in the
/// table itself.
async fn events_hold_no_secrets(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let password = "Pa55-word-that-must-never-be-logged";
    let u = ctx
        .post(
            "/api/v3/core/users/",
            a,
            json!({"username": "alice", "name": "Alice"}),
        )
        .await
        .created()["pk"]
        .clone();
    ctx.post(
        &format!("/api/v3/core/users/{u}/set_password/"),
        a,
        json!({"password": password}),
    )
    .await
    .no_content();
    // A refused password change must not leak either.
    ctx.post(
        &format!("/api/v3/core/users/{u}/set_password/"),
        a,
        json!({"password": format!("{password}{}", "x".repeat(2000))}),
    )
    .await
    .field_error("password");

    let (_, bob_token) = ctx.app.regular_user("bob").await;
    ctx.post(
        "/api/v3/core/tokens/",
        a,
        json!({"identifier": "secret-token", "user": u, "description": "d"}),
    )
    .await
    .created();
    let key = ctx
        .get("/api/v3/core/tokens/secret-token/view_key/", a)
        .await
        .ok()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    ctx.patch(
        "/api/v3/core/tokens/secret-token/",
        a,
        json!({"description": "changed"}),
    )
    .await
    .ok();

    let kp = ctx
        .post(
            "/api/v3/crypto/certificatekeypairs/generate/",
            a,
            json!({"common_name": "secret.example.com", "validity_days": 1, "alg": "ecdsa"}),
        )
        .await
        .ok()["pk"]
        .as_str()
        .unwrap()
        .to_owned();
    let private_key = ctx
        .get(
            &format!("/api/v3/crypto/certificatekeypairs/{kp}/view_private_key/"),
            a,
        )
        .await
        .ok()["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_body: String = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(key_body.len() > 40);

    let hash = ctx
        .app
        .state
        .store
        .find_password_hash(u.as_i64().unwrap() as i32)
        .await
        .unwrap()
        .unwrap();
    let secrets = [
        password.to_owned(),
        key.clone(),
        ctx.admin.clone(),
        bob_token.clone(),
        key_body.get(..40).unwrap().to_owned(),
        hash,
    ];
    let api_events = serde_json::to_string(&ctx.events("").await).unwrap();
    let table = ctx
        .app
        .snapshot()
        .await
        .into_iter()
        .find(|(t, _)| t == "event")
        .unwrap()
        .1;
    let stored = serde_json::to_string(&table).unwrap();
    assert!(table.len() >= 8, "{stored}");
    for s in &secrets {
        assert!(
            !api_events.contains(s.as_str()),
            "an event holds a secret: {s}"
        );
        assert!(
            !stored.contains(s.as_str()),
            "the event table holds a secret: {s}"
        );
    }
    // Nor do the token or user rows hold a key or password in the clear.
    let snapshot = serde_json::to_string(&ctx.app.snapshot().await).unwrap();
    for s in [
        &password.to_owned(),
        &key,
        &ctx.admin,
        &bob_token,
        &key_body,
    ] {
        assert!(
            !snapshot.contains(s.as_str()),
            "the database holds a secret in the clear"
        );
    }
}

async fn a_reused_username_does_not_inherit_events(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let (old_pk, old_token) = ctx.app.regular_user("bob").await;
    ctx.post(
        "/api/v3/core/tokens/",
        &old_token,
        json!({"identifier": "old-bob-token"}),
    )
    .await
    .created();
    let mine = ctx.get("/api/v3/events/events/", &old_token).await;
    assert!(mine.count() >= 1, "the first bob sees what he did");
    let old_event = mine.body["results"][0]["pk"].as_str().unwrap().to_owned();
    ctx.delete(&format!("/api/v3/core/users/{old_pk}/"), &ctx.admin)
        .await
        .no_content();
    let (_, new_token) = ctx.app.regular_user("bob").await;
    let theirs = ctx.get("/api/v3/events/events/", &new_token).await;
    assert_eq!(theirs.ok()["pagination"]["count"], 0, "{}", theirs.body);
    ctx.not_found(
        Method::GET,
        &format!("/api/v3/events/events/{old_event}/"),
        &new_token,
        Body::None,
    )
    .await;
}

both_backends!(
    event_filters,
    events_hold_no_secrets,
    a_reused_username_does_not_inherit_events
);
