//! Hostile input: LIKE wildcards and quotes in searches, NUL bytes in query strings, paths and
//! bodies, huge strings and page numbers, deep nesting, broken encodings. Each must be a 2xx
//! with the right answer or a 4xx naming the problem — never a 500, a crash or a change.

use portcullis_testkit::both_backends;

use crate::common::*;

const USERS: &str = "/api/v3/core/users/";

async fn usernames(ctx: &Ctx, query: &str) -> Vec<String> {
    let r = ctx.get(&format!("{USERS}{query}"), &ctx.admin).await;
    r.ok();
    r.column("username")
}

/// `%`, `_`, `'` and `\` are searched for literally, on both databases.
async fn sql_like_search(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    for name in ["pct%1", "under_1", "quote'1", "back\\1", "plain1", "dq\"1"] {
        ctx.post(USERS, a, json!({"username": name, "name": name}))
            .await
            .created();
    }
    for (term, want) in [
        ("%", vec!["pct%1"]),
        ("_", vec!["under_1"]),
        ("'", vec!["quote'1"]),
        ("\\", vec!["back\\1"]),
        ("\"", vec!["dq\"1"]),
        ("%1", vec!["pct%1"]),
        ("t%", vec!["pct%1"]),
        ("r_1", vec!["under_1"]),
        ("e_1", vec![]),
        ("\\1", vec!["back\\1"]),
        ("' OR '1'='1", vec![]),
        ("'; DROP TABLE users; --", vec![]),
        ("%%", vec![]),
        ("[a-z]", vec![]),
        ("*", vec![]),
    ] {
        assert_eq!(
            usernames(&ctx, &qs(&[("search", term)])).await,
            want,
            "search {term:?}"
        );
    }
    for name in ["pct%1", "quote'1", "back\\1"] {
        assert_eq!(usernames(&ctx, &qs(&[("username", name)])).await, [name]);
    }
    assert!(usernames(&ctx, &qs(&[("username", "%")])).await.is_empty());
    assert!(
        usernames(&ctx, &qs(&[("email", "' OR 1=1 --")]))
            .await
            .is_empty()
    );
    assert_eq!(usernames(&ctx, "").await.len(), 7, "the table is intact");
    // The same holds for every other list.
    for (path, body) in [
        ("/api/v3/core/groups/", json!({"name": "50%_off'"})),
        (
            "/api/v3/core/applications/",
            json!({"name": "50%_off'", "slug": "sale"}),
        ),
        (
            "/api/v3/core/tokens/",
            json!({"identifier": "t", "description": "50%_off'"}),
        ),
    ] {
        ctx.post(path, a, body).await.created();
        for (term, want) in [("%_", 1), ("'", 1), ("%x", 0), ("\\", 0)] {
            let r = ctx
                .get(&format!("{path}{}", qs(&[("search", term)])), a)
                .await;
            r.ok();
            assert_eq!(r.count(), want, "{path} search {term:?}: {}", r.text);
        }
    }
    let r = ctx
        .get(
            &format!("/api/v3/events/events/{}", qs(&[("search", "%")])),
            a,
        )
        .await;
    assert_eq!(r.ok()["pagination"]["count"], 0);
}

