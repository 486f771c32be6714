//! `policies/all/` (with `types/` and `test/`), one path per policy type, and
//! `policies/bindings/`: CRUD, settings validation (expression syntax included), binding rules,
//! filters, and superuser-only access.

use portcullis_testkit::both_backends;

use crate::common::*;

const ALL: &str = "/api/v3/policies/all/";
const EXPRESSION: &str = "/api/v3/policies/expression/";
const PASSWORD: &str = "/api/v3/policies/password/";
const BINDINGS: &str = "/api/v3/policies/bindings/";
const FLOWS: &str = "/api/v3/flows/instances/";

async fn expression(ctx: &Ctx, name: &str, code: &str) -> Value {
    ctx.post(
        EXPRESSION,
        &ctx.admin,
        json!({"name": name, "expression": code}),
    )
    .await
    .created()
    .clone()
}

async fn flow(ctx: &Ctx, slug: &str) -> Value {
    ctx.post(
        FLOWS,
        &ctx.admin,
        json!({"name": slug, "slug": slug, "title": slug, "designation": "authentication"}),
    )
    .await
    .created()
    .clone()
}

async fn policy_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let e = expression(
        &ctx,
        "is-admin",
        "return request.user.username == \"admin\"",
    )
    .await;
    assert_eq!(e["component"], "ak-policy-expression-form");
    assert_eq!(e["verbose_name"], "Expression Policy");
    assert_eq!(
        e["meta_model_name"],
        "authentik_policies_expression.expressionpolicy"
    );
    assert_eq!(e["execution_logging"], false);
    assert_eq!(e["bound_to"], 0);
    assert_eq!(e["expression"], "return request.user.username == \"admin\"");

    let pw = ctx
        .post(
            PASSWORD,
            a,
            json!({"name": "strong", "length_min": 12, "check_have_i_been_pwned": false,
                   "check_zxcvbn": false, "execution_logging": true}),
        )
        .await
        .created()
        .clone();
    assert_eq!(pw["length_min"], 12);
    assert_eq!(pw["password_field"], "password");
    assert_eq!(pw["execution_logging"], true);
    for (path, body) in [
        (
            "/api/v3/policies/password_expiry/",
            json!({"name": "expiry", "days": 90}),
        ),
        ("/api/v3/policies/reputation/", json!({"name": "rep"})),
        (
            "/api/v3/policies/event_matcher/",
            json!({"name": "em", "action": "login"}),
        ),
        (
            "/api/v3/policies/dummy/",
            json!({"name": "dummy", "result": true, "wait_min": 0, "wait_max": 0}),
        ),
    ] {
        ctx.post(path, a, body).await.created();
    }

    let path = format!("{EXPRESSION}{}/", e["pk"].as_str().unwrap());
    let patched = ctx
        .patch(&path, a, json!({"expression": "return False"}))
        .await;
    assert_eq!(patched.ok()["expression"], "return False");
    assert_eq!(patched.body["name"], "is-admin");
    let put = ctx
        .put(
            &path,
            a,
            json!({"name": "never", "execution_logging": true}),
        )
        .await;
    assert_eq!(put.ok()["name"], "never");
    assert_eq!(put.body["expression"], "return False");
    ctx.not_found(
        Method::GET,
        &format!("{PASSWORD}{}/", e["pk"].as_str().unwrap()),
        a,
        Body::None,
    )
    .await;

    let all = ctx.get(ALL, a).await;
    assert_eq!(all.count(), 6);
    assert!(all.results()[0].get("expression").is_none());
    assert_eq!(
        ctx.get(&format!("{ALL}{}", qs(&[("search", "stro")])), a)
            .await
            .column("name"),
        ["strong"]
    );
    let one = ctx
        .get(&format!("{ALL}{}/", pw["pk"].as_str().unwrap()), a)
        .await;
    assert_eq!(one.ok()["component"], "ak-policy-password-form");
    let types = ctx.get(&format!("{ALL}types/"), a).await;
    assert_eq!(types.ok().as_array().unwrap().len(), 6);

    // bindings__isnull
    let f = flow(&ctx, "login").await;
    ctx.post(
        BINDINGS,
        a,
        json!({"target": f["pk"], "policy": pw["pk"], "order": 0}),
    )
    .await
    .created();
    let unbound = ctx
        .get(&format!("{ALL}{}", qs(&[("bindings__isnull", "true")])), a)
        .await;
    assert_eq!(unbound.count(), 5);
    let bound = ctx
        .get(&format!("{ALL}{}", qs(&[("bindings__isnull", "false")])), a)
        .await;
    assert_eq!(bound.column("name"), ["strong"]);
    assert_eq!(bound.results()[0]["bound_to"], 1);

    ctx.delete(&path, a).await.no_content();
    ctx.not_found(Method::GET, &path, a, Body::None).await;
    ctx.delete(&format!("{ALL}{}/", pw["pk"].as_str().unwrap()), a)
        .await
        .no_content();
    assert_eq!(
        ctx.get(BINDINGS, a).await.count(),
        0,
        "bindings go with the policy"
    );
}

