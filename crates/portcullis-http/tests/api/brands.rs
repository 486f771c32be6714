//! `core/brands/`: CRUD, one default at most, field checks, and the public `current/` that
//! answers with the brand matching the request's host.

use portcullis_testkit::both_backends;

use crate::common::*;

const BRANDS: &str = "/api/v3/core/brands/";

fn brand_path(pk: &Value) -> String {
    format!("{BRANDS}{}/", pk.as_str().unwrap())
}

async fn defaults(ctx: &Ctx) -> Vec<String> {
    let r = ctx
        .get(&format!("{BRANDS}?page_size=1000"), &ctx.admin)
        .await;
    r.ok();
    r.results()
        .iter()
        .filter(|b| b["default"] == true)
        .map(|b| b["domain"].as_str().unwrap().to_owned())
        .collect()
}

async fn current(ctx: &Ctx, host: &str) -> Value {
    let r = ctx
        .app
        .request(Method::GET, &format!("{BRANDS}current/"), None)
        .header(reqwest::header::HOST, host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "current/ for {host}");
    r.json().await.unwrap()
}

async fn brand_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    // Before any brand exists, current/ answers with the built-in fallback.
    assert_eq!(
        current(&ctx, "anything.example").await["branding_title"],
        "Portcullis"
    );

    let first = ctx
        .post(
            BRANDS,
            a,
            json!({"domain": "auth.example.com", "default": true, "branding_title": "Example",
                   "branding_logo": "/logo-%(theme)s.svg", "attributes": {"settings": {"theme": {"base": "dark"}}}}),
        )
        .await;
    let first = first.created();
    assert!(
        first["brand_uuid"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    assert_eq!(first["domain"], "auth.example.com");
    assert_eq!(first["default"], true);
    assert_eq!(first["branding_title"], "Example");
    assert_eq!(first["web_certificate"], Value::Null);
    assert_eq!(first["client_certificates"], json!([]));
    let fp = first["brand_uuid"].clone();

    let second = ctx
        .post(
            BRANDS,
            a,
            json!({"domain": "other.org", "default": true, "branding_title": "Other"}),
        )
        .await;
    let sp = second.created()["brand_uuid"].clone();
    // Two defaults asked for, one remains: the newest.
    assert_eq!(defaults(&ctx).await, ["other.org"]);
    assert_eq!(ctx.get(&brand_path(&fp), a).await.ok()["default"], false);
    ctx.patch(&brand_path(&fp), a, json!({"default": true}))
        .await
        .ok();
    assert_eq!(defaults(&ctx).await, ["auth.example.com"]);
    let put = ctx
        .put(
            &brand_path(&sp),
            a,
            json!({"domain": "other.org", "default": true, "branding_title": "Other 2"}),
        )
        .await;
    assert_eq!(put.ok()["branding_title"], "Other 2");
    assert_eq!(defaults(&ctx).await, ["other.org"]);

    // current/ needs no authentication and matches the Host header, subdomains included.
    let c = current(&ctx, "auth.example.com").await;
    assert_eq!(c["matched_domain"], "auth.example.com");
    assert_eq!(c["branding_title"], "Example");
    assert_eq!(c["ui_theme"], "dark");
    assert_eq!(c["branding_logo_themed_urls"]["light"], "/logo-light.svg");
    assert_eq!(
        current(&ctx, "login.auth.example.com:9443").await["matched_domain"],
        "auth.example.com"
    );
    assert_eq!(
        current(&ctx, "AUTH.EXAMPLE.COM").await["matched_domain"],
        "auth.example.com"
    );
    assert_eq!(
        current(&ctx, "unrelated.net").await["matched_domain"],
        "other.org"
    );
    assert_eq!(
        current(&ctx, "badexample.com").await["matched_domain"],
        "other.org"
    );
    let with_bad_token = ctx
        .send(
            Method::GET,
            &format!("{BRANDS}current/"),
            Some("not-a-token"),
            Body::None,
        )
        .await;
    with_bad_token.ok();

    // A web certificate must exist.
    let kp = ctx
        .post(
            "/api/v3/crypto/certificatekeypairs/generate/",
            a,
            json!({"common_name": "auth.example.com", "validity_days": 10, "alg": "ecdsa"}),
        )
        .await
        .ok()["pk"]
        .clone();
    let with_cert = ctx
        .patch(&brand_path(&fp), a, json!({"web_certificate": kp}))
        .await;
    assert_eq!(with_cert.ok()["web_certificate"], kp);
    let without = ctx
        .patch(&brand_path(&fp), a, json!({"web_certificate": null}))
        .await;
    assert_eq!(without.ok()["web_certificate"], Value::Null);
    assert_eq!(without.body["branding_title"], "Example");

    let domains = |query: &'static str| {
        let ctx = &ctx;
        async move {
            let r = ctx.get(&format!("{BRANDS}{query}"), &ctx.admin).await;
            r.ok();
            r.column("domain")
        }
    };
    assert_eq!(domains("").await, ["auth.example.com", "other.org"]);
    assert_eq!(domains("?domain=other.org").await, ["other.org"]);
    assert_eq!(domains("?search=example").await, ["auth.example.com"]);
    assert_eq!(
        domains("?ordering=-domain").await,
        ["other.org", "auth.example.com"]
    );

    ctx.delete(&brand_path(&sp), a).await.no_content();
    ctx.not_found(Method::GET, &brand_path(&sp), a, Body::None)
        .await;
    ctx.not_found(Method::DELETE, &brand_path(&sp), a, Body::None)
        .await;
    assert_eq!(
        current(&ctx, "unrelated.net").await["matched_domain"],
        "fallback"
    );
}

