//! `core/tokens/`, looked up by identifier: CRUD, `view_key/` (a key that works, and a
//! `secret_view` event), default expiry, intents, and what a non-superuser may do (only their
//! own tokens).

use chrono::{DateTime, Utc};
use portcullis_testkit::both_backends;

use crate::common::*;

const TOKENS: &str = "/api/v3/core/tokens/";

fn token_path(id: &str) -> String {
    format!("{TOKENS}{id}/")
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

async fn view_key(ctx: &Ctx, id: &str, token: &str) -> String {
    let r = ctx
        .get(&format!("{}view_key/", token_path(id)), token)
        .await;
    r.ok()["key"].as_str().unwrap().to_owned()
}

async fn token_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let created = ctx
        .post(
            TOKENS,
            a,
            json!({"identifier": "ci-token", "intent": "api", "description": "CI", "expiring": true}),
        )
        .await;
    let t = created.created();
    assert!(t["pk"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(t["identifier"], "ci-token");
    assert_eq!(t["intent"], "api");
    assert_eq!(t["description"], "CI");
    assert_eq!(t["expiring"], true);
    assert_eq!(t["user"], ctx.app.admin_pk);
    assert_eq!(t["user_obj"]["username"], "admin");
    assert_eq!(t["managed"], Value::Null);
    assert!(t.get("key").is_none(), "the key is only shown by view_key");
    // authentik's default: an expiring token without an expiry lives 30 minutes.
    let left = parse_time(&t["expires"]) - ctx.app.state.clock.now();
    assert!(
        left > chrono::Duration::minutes(28) && left <= chrono::Duration::minutes(30),
        "{left}"
    );

    let key = view_key(&ctx, "ci-token", a).await;
    assert_eq!(key.len(), 64);
    assert!(!created.text.contains(&key));
    let me = ctx.get("/api/v3/core/users/me/", &key).await;
    assert_eq!(me.ok()["user"]["username"], "admin");
    let views = ctx.events("action=secret_view").await;
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["context"]["secret"]["name"], "ci-token");
    assert_eq!(views[0]["context"]["secret"]["model_name"], "token");
    assert!(!views[0].to_string().contains(&key));

    let forever = ctx
        .post(
            TOKENS,
            a,
            json!({"identifier": "forever", "expiring": false}),
        )
        .await;
    assert_eq!(forever.created()["expires"], Value::Null);
    assert_eq!(forever.body["expiring"], false);
    let dated = ctx
        .post(
            TOKENS,
            a,
            json!({"identifier": "dated", "expires": "2999-01-02T03:04:05Z", "intent": "app_password"}),
        )
        .await;
    assert_eq!(dated.created()["expires"], "2999-01-02T03:04:05.000000Z");
    assert_eq!(dated.body["intent"], "app_password");
    // An app password is no API token.
    let app_password = view_key(&ctx, "dated", a).await;
    let r = ctx
        .send(
            Method::GET,
            "/api/v3/core/users/me/",
            Some(&app_password),
            Body::None,
        )
        .await;
    assert_unauthorized(&r, "app_password token");

    let got = ctx.get(&token_path("ci-token"), a).await;
    assert_eq!(got.ok()["description"], "CI");
    let patched = ctx
        .patch(
            &token_path("ci-token"),
            a,
            json!({"description": "CI runner"}),
        )
        .await;
    assert_eq!(patched.ok()["description"], "CI runner");
    let put = ctx
        .put(
            &token_path("ci-token"),
            a,
            json!({"identifier": "ci-token-2", "expiring": false, "expires": null}),
        )
        .await;
    assert_eq!(put.ok()["identifier"], "ci-token-2");
    assert_eq!(put.body["expires"], Value::Null);
    ctx.not_found(Method::GET, &token_path("ci-token"), a, Body::None)
        .await;
    // The key survives a rename.
    assert_eq!(view_key(&ctx, "ci-token-2", a).await, key);

    let ids = |query: &'static str| {
        let ctx = &ctx;
        async move {
            let r = ctx.get(&format!("{TOKENS}{query}"), &ctx.admin).await;
            r.ok();
            r.column("identifier")
        }
    };
    assert_eq!(
        ids("").await,
        ["admin-token", "ci-token-2", "dated", "forever"]
    );
    assert_eq!(ids("?intent=app_password").await, ["dated"]);
    assert_eq!(ids("?identifier=forever").await, ["forever"]);
    assert_eq!(ids("?search=runner").await, ["ci-token-2"]);
    assert_eq!(ids("?user__username=nobody").await, Vec::<String>::new());
    assert_eq!(ids("?user__username=admin").await.len(), 4);
    ctx.get(&format!("{TOKENS}?intent=bogus"), a)
        .await
        .field_error("intent");

    // Deleting a token revokes it at once.
    ctx.delete(&token_path("ci-token-2"), a).await.no_content();
    let r = ctx
        .send(
            Method::GET,
            "/api/v3/core/users/me/",
            Some(&key),
            Body::None,
        )
        .await;
    assert_unauthorized(&r, "deleted token");
    ctx.not_found(Method::DELETE, &token_path("ci-token-2"), a, Body::None)
        .await;

    // An expiry in the past makes a token useless at once.
    ctx.post(
        TOKENS,
        a,
        json!({"identifier": "stale", "expires": "2000-01-01T00:00:00Z", "expiring": true}),
    )
    .await
    .created();
    let stale = view_key(&ctx, "stale", a).await;
    let r = ctx
        .send(
            Method::GET,
            "/api/v3/core/users/me/",
            Some(&stale),
            Body::None,
        )
        .await;
    assert_unauthorized(&r, "token created expired");
}