async fn policy_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    expression(&ctx, "taken", "return True").await;
    for (path, body, field) in [
        (EXPRESSION, json!({"expression": "return True"}), "name"),
        (EXPRESSION, json!({"name": "x"}), "expression"),
        (
            EXPRESSION,
            json!({"name": "x", "expression": "return (("}),
            "expression",
        ),
        (
            EXPRESSION,
            json!({"name": "taken", "expression": "return True"}),
            "name",
        ),
        (
            EXPRESSION,
            json!({"name": "x".repeat(100_000), "expression": "return True"}),
            "name",
        ),
        (
            EXPRESSION,
            json!({"name": "x", "expression": "return True", "execution_logging": "yes"}),
            "execution_logging",
        ),
        (
            EXPRESSION,
            json!({"name": "x", "expression": "return \"a\u{0}\""}),
            "expression",
        ),
        (
            PASSWORD,
            json!({"name": "p", "zxcvbn_score_threshold": 9}),
            "zxcvbn_score_threshold",
        ),
        (
            "/api/v3/policies/password_expiry/",
            json!({"name": "e", "days": 0}),
            "days",
        ),
        (
            "/api/v3/policies/password_expiry/",
            json!({"name": "e"}),
            "days",
        ),
        (
            "/api/v3/policies/dummy/",
            json!({"name": "d", "wait_min": 10, "wait_max": 1}),
            "wait_max",
        ),
    ] {
        ctx.invalid(Method::POST, path, a, body, field).await;
    }
}

async fn policy_test_endpoint(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let e = expression(
        &ctx,
        "named-bob",
        "ak_logger.info(\"checking\")\nak_message(\"hi \" + request.user.username)\nreturn request.user.username == \"bob\"",
    )
    .await;
    let (bob, _) = ctx.app.regular_user("bob").await;
    let test = format!("{ALL}{}/test/", e["pk"].as_str().unwrap());
    let r = ctx
        .post(&test, a, json!({"user": bob, "context": {}}))
        .await;
    assert_eq!(r.ok()["passing"], true, "{}", r.text);
    assert_eq!(r.body["messages"], json!(["hi bob"]));
    assert!(r.body["log_messages"].as_array().is_some());
    let r = ctx.post(&test, a, json!({"user": ctx.app.admin_pk})).await;
    assert_eq!(r.ok()["passing"], false);
    ctx.invalid(Method::POST, &test, a, json!({"user": 999_999}), "user")
        .await;
    ctx.invalid(Method::POST, &test, a, json!({"context": {}}), "user")
        .await;
    ctx.invalid(
        Method::POST,
        &test,
        a,
        json!({"user": bob, "context": [1]}),
        "context",
    )
    .await;
    let (_, t) = ctx.app.regular_user("eve").await;
    ctx.forbidden(Method::POST, &test, &t, Body::Json(json!({"user": bob})))
        .await;
}

