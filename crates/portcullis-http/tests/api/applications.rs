//! `core/applications/`, looked up by slug: CRUD, slug rules, filters; anyone authenticated
//! reads, only superusers write.

use portcullis_testkit::both_backends;

use crate::common::*;

const APPS: &str = "/api/v3/core/applications/";

async fn application_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let app = ctx
        .post(
            APPS,
            a,
            json!({
                "name": "Grafana", "slug": "grafana", "meta_launch_url": "https://grafana.example.com/",
                "meta_description": "Dashboards", "meta_publisher": "Grafana Labs", "group": "Monitoring",
                "policy_engine_mode": "all", "open_in_new_tab": true, "meta_hide": false,
                "meta_icon": "https://cdn.example.com/%(theme)s/grafana.svg",
            }),
        )
        .await;
    let app = app.created();
    assert!(app["pk"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(app["pbm_uuid"], app["pk"]);
    assert_eq!(app["name"], "Grafana");
    assert_eq!(app["slug"], "grafana");
    assert_eq!(app["launch_url"], "https://grafana.example.com/");
    assert_eq!(app["meta_launch_url"], "https://grafana.example.com/");
    assert_eq!(app["meta_publisher"], "Grafana Labs");
    assert_eq!(app["group"], "Monitoring");
    assert_eq!(app["policy_engine_mode"], "all");
    assert_eq!(app["open_in_new_tab"], true);
    assert_eq!(app["provider"], Value::Null);
    assert_eq!(
        app["meta_icon_themed_urls"]["dark"],
        "https://cdn.example.com/dark/grafana.svg"
    );

    let min = ctx
        .post(APPS, a, json!({"name": "Wiki", "slug": "wiki"}))
        .await;
    let min = min.created();
    assert_eq!(min["policy_engine_mode"], "any");
    assert_eq!(min["launch_url"], Value::Null);
    assert_eq!(min["meta_icon"], "");
    assert_eq!(min["open_in_new_tab"], false);

    let got = ctx.get(&format!("{APPS}grafana/"), a).await;
    assert_eq!(got.ok()["pk"], app["pk"]);
    assert_eq!(got.body["meta_description"], "Dashboards");

    let put = ctx
        .put(
            &format!("{APPS}grafana/"),
            a,
            json!({"name": "Grafana OSS", "slug": "grafana", "meta_hide": true}),
        )
        .await;
    assert_eq!(put.ok()["name"], "Grafana OSS");
    assert_eq!(put.body["meta_hide"], true);
    assert_eq!(put.body["meta_publisher"], "Grafana Labs");

    // Renaming the slug moves the application.
    let moved = ctx
        .patch(&format!("{APPS}grafana/"), a, json!({"slug": "dashboards"}))
        .await;
    assert_eq!(moved.ok()["slug"], "dashboards");
    assert_eq!(moved.body["pk"], app["pk"]);
    ctx.not_found(Method::GET, &format!("{APPS}grafana/"), a, Body::None)
        .await;
    ctx.get(&format!("{APPS}dashboards/"), a).await.ok();

    let names = |query: &'static str| {
        let ctx = &ctx;
        async move {
            let r = ctx.get(&format!("{APPS}{query}"), &ctx.admin).await;
            r.ok();
            r.column("slug")
        }
    };
    assert_eq!(names("").await, ["dashboards", "wiki"]);
    assert_eq!(names("?slug=wiki").await, ["wiki"]);
    assert_eq!(names("?name=Wiki").await, ["wiki"]);
    assert_eq!(names("?group=Monitoring").await, ["dashboards"]);
    assert_eq!(names("?search=labs").await, ["dashboards"]);
    assert_eq!(names("?ordering=-slug").await, ["wiki", "dashboards"]);
    assert_eq!(names("?unknown=1").await, ["dashboards", "wiki"]);

    ctx.delete(&format!("{APPS}wiki/"), a).await.no_content();
    ctx.not_found(Method::GET, &format!("{APPS}wiki/"), a, Body::None)
        .await;
    ctx.not_found(Method::DELETE, &format!("{APPS}wiki/"), a, Body::None)
        .await;
    let events = ctx.events("action=model_deleted").await;
    assert_eq!(events[0]["context"]["model"]["model_name"], "application");
    assert_eq!(events[0]["context"]["model"]["name"], "Wiki");
}

