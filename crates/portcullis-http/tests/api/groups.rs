//! `core/groups/`: CRUD, parents and children (no loops), membership through `add_user/` and
//! `remove_user/`, filters; superusers only.

use portcullis_testkit::both_backends;

use crate::common::*;

const GROUPS: &str = "/api/v3/core/groups/";

fn group_path(pk: &Value) -> String {
    format!("{GROUPS}{}/", pk.as_str().unwrap())
}

async fn create_group(ctx: &Ctx, body: Value) -> Value {
    ctx.post(GROUPS, &ctx.admin, body).await.created().clone()
}

async fn group_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let alice = ctx
        .post(
            "/api/v3/core/users/",
            a,
            json!({"username": "alice", "name": "Alice"}),
        )
        .await
        .created()["pk"]
        .clone();

    let eng = create_group(
        &ctx,
        json!({"name": "eng", "users": [alice], "attributes": {"k": 1}, "is_superuser": false}),
    )
    .await;
    let eng_pk = eng["pk"].clone();
    assert!(eng_pk.as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(eng["num_pk"].as_i64().is_some());
    assert_eq!(eng["name"], "eng");
    assert_eq!(eng["is_superuser"], false);
    assert_eq!(eng["users"], json!([alice]));
    assert_eq!(eng["users_obj"][0]["username"], "alice");
    assert_eq!(eng["users_obj"][0]["pk"], alice);
    assert_eq!(eng["users_obj"][0]["uid"].as_str().unwrap().len(), 64);
    assert_eq!(eng["parents"], json!([]));
    assert_eq!(eng["children"], json!([]));
    assert_eq!(eng["attributes"], json!({"k": 1}));
    assert_eq!(eng["roles"], json!([]));

    let child = create_group(&ctx, json!({"name": "eng-backend", "parents": [eng_pk]})).await;
    let child_pk = child["pk"].clone();
    assert_eq!(child["parents"], json!([eng_pk]));

    let got = ctx
        .get(&format!("{}?include_children=true", group_path(&eng_pk)), a)
        .await;
    assert_eq!(got.ok()["children"], json!([child_pk]));
    assert_eq!(got.body["children_obj"][0]["name"], "eng-backend");
    let got = ctx
        .get(
            &format!(
                "{}?include_parents=true&include_users=false",
                group_path(&child_pk)
            ),
            a,
        )
        .await;
    assert_eq!(got.ok()["parents_obj"][0]["name"], "eng");
    assert_eq!(got.body["parents_obj"][0]["pk"], eng_pk);
    assert_eq!(got.body["users_obj"], Value::Null);
    let got = ctx.get(&group_path(&eng_pk), a).await;
    assert_eq!(got.ok()["parents_obj"], Value::Null);
    assert_eq!(got.body["children_obj"], Value::Null);
    assert_eq!(got.body["users_obj"][0]["username"], "alice");

    // The user sees the group too.
    let u = ctx.get(&format!("/api/v3/core/users/{alice}/"), a).await;
    assert_eq!(u.ok()["groups"], json!([eng_pk]));

    let put = ctx
        .put(
            &group_path(&eng_pk),
            a,
            json!({"name": "engineering", "users": []}),
        )
        .await;
    assert_eq!(put.ok()["name"], "engineering");
    assert_eq!(put.body["users"], json!([]));
    assert_eq!(put.body["attributes"], json!({"k": 1}));
    let patched = ctx
        .patch(&group_path(&eng_pk), a, json!({"attributes": {"x": 2}}))
        .await;
    assert_eq!(patched.ok()["attributes"], json!({"x": 2}));
    assert_eq!(patched.body["name"], "engineering");
    let unparented = ctx
        .patch(&group_path(&child_pk), a, json!({"parents": []}))
        .await;
    assert_eq!(unparented.ok()["parents"], json!([]));
    ctx.patch(&group_path(&child_pk), a, json!({"parents": [eng_pk]}))
        .await
        .ok();

    // Lists and their filters.
    let names = |query: &'static str| {
        let ctx = &ctx;
        async move {
            let r = ctx.get(&format!("{GROUPS}{query}"), &ctx.admin).await;
            r.ok();
            r.column("name")
        }
    };
    let admins = portcullis_core::ADMIN_GROUP_NAME;
    assert_eq!(names("").await, [admins, "eng-backend", "engineering"]);
    assert_eq!(names("?name=engineering").await, ["engineering"]);
    assert_eq!(names("?is_superuser=true").await, [admins]);
    assert_eq!(
        names("?is_superuser=false").await,
        ["eng-backend", "engineering"]
    );
    assert_eq!(names("?members_by_username=admin").await, [admins]);
    assert_eq!(names("?search=ENG").await, ["eng-backend", "engineering"]);
    assert_eq!(
        names("?ordering=-name").await,
        ["engineering", "eng-backend", admins]
    );
    assert_eq!(names("?page_size=1&page=2").await, ["eng-backend"]);
    let by_pk = ctx
        .get(&format!("{GROUPS}?members_by_pk={}", ctx.app.admin_pk), a)
        .await;
    assert_eq!(by_pk.column("name"), [admins]);
    ctx.get(&format!("{GROUPS}?page=2"), a)
        .await
        .detail(StatusCode::NOT_FOUND);
    for (query, field) in [
        ("?is_superuser=perhaps", "is_superuser"),
        ("?members_by_pk=abc", "members_by_pk"),
        ("?include_users=2", "include_users"),
    ] {
        ctx.get(&format!("{GROUPS}{query}"), a)
            .await
            .field_error(field);
    }

    // Deleting a parent detaches its children.
    ctx.delete(&group_path(&eng_pk), a).await.no_content();
    ctx.not_found(Method::GET, &group_path(&eng_pk), a, Body::None)
        .await;
    ctx.not_found(Method::DELETE, &group_path(&eng_pk), a, Body::None)
        .await;
    let orphan = ctx.get(&group_path(&child_pk), a).await;
    assert_eq!(orphan.ok()["parents"], json!([]));
    let events = ctx.events("action=model_deleted").await;
    assert_eq!(events[0]["context"]["model"]["model_name"], "group");
    assert_eq!(events[0]["context"]["model"]["pk"], eng_pk);
}