async fn token_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    ctx.post(TOKENS, a, json!({"identifier": "taken"}))
        .await
        .created();
    for (body, field) in [
        (json!({}), "identifier"),
        (json!({"identifier": ""}), "identifier"),
        (json!({"identifier": "has space"}), "identifier"),
        (json!({"identifier": "ünï"}), "identifier"),
        (json!({"identifier": "x".repeat(256)}), "identifier"),
        (json!({"identifier": "taken"}), "identifier"),
        (json!({"identifier": "t", "intent": "recovery"}), "intent"),
        (
            json!({"identifier": "t", "intent": "verification"}),
            "intent",
        ),
        (json!({"identifier": "t", "intent": "bogus"}), "intent"),
        (json!({"identifier": "t", "user": 999_999}), "user"),
        (json!({"identifier": "t", "user": "admin"}), "user"),
        (json!({"identifier": "t", "expires": "tomorrow"}), "expires"),
        (json!({"identifier": "t", "expiring": "no"}), "expiring"),
        (
            json!({"identifier": "t", "description": "d".repeat(4097)}),
            "description",
        ),
    ] {
        ctx.invalid(Method::POST, TOKENS, a, body, field).await;
    }
    let dup = ctx
        .invalid(
            Method::POST,
            TOKENS,
            a,
            json!({"identifier": "taken"}),
            "identifier",
        )
        .await;
    assert!(dup.messages("identifier")[0].contains("already exists"));

    ctx.post(TOKENS, a, json!({"identifier": "other"}))
        .await
        .created();
    for (method, body, field) in [
        (Method::PUT, json!({"description": "x"}), "identifier"),
        (Method::PATCH, json!({"identifier": "other"}), "identifier"),
        (Method::PATCH, json!({"identifier": "bad id"}), "identifier"),
        (Method::PATCH, json!({"intent": "recovery"}), "intent"),
        (Method::PATCH, json!({"user": 999_999}), "user"),
    ] {
        ctx.invalid(method, &token_path("taken"), a, body, field)
            .await;
    }
}