/// NUL bytes cannot be stored or searched for (PostgreSQL's text cannot hold them): a NUL in
/// a query parameter is a 400 naming it, in a path a 404, in a text field a 400.
async fn nul_bytes(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    ctx.post(
        "/api/v3/core/applications/",
        a,
        json!({"name": "Wiki", "slug": "wiki"}),
    )
    .await
    .created();
    for path in [
        "/api/v3/core/users/",
        "/api/v3/core/groups/",
        "/api/v3/core/applications/",
        "/api/v3/core/tokens/",
        "/api/v3/crypto/certificatekeypairs/",
        "/api/v3/core/brands/",
        "/api/v3/events/events/",
    ] {
        ctx.get(&format!("{path}?search=a%00b"), a)
            .await
            .field_error("search");
    }
    for (query, field) in [
        ("username=a%00", "username"),
        ("email=%00", "email"),
        ("groups_by_name=%00", "groups_by_name"),
        ("path_startswith=%00", "path_startswith"),
    ] {
        ctx.get(&format!("{USERS}?{query}"), a)
            .await
            .field_error(field);
    }
    for (path, query, field) in [
        ("/api/v3/core/groups/", "name=%00", "name"),
        (
            "/api/v3/core/groups/",
            "members_by_username=%00",
            "members_by_username",
        ),
        ("/api/v3/core/applications/", "slug=%00", "slug"),
        ("/api/v3/core/tokens/", "identifier=%00", "identifier"),
        (
            "/api/v3/core/tokens/",
            "user__username=%00",
            "user__username",
        ),
        ("/api/v3/crypto/certificatekeypairs/", "name=%00", "name"),
        ("/api/v3/core/brands/", "domain=%00", "domain"),
        ("/api/v3/events/events/", "action=%00", "action"),
        ("/api/v3/events/events/", "client_ip=%00", "client_ip"),
    ] {
        ctx.get(&format!("{path}?{query}"), a)
            .await
            .field_error(field);
    }
    // In a path: nothing can have such a name.
    for path in [
        "/api/v3/core/applications/wi%00ki/",
        "/api/v3/core/tokens/admin-token%00/",
        "/api/v3/core/users/%00/",
        "/api/v3/core/groups/%00/",
    ] {
        ctx.not_found(Method::GET, path, a, Body::None).await;
        ctx.not_found(Method::DELETE, path, a, Body::None).await;
        ctx.not_found(Method::PATCH, path, a, Body::Json(json!({"name": "x"})))
            .await;
    }
    ctx.not_found(
        Method::GET,
        "/api/v3/core/tokens/admin-token%00/view_key/",
        a,
        Body::None,
    )
    .await;
    // In JSON text fields.
    for (path, body, field) in [
        (
            "/api/v3/core/users/",
            json!({"username": "\u{0}", "name": "x"}),
            "username",
        ),
        ("/api/v3/core/groups/", json!({"name": "a\u{0}"}), "name"),
        (
            "/api/v3/core/applications/",
            json!({"name": "x", "slug": "x", "meta_publisher": "\u{0}"}),
            "meta_publisher",
        ),
        (
            "/api/v3/core/tokens/",
            json!({"identifier": "t\u{0}"}),
            "identifier",
        ),
        (
            "/api/v3/core/tokens/",
            json!({"identifier": "t", "description": "\u{0}"}),
            "description",
        ),
        (
            "/api/v3/core/brands/",
            json!({"domain": "a\u{0}.b"}),
            "domain",
        ),
        (
            "/api/v3/core/brands/",
            json!({"domain": "a.b", "branding_custom_css": "\u{0}"}),
            "branding_custom_css",
        ),
    ] {
        ctx.invalid(Method::POST, path, a, body, field).await;
    }
    // Nor inside JSON attributes (PostgreSQL's JSON cannot hold one either): refused the
    // same way on both databases, in values and in keys, however deep.
    for attrs in [
        json!({"note": "a\u{0}b"}),
        json!({"nested": {"k": ["\u{0}"]}}),
        json!({"key\u{0}": 1}),
    ] {
        for (path, body) in [
            (
                USERS,
                json!({"username": "attr", "name": "x", "attributes": attrs}),
            ),
            (
                "/api/v3/core/groups/",
                json!({"name": "attr", "attributes": attrs}),
            ),
            (
                "/api/v3/core/brands/",
                json!({"domain": "attr.example.com", "attributes": attrs}),
            ),
        ] {
            ctx.invalid(Method::POST, path, a, body, "attributes").await;
        }
        ctx.invalid(
            Method::PATCH,
            &format!("{USERS}{}/", ctx.app.admin_pk),
            a,
            json!({"attributes": attrs}),
            "attributes",
        )
        .await;
    }
    // A NUL in a password is just a character.
    ctx.post(
        &format!("{USERS}{}/set_password/", ctx.app.admin_pk),
        a,
        json!({"password": "nul\u{0}inside"}),
    )
    .await
    .no_content();
}