async fn binding_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let f = flow(&ctx, "login").await;
    let g = flow(&ctx, "other").await;
    let p = expression(&ctx, "yes", "return True").await;
    let group = ctx
        .post("/api/v3/core/groups/", a, json!({"name": "staff"}))
        .await
        .created()
        .clone();
    let (bob, _) = ctx.app.regular_user("bob").await;

    // A flow's own uuid as target means its policy binding model.
    let pb = ctx
        .post(
            BINDINGS,
            a,
            json!({"target": f["pk"], "policy": p["pk"], "order": 0}),
        )
        .await
        .created()
        .clone();
    assert_eq!(pb["target"], f["policybindingmodel_ptr_id"]);
    assert_eq!(pb["policy_obj"]["name"], "yes");
    assert_eq!(pb["group_obj"], Value::Null);
    assert_eq!(pb["user_obj"], Value::Null);
    assert_eq!(pb["enabled"], true);
    assert_eq!(pb["negate"], false);
    assert_eq!(pb["timeout"], 30);
    assert_eq!(pb["failure_result"], false);
    assert_eq!(pb["expires"], Value::Null);
    let gb = ctx
        .post(
            BINDINGS,
            a,
            json!({"target": f["policybindingmodel_ptr_id"], "group": group["pk"], "order": 1, "negate": true}),
        )
        .await
        .created()
        .clone();
    assert_eq!(gb["group_obj"]["name"], "staff");
    let ub = ctx
        .post(
            BINDINGS,
            a,
            json!({"target": g["pk"], "user": bob, "order": 2, "enabled": false}),
        )
        .await
        .created()
        .clone();
    assert_eq!(ub["user_obj"]["username"], "bob");

    let flow_now = ctx.get(&format!("{FLOWS}login/"), a).await;
    assert_eq!(flow_now.ok()["policies"], json!([p["pk"]]));

    let orders = |q: String| {
        let ctx = &ctx;
        async move {
            ctx.get(&format!("{BINDINGS}{q}"), &ctx.admin)
                .await
                .column("order")
        }
    };
    let fp = f["policybindingmodel_ptr_id"].as_str().unwrap();
    let gp = g["policybindingmodel_ptr_id"].as_str().unwrap();
    assert_eq!(orders(qs(&[("target", fp)])).await, ["0", "1"]);
    assert_eq!(
        orders(qs(&[("policy", p["pk"].as_str().unwrap())])).await,
        ["0"]
    );
    assert_eq!(
        orders(qs(&[("group", group["pk"].as_str().unwrap())])).await,
        ["1"]
    );
    assert_eq!(orders(qs(&[("user", &bob.to_string())])).await, ["2"]);
    assert_eq!(orders(qs(&[("enabled", "false")])).await, ["2"]);
    assert_eq!(orders(qs(&[("order", "1")])).await, ["1"]);
    assert_eq!(
        orders(qs(&[("target_in", &format!("{fp},{gp}"))])).await,
        ["0", "1", "2"]
    );
    assert_eq!(orders(qs(&[("ordering", "-order")])).await, ["2", "1", "0"]);

    let path = format!("{BINDINGS}{}/", pb["pk"].as_str().unwrap());
    assert_eq!(ctx.get(&path, a).await.ok()["order"], 0);
    let patched = ctx
        .patch(&path, a, json!({"negate": true, "timeout": 5}))
        .await;
    assert_eq!(patched.ok()["negate"], true);
    assert_eq!(patched.body["timeout"], 5);
    // Switching from policy to group needs the policy cleared.
    ctx.invalid(
        Method::PATCH,
        &path,
        a,
        json!({"group": group["pk"]}),
        "non_field_errors",
    )
    .await;
    let switched = ctx
        .patch(&path, a, json!({"group": group["pk"], "policy": null}))
        .await;
    assert_eq!(switched.ok()["group"], group["pk"]);
    assert_eq!(switched.body["policy"], Value::Null);
    ctx.delete(&path, a).await.no_content();
    ctx.not_found(Method::DELETE, &path, a, Body::None).await;
}

async fn binding_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let f = flow(&ctx, "login").await;
    let p = expression(&ctx, "yes", "return True").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let ok = json!({"target": f["pk"], "policy": p["pk"], "order": 0});
    for field in ["target", "order"] {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(field);
        ctx.invalid(Method::POST, BINDINGS, a, body, field).await;
    }
    let r = ctx
        .invalid(
            Method::POST,
            BINDINGS,
            a,
            json!({"target": f["pk"], "order": 0}),
            "non_field_errors",
        )
        .await;
    assert_eq!(
        r.messages("non_field_errors"),
        ["Only one of 'policy', 'group' or 'user' can be set."]
    );
    ctx.invalid(
        Method::POST,
        BINDINGS,
        a,
        json!({"target": f["pk"], "order": 0, "policy": p["pk"], "user": ctx.app.admin_pk}),
        "non_field_errors",
    )
    .await;
    for (field, value) in [
        ("target", json!(unknown)),
        ("policy", json!(unknown)),
        ("target", json!("nope")),
        ("order", json!("x")),
        ("timeout", json!(-1)),
        ("negate", json!([])),
    ] {
        let mut body = ok.clone();
        body[field] = value;
        ctx.invalid(Method::POST, BINDINGS, a, body, field).await;
    }
    ctx.invalid(
        Method::POST,
        BINDINGS,
        a,
        json!({"target": f["pk"], "order": 0, "group": unknown}),
        "group",
    )
    .await;
    ctx.invalid(
        Method::POST,
        BINDINGS,
        a,
        json!({"target": f["pk"], "order": 0, "user": 987_654}),
        "user",
    )
    .await;
    let (_, t) = ctx.app.regular_user("bob").await;
    ctx.forbidden(Method::GET, BINDINGS, &t, Body::None).await;
    ctx.forbidden(Method::POST, BINDINGS, &t, Body::Json(ok.clone()))
        .await;
    ctx.forbidden(Method::GET, ALL, &t, Body::None).await;
    ctx.forbidden(
        Method::POST,
        EXPRESSION,
        &t,
        Body::Json(json!({"name": "x", "expression": "return True"})),
    )
    .await;
    let r = ctx
        .refused(Method::GET, ALL, None, Body::None, StatusCode::UNAUTHORIZED)
        .await;
    assert_unauthorized(&r, "no token");
}

both_backends!(
    policy_crud,
    policy_validation,
    policy_test_endpoint,
    binding_crud,
    binding_validation
);