/// A regular user sees, creates and changes only their own tokens.
async fn regular_user_tokens(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let (bob, t) = ctx.app.regular_user("bob").await;

    let list = ctx.get(TOKENS, &t).await;
    list.ok();
    assert_eq!(list.count(), 1);
    assert_eq!(list.column("identifier"), ["bob-token"]);
    let filtered = ctx.get(&format!("{TOKENS}?user__username=admin"), &t).await;
    assert_eq!(filtered.ok()["pagination"]["count"], 0);

    let own = ctx
        .post(
            TOKENS,
            &t,
            json!({"identifier": "bob-cli", "intent": "app_password"}),
        )
        .await;
    assert_eq!(own.created()["user"], bob);
    let own_api = ctx
        .post(TOKENS, &t, json!({"identifier": "bob-api", "user": bob}))
        .await;
    assert_eq!(own_api.created()["user"], bob);
    let key = view_key(&ctx, "bob-api", &t).await;
    assert_eq!(
        ctx.get("/api/v3/core/users/me/", &key).await.ok()["user"]["username"],
        "bob"
    );
    assert_eq!(ctx.get(TOKENS, &t).await.count(), 3);
    ctx.patch(&token_path("bob-api"), &t, json!({"description": "mine"}))
        .await
        .ok();

    ctx.forbidden(
        Method::POST,
        TOKENS,
        &t,
        Body::Json(json!({"identifier": "for-admin", "user": ctx.app.admin_pk})),
    )
    .await;
    ctx.forbidden(
        Method::PATCH,
        &token_path("bob-api"),
        &t,
        Body::Json(json!({"user": ctx.app.admin_pk})),
    )
    .await;
    // Only superusers may make tokens that never expire.
    ctx.invalid(
        Method::POST,
        TOKENS,
        &t,
        json!({"identifier": "bob-forever", "expiring": false}),
        "expiring",
    )
    .await;
    ctx.invalid(
        Method::PATCH,
        &token_path("bob-api"),
        &t,
        json!({"expires": null}),
        "expires",
    )
    .await;
    let forever = ctx
        .post(
            TOKENS,
            a,
            json!({"identifier": "admin-forever", "expiring": false}),
        )
        .await;
    assert_eq!(forever.created()["expires"], Value::Null);
    // Only superusers may mark a token as managed by a blueprint.
    ctx.forbidden(
        Method::POST,
        TOKENS,
        &t,
        Body::Json(json!({"identifier": "bob-managed", "managed": "goauthentik.io/x"})),
    )
    .await;
    let admin_token = token_path("admin-token");
    ctx.not_found(Method::GET, &admin_token, &t, Body::None)
        .await;
    ctx.not_found(
        Method::GET,
        &format!("{admin_token}view_key/"),
        &t,
        Body::None,
    )
    .await;
    ctx.not_found(
        Method::PATCH,
        &admin_token,
        &t,
        Body::Json(json!({"description": "x"})),
    )
    .await;
    ctx.not_found(
        Method::PUT,
        &admin_token,
        &t,
        Body::Json(json!({"identifier": "admin-token"})),
    )
    .await;
    ctx.not_found(Method::DELETE, &admin_token, &t, Body::None)
        .await;
    // A superuser may make a token for someone else.
    let for_bob = ctx
        .post(TOKENS, a, json!({"identifier": "for-bob", "user": bob}))
        .await;
    assert_eq!(for_bob.created()["user"], bob);
    assert_eq!(for_bob.body["user_obj"]["username"], "bob");
    assert_eq!(ctx.get(TOKENS, &t).await.count(), 4);

    // Bob revokes his own token (the one he is using) and is logged out.
    ctx.delete(&token_path("bob-token"), &t).await.no_content();
    let r = ctx.send(Method::GET, TOKENS, Some(&t), Body::None).await;
    assert_unauthorized(&r, "revoked own token");
}

both_backends!(token_crud, token_validation, regular_user_tokens);
