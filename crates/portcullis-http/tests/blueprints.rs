//! Blueprints applied through the model registry: the objects they make are checked through
//! the API, applying twice changes nothing, and a broken entry rolls everything back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use portcullis_blueprint::{ApplyOptions, ErrorKind, parse};
use portcullis_http::blueprints::apply_blueprint;
use portcullis_testkit::{Backend, TestApp, both_backends};
use serde_json::{Value, json};

const CORE: &str = include_str!("blueprints/core.yaml");
const TAGS: &str = include_str!("blueprints/tags.yaml");
const TOKEN_KEY: &str = "blueprint-token-key-0123456789abcdef";

fn env(name: &str) -> Option<String> {
    (name == "BLUEPRINT_TEST_PASSWORD").then(|| "s3cret from env".to_owned())
}

fn options() -> ApplyOptions<'static> {
    use portcullis_core::Clock;
    let kp = portcullis_crypto::generate_self_signed(
        "imported.example.com",
        &[],
        30,
        portcullis_core::SystemClock.now(),
    )
    .unwrap();
    let mut context = serde_json::Map::new();
    context.insert("token_key".into(), Value::from(TOKEN_KEY));
    context.insert("cert".into(), Value::from(kp.certificate_pem));
    context.insert("key".into(), Value::from(kp.private_key_pem));
    ApplyOptions {
        context,
        env: &env,
        blueprints_dir: None,
    }
}

