//! `stages/all/`, one path per stage type, and `stages/prompt/prompts/`: CRUD, each type's
//! settings with defaults, references to other objects, and superuser-only access.

use portcullis_testkit::both_backends;

use crate::common::*;

const ALL: &str = "/api/v3/stages/all/";
const IDENT: &str = "/api/v3/stages/identification/";
const PASSWORD: &str = "/api/v3/stages/password/";
const PROMPTS: &str = "/api/v3/stages/prompt/prompts/";

async fn stage_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let pw = ctx
        .post(PASSWORD, a, json!({"name": "pw"}))
        .await
        .created()
        .clone();
    assert_eq!(pw["component"], "ak-stage-password-form");
    assert_eq!(pw["verbose_name"], "Password Stage");
    assert_eq!(pw["verbose_name_plural"], "Password Stages");
    assert_eq!(
        pw["meta_model_name"],
        "authentik_stages_password.passwordstage"
    );
    assert_eq!(pw["flow_set"], json!([]));
    assert!(pw["backends"].as_array().is_some_and(|b| !b.is_empty()));
    assert_eq!(pw["failed_attempts_before_cancel"], 5);

    let id = ctx
        .post(
            IDENT,
            a,
            json!({"name": "ident", "user_fields": ["email"], "password_stage": pw["pk"],
                   "pretend_user_exists": false, "pk": "ignored", "component": "ignored"}),
        )
        .await
        .created()
        .clone();
    assert_eq!(id["user_fields"], json!(["email"]));
    assert_eq!(id["password_stage"], pw["pk"]);
    assert_eq!(id["pretend_user_exists"], false);
    assert_eq!(id["case_insensitive_matching"], true);
    assert_ne!(id["pk"], "ignored");
    let path = format!("{IDENT}{}/", id["pk"].as_str().unwrap());
    assert_eq!(ctx.get(&path, a).await.ok()["name"], "ident");
    // A stage is found only under its own type.
    ctx.not_found(
        Method::GET,
        &format!("{PASSWORD}{}/", id["pk"].as_str().unwrap()),
        a,
        Body::None,
    )
    .await;

    let patched = ctx
        .patch(&path, a, json!({"show_matched_user": false}))
        .await;
    assert_eq!(patched.ok()["show_matched_user"], false);
    assert_eq!(
        patched.body["user_fields"],
        json!(["email"]),
        "PATCH keeps others"
    );
    let put = ctx
        .put(
            &path,
            a,
            json!({"name": "identify", "password_stage": null}),
        )
        .await;
    assert_eq!(put.ok()["name"], "identify");
    assert_eq!(put.body["password_stage"], Value::Null);

    for (path, body, field, want) in [
        (
            "/api/v3/stages/user_login/",
            json!({"name": "login"}),
            "session_duration",
            json!("seconds=0"),
        ),
        (
            "/api/v3/stages/user_logout/",
            json!({"name": "logout"}),
            "name",
            json!("logout"),
        ),
        (
            "/api/v3/stages/deny/",
            json!({"name": "deny", "deny_message": "No"}),
            "deny_message",
            json!("No"),
        ),
        (
            "/api/v3/stages/dummy/",
            json!({"name": "dummy"}),
            "throw_error",
            json!(false),
        ),
        (
            "/api/v3/stages/redirect/",
            json!({"name": "redir", "mode": "static", "target_static": "https://example.com/"}),
            "keep_context",
            json!(true),
        ),
    ] {
        let r = ctx.post(path, a, body).await;
        assert_eq!(r.created()[field], want, "{path}");
    }

    // stages/all/ lists every stage with the common fields only.
    let all = ctx.get(ALL, a).await;
    assert_eq!(all.count(), 7);
    let names = ctx
        .get(&format!("{ALL}{}", qs(&[("search", "ident")])), a)
        .await;
    assert_eq!(names.column("name"), ["identify"]);
    let one = ctx
        .get(&format!("{ALL}{}/", pw["pk"].as_str().unwrap()), a)
        .await;
    assert_eq!(one.ok()["component"], "ak-stage-password-form");
    assert!(one.body.get("backends").is_none());
    let only_pw = ctx.get(PASSWORD, a).await;
    assert_eq!(only_pw.column("name"), ["pw"]);

    let types = ctx.get(&format!("{ALL}types/"), a).await;
    let models: Vec<&str> = types
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["model_name"].as_str().unwrap())
        .collect();
    assert!(models.contains(&"identificationstage"));
    assert!(models.contains(&"passwordstage"));

    ctx.delete(&path, a).await.no_content();
    ctx.not_found(Method::GET, &path, a, Body::None).await;
    ctx.delete(&format!("{ALL}{}/", pw["pk"].as_str().unwrap()), a)
        .await
        .no_content();
}