async fn application_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    ctx.post(APPS, a, json!({"name": "Wiki", "slug": "wiki"}))
        .await
        .created();
    ctx.post(APPS, a, json!({"name": "Mail", "slug": "mail"}))
        .await
        .created();
    for (body, field) in [
        (json!({"slug": "x"}), "name"),
        (json!({"name": "X"}), "slug"),
        (json!({"name": "", "slug": "x"}), "name"),
        (json!({"name": "X", "slug": ""}), "slug"),
        (json!({"name": "X", "slug": "my app"}), "slug"),
        (json!({"name": "X", "slug": "ünï"}), "slug"),
        (json!({"name": "X", "slug": "a/b"}), "slug"),
        (json!({"name": "X", "slug": "x".repeat(51)}), "slug"),
        (json!({"name": "X", "slug": "wiki"}), "slug"),
        (json!({"name": "X", "slug": 1}), "slug"),
        (
            json!({"name": "X", "slug": "x", "meta_launch_url": "not a url"}),
            "meta_launch_url",
        ),
        (
            json!({"name": "X", "slug": "x", "meta_launch_url": "javascript:alert(1)"}),
            "meta_launch_url",
        ),
        (json!({"name": "X", "slug": "x", "provider": 5}), "provider"),
        (
            json!({"name": "X", "slug": "x", "backchannel_providers": [1]}),
            "backchannel_providers",
        ),
        (
            json!({"name": "X", "slug": "x", "policy_engine_mode": "some"}),
            "policy_engine_mode",
        ),
        (
            json!({"name": "X", "slug": "x", "open_in_new_tab": "true"}),
            "open_in_new_tab",
        ),
        (
            json!({"name": "X", "slug": "x", "meta_description": "d".repeat(4097)}),
            "meta_description",
        ),
        (
            json!({"name": "X", "slug": "x", "group": "nul\u{0}"}),
            "group",
        ),
    ] {
        ctx.invalid(Method::POST, APPS, a, body, field).await;
    }
    let dup = ctx
        .invalid(
            Method::POST,
            APPS,
            a,
            json!({"name": "Another wiki", "slug": "wiki"}),
            "slug",
        )
        .await;
    assert!(
        dup.messages("slug")[0].contains("already exists"),
        "{}",
        dup.text
    );

    let wiki = format!("{APPS}wiki/");
    for (method, body, field) in [
        (Method::PATCH, json!({"slug": "mail"}), "slug"),
        (Method::PATCH, json!({"slug": "bad slug"}), "slug"),
        (Method::PATCH, json!({"name": ""}), "name"),
        (Method::PUT, json!({"name": "Wiki"}), "slug"),
        (Method::PUT, json!({"slug": "wiki"}), "name"),
        (
            Method::PATCH,
            json!({"meta_launch_url": "::"}),
            "meta_launch_url",
        ),
    ] {
        ctx.invalid(method, &wiki, a, body, field).await;
    }
}

/// Anyone authenticated may read applications; only superusers write them.
async fn application_permissions(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    ctx.post(APPS, &ctx.admin, json!({"name": "Wiki", "slug": "wiki"}))
        .await
        .created();
    let (_, t) = ctx.app.regular_user("bob").await;
    let list = ctx.get(APPS, &t).await;
    list.ok();
    assert_eq!(list.column("slug"), ["wiki"]);
    assert_eq!(
        ctx.get(&format!("{APPS}wiki/"), &t).await.ok()["name"],
        "Wiki"
    );
    ctx.forbidden(
        Method::POST,
        APPS,
        &t,
        Body::Json(json!({"name": "Mine", "slug": "mine"})),
    )
    .await;
    ctx.forbidden(
        Method::PUT,
        &format!("{APPS}wiki/"),
        &t,
        Body::Json(json!({"name": "Mine", "slug": "mine"})),
    )
    .await;
    ctx.forbidden(
        Method::PATCH,
        &format!("{APPS}wiki/"),
        &t,
        Body::Json(json!({"name": "Mine"})),
    )
    .await;
    ctx.forbidden(Method::DELETE, &format!("{APPS}wiki/"), &t, Body::None)
        .await;
}

both_backends!(
    application_crud,
    application_validation,
    application_permissions
);
