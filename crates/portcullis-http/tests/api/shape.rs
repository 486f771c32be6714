//! What every endpoint shares: authentication (401 for no, unknown, inactive and expired
//! tokens), the superuser gate (403), unknown ids (404), and the shape of request bodies
//! (malformed JSON 400, wrong content type 415, oversized 413, deep nesting 400). Each refused
//! request must leave the database unchanged. Also the fallback and health endpoints.

use portcullis_testkit::both_backends;

use crate::common::*;

/// One object of each kind, made through the API, so every path below names something real.
pub struct Fixtures {
    pub user: i32,
    pub group: String,
    pub app: String,
    pub token: String,
    pub kp: String,
    pub cert_pem: String,
    pub brand: String,
    pub event: String,
}

pub async fn fixtures(ctx: &Ctx) -> Fixtures {
    let a = &ctx.admin;
    let user = ctx
        .post(
            "/api/v3/core/users/",
            a,
            json!({"username": "fixture-user", "name": "Fixture"}),
        )
        .await
        .created()["pk"]
        .as_i64()
        .unwrap() as i32;
    let group = ctx
        .post("/api/v3/core/groups/", a, json!({"name": "fixture-group"}))
        .await
        .created()["pk"]
        .as_str()
        .unwrap()
        .to_owned();
    ctx.post(
        "/api/v3/core/applications/",
        a,
        json!({"name": "Fixture", "slug": "fixture-app"}),
    )
    .await
    .created();
    ctx.post(
        "/api/v3/core/tokens/",
        a,
        json!({"identifier": "fixture-token"}),
    )
    .await
    .created();
    let kp = ctx
        .post(
            "/api/v3/crypto/certificatekeypairs/generate/",
            a,
            json!({"common_name": "fixture.example.com", "validity_days": 30, "alg": "ecdsa"}),
        )
        .await
        .ok()["pk"]
        .as_str()
        .unwrap()
        .to_owned();
    let cert_pem = ctx
        .get(
            &format!("/api/v3/crypto/certificatekeypairs/{kp}/view_certificate/"),
            a,
        )
        .await
        .ok()["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let brand = ctx
        .post(
            "/api/v3/core/brands/",
            a,
            json!({"domain": "fixture.example.com"}),
        )
        .await
        .created()["brand_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = ctx.events("").await[0]["pk"].as_str().unwrap().to_owned();
    Fixtures {
        user,
        group,
        app: "fixture-app".into(),
        token: "fixture-token".into(),
        kp,
        cert_pem,
        brand,
        event,
    }
}

/// An endpoint with a body it would accept, and who may call it.
pub struct Ep {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub superuser_only: bool,
}

fn ep(method: Method, path: String, body: Option<Value>, superuser_only: bool) -> Ep {
    Ep {
        method,
        path,
        body,
        superuser_only,
    }
}

/// Every authenticated endpoint of the API.
pub fn endpoints(f: &Fixtures) -> Vec<Ep> {
    use Method as M;
    let u = format!("/api/v3/core/users/{}/", f.user);
    let g = format!("/api/v3/core/groups/{}/", f.group);
    let app = format!("/api/v3/core/applications/{}/", f.app);
    let t = format!("/api/v3/core/tokens/{}/", f.token);
    let kp = format!("/api/v3/crypto/certificatekeypairs/{}/", f.kp);
    let b = format!("/api/v3/core/brands/{}/", f.brand);
    let cert = json!({"name": "other", "certificate_data": f.cert_pem});
    vec![
        ep(M::GET, "/api/v3/core/users/".into(), None, false),
        ep(
            M::POST,
            "/api/v3/core/users/".into(),
            Some(json!({"username": "someone", "name": "Someone"})),
            true,
        ),
        ep(M::GET, "/api/v3/core/users/me/".into(), None, false),
        ep(M::GET, u.clone(), None, false),
        ep(
            M::PUT,
            u.clone(),
            Some(json!({"username": "renamed", "name": "Renamed"})),
            false,
        ),
        ep(M::PATCH, u.clone(), Some(json!({"name": "Renamed"})), false),
        ep(M::DELETE, u.clone(), None, false),
        ep(
            M::POST,
            format!("{u}set_password/"),
            Some(json!({"password": "correct horse battery"})),
            false,
        ),
        ep(M::GET, "/api/v3/core/groups/".into(), None, true),
        ep(
            M::POST,
            "/api/v3/core/groups/".into(),
            Some(json!({"name": "another"})),
            true,
        ),
        ep(M::GET, g.clone(), None, true),
        ep(M::PUT, g.clone(), Some(json!({"name": "renamed"})), true),
        ep(M::PATCH, g.clone(), Some(json!({"name": "renamed"})), true),
        ep(M::DELETE, g.clone(), None, true),
        ep(
            M::POST,
            format!("{g}add_user/"),
            Some(json!({"pk": f.user})),
            true,
        ),
        ep(
            M::POST,
            format!("{g}remove_user/"),
            Some(json!({"pk": f.user})),
            true,
        ),
        ep(M::GET, "/api/v3/core/applications/".into(), None, false),
        ep(
            M::POST,
            "/api/v3/core/applications/".into(),
            Some(json!({"name": "Other", "slug": "other"})),
            true,
        ),
        ep(M::GET, app.clone(), None, false),
        ep(
            M::PUT,
            app.clone(),
            Some(json!({"name": "Other", "slug": "other"})),
            true,
        ),
        ep(M::PATCH, app.clone(), Some(json!({"name": "Other"})), true),
        ep(M::DELETE, app.clone(), None, true),
        ep(M::GET, "/api/v3/core/tokens/".into(), None, false),
        ep(
            M::POST,
            "/api/v3/core/tokens/".into(),
            Some(json!({"identifier": "another-token"})),
            false,
        ),
        ep(M::GET, t.clone(), None, false),
        ep(
            M::PUT,
            t.clone(),
            Some(json!({"identifier": "renamed-token"})),
            false,
        ),
        ep(
            M::PATCH,
            t.clone(),
            Some(json!({"description": "x"})),
            false,
        ),
        ep(M::DELETE, t.clone(), None, false),
        ep(M::GET, format!("{t}view_key/"), None, false),
        ep(
            M::GET,
            "/api/v3/crypto/certificatekeypairs/".into(),
            None,
            true,
        ),
        ep(
            M::POST,
            "/api/v3/crypto/certificatekeypairs/".into(),
            Some(cert.clone()),
            true,
        ),
        ep(
            M::POST,
            "/api/v3/crypto/certificatekeypairs/generate/".into(),
            Some(json!({"common_name": "x.example.com", "validity_days": 1, "alg": "ecdsa"})),
            true,
        ),
        ep(M::GET, kp.clone(), None, true),
        ep(M::PUT, kp.clone(), Some(cert), true),
        ep(M::PATCH, kp.clone(), Some(json!({"name": "renamed"})), true),
        ep(M::DELETE, kp.clone(), None, true),
        ep(M::GET, format!("{kp}view_certificate/"), None, true),
        ep(M::GET, format!("{kp}view_private_key/"), None, true),
        ep(M::GET, "/api/v3/core/brands/".into(), None, true),
        ep(
            M::POST,
            "/api/v3/core/brands/".into(),
            Some(json!({"domain": "other.example.com"})),
            true,
        ),
        ep(M::GET, b.clone(), None, true),
        ep(
            M::PUT,
            b.clone(),
            Some(json!({"domain": "other.example.com"})),
            true,
        ),
        ep(
            M::PATCH,
            b.clone(),
            Some(json!({"branding_title": "Other"})),
            true,
        ),
        ep(M::DELETE, b.clone(), None, true),
        ep(M::GET, "/api/v3/events/events/".into(), None, false),
        ep(
            M::GET,
            format!("/api/v3/events/events/{}/", f.event),
            None,
            false,
        ),
    ]
}

fn body_of(e: &Ep) -> Body {
    e.body.clone().map_or(Body::None, Body::Json)
}

/// No token, an unknown one, a blank one, an inactive user's and an expired one: 401 on every
/// endpoint, with nothing changed.
async fn every_endpoint_requires_a_valid_token(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let f = fixtures(&ctx).await;
    let creds = bad_credentials(&ctx).await;
    for e in endpoints(&f) {
        for (label, token) in &creds {
            let r = ctx
                .refused(
                    e.method.clone(),
                    &e.path,
                    token.as_deref(),
                    body_of(&e),
                    StatusCode::UNAUTHORIZED,
                )
                .await;
            assert_unauthorized(&r, label);
        }
    }
    // Other schemes and malformed headers are refused too.
    for header in [
        format!("Basic {}", ctx.admin),
        format!("Token {}", ctx.admin),
        ctx.admin.clone(),
        "Bearer".to_owned(),
        format!("Bearer {}", "x".repeat(600)),
    ] {
        let r = ctx
            .app
            .request(Method::GET, "/api/v3/core/users/me/", None)
            .header(reqwest::header::AUTHORIZATION, header.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    // The scheme is case-insensitive, as RFC 9110 says.
    let r = ctx
        .app
        .request(Method::GET, "/api/v3/core/users/me/", None)
        .header(
            reqwest::header::AUTHORIZATION,
            format!("bearer {}", ctx.admin),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A non-superuser is refused (403) by everything that needs a superuser, with nothing
/// changed.
async fn superuser_endpoints_refuse_regular_users(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let f = fixtures(&ctx).await;
    let (_, token) = ctx.app.regular_user("regular").await;
    for e in endpoints(&f).into_iter().filter(|e| e.superuser_only) {
        ctx.forbidden(e.method.clone(), &e.path, &token, body_of(&e))
            .await;
    }
}

/// Malformed JSON, non-objects, wrong or missing content types, bodies over 1 MiB and
/// absurdly deep nesting: refused with the right status on every endpoint that takes a body,
/// with nothing changed.
async fn every_body_is_checked(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let f = fixtures(&ctx).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for e in endpoints(&f).into_iter().filter(|e| e.body.is_some()) {
        let valid = serde_json::to_vec(e.body.as_ref().unwrap()).unwrap();
        let cases: Vec<(Body, StatusCode, Option<&str>)> = vec![
            (
                Body::raw_json("{\"name\": "),
                StatusCode::BAD_REQUEST,
                Some("detail"),
            ),
            (
                Body::raw_json("{\"name\": \"x\",}"),
                StatusCode::BAD_REQUEST,
                Some("detail"),
            ),
            (
                Body::raw_json("{} trailing"),
                StatusCode::BAD_REQUEST,
                Some("detail"),
            ),
            (Body::raw_json(""), StatusCode::BAD_REQUEST, Some("detail")),
            (
                Body::raw_json(vec![0xff, 0xfe, b'{', b'}']),
                StatusCode::BAD_REQUEST,
                Some("detail"),
            ),
            (
                Body::raw_json(deep.clone()),
                StatusCode::BAD_REQUEST,
                Some("detail"),
            ),
            (
                Body::raw_json("[1, 2]"),
                StatusCode::BAD_REQUEST,
                Some("non_field_errors"),
            ),
            (
                Body::raw_json("null"),
                StatusCode::BAD_REQUEST,
                Some("non_field_errors"),
            ),
            (
                Body::raw_json("\"text\""),
                StatusCode::BAD_REQUEST,
                Some("non_field_errors"),
            ),
            (
                Body::Raw(Some("text/plain"), valid.clone()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("detail"),
            ),
            (
                Body::Raw(None, valid.clone()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("detail"),
            ),
            (
                Body::Raw(
                    Some("application/x-www-form-urlencoded"),
                    b"name=x&slug=x".to_vec(),
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("detail"),
            ),
            (
                Body::Raw(Some("application/jsonx"), valid.clone()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("detail"),
            ),
            (
                Body::raw_json(json_of_size("name", LIMIT + 1)),
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("detail"),
            ),
        ];
        for (body, status, key) in cases {
            let r = ctx
                .refused(e.method.clone(), &e.path, Some(&ctx.admin), body, status)
                .await;
            if let Some(key) = key {
                assert!(
                    r.body.get(key).is_some(),
                    "{}: {status} without {key:?}: {}",
                    r.what,
                    r.text
                );
            }
        }
    }
    // The server survived all of it.
    ctx.send(Method::GET, "/-/health/live/", None, Body::None)
        .await
        .status(StatusCode::NO_CONTENT);
}

/// A method, a path suffix after the id, and a body.
type Op = (Method, &'static str, Option<Value>);

/// Unknown ids, numeric or not, uuid or not, are 404 `{"detail"}` on every endpoint that takes
/// one, with nothing changed.
async fn unknown_ids_are_not_found(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let f = fixtures(&ctx).await;
    let a = &ctx.admin;
    let by_kind: [(&str, &[&str], Vec<Op>); 7] = [
        (
            "/api/v3/core/users/",
            BAD_INT_IDS,
            vec![
                (Method::GET, "", None),
                (Method::PUT, "", Some(json!({"username": "x", "name": "x"}))),
                (Method::PATCH, "", Some(json!({"name": "x"}))),
                (Method::DELETE, "", None),
                (
                    Method::POST,
                    "set_password/",
                    Some(json!({"password": "pw"})),
                ),
            ],
        ),
        (
            "/api/v3/core/groups/",
            BAD_UUID_IDS,
            vec![
                (Method::GET, "", None),
                (Method::PUT, "", Some(json!({"name": "x"}))),
                (Method::PATCH, "", Some(json!({"name": "x"}))),
                (Method::DELETE, "", None),
                (Method::POST, "add_user/", Some(json!({"pk": f.user}))),
                (Method::POST, "remove_user/", Some(json!({"pk": f.user}))),
            ],
        ),
        (
            "/api/v3/core/applications/",
            &["no-such-app", "%C3%BC", "a.b", "x%20y", "UPPER"],
            vec![
                (Method::GET, "", None),
                (Method::PUT, "", Some(json!({"name": "x", "slug": "x"}))),
                (Method::PATCH, "", Some(json!({"name": "x"}))),
                (Method::DELETE, "", None),
            ],
        ),
        (
            "/api/v3/core/tokens/",
            &["no-such-token", "%C3%BC", "a%20b", "FIXTURE-TOKEN"],
            vec![
                (Method::GET, "", None),
                (Method::PUT, "", Some(json!({"identifier": "x"}))),
                (Method::PATCH, "", Some(json!({"description": "x"}))),
                (Method::DELETE, "", None),
                (Method::GET, "view_key/", None),
            ],
        ),
        (
            "/api/v3/crypto/certificatekeypairs/",
            BAD_UUID_IDS,
            vec![
                (Method::GET, "", None),
                (
                    Method::PUT,
                    "",
                    Some(json!({"name": "x", "certificate_data": f.cert_pem})),
                ),
                (Method::PATCH, "", Some(json!({"name": "x"}))),
                (Method::DELETE, "", None),
                (Method::GET, "view_certificate/", None),
                (Method::GET, "view_private_key/", None),
            ],
        ),
        (
            "/api/v3/core/brands/",
            BAD_UUID_IDS,
            vec![
                (Method::GET, "", None),
                (Method::PUT, "", Some(json!({"domain": "x.example.com"}))),
                (Method::PATCH, "", Some(json!({"branding_title": "x"}))),
                (Method::DELETE, "", None),
            ],
        ),
        (
            "/api/v3/events/events/",
            BAD_UUID_IDS,
            vec![(Method::GET, "", None)],
        ),
    ];
    for (base, ids, ops) in by_kind {
        for id in ids {
            for (method, suffix, body) in &ops {
                let body = body.clone().map_or(Body::None, Body::Json);
                ctx.not_found(method.clone(), &format!("{base}{id}/{suffix}"), a, body)
                    .await;
            }
        }
    }
}

/// Unrouted paths answer JSON 404s; health endpoints answer 204 without authentication.
async fn fallback_and_health(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    for path in [
        "/api/v3/nonexistent/",
        "/api/v3/core/nonexistent/",
        "/api/v3/core/users/1/nonexistent/",
        "/nonexistent",
    ] {
        for token in [None, Some(ctx.admin.as_str())] {
            let r = ctx.send(Method::GET, path, token, Body::None).await;
            assert_eq!(r.detail(StatusCode::NOT_FOUND), "Not found.");
            assert!(
                r.headers[reqwest::header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
        }
    }
    for path in ["/-/health/live/", "/-/health/ready/"] {
        let r = ctx.send(Method::GET, path, None, Body::None).await;
        r.no_content();
    }
    // A method a route does not have is refused in DRF's shape, naming what is allowed.
    for (method, path) in [
        (Method::DELETE, "/api/v3/core/users/"),
        (Method::PUT, "/api/v3/core/users/me/"),
        (Method::POST, "/api/v3/events/events/"),
        (Method::POST, "/-/health/live/"),
    ] {
        let r = ctx
            .refused(
                method.clone(),
                path,
                Some(&ctx.admin),
                Body::Json(json!({})),
                StatusCode::METHOD_NOT_ALLOWED,
            )
            .await;
        assert_eq!(
            r.detail(StatusCode::METHOD_NOT_ALLOWED),
            format!("Method \"{method}\" not allowed.")
        );
        assert!(
            r.headers[reqwest::header::ALLOW]
                .to_str()
                .unwrap()
                .contains("GET"),
            "{path}"
        );
    }
}

/// Content types the API must accept: JSON with parameters, and `+json` media types.
async fn json_content_type_variants(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    for (i, ct) in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"name": format!("ct-{i}")}).to_string();
        ctx.send(
            Method::POST,
            "/api/v3/core/groups/",
            Some(&ctx.admin),
            Body::Raw(Some(ct), body.into_bytes()),
        )
        .await
        .created();
    }
    // A body just under the limit is read (and then refused on its field, not its size).
    let r = ctx
        .refused(
            Method::POST,
            "/api/v3/core/groups/",
            Some(&ctx.admin),
            Body::raw_json(json_of_size("name", LIMIT)),
            StatusCode::BAD_REQUEST,
        )
        .await;
    r.field_error("name");
}

both_backends!(
    every_endpoint_requires_a_valid_token,
    superuser_endpoints_refuse_regular_users,
    every_body_is_checked,
    unknown_ids_are_not_found,
);

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fallback_and_health() {
        super::fallback_and_health(super::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_content_type_variants() {
        super::json_content_type_variants(super::Backend::Sqlite).await
    }
}