async fn group_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let eng = create_group(&ctx, json!({"name": "eng"})).await["pk"].clone();
    let other = uuid::Uuid::new_v4().to_string();
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(257)}), "name"),
        (json!({"name": "nul\u{0}"}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"name": "eng"}), "name"),
        (json!({"name": "g", "parents": [other]}), "parents"),
        (json!({"name": "g", "parents": [eng, eng]}), "parents"),
        (json!({"name": "g", "parents": "x"}), "parents"),
        (json!({"name": "g", "parents": ["x"]}), "parents"),
        (json!({"name": "g", "users": [999_999]}), "users"),
        (json!({"name": "g", "users": ["x"]}), "users"),
        (json!({"name": "g", "roles": [other]}), "roles"),
        (json!({"name": "g", "attributes": []}), "attributes"),
        (json!({"name": "g", "is_superuser": "yes"}), "is_superuser"),
    ] {
        ctx.invalid(Method::POST, GROUPS, a, body, field).await;
    }
    let dup = ctx
        .invalid(Method::POST, GROUPS, a, json!({"name": "eng"}), "name")
        .await;
    assert!(dup.messages("name")[0].contains("already exists"));

    // Parent chains never loop: eng <- mid <- leaf.
    let mid = create_group(&ctx, json!({"name": "mid", "parents": [eng]})).await["pk"].clone();
    let leaf = create_group(&ctx, json!({"name": "leaf", "parents": [mid]})).await["pk"].clone();
    for parent in [&eng, &mid, &leaf] {
        ctx.invalid(
            Method::PATCH,
            &group_path(&eng),
            a,
            json!({"parents": [parent]}),
            "parents",
        )
        .await;
    }
    ctx.invalid(
        Method::PATCH,
        &group_path(&mid),
        a,
        json!({"parents": [leaf]}),
        "parents",
    )
    .await;
    ctx.invalid(
        Method::PUT,
        &group_path(&mid),
        a,
        json!({"name": "mid", "parents": [mid]}),
        "parents",
    )
    .await;
    for (method, body, field) in [
        (Method::PUT, json!({}), "name"),
        (Method::PUT, json!({"parents": []}), "name"),
        (Method::PATCH, json!({"name": "mid"}), "name"),
        (Method::PATCH, json!({"name": ""}), "name"),
        (Method::PATCH, json!({"users": [999_999]}), "users"),
        (Method::PATCH, json!({"parents": [other]}), "parents"),
    ] {
        ctx.invalid(method, &group_path(&eng), a, body, field).await;
    }
}