async fn stage_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let dummy = ctx
        .post("/api/v3/stages/dummy/", a, json!({"name": "dummy"}))
        .await
        .created()
        .clone();
    let unknown = uuid::Uuid::new_v4().to_string();
    for (path, body, field) in [
        (IDENT, json!({}), "name"),
        (IDENT, json!({"name": ""}), "name"),
        (IDENT, json!({"name": "x".repeat(100_000)}), "name"),
        (IDENT, json!({"name": 12}), "name"),
        (IDENT, json!({"name": "dummy"}), "name"),
        (
            IDENT,
            json!({"name": "i", "user_fields": ["shoe_size"]}),
            "user_fields",
        ),
        // A wrong type inside a type's settings is named by its field.
        (
            IDENT,
            json!({"name": "i", "user_fields": "email"}),
            "user_fields",
        ),
        (
            IDENT,
            json!({"name": "i", "password_stage": unknown}),
            "password_stage",
        ),
        // A stage of the wrong type is not a password stage.
        (
            IDENT,
            json!({"name": "i", "password_stage": dummy["pk"]}),
            "password_stage",
        ),
        (
            IDENT,
            json!({"name": "i", "enrollment_flow": unknown}),
            "enrollment_flow",
        ),
        (IDENT, json!({"name": "i", "sources": [unknown]}), "sources"),
        (
            PASSWORD,
            json!({"name": "p", "backends": ["nope"]}),
            "backends",
        ),
        (
            PASSWORD,
            json!({"name": "p", "configure_flow": unknown}),
            "configure_flow",
        ),
        (
            PASSWORD,
            json!({"name": "p", "failed_attempts_before_cancel": -1}),
            "failed_attempts_before_cancel",
        ),
        (
            "/api/v3/stages/redirect/",
            json!({"name": "r", "mode": "flow", "target_flow": unknown}),
            "target_flow",
        ),
        (
            "/api/v3/stages/prompt/stages/",
            json!({"name": "p", "fields": [unknown]}),
            "fields",
        ),
        (
            "/api/v3/stages/prompt/stages/",
            json!({"name": "p", "validation_policies": [unknown]}),
            "validation_policies",
        ),
        (
            "/api/v3/stages/deny/",
            json!({"name": "d", "deny_message": "a\u{0}b"}),
            "deny_message",
        ),
    ] {
        ctx.invalid(Method::POST, path, a, body, field).await;
    }
    let path = format!("{IDENT}{}/", {
        ctx.post(IDENT, a, json!({"name": "ok"})).await.created()["pk"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    ctx.invalid(
        Method::PUT,
        &path,
        a,
        json!({"user_fields": ["email"]}),
        "name",
    )
    .await;
    ctx.invalid(
        Method::PATCH,
        &path,
        a,
        json!({"password_stage": unknown}),
        "password_stage",
    )
    .await;
}

async fn stage_permissions(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let s = ctx
        .post(IDENT, &ctx.admin, json!({"name": "i"}))
        .await
        .created()
        .clone();
    let (_, t) = ctx.app.regular_user("bob").await;
    let one = format!("{IDENT}{}/", s["pk"].as_str().unwrap());
    for (method, path, body) in [
        (Method::GET, ALL.to_owned(), Body::None),
        (Method::GET, format!("{ALL}types/"), Body::None),
        (
            Method::DELETE,
            format!("{ALL}{}/", s["pk"].as_str().unwrap()),
            Body::None,
        ),
        (Method::GET, IDENT.to_owned(), Body::None),
        (
            Method::POST,
            IDENT.to_owned(),
            Body::Json(json!({"name": "mine"})),
        ),
        (Method::GET, one.clone(), Body::None),
        (
            Method::PATCH,
            one.clone(),
            Body::Json(json!({"name": "mine"})),
        ),
        (Method::DELETE, one.clone(), Body::None),
        (Method::GET, PROMPTS.to_owned(), Body::None),
    ] {
        ctx.forbidden(method.clone(), &path, &t, body.clone()).await;
        let r = ctx
            .refused(method, &path, None, body, StatusCode::UNAUTHORIZED)
            .await;
        assert_unauthorized(&r, "no token");
    }
}

async fn prompt_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let p = ctx
        .post(
            PROMPTS,
            a,
            json!({"name": "email-field", "field_key": "email", "label": "Email", "type": "email"}),
        )
        .await
        .created()
        .clone();
    assert_eq!(p["field_key"], "email");
    assert_eq!(p["type"], "email");
    assert_eq!(p["required"], true);
    assert_eq!(p["placeholder"], "");
    assert_eq!(p["order"], 0);
    assert_eq!(p["placeholder_expression"], false);
    assert_eq!(p["promptstage_set"], json!([]));
    let stage = ctx
        .post(
            "/api/v3/stages/prompt/stages/",
            a,
            json!({"name": "ask", "fields": [p["pk"]]}),
        )
        .await
        .created()
        .clone();
    assert_eq!(stage["fields"], json!([p["pk"]]));
    let path = format!("{PROMPTS}{}/", p["pk"].as_str().unwrap());
    let got = ctx.get(&path, a).await;
    assert_eq!(got.ok()["promptstage_set"], json!([stage["pk"]]));
    assert_eq!(got.body["prompt_stages_obj"][0]["name"], "ask");
    let patched = ctx
        .patch(
            &path,
            a,
            json!({"required": false, "order": 3, "sub_text": "Work address"}),
        )
        .await;
    assert_eq!(patched.ok()["required"], false);
    assert_eq!(patched.body["order"], 3);
    assert_eq!(patched.body["field_key"], "email");
    ctx.invalid(
        Method::PATCH,
        &path,
        a,
        json!({"type": "telepathy"}),
        "type",
    )
    .await;
    for field in ["name", "field_key", "label", "type"] {
        let mut body = json!({"name": "n", "field_key": "k", "label": "L", "type": "text"});
        body.as_object_mut().unwrap().remove(field);
        ctx.invalid(Method::POST, PROMPTS, a, body, field).await;
    }
    ctx.invalid(
        Method::POST,
        PROMPTS,
        a,
        json!({"name": "n", "field_key": "k", "label": "L", "type": "text", "required": "yes"}),
        "required",
    )
    .await;
    assert_eq!(ctx.get(PROMPTS, a).await.count(), 1);
    ctx.delete(&path, a).await.no_content();
    ctx.not_found(Method::GET, &path, a, Body::None).await;
}

both_backends!(stage_crud, stage_validation, stage_permissions, prompt_crud);
