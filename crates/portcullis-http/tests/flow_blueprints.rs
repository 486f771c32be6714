//! Blueprints of flows, stages, stage bindings, policies and policy bindings (authentik's
//! models), checked through the API: they apply, apply again without change, refuse what the
//! API refuses, and a flow's export applies on a fresh instance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use portcullis_blueprint::{ApplyOptions, parse};
use portcullis_http::blueprints::apply_blueprint;
use portcullis_testkit::{Backend, TestApp, both_backends};
use serde_json::Value;

const FLOW: &str = r#"
version: 1
metadata: {name: test flow}
entries:
  - model: authentik_flows.flow
    id: flow
    identifiers: {slug: bp-login}
    attrs: {name: Blueprint login, title: Welcome, designation: authentication}
  - model: authentik_stages_password.passwordstage
    id: pw
    identifiers: {name: bp-password}
    attrs: {backends: [authentik.core.auth.InbuiltBackend]}
  - model: authentik_stages_identification.identificationstage
    id: ident
    identifiers: {name: bp-identification}
    attrs: {user_fields: [username, email], password_stage: !KeyOf pw}
  - model: authentik_stages_user_login.userloginstage
    id: login
    identifiers: {name: bp-login}
  - model: authentik_flows.flowstagebinding
    id: b1
    identifiers: {target: !KeyOf flow, stage: !KeyOf ident, order: 10}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf flow, stage: !KeyOf login, order: 20}
  - model: authentik_policies_expression.expressionpolicy
    id: policy
    identifiers: {name: bp-policy}
    attrs: {expression: "return True"}
  - model: authentik_policies.policybinding
    identifiers: {policy: !KeyOf policy, target: !KeyOf flow, order: 0}
  - model: authentik_policies.policybinding
    identifiers: {policy: !KeyOf policy, target: !KeyOf b1, order: 0}
"#;

fn options() -> ApplyOptions<'static> {
    ApplyOptions {
        context: serde_json::Map::new(),
        env: &|_| None,
        blueprints_dir: None,
    }
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.request(reqwest::Method::GET, path, Some(&app.admin_token))
        .send()
        .await
        .unwrap()
}

async fn json(app: &TestApp, path: &str) -> Value {
    let r = get(app, path).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn check_flow(app: &TestApp) {
    let flow = json(app, "/api/v3/flows/instances/bp-login/").await;
    assert_eq!(flow["title"], "Welcome");
    assert_eq!(flow["stages"].as_array().unwrap().len(), 2);
    let policy = json(app, "/api/v3/policies/all/?search=bp-policy").await;
    let policy = &policy["results"][0];
    assert_eq!(flow["policies"], serde_json::json!([policy["pk"]]));
    assert_eq!(policy["bound_to"], 2);
    let ident = json(
        app,
        "/api/v3/stages/identification/?search=bp-identification",
    )
    .await;
    let pw = json(app, "/api/v3/stages/password/?search=bp-password").await;
    assert_eq!(
        ident["results"][0]["password_stage"],
        pw["results"][0]["pk"]
    );
    let bindings = json(
        app,
        &format!(
            "/api/v3/flows/bindings/?target={}",
            flow["pk"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(bindings["pagination"]["count"], 2);
    let b1 = &bindings["results"][0];
    let guarded = json(
        app,
        &format!(
            "/api/v3/policies/bindings/?target={}",
            b1["policybindingmodel_ptr_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(guarded["pagination"]["count"], 1);
}

async fn flow_blueprint_applies_twice_and_exports(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bp = parse(FLOW, "flow.yaml").unwrap();
    let report = apply_blueprint(&app.state, &bp, &options()).await.unwrap();
    assert_eq!((report.created, report.updated), (9, 0), "{report:?}");
    check_flow(&app).await;
    let again = apply_blueprint(&app.state, &bp, &options()).await.unwrap();
    assert_eq!((again.created, again.updated), (0, 0), "{again:?}");
    check_flow(&app).await;

    let r = get(&app, "/api/v3/flows/instances/bp-login/export/").await;
    assert_eq!(r.status(), 200);
    let yaml = r.text().await.unwrap();
    let exported = parse(&yaml, "export.yaml").unwrap();
    let fresh = TestApp::spawn(b).await;
    apply_blueprint(&fresh.state, &exported, &options())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    check_flow(&fresh).await;
    let again = apply_blueprint(&fresh.state, &exported, &options())
        .await
        .unwrap();
    assert_eq!((again.created, again.updated), (0, 0), "{again:?}");
}

async fn flow_blueprint_refuses_what_the_api_refuses(b: Backend) {
    let app = TestApp::spawn(b).await;
    for (bad, field) in [
        (FLOW.replace("return True", "return (("), "expression"),
        (
            FLOW.replace("designation: authentication", "designation: nope"),
            "designation",
        ),
        (
            FLOW.replace("[username, email]", "[shoe_size]"),
            "user_fields",
        ),
    ] {
        let bp = parse(&bad, "bad.yaml").unwrap();
        let before = app.snapshot().await;
        let e = apply_blueprint(&app.state, &bp, &options())
            .await
            .expect_err("must fail");
        assert!(e.to_string().contains(field), "{field}: {e}");
        assert_eq!(before, app.snapshot().await, "nothing applied");
    }
}

both_backends!(
    flow_blueprint_applies_twice_and_exports,
    flow_blueprint_refuses_what_the_api_refuses
);