/// Page numbers beyond any table: 404, never an overflow.
async fn huge_page_numbers(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    for path in [
        "/api/v3/core/users/",
        "/api/v3/core/groups/",
        "/api/v3/core/applications/",
        "/api/v3/core/tokens/",
        "/api/v3/crypto/certificatekeypairs/",
        "/api/v3/core/brands/",
        "/api/v3/events/events/",
    ] {
        for query in [
            "?page=18446744073709551615",
            "?page=18446744073709551615&page_size=1000",
            "?page=9223372036854775807",
            "?page=9223372036854775808&page_size=2",
            "?page=4294967296&page_size=4294967296",
        ] {
            ctx.get(&format!("{path}{query}"), a)
                .await
                .detail(StatusCode::NOT_FOUND);
        }
        ctx.get(&format!("{path}?page=18446744073709551616"), a)
            .await
            .field_error("page");
        ctx.get(&format!("{path}?page_size=18446744073709551615"), a)
            .await
            .ok();
    }
}

/// Huge strings in fields and query strings: 400 naming the field, not 500.
async fn huge_strings(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let big = "x".repeat(LIMIT - 1000);
    for (path, body, field) in [
        (USERS, json!({"username": big, "name": "x"}), "username"),
        (USERS, json!({"username": "x", "name": big}), "name"),
        (
            USERS,
            json!({"username": "x", "name": "x", "email": format!("{big}@x.y")}),
            "email",
        ),
        (
            USERS,
            json!({"username": "x", "name": "x", "path": big}),
            "path",
        ),
        ("/api/v3/core/groups/", json!({"name": big}), "name"),
        (
            "/api/v3/core/applications/",
            json!({"name": "x", "slug": big}),
            "slug",
        ),
        (
            "/api/v3/core/applications/",
            json!({"name": "x", "slug": "x", "meta_launch_url": format!("https://{big}")}),
            "meta_launch_url",
        ),
        (
            "/api/v3/core/tokens/",
            json!({"identifier": big}),
            "identifier",
        ),
        ("/api/v3/core/brands/", json!({"domain": big}), "domain"),
        (
            "/api/v3/crypto/certificatekeypairs/",
            json!({"name": "x", "certificate_data": big}),
            "certificate_data",
        ),
        (
            "/api/v3/crypto/certificatekeypairs/generate/",
            json!({"common_name": big, "validity_days": 1}),
            "common_name",
        ),
    ] {
        ctx.invalid(Method::POST, path, a, body, field).await;
    }
    ctx.get(&format!("{USERS}?search={}", "s".repeat(2000)), a)
        .await
        .field_error("search");
    ctx.get(&format!("{USERS}?username={}", "u".repeat(5000)), a)
        .await
        .ok();
    ctx.get(&format!("{USERS}?unknown={}", "u".repeat(9000)), a)
        .await
        .detail(StatusCode::BAD_REQUEST);
    ctx.not_found(
        Method::GET,
        &format!("/api/v3/core/tokens/{}/", "t".repeat(10_000)),
        a,
        Body::None,
    )
    .await;
}

/// Broken encodings and odd JSON: 400, and nothing stored.
async fn broken_json(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let nested_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    for raw in [
        br#"{"username": "\ud800", "name": "x"}"#.to_vec(),
        b"\xef\xbb\xbf{\"username\": \"bom\", \"name\": \"x\"}".to_vec(),
        b"{\"username\": \"a\xffb\", \"name\": \"x\"}".to_vec(),
        br#"{"username": "x", "name": "x", "attributes": {"n": 1e400}}"#.to_vec(),
        br#"{"username": 'single', "name": "x"}"#.to_vec(),
        br#"{username: "x", "name": "x"}"#.to_vec(),
        nested_object.into_bytes(),
    ] {
        ctx.refused(
            Method::POST,
            USERS,
            Some(a),
            Body::raw_json(raw),
            StatusCode::BAD_REQUEST,
        )
        .await
        .detail(StatusCode::BAD_REQUEST);
    }
    // Nesting within serde's limit is fine and round-trips.
    let mut deep = json!("bottom");
    for _ in 0..100 {
        deep = json!({ "d": deep });
    }
    let u = ctx
        .post(
            USERS,
            a,
            json!({"username": "deep", "name": "x", "attributes": deep}),
        )
        .await;
    let back = ctx.get(&format!("{USERS}{}/", u.created()["pk"]), a).await;
    assert_eq!(back.ok()["attributes"], deep);
}

