//! `flows/instances/` (by slug) and `flows/bindings/`: CRUD, choices, references, filters,
//! the flow export, and superuser-only access.

use portcullis_testkit::both_backends;

use crate::common::*;

const FLOWS: &str = "/api/v3/flows/instances/";
const BINDINGS: &str = "/api/v3/flows/bindings/";
const STAGES: &str = "/api/v3/stages/all/";

async fn flow(ctx: &Ctx, slug: &str, designation: &str) -> Value {
    ctx.post(
        FLOWS,
        &ctx.admin,
        json!({"name": slug, "slug": slug, "title": format!("{slug} title"), "designation": designation}),
    )
    .await
    .created()
    .clone()
}

async fn dummy_stage(ctx: &Ctx, name: &str) -> Value {
    ctx.post("/api/v3/stages/dummy/", &ctx.admin, json!({"name": name}))
        .await
        .created()
        .clone()
}

async fn flow_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let f = ctx
        .post(
            FLOWS,
            a,
            json!({
                "name": "Login", "slug": "login", "title": "Welcome", "designation": "authentication",
                "layout": "sidebar_left", "denied_action": "message", "policy_engine_mode": "all",
                "compatibility_mode": true, "authentication": "require_unauthenticated",
                "background": "https://cdn.example.com/bg.jpg",
            }),
        )
        .await;
    let f = f.created().clone();
    assert!(f["pk"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_ne!(f["pk"], f["policybindingmodel_ptr_id"]);
    assert_eq!(f["slug"], "login");
    assert_eq!(f["title"], "Welcome");
    assert_eq!(f["designation"], "authentication");
    assert_eq!(f["layout"], "sidebar_left");
    assert_eq!(f["denied_action"], "message");
    assert_eq!(f["policy_engine_mode"], "all");
    assert_eq!(f["authentication"], "require_unauthenticated");
    assert_eq!(f["compatibility_mode"], true);
    assert_eq!(f["background_url"], "https://cdn.example.com/bg.jpg");
    assert_eq!(f["export_url"], "/api/v3/flows/instances/login/export/");
    assert_eq!(f["stages"], json!([]));
    assert_eq!(f["policies"], json!([]));
    assert_eq!(f["cache_count"], 0);

    // Defaults are authentik's.
    let min = flow(&ctx, "logout", "invalidation").await;
    assert_eq!(min["layout"], "stacked");
    assert_eq!(min["denied_action"], "message_continue");
    assert_eq!(min["policy_engine_mode"], "any");
    assert_eq!(min["authentication"], "none");
    assert_eq!(min["compatibility_mode"], false);
    assert_eq!(min["background"], "");

    assert_eq!(
        ctx.get(&format!("{FLOWS}login/"), a).await.ok()["pk"],
        f["pk"]
    );
    let put = ctx
        .put(
            &format!("{FLOWS}login/"),
            a,
            json!({"name": "Sign in", "slug": "login", "title": "Hello", "designation": "authentication"}),
        )
        .await;
    assert_eq!(put.ok()["name"], "Sign in");
    assert_eq!(
        put.body["layout"], "sidebar_left",
        "PUT keeps unsent fields"
    );
    let moved = ctx
        .patch(&format!("{FLOWS}login/"), a, json!({"slug": "sign-in"}))
        .await;
    assert_eq!(moved.ok()["pk"], f["pk"]);
    ctx.not_found(Method::GET, &format!("{FLOWS}login/"), a, Body::None)
        .await;

    // Filters, search, ordering.
    let slugs = |q: String| {
        let ctx = &ctx;
        async move {
            ctx.get(&format!("{FLOWS}{q}"), &ctx.admin)
                .await
                .column("slug")
        }
    };
    assert_eq!(slugs(String::new()).await, ["logout", "sign-in"]);
    assert_eq!(
        slugs(qs(&[("designation", "invalidation")])).await,
        ["logout"]
    );
    assert_eq!(slugs(qs(&[("slug", "sign-in")])).await, ["sign-in"]);
    assert_eq!(slugs(qs(&[("name", "Sign in")])).await, ["sign-in"]);
    assert_eq!(slugs(qs(&[("search", "hello")])).await, ["sign-in"]);
    assert_eq!(
        slugs(qs(&[("ordering", "-slug")])).await,
        ["sign-in", "logout"]
    );
    ctx.refused(
        Method::GET,
        &format!("{FLOWS}{}", qs(&[("designation", "nope")])),
        Some(a),
        Body::None,
        StatusCode::BAD_REQUEST,
    )
    .await
    .field_error("designation");

    ctx.delete(&format!("{FLOWS}sign-in/"), a)
        .await
        .no_content();
    ctx.not_found(Method::DELETE, &format!("{FLOWS}sign-in/"), a, Body::None)
        .await;
}

async fn flow_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    flow(&ctx, "taken", "authentication").await;
    let ok = json!({"name": "N", "slug": "n", "title": "T", "designation": "authentication"});
    for field in ["name", "slug", "title", "designation"] {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(field);
        ctx.invalid(Method::POST, FLOWS, a, body, field).await;
    }
    for (field, value) in [
        ("designation", json!("login")),
        ("layout", json!("diagonal")),
        ("denied_action", json!("explode")),
        ("policy_engine_mode", json!("some")),
        ("authentication", json!("maybe")),
        ("slug", json!("not a slug")),
        ("slug", json!("taken")),
        ("name", json!("")),
        ("name", json!("x".repeat(100_000))),
        ("background", json!("x".repeat(100_000))),
        ("compatibility_mode", json!("yes")),
        ("name", json!(["a"])),
        ("title", json!({"deep": {"deeper": [1, 2, 3]}})),
    ] {
        let mut body = ok.clone();
        body[field] = value;
        ctx.invalid(Method::POST, FLOWS, a, body, field).await;
    }
    ctx.invalid(
        Method::PATCH,
        &format!("{FLOWS}taken/"),
        a,
        json!({"layout": "nope"}),
        "layout",
    )
    .await;
    ctx.invalid(
        Method::PUT,
        &format!("{FLOWS}taken/"),
        a,
        json!({"name": "only a name"}),
        "slug",
    )
    .await;
    // Deeply nested JSON is refused without a crash.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    ctx.refused(
        Method::POST,
        FLOWS,
        Some(a),
        Body::raw_json(format!(
            "{{\"name\":{deep},\"slug\":\"d\",\"title\":\"t\",\"designation\":\"authentication\"}}"
        )),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

async fn flow_permissions(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    flow(&ctx, "login", "authentication").await;
    let (_, t) = ctx.app.regular_user("bob").await;
    let bad = bad_credentials(&ctx).await;
    for (method, path, body) in [
        (Method::GET, FLOWS.to_owned(), Body::None),
        (
            Method::POST,
            FLOWS.to_owned(),
            Body::Json(
                json!({"name": "x", "slug": "x", "title": "x", "designation": "authentication"}),
            ),
        ),
        (Method::GET, format!("{FLOWS}login/"), Body::None),
        (
            Method::PATCH,
            format!("{FLOWS}login/"),
            Body::Json(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("{FLOWS}login/"), Body::None),
        (Method::GET, format!("{FLOWS}login/export/"), Body::None),
        (Method::GET, BINDINGS.to_owned(), Body::None),
    ] {
        ctx.forbidden(method.clone(), &path, &t, body.clone()).await;
        for (label, token) in &bad {
            let r = ctx
                .refused(
                    method.clone(),
                    &path,
                    token.as_deref(),
                    body.clone(),
                    StatusCode::UNAUTHORIZED,
                )
                .await;
            assert_unauthorized(&r, label);
        }
    }
}

async fn binding_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let f = flow(&ctx, "login", "authentication").await;
    let other = flow(&ctx, "other", "authentication").await;
    let s1 = dummy_stage(&ctx, "first").await;
    let s2 = dummy_stage(&ctx, "second").await;
    let b1 = ctx
        .post(
            BINDINGS,
            a,
            json!({"target": f["pk"], "stage": s1["pk"], "order": 10}),
        )
        .await
        .created()
        .clone();
    assert_eq!(b1["target"], f["pk"]);
    assert_eq!(b1["stage"], s1["pk"]);
    assert_eq!(b1["order"], 10);
    assert_eq!(b1["evaluate_on_plan"], false);
    assert_eq!(b1["re_evaluate_policies"], true);
    assert_eq!(b1["invalid_response_action"], "retry");
    assert_eq!(b1["policy_engine_mode"], "any");
    assert_eq!(b1["stage_obj"]["name"], "first");
    assert_eq!(b1["stage_obj"]["component"], "ak-stage-dummy-form");
    assert_eq!(
        b1["stage_obj"]["meta_model_name"],
        "authentik_stages_dummy.dummystage"
    );
    assert_eq!(b1["stage_obj"]["flow_set"][0]["slug"], "login");
    assert!(b1["policybindingmodel_ptr_id"].as_str().is_some());
    let b2 = ctx
        .post(
            BINDINGS,
            a,
            json!({"target": f["pk"], "stage": s2["pk"], "order": 20, "evaluate_on_plan": true,
                   "re_evaluate_policies": false, "invalid_response_action": "restart_with_context",
                   "policy_engine_mode": "all"}),
        )
        .await
        .created()
        .clone();
    assert_eq!(b2["invalid_response_action"], "restart_with_context");
    ctx.post(
        BINDINGS,
        a,
        json!({"target": other["pk"], "stage": s1["pk"], "order": 0}),
    )
    .await
    .created();

    // The flow lists its stages.
    let got = ctx.get(&format!("{FLOWS}login/"), a).await;
    assert_eq!(got.ok()["stages"], json!([s1["pk"], s2["pk"]]));

    let orders = |q: String| {
        let ctx = &ctx;
        async move {
            ctx.get(&format!("{BINDINGS}{q}"), &ctx.admin)
                .await
                .column("order")
        }
    };
    assert_eq!(
        orders(qs(&[("target", f["pk"].as_str().unwrap())])).await,
        ["10", "20"]
    );
    assert_eq!(
        orders(qs(&[("stage", s1["pk"].as_str().unwrap())])).await,
        ["0", "10"]
    );
    assert_eq!(orders(qs(&[("order", "20")])).await, ["20"]);
    assert_eq!(
        orders(qs(&[("ordering", "-order")])).await,
        ["20", "10", "0"]
    );

    let path = format!("{BINDINGS}{}/", b1["pk"].as_str().unwrap());
    assert_eq!(ctx.get(&path, a).await.ok()["order"], 10);
    let patched = ctx.patch(&path, a, json!({"order": 5})).await;
    assert_eq!(patched.ok()["order"], 5);
    assert_eq!(patched.body["stage"], s1["pk"]);
    let put = ctx
        .put(
            &path,
            a,
            json!({"target": f["pk"], "stage": s2["pk"], "order": 7}),
        )
        .await;
    assert_eq!(put.ok()["stage"], s2["pk"]);
    ctx.delete(&path, a).await.no_content();
    ctx.not_found(Method::GET, &path, a, Body::None).await;
    ctx.not_found(
        Method::GET,
        &format!("{BINDINGS}not-a-uuid/"),
        a,
        Body::None,
    )
    .await;

    // Deleting a stage deletes its bindings.
    ctx.delete(&format!("{STAGES}{}/", s2["pk"].as_str().unwrap()), a)
        .await
        .no_content();
    assert_eq!(
        orders(qs(&[("target", f["pk"].as_str().unwrap())])).await,
        Vec::<String>::new()
    );
}

async fn binding_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let f = flow(&ctx, "login", "authentication").await;
    let s = dummy_stage(&ctx, "s").await;
    let ok = json!({"target": f["pk"], "stage": s["pk"], "order": 1});
    for field in ["target", "stage", "order"] {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(field);
        ctx.invalid(Method::POST, BINDINGS, a, body, field).await;
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    for (field, value) in [
        ("target", json!(unknown)),
        ("stage", json!(unknown)),
        ("target", json!("not-a-uuid")),
        ("order", json!("first")),
        ("order", json!(1u64 << 40)),
        ("invalid_response_action", json!("panic")),
        ("policy_engine_mode", json!("none")),
        ("evaluate_on_plan", json!(3)),
    ] {
        let mut body = ok.clone();
        body[field] = value;
        ctx.invalid(Method::POST, BINDINGS, a, body, field).await;
    }
}

async fn flow_export(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let f = flow(&ctx, "login", "authentication").await;
    let s = ctx
        .post(
            "/api/v3/stages/identification/",
            a,
            json!({"name": "ident", "user_fields": ["username", "email"]}),
        )
        .await
        .created()
        .clone();
    let binding = ctx
        .post(
            BINDINGS,
            a,
            json!({"target": f["pk"], "stage": s["pk"], "order": 10}),
        )
        .await
        .created()
        .clone();
    let p = ctx
        .post(
            "/api/v3/policies/expression/",
            a,
            json!({"name": "always", "expression": "return True"}),
        )
        .await
        .created()
        .clone();
    ctx.post(
        "/api/v3/policies/bindings/",
        a,
        json!({"target": f["pk"], "policy": p["pk"], "order": 0}),
    )
    .await
    .created();
    ctx.post(
        "/api/v3/policies/bindings/",
        a,
        json!({"target": binding["pk"], "policy": p["pk"], "order": 0}),
    )
    .await
    .created();
    let r = ctx.get(&format!("{FLOWS}login/export/"), a).await;
    r.status(StatusCode::OK);
    for needle in [
        "authentik_flows.flow",
        "authentik_flows.flowstagebinding",
        "authentik_stages_identification.identificationstage",
        "authentik_policies_expression.expressionpolicy",
        "authentik_policies.policybinding",
        "!KeyOf",
        "slug: login",
        "return True",
    ] {
        assert!(r.text.contains(needle), "export lacks {needle}: {}", r.text);
    }
    ctx.not_found(Method::GET, &format!("{FLOWS}nope/export/"), a, Body::None)
        .await;
}

both_backends!(
    flow_crud,
    flow_validation,
    flow_permissions,
    binding_crud,
    binding_validation,
    flow_export
);