async fn group_membership(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let eng = create_group(&ctx, json!({"name": "eng"})).await["pk"].clone();
    let (bob, bob_token) = ctx.app.regular_user("bob").await;
    let add = format!("{}add_user/", group_path(&eng));
    let remove = format!("{}remove_user/", group_path(&eng));

    ctx.post(&add, a, json!({"pk": bob})).await.no_content();
    let g = ctx.get(&group_path(&eng), a).await;
    assert_eq!(g.ok()["users"], json!([bob]));
    assert_eq!(g.body["users_obj"][0]["username"], "bob");
    let u = ctx.get(&format!("/api/v3/core/users/{bob}/"), a).await;
    assert_eq!(u.ok()["groups"], json!([eng]));
    let events = ctx.events("action=model_updated").await;
    assert_eq!(events[0]["context"]["model"]["pk"], eng);

    // Adding a member again changes nothing, not even the audit log.
    let before = ctx.app.snapshot().await;
    ctx.post(&add, a, json!({"pk": bob})).await.no_content();
    assert_unchanged(&before, &ctx.app.snapshot().await, "second add_user");

    ctx.post(&remove, a, json!({"pk": bob})).await.no_content();
    assert_eq!(ctx.get(&group_path(&eng), a).await.ok()["users"], json!([]));
    let before = ctx.app.snapshot().await;
    ctx.post(&remove, a, json!({"pk": bob})).await.no_content();
    assert_unchanged(&before, &ctx.app.snapshot().await, "second remove_user");

    for path in [&add, &remove] {
        for pk in [999_999, -1, 0] {
            ctx.not_found(Method::POST, path, a, Body::Json(json!({"pk": pk})))
                .await;
        }
        for (body, field) in [
            (json!({}), "pk"),
            (json!({"pk": "x"}), "pk"),
            (json!({"pk": null}), "pk"),
            (json!({"pk": 1.5}), "pk"),
            (json!({"pk": 99_999_999_999_i64}), "pk"),
        ] {
            ctx.invalid(Method::POST, path, a, body, field).await;
        }
    }

    // Membership of a superuser group makes a superuser; leaving it undoes that.
    let admins = ctx
        .get(&format!("{GROUPS}?is_superuser=true"), a)
        .await
        .results()[0]["pk"]
        .clone();
    ctx.forbidden(Method::GET, GROUPS, &bob_token, Body::None)
        .await;
    ctx.post(
        &format!("{}add_user/", group_path(&admins)),
        a,
        json!({"pk": bob}),
    )
    .await
    .no_content();
    let me = ctx.get("/api/v3/core/users/me/", &bob_token).await;
    assert_eq!(me.ok()["user"]["is_superuser"], true);
    ctx.get(GROUPS, &bob_token).await.ok();
    ctx.post(
        &format!("{}remove_user/", group_path(&admins)),
        a,
        json!({"pk": bob}),
    )
    .await
    .no_content();
    ctx.forbidden(Method::GET, GROUPS, &bob_token, Body::None)
        .await;
    ctx.forbidden(
        Method::POST,
        &format!("{}add_user/", group_path(&admins)),
        &bob_token,
        Body::Json(json!({"pk": bob})),
    )
    .await;
}

both_backends!(group_crud, group_validation, group_membership);