async fn brand_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let existing = ctx
        .post(BRANDS, a, json!({"domain": "taken.example.com"}))
        .await
        .created()["brand_uuid"]
        .clone();
    let unknown = uuid::Uuid::new_v4().to_string();
    for (body, field) in [
        (json!({}), "domain"),
        (json!({"domain": ""}), "domain"),
        (json!({"domain": "bad domain"}), "domain"),
        (json!({"domain": "slash/path"}), "domain"),
        (json!({"domain": "x".repeat(254)}), "domain"),
        (json!({"domain": "taken.example.com"}), "domain"),
        (json!({"domain": "a.b", "default": "yes"}), "default"),
        (
            json!({"domain": "a.b", "branding_title": ""}),
            "branding_title",
        ),
        (
            json!({"domain": "a.b", "branding_title": "t".repeat(2001)}),
            "branding_title",
        ),
        (
            json!({"domain": "a.b", "branding_logo": "nul\u{0}"}),
            "branding_logo",
        ),
        (
            json!({"domain": "a.b", "branding_custom_css": "x".repeat(256 * 1024 + 1)}),
            "branding_custom_css",
        ),
        (
            json!({"domain": "a.b", "branding_custom_css": "body { content: \"\u{0}\" }"}),
            "branding_custom_css",
        ),
        (json!({"domain": "a.b", "attributes": []}), "attributes"),
        (
            json!({"domain": "a.b", "flow_authentication": unknown}),
            "flow_authentication",
        ),
        (
            json!({"domain": "a.b", "flow_recovery": "not-a-uuid"}),
            "flow_recovery",
        ),
        (
            json!({"domain": "a.b", "default_application": unknown}),
            "default_application",
        ),
        (
            json!({"domain": "a.b", "web_certificate": unknown}),
            "web_certificate",
        ),
        (
            json!({"domain": "a.b", "client_certificates": [unknown]}),
            "client_certificates",
        ),
    ] {
        ctx.invalid(Method::POST, BRANDS, a, body, field).await;
    }
    let dup = ctx
        .invalid(
            Method::POST,
            BRANDS,
            a,
            json!({"domain": "taken.example.com"}),
            "domain",
        )
        .await;
    assert!(dup.messages("domain")[0].contains("already exists"));

    ctx.post(BRANDS, a, json!({"domain": "second.example.com"}))
        .await
        .created();
    let p = brand_path(&existing);
    for (method, body, field) in [
        (Method::PUT, json!({"branding_title": "x"}), "domain"),
        (
            Method::PATCH,
            json!({"domain": "second.example.com"}),
            "domain",
        ),
        (
            Method::PATCH,
            json!({"domain": "no spaces allowed"}),
            "domain",
        ),
        (
            Method::PATCH,
            json!({"web_certificate": unknown}),
            "web_certificate",
        ),
        (Method::PATCH, json!({"attributes": "x"}), "attributes"),
    ] {
        ctx.invalid(method, &p, a, body, field).await;
    }
}

both_backends!(brand_crud, brand_validation);