/// Unknown query parameters change nothing; invalid booleans in filters are 400s.
async fn query_parameters(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    for path in [
        "/api/v3/core/users/",
        "/api/v3/core/groups/",
        "/api/v3/core/applications/",
        "/api/v3/core/tokens/",
        "/api/v3/crypto/certificatekeypairs/",
        "/api/v3/core/brands/",
        "/api/v3/events/events/",
    ] {
        let plain = ctx.get(path, a).await;
        let odd = ctx
            .get(&format!("{path}?nonsense=1&flag&=empty&a[b]=c&%FF=%FE"), a)
            .await;
        assert_eq!(odd.ok()["pagination"], plain.ok()["pagination"], "{path}");
    }
    for (path, field) in [
        ("/api/v3/core/users/", "is_active"),
        ("/api/v3/core/users/", "include_groups"),
        ("/api/v3/core/users/", "include_roles"),
        ("/api/v3/core/groups/", "is_superuser"),
        ("/api/v3/core/groups/", "include_users"),
        ("/api/v3/core/groups/", "include_children"),
        ("/api/v3/crypto/certificatekeypairs/", "has_key"),
    ] {
        for value in ["maybe", "yes", "2", "tru"] {
            ctx.get(&format!("{path}?{field}={value}"), a)
                .await
                .field_error(field);
        }
    }
}

/// Racing writers get the answers sequential ones would: one winner for a unique name, no
/// error for an idempotent change, never a 500.
async fn concurrent_writes(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let rs = ctx
        .concurrently(8, |_| {
            (
                Method::POST,
                USERS.to_owned(),
                json!({"username": "racer", "name": "Racer"}),
            )
        })
        .await;
    assert_eq!(
        rs.iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        1
    );
    for r in rs.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.field_error("username");
    }
    assert_eq!(usernames(&ctx, "?username=racer").await.len(), 1);

    let group = ctx
        .post("/api/v3/core/groups/", a, json!({"name": "race"}))
        .await
        .created()["pk"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob, _) = ctx.app.regular_user("bob").await;
    for action in ["add_user", "remove_user"] {
        let rs = ctx
            .concurrently(8, |_| {
                (
                    Method::POST,
                    format!("/api/v3/core/groups/{group}/{action}/"),
                    json!({"pk": bob}),
                )
            })
            .await;
        for r in &rs {
            r.no_content();
        }
    }
    let g = ctx.get(&format!("/api/v3/core/groups/{group}/"), a).await;
    assert_eq!(g.ok()["users"], json!([]));

    // At most one brand is the default, however many ask for it at once.
    let rs = ctx
        .concurrently(6, |i| {
            (
                Method::POST,
                "/api/v3/core/brands/".to_owned(),
                json!({"domain": format!("b{i}.example.com"), "default": true}),
            )
        })
        .await;
    for r in &rs {
        r.created();
    }
    let brands = ctx.get("/api/v3/core/brands/", a).await;
    let defaults = brands
        .results()
        .iter()
        .filter(|b| b["default"] == true)
        .count();
    assert_eq!(defaults, 1, "{}", brands.text);
}

both_backends!(
    sql_like_search,
    nul_bytes,
    huge_page_numbers,
    concurrent_writes
);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn huge_strings() {
        super::huge_strings(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broken_json() {
        super::broken_json(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn query_parameters() {
        super::query_parameters(Backend::Sqlite).await
    }
}