async fn get(app: &TestApp, path: &str) -> Value {
    let r = app
        .request(reqwest::Method::GET, path, Some(&app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn applies_the_core_models(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bp = parse(CORE, "core.yaml").unwrap();
    let opts = options();
    let report = apply_blueprint(&app.state, &bp, &opts).await.unwrap();
    assert_eq!(
        (report.created, report.updated, report.deleted),
        (7, 0, 0),
        "{report:?}"
    );

    let alice = &get(&app, "/api/v3/core/users/?username=alice").await["results"][0];
    assert_eq!(alice["name"], "Alice Liddell");
    assert_eq!(alice["is_superuser"], true);
    let groups: Vec<&str> = alice["groups_obj"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["developers", "platform admins"]);
    let devs = &get(&app, "/api/v3/core/groups/?name=developers").await["results"][0];
    let admins = &get(&app, "/api/v3/core/groups/?name=platform%20admins").await["results"][0];
    assert_eq!(devs["parents"], json!([admins["pk"]]));
    assert_eq!(admins["attributes"]["notes"], "managed by a blueprint");
    let pk = alice["pk"].as_i64().unwrap() as i32;
    assert!(
        portcullis_http::credentials::verify_user_password(&app.state, Some(pk), "s3cret from env")
            .await
            .unwrap()
    );
    // The token's key is the one the blueprint gave, and it authenticates.
    let me = app
        .request(
            reqwest::Method::GET,
            "/api/v3/core/users/me/",
            Some(TOKEN_KEY),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        me.json::<Value>().await.unwrap()["user"]["username"],
        "alice"
    );
    let wiki = get(&app, "/api/v3/core/applications/wiki/").await;
    assert_eq!(
        (wiki["name"].as_str(), wiki["group"].as_str()),
        (Some("Wiki"), Some("Internal"))
    );
    let brand = &get(&app, "/api/v3/core/brands/?domain=auth.example.com").await["results"][0];
    assert_eq!(brand["branding_title"], "Example SSO");
    let kp = &get(&app, "/api/v3/crypto/certificatekeypairs/?name=imported").await["results"][0];
    assert_eq!(kp["private_key_available"], true);

    // Applying the same blueprint again changes nothing: no writes, no events, same timestamps.
    let events = get(&app, "/api/v3/events/events/").await["pagination"]["count"].clone();
    let before = app.snapshot().await;
    let again = apply_blueprint(&app.state, &bp, &opts).await.unwrap();
    assert!(!again.changed(), "{again:?}");
    assert_eq!(app.snapshot().await, before);
    assert_eq!(
        get(&app, "/api/v3/events/events/").await["pagination"]["count"],
        events
    );

    // A changed attribute updates only that object.
    let changed = CORE.replace("name: Wiki", "name: Team Wiki");
    let r = apply_blueprint(&app.state, &parse(&changed, "core.yaml").unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!((r.created, r.updated), (0, 1), "{r:?}");
    assert_eq!(
        get(&app, "/api/v3/core/applications/wiki/").await["name"],
        "Team Wiki"
    );
}

async fn a_broken_entry_rolls_back_everything(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.snapshot().await;
    let broken = format!(
        "{CORE}\n  - model: authentik_core.application\n    identifiers:\n      slug: broken\n    attrs:\n      name: Broken\n      meta_launch_url: not a url\n"
    );
    let bp = parse(&broken, "broken.yaml").unwrap();
    let err = apply_blueprint(&app.state, &bp, &options())
        .await
        .unwrap_err();
    assert_eq!(err.location.entry, Some(8));
    assert_eq!(
        err.location.model.as_deref(),
        Some("authentik_core.application")
    );
    assert_eq!(err.location.path, "attrs.meta_launch_url");
    assert!(
        err.to_string().starts_with(
            "broken.yaml: entry 8 (authentik_core.application) attrs.meta_launch_url:"
        ),
        "{err}"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "nothing of a failed blueprint stays"
    );
    // The store writes normally afterwards.
    let ok = apply_blueprint(&app.state, &parse(CORE, "core.yaml").unwrap(), &options())
        .await
        .unwrap();
    assert_eq!(ok.created, 7);
}

async fn states_and_unknown_models(b: Backend) {
    let app = TestApp::spawn(b).await;
    let opts = options();
    let create = "version: 1\nentries:\n- model: authentik_core.group\n  state: must_created\n  identifiers: {name: once}\n";
    apply_blueprint(&app.state, &parse(create, "a.yaml").unwrap(), &opts)
        .await
        .unwrap();
    let err = apply_blueprint(&app.state, &parse(create, "a.yaml").unwrap(), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    // `created` never updates an existing object.
    let created = "version: 1\nentries:\n- model: authentik_core.group\n  state: created\n  identifiers: {name: once}\n  attrs: {is_superuser: true}\n";
    let r = apply_blueprint(&app.state, &parse(created, "b.yaml").unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!(r.unchanged, 1);
    assert_eq!(
        get(&app, "/api/v3/core/groups/?name=once").await["results"][0]["is_superuser"],
        false
    );
    // `absent` deletes.
    let absent = "version: 1\nentries:\n- model: authentik_core.group\n  state: absent\n  identifiers: {name: once}\n";
    let r = apply_blueprint(&app.state, &parse(absent, "c.yaml").unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!(r.deleted, 1);
    assert_eq!(
        get(&app, "/api/v3/core/groups/?name=once").await["pagination"]["count"],
        0
    );
    // An unknown model is refused before anything is written.
    let before = app.snapshot().await;
    let unknown = "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: first}\n- model: authentik_core.nope\n  identifiers: {name: x}\n";
    let err = apply_blueprint(&app.state, &parse(unknown, "d.yaml").unwrap(), &opts)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::UnknownModel("authentik_core.nope".into())
    );
    assert_eq!(err.location.entry, Some(1));
    assert_eq!(app.snapshot().await, before);
    // Looking up by a field a model does not know names it.
    let bad_find = "version: 1\nentries:\n- model: authentik_core.user\n  identifiers: {favourite_colour: blue}\n";
    let err = apply_blueprint(&app.state, &parse(bad_find, "e.yaml").unwrap(), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.location.path, "identifiers.favourite_colour");

    // authentik's name of the self-signed keypair finds ours; `managed` finds tokens.
    let ours = "version: 1\nentries:\n- model: authentik_crypto.certificatekeypair\n  identifiers: {name: Portcullis Self-signed Certificate}\n  attrs: {certificate_data: !Context cert, key_data: !Context key}\n";
    apply_blueprint(&app.state, &parse(ours, "f.yaml").unwrap(), &opts)
        .await
        .unwrap();
    let theirs = "version: 1\nentries:\n- model: authentik_brands.brand\n  identifiers: {domain: ak.example.com}\n  attrs:\n    web_certificate: !Find [authentik_crypto.certificatekeypair, [name, authentik Self-signed Certificate]]\n- model: authentik_core.token\n  identifiers: {identifier: managed-one}\n  attrs: {user: !Find [authentik_core.user, [username, admin]], managed: goauthentik.io/test/managed, expiring: false}\n- model: authentik_core.token\n  identifiers: {managed: goauthentik.io/test/managed}\n  attrs: {description: found by managed}\n";
    apply_blueprint(&app.state, &parse(theirs, "g.yaml").unwrap(), &opts)
        .await
        .unwrap();
    let kp = &get(
        &app,
        "/api/v3/crypto/certificatekeypairs/?name=Portcullis%20Self-signed%20Certificate",
    )
    .await["results"][0];
    let brand = &get(&app, "/api/v3/core/brands/?domain=ak.example.com").await["results"][0];
    assert_eq!(brand["web_certificate"], kp["pk"]);
    assert_eq!(
        get(&app, "/api/v3/core/tokens/managed-one/").await["description"],
        "found by managed"
    );
}

async fn export_apply_export_round_trips(b: Backend) {
    let source = TestApp::spawn(b).await;
    apply_blueprint(
        &source.state,
        &parse(CORE, "core.yaml").unwrap(),
        &options(),
    )
    .await
    .unwrap();
    // A nested group, found by name.
    let child = "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: interns}\n  attrs: {parents: [!Find [authentik_core.group, [name, developers]]], attributes: {level: 1}}\n";
    apply_blueprint(
        &source.state,
        &parse(child, "child.yaml").unwrap(),
        &options(),
    )
    .await
    .unwrap();
    for include_secrets in [false, true] {
        let first = portcullis_http::export::export(&source.state, include_secrets)
            .await
            .unwrap();
        assert!(
            first.contains("!KeyOf group/platform admins"),
            "references use !KeyOf:\n{first}"
        );
        assert!(!first.contains(TOKEN_KEY), "token keys are never exported");
        assert_eq!(
            first.contains("PRIVATE KEY"),
            include_secrets,
            "private keys only when asked for"
        );

        let target = TestApp::spawn(b).await;
        let bp = parse(&first, "export.yaml").unwrap();
        let report = apply_blueprint(&target.state, &bp, &options())
            .await
            .unwrap();
        assert!(report.created > 0, "{report:?}");
        let second = portcullis_http::export::export(&target.state, include_secrets)
            .await
            .unwrap();
        assert_eq!(first, second, "export -> apply -> export changed something");
        // And the export applies to its own instance as a no-op.
        let again = apply_blueprint(&target.state, &bp, &options())
            .await
            .unwrap();
        assert!(!again.changed(), "{again:?}");
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app.request(method, path, Some(&app.admin_token));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn instances_through_the_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    // The built-in bootstrap blueprint is an instance like any other.
    assert!(
        portcullis_http::blueprints::discover(&app.state)
            .await
            .unwrap()
            .is_empty()
    );
    let list = get(&app, "/api/v3/managed/blueprints/").await;
    let builtin = &list["results"][0];
    assert_eq!(builtin["path"], "builtin/system/bootstrap.yaml");
    assert_eq!(builtin["status"], "successful");
    assert_eq!(builtin["metadata"]["name"], "Default - Bootstrap");
    assert!(
        builtin["managed_models"]
            .as_array()
            .unwrap()
            .contains(&json!("authentik_core.user"))
    );
    let hash = builtin["last_applied_hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    // Discovering again applies nothing: same hash, no events.
    let before = app.snapshot().await;
    assert!(
        portcullis_http::blueprints::discover(&app.state)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.snapshot().await, before);

    // Content stored in the database, applied on demand.
    let content = "version: 1\nmetadata: {name: stored}\nentries:\n- model: authentik_core.group\n  identifiers: {name: !Context group_name}\n";
    let (status, created) = send(&app, reqwest::Method::POST, "/api/v3/managed/blueprints/", Some(json!({"name": "stored", "content": content, "context": {"group_name": "from-context"}}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "unknown");
    let pk = created["pk"].as_str().unwrap().to_owned();
    let (status, applied) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v3/managed/blueprints/{pk}/apply/"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(applied["status"], "successful", "{applied}");
    assert_eq!(
        get(&app, "/api/v3/core/groups/?name=from-context").await["pagination"]["count"],
        1
    );

    // A blueprint whose entry fails: status error, nothing applied.
    let broken = "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: half}\n- model: authentik_core.user\n  identifiers: {username: x}\n  attrs: {name: X, email: nope}\n";
    let (_, created) = send(
        &app,
        reqwest::Method::POST,
        "/api/v3/managed/blueprints/",
        Some(json!({"name": "broken", "content": broken})),
    )
    .await;
    let pk = created["pk"].as_str().unwrap().to_owned();
    let (_, applied) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v3/managed/blueprints/{pk}/apply/"),
        None,
    )
    .await;
    assert_eq!(applied["status"], "error");
    assert_eq!(
        get(&app, "/api/v3/core/groups/?name=half").await["pagination"]["count"],
        0
    );

    // Stored content cannot read the server's own settings through !Env.
    let sneaky = "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: sneaky}\n  attrs:\n    attributes:\n      db: !Env [PORTCULLIS_TEST_POSTGRES_URL, hidden]\n      path: !Env [PATH, none]\n";
    let (_, created) = send(
        &app,
        reqwest::Method::POST,
        "/api/v3/managed/blueprints/",
        Some(json!({"name": "sneaky", "content": sneaky})),
    )
    .await;
    let pk = created["pk"].as_str().unwrap().to_owned();
    let (_, applied) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v3/managed/blueprints/{pk}/apply/"),
        None,
    )
    .await;
    assert_eq!(applied["status"], "successful", "{applied}");
    let sneaky_group = &get(&app, "/api/v3/core/groups/?name=sneaky").await["results"][0];
    assert_eq!(sneaky_group["attributes"]["db"], "hidden");
    assert_ne!(
        sneaky_group["attributes"]["path"], "none",
        "other variables stay readable"
    );

    // Refused at the door: unparsable content, no source, a path outside the directory.
    for (body, field) in [
        (
            json!({"name": "x", "content": "version: 1\nentries:\n- model: a\n  identifiers: !Nope x\n"}),
            "content",
        ),
        (json!({"name": "x"}), "non_field_errors"),
        (json!({"name": "x", "path": "../../etc/passwd"}), "path"),
        (json!({"content": content}), "name"),
    ] {
        let before = app.snapshot().await;
        let (status, err) = send(
            &app,
            reqwest::Method::POST,
            "/api/v3/managed/blueprints/",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{err}");
        assert!(err.get(field).is_some(), "{field}: {err}");
        assert_eq!(app.snapshot().await, before);
    }
    let (status, _) = send(
        &app,
        reqwest::Method::GET,
        "/api/v3/managed/blueprints/available/",
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A regular user may not see or apply blueprints.
    let (_, token) = app.regular_user("bob").await;
    let r = app
        .request(
            reqwest::Method::GET,
            "/api/v3/managed/blueprints/",
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn every_tag_on_real_models(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "from a file").unwrap();
    let mut opts = options();
    opts.blueprints_dir = Some(dir.path().to_path_buf());
    let bp = parse(TAGS, "tags.yaml").unwrap();
    let report = apply_blueprint(&app.state, &bp, &opts).await.unwrap();
    assert_eq!(report.created, 3, "{report:?}");
    let group = &get(&app, "/api/v3/core/groups/?name=tag-parent").await["results"][0];
    assert_eq!(
        group["attributes"]["settings"],
        json!({"theme": "dark", "beta": true})
    );
    assert_eq!(
        group["attributes"]["teams"],
        json!({"team-red": 0, "team-blue": 1})
    );
    let user = &get(&app, "/api/v3/core/users/?username=admin-tags").await["results"][0];
    assert_eq!(user["name"], "tag-parent");
    assert_eq!(user["email"], "owner@example.com");
    assert_eq!(user["groups_obj"][0]["name"], "tag-parent");
    assert_eq!(user["attributes"]["labels"], json!(["0:red", "1:blue"]));
    assert_eq!(user["attributes"]["missing"], "none");
    assert_eq!(user["attributes"]["notes"], "from a file");
    let app_obj = get(&app, "/api/v3/core/applications/tags-app/").await;
    assert_eq!(app_obj["name"], "App of admin-tags");
    assert_eq!(app_obj["meta_description"], "nor is true");
    assert_eq!(app_obj["meta_publisher"], "nand false");
    // Twice: nothing written.
    let before = app.snapshot().await;
    assert!(
        !apply_blueprint(&app.state, &bp, &opts)
            .await
            .unwrap()
            .changed()
    );
    assert_eq!(app.snapshot().await, before);
}

async fn meta_apply_blueprint(b: Backend) {
    let app = TestApp::spawn(b).await;
    let opts = options();
    let inner =
        "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: from-meta}\n";
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/v3/managed/blueprints/",
        Some(json!({"name": "inner", "content": inner})),
    )
    .await;
    assert_eq!(status, 201);
    let outer = "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: outer}\n- model: authentik_blueprints.metaapplyblueprint\n  attrs:\n    identifiers: {name: inner}\n- model: authentik_blueprints.metaapplyblueprint\n  attrs:\n    identifiers: {path: builtin/system/bootstrap.yaml}\n- model: authentik_blueprints.metaapplyblueprint\n  attrs:\n    identifiers: {name: not-there}\n    required: false\n";
    apply_blueprint(&app.state, &parse(outer, "outer.yaml").unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!(
        get(&app, "/api/v3/core/groups/?name=from-meta").await["pagination"]["count"],
        1
    );
    assert_eq!(
        get(&app, "/api/v3/core/groups/?name=Portcullis%20Admins").await["pagination"]["count"],
        1
    );

    // A required blueprint that is missing fails the whole thing.
    let before = app.snapshot().await;
    let missing = "version: 1\nentries:\n- model: authentik_core.group\n  identifiers: {name: lost}\n- model: authentik_blueprints.metaapplyblueprint\n  attrs:\n    identifiers: {name: not-there}\n";
    let err = apply_blueprint(&app.state, &parse(missing, "missing.yaml").unwrap(), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.location.path, "attrs.identifiers");
    assert_eq!(app.snapshot().await, before);

    // A blueprint that applies itself stops at the depth limit instead of looping.
    let looping = "version: 1\nentries:\n- model: authentik_blueprints.metaapplyblueprint\n  attrs:\n    identifiers: {name: loop}\n";
    send(
        &app,
        reqwest::Method::POST,
        "/api/v3/managed/blueprints/",
        Some(json!({"name": "loop", "content": looping})),
    )
    .await;
    let err = apply_blueprint(&app.state, &parse(looping, "loop.yaml").unwrap(), &opts)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than 8 levels deep"), "{err}");
}

both_backends!(
    meta_apply_blueprint,
    every_tag_on_real_models,
    instances_through_the_api,
    applies_the_core_models,
    a_broken_entry_rolls_back_everything,
    states_and_unknown_models,
    export_apply_export_round_trips
);
