//! `core/users/`: CRUD, filters and pages, `me/`, `set_password/`, and what a non-superuser
//! may see and change (only themselves; never their groups or activity).

use portcullis_testkit::both_backends;

use crate::common::*;

const USERS: &str = "/api/v3/core/users/";

fn user_path(pk: impl std::fmt::Display) -> String {
    format!("{USERS}{pk}/")
}

async fn create_user(ctx: &Ctx, body: Value) -> Value {
    ctx.post(USERS, &ctx.admin, body).await.created().clone()
}

async fn admin_group(ctx: &Ctx) -> String {
    let me = ctx.get(&format!("{USERS}me/"), &ctx.admin).await;
    me.ok()["user"]["groups"][0]["pk"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn user_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let eng = ctx
        .post("/api/v3/core/groups/", a, json!({"name": "eng"}))
        .await
        .created()["pk"]
        .clone();

    let u = create_user(
        &ctx,
        json!({
            "username": "alice", "name": "Alice Liddell", "email": "alice@example.com",
            "groups": [eng], "attributes": {"team": "blue"}, "path": "users/eng",
            "type": "external", "is_active": true, "unknown_field": "ignored",
        }),
    )
    .await;
    let pk = u["pk"].as_i64().unwrap();
    assert_eq!(u["username"], "alice");
    assert_eq!(u["name"], "Alice Liddell");
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["is_active"], true);
    assert_eq!(u["is_superuser"], false);
    assert_eq!(u["groups"], json!([eng]));
    assert_eq!(u["groups_obj"][0]["name"], "eng");
    assert_eq!(u["groups_obj"][0]["pk"], eng);
    assert_eq!(u["attributes"], json!({"team": "blue"}));
    assert_eq!(u["path"], "users/eng");
    assert_eq!(u["type"], "external");
    assert_eq!(u["last_login"], Value::Null);
    assert_eq!(u["roles"], json!([]));
    assert!(u["uuid"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    let uid = u["uid"].as_str().unwrap();
    assert!(
        uid.len() == 64 && uid.chars().all(|c| c.is_ascii_hexdigit()),
        "{uid}"
    );
    assert!(
        u["avatar"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    assert!(u["date_joined"].as_str().unwrap().ends_with('Z'));
    assert!(u.get("password").is_none(), "the hash must never be sent");
    assert_eq!(
        ctx.app
            .state
            .store
            .find_password_hash(pk as i32)
            .await
            .unwrap(),
        None
    );

    // Defaults when only the required fields are given.
    let min = create_user(&ctx, json!({"username": "minimal", "name": ""})).await;
    assert_eq!(min["is_active"], true);
    assert_eq!(min["path"], "users");
    assert_eq!(min["type"], "internal");
    assert_eq!(min["email"], "");
    assert_eq!(min["groups"], json!([]));

    let got = ctx.get(&user_path(pk), a).await;
    assert_eq!(got.ok()["username"], "alice");
    assert_eq!(got.body["groups_obj"][0]["name"], "eng");
    assert_eq!(got.body["uid"], uid);
    let slim = ctx
        .get(
            &format!("{}?include_groups=false&include_roles=false", user_path(pk)),
            a,
        )
        .await;
    assert_eq!(slim.ok()["groups_obj"], Value::Null);
    assert_eq!(slim.body["roles_obj"], Value::Null);
    assert_eq!(slim.body["groups"], json!([eng]));

    let put = ctx
        .put(
            &user_path(pk),
            a,
            json!({"username": "alice2", "name": "Alice Two", "groups": [], "is_active": false}),
        )
        .await;
    let put = put.ok();
    assert_eq!(put["username"], "alice2");
    assert_eq!(put["name"], "Alice Two");
    assert_eq!(put["groups"], json!([]));
    assert_eq!(put["is_active"], false);
    // PUT leaves what it does not name.
    assert_eq!(put["email"], "alice@example.com");

    let patched = ctx
        .patch(&user_path(pk), a, json!({"email": "a2@example.com"}))
        .await;
    assert_eq!(patched.ok()["email"], "a2@example.com");
    assert_eq!(patched.body["username"], "alice2");
    assert!(
        patched.body["last_updated"].as_str().unwrap() >= put["last_updated"].as_str().unwrap()
    );

    // Each change left an audit event naming the user.
    let events = ctx.events("").await;
    let pk_str = pk.to_string();
    let about_alice = |action: &str| {
        events
            .iter()
            .filter(|e| {
                e["action"] == action
                    && e["context"]["model"]["model_name"] == "user"
                    && e["context"]["model"]["pk"] == pk_str
            })
            .count()
    };
    assert_eq!(about_alice("model_created"), 1);
    assert_eq!(about_alice("model_updated"), 2);
    assert!(
        events
            .iter()
            .all(|e| e["action"] != "model_updated" || e["user"]["username"] == "admin")
    );

    ctx.delete(&user_path(pk), a).await.no_content();
    ctx.not_found(Method::GET, &user_path(pk), a, Body::None)
        .await;
    ctx.not_found(Method::DELETE, &user_path(pk), a, Body::None)
        .await;
    let deleted = ctx.events("action=model_deleted").await;
    assert_eq!(deleted[0]["context"]["model"]["pk"], pk.to_string());

    // Deleting a user takes its tokens with it: the key stops working.
    let (bob, bob_token) = ctx.app.regular_user("bob").await;
    ctx.get(&format!("{USERS}me/"), &bob_token).await.ok();
    ctx.delete(&user_path(bob), a).await.no_content();
    let r = ctx
        .send(
            Method::GET,
            &format!("{USERS}me/"),
            Some(&bob_token),
            Body::None,
        )
        .await;
    assert_unauthorized(&r, "deleted user's token");
}

async fn user_validation(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let nil = uuid::Uuid::new_v4().to_string();
    let cases = [
        (json!({}), "username"),
        (json!({}), "name"),
        (json!({"name": "x"}), "username"),
        (json!({"username": "x"}), "name"),
        (json!({"username": "", "name": "x"}), "username"),
        (json!({"username": " padded", "name": "x"}), "username"),
        (json!({"username": "padded ", "name": "x"}), "username"),
        (json!({"username": "nul\u{0}byte", "name": "x"}), "username"),
        (json!({"username": "bell\u{7}", "name": "x"}), "username"),
        (json!({"username": "new\nline", "name": "x"}), "username"),
        (json!({"username": "c1\u{85}ctl", "name": "x"}), "username"),
        (
            json!({"username": "x".repeat(151), "name": "x"}),
            "username",
        ),
        (
            json!({"username": "ü".repeat(151), "name": "x"}),
            "username",
        ),
        (json!({"username": 5, "name": "x"}), "username"),
        (json!({"username": null, "name": "x"}), "username"),
        (json!({"username": ["a"], "name": "x"}), "username"),
        (json!({"username": "x", "name": "x".repeat(257)}), "name"),
        (json!({"username": "x", "name": "nul\u{0}"}), "name"),
        (
            json!({"username": "x", "name": "x", "email": "nope"}),
            "email",
        ),
        (
            json!({"username": "x", "name": "x", "email": "a b@example.com"}),
            "email",
        ),
        (
            json!({"username": "x", "name": "x", "email": format!("{}@example.com", "a".repeat(250))}),
            "email",
        ),
        (
            json!({"username": "x", "name": "x", "path": "/abs"}),
            "path",
        ),
        (
            json!({"username": "x", "name": "x", "path": "a//b"}),
            "path",
        ),
        (json!({"username": "x", "name": "x", "path": ""}), "path"),
        (
            json!({"username": "x", "name": "x", "attributes": []}),
            "attributes",
        ),
        (
            json!({"username": "x", "name": "x", "attributes": "s"}),
            "attributes",
        ),
        (
            json!({"username": "x", "name": "x", "attributes": {"big": "x".repeat(300 * 1024)}}),
            "attributes",
        ),
        (
            json!({"username": "x", "name": "x", "roles": [nil]}),
            "roles",
        ),
        (
            json!({"username": "x", "name": "x", "type": "admin"}),
            "type",
        ),
        (
            json!({"username": "x", "name": "x", "groups": [nil]}),
            "groups",
        ),
        (
            json!({"username": "x", "name": "x", "groups": ["nope"]}),
            "groups",
        ),
        (
            json!({"username": "x", "name": "x", "groups": "nope"}),
            "groups",
        ),
        (
            json!({"username": "x", "name": "x", "is_active": "yes"}),
            "is_active",
        ),
        (
            json!({"username": "x", "name": "x", "last_login": "yesterday"}),
            "last_login",
        ),
        (json!({"username": "admin", "name": "Copy"}), "username"),
        // Look-alikes of another account: bidi override and zero-width space.
        (
            json!({"username": "admin\u{202E}", "name": "x"}),
            "username",
        ),
        (
            json!({"username": "ad\u{200B}min", "name": "x"}),
            "username",
        ),
    ];
    for (body, field) in cases {
        ctx.invalid(Method::POST, USERS, a, body, field).await;
    }
    let dup = ctx
        .invalid(
            Method::POST,
            USERS,
            a,
            json!({"username": "admin", "name": "x"}),
            "username",
        )
        .await;
    assert!(dup.messages("username")[0].contains("already exists"));

    let pk = create_user(&ctx, json!({"username": "alice", "name": "Alice"})).await["pk"].clone();
    let p = user_path(&pk);
    for (method, body, field) in [
        (Method::PUT, json!({"name": "x"}), "username"),
        (Method::PUT, json!({"username": "alice"}), "name"),
        (Method::PATCH, json!({"username": "admin"}), "username"),
        (Method::PATCH, json!({"username": ""}), "username"),
        (Method::PATCH, json!({"email": "bad"}), "email"),
        (Method::PATCH, json!({"groups": [nil]}), "groups"),
        (Method::PATCH, json!({"type": 3}), "type"),
        (Method::PATCH, json!({"attributes": [1]}), "attributes"),
        (Method::PATCH, json!({"name": "x".repeat(10_000)}), "name"),
    ] {
        ctx.invalid(method, &p, a, body, field).await;
    }

    // Unicode letters are fine, up to 150 of them whatever their byte length.
    for name in ["jürgen", "用户", "emoji-😀", &"ü".repeat(150)] {
        let u = create_user(&ctx, json!({"username": name, "name": "Ünïcødé"})).await;
        assert_eq!(u["username"], name);
        let back = ctx.get(&user_path(&u["pk"]), a).await;
        assert_eq!(back.ok()["username"], name);
        assert_eq!(back.body["name"], "Ünïcødé");
    }
}

async fn set_password(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let u = create_user(&ctx, json!({"username": "alice", "name": "Alice"})).await;
    let pk = u["pk"].as_i64().unwrap() as i32;
    let p = format!("{}set_password/", user_path(pk));
    let store = &ctx.app.state.store;
    assert_eq!(store.find_password_hash(pk).await.unwrap(), None);

    ctx.post(&p, a, json!({"password": "first Passw0rd!"}))
        .await
        .no_content();
    let first = store.find_password_hash(pk).await.unwrap().unwrap();
    assert!(first.starts_with("$argon2id$"), "{first}");
    assert!(!first.contains("first Passw0rd!"));
    let after_first = ctx.get(&user_path(pk), a).await.ok().clone();
    assert!(after_first["password_change_date"].as_str() >= u["password_change_date"].as_str());

    ctx.post(&p, a, json!({"password": "second Passw0rd!"}))
        .await
        .no_content();
    let second = store.find_password_hash(pk).await.unwrap().unwrap();
    assert_ne!(first, second, "the stored hash must change");
    assert!(portcullis_crypto::verify_password(&second, "second Passw0rd!").valid);

    let events = ctx.events("action=password_set").await;
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e["context"]["user"]["pk"], pk);
        assert_eq!(e["context"]["user"]["username"], "alice");
        assert_eq!(e["user"]["username"], "admin");
        let text = e.to_string();
        assert!(
            !text.contains("Passw0rd") && !text.contains("argon2"),
            "{text}"
        );
    }

    for (body, field) in [
        (json!({"password": ""}), "password"),
        (json!({}), "password"),
        (json!({"password": null}), "password"),
        (json!({"password": 12345}), "password"),
        (json!({"password": "x".repeat(1025)}), "password"),
    ] {
        ctx.invalid(Method::POST, &p, a, body, field).await;
    }
    assert_eq!(store.find_password_hash(pk).await.unwrap().unwrap(), second);

    // The longest accepted password, with characters of every kind.
    ctx.post(
        &p,
        a,
        json!({"password": format!("\u{0}ü'\"\\{}", "x".repeat(1017))}),
    )
    .await
    .no_content();

    // A regular user may set their own password, not anyone else's.
    let (bob, bob_token) = ctx.app.regular_user("bob").await;
    ctx.post(
        &format!("{}set_password/", user_path(bob)),
        &bob_token,
        json!({"password": "bob's own"}),
    )
    .await
    .no_content();
    assert!(store.find_password_hash(bob).await.unwrap().is_some());
    ctx.not_found(
        Method::POST,
        &p,
        &bob_token,
        Body::Json(json!({"password": "taken over"})),
    )
    .await;
    ctx.not_found(
        Method::POST,
        &format!("{}set_password/", user_path(ctx.app.admin_pk)),
        &bob_token,
        Body::Json(json!({"password": "taken over"})),
    )
    .await;
}

async fn me(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let me = ctx.get(&format!("{USERS}me/"), &ctx.admin).await;
    let user = &me.ok()["user"];
    assert_eq!(user["username"], "admin");
    assert_eq!(user["pk"], ctx.app.admin_pk);
    assert_eq!(user["is_superuser"], true);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["groups"][0]["name"], portcullis_core::ADMIN_GROUP_NAME);
    assert!(
        user["system_permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("access_admin_interface"))
    );
    assert_eq!(me.body["users"].as_array().unwrap().len(), 1);

    let (bob, bob_token) = ctx.app.regular_user("bob").await;
    let me = ctx.get(&format!("{USERS}me/"), &bob_token).await;
    let user = &me.ok()["user"];
    assert_eq!(user["username"], "bob");
    assert_eq!(user["pk"], bob);
    assert_eq!(user["is_superuser"], false);
    assert_eq!(user["groups"], json!([]));
    assert_eq!(user["system_permissions"], json!([]));
    assert_eq!(user["settings"], json!({}));
}

async fn list_filters_and_pages(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    for name in ["eng", "ops"] {
        ctx.post("/api/v3/core/groups/", a, json!({"name": name}))
            .await
            .created();
    }
    let group = |name: &str| {
        let ctx = &ctx;
        let name = name.to_owned();
        async move {
            ctx.get(&format!("/api/v3/core/groups/?name={name}"), &ctx.admin)
                .await
                .results()[0]["pk"]
                .clone()
        }
    };
    let (eng, ops) = (group("eng").await, group("ops").await);
    for body in [
        json!({"username": "alice", "name": "Alice Liddell", "email": "alice@example.com", "groups": [eng]}),
        json!({"username": "bob", "name": "Bob", "email": "bob@example.org", "is_active": false, "type": "external"}),
        json!({"username": "carol", "name": "Carol", "type": "service_account", "groups": [ops]}),
        json!({"username": "dave", "name": "Dave", "groups": [eng, ops]}),
    ] {
        create_user(&ctx, body).await;
    }
    let names = |query: String| {
        let ctx = &ctx;
        async move {
            let r = ctx.get(&format!("{USERS}{query}"), &ctx.admin).await;
            r.ok();
            r.column("username")
        }
    };
    let all = ["admin", "alice", "bob", "carol", "dave"];
    assert_eq!(names(String::new()).await, all);
    for (query, want) in [
        (qs(&[("username", "alice")]), vec!["alice"]),
        (qs(&[("username", "ALICE")]), vec![]),
        (qs(&[("email", "bob@example.org")]), vec!["bob"]),
        (qs(&[("is_active", "false")]), vec!["bob"]),
        (qs(&[("is_active", "False")]), vec!["bob"]),
        (qs(&[("is_active", "0")]), vec!["bob"]),
        (
            qs(&[("is_active", "true")]),
            vec!["admin", "alice", "carol", "dave"],
        ),
        (qs(&[("groups_by_name", "eng")]), vec!["alice", "dave"]),
        (
            qs(&[("groups_by_name", "eng"), ("groups_by_name", "ops")]),
            vec!["alice", "carol", "dave"],
        ),
        (qs(&[("groups_by_name", "nope")]), vec![]),
        (qs(&[("type", "external")]), vec!["bob"]),
        (
            qs(&[("type", "external"), ("type", "service_account")]),
            vec!["bob", "carol"],
        ),
        (qs(&[("search", "LIDD")]), vec!["alice"]),
        (qs(&[("search", "example.org")]), vec!["bob"]),
        (qs(&[("search", "zzz")]), vec![]),
        (
            qs(&[
                ("is_active", "true"),
                ("groups_by_name", "eng"),
                ("search", "dav"),
            ]),
            vec!["dave"],
        ),
        (
            qs(&[("ordering", "-username")]),
            vec!["dave", "carol", "bob", "alice", "admin"],
        ),
        (qs(&[("ordering", "username")]), all.to_vec()),
        (
            qs(&[("ordering", "-pk")]),
            vec!["dave", "carol", "bob", "alice", "admin"],
        ),
        (qs(&[("ordering", "no_such_field")]), all.to_vec()),
        (qs(&[("ordering", "password")]), all.to_vec()),
        (
            qs(&[("unknown_param", "whatever"), ("format", "xml")]),
            all.to_vec(),
        ),
        (qs(&[("page_size", "0")]), vec!["admin"]),
        (qs(&[("page_size", "100000")]), all.to_vec()),
        (qs(&[("page", "")]), all.to_vec()),
    ] {
        assert_eq!(names(query.clone()).await, want, "{query}");
    }

    let page = ctx.get(&format!("{USERS}?page_size=2&page=1"), a).await;
    assert_eq!(page.column("username"), ["admin", "alice"]);
    assert_eq!(
        page.body["pagination"],
        json!({"next": 2, "previous": 0, "count": 5, "current": 1, "total_pages": 3,
               "start_index": 1, "end_index": 2})
    );
    assert_eq!(page.body["autocomplete"], json!({}));
    let last = ctx.get(&format!("{USERS}?page_size=2&page=3"), a).await;
    assert_eq!(last.column("username"), ["dave"]);
    assert_eq!(
        last.body["pagination"],
        json!({"next": 0, "previous": 2, "count": 5, "current": 3, "total_pages": 3,
               "start_index": 5, "end_index": 5})
    );
    let empty = ctx.get(&format!("{USERS}?username=nobody"), a).await;
    assert_eq!(
        empty.ok()["pagination"],
        json!({"next": 0, "previous": 0, "count": 0, "current": 1, "total_pages": 1,
               "start_index": 0, "end_index": 0})
    );

    for query in ["?page_size=2&page=4", "?page=2", "?page=0", "?page=99999"] {
        ctx.get(&format!("{USERS}{query}"), a)
            .await
            .detail(StatusCode::NOT_FOUND);
    }
    for (query, field) in [
        ("?page=-1", "page"),
        ("?page=x", "page"),
        ("?page=1.5", "page"),
        ("?page_size=x", "page_size"),
        ("?page_size=-3", "page_size"),
        ("?is_active=maybe", "is_active"),
        ("?is_active=yes", "is_active"),
        ("?include_groups=nah", "include_groups"),
        ("?type=bogus", "type"),
        ("?uuid=not-a-uuid", "uuid"),
        ("?groups_by_pk=nope", "groups_by_pk"),
    ] {
        ctx.get(&format!("{USERS}{query}"), a)
            .await
            .field_error(field);
    }
}

/// A regular user sees and changes only themselves, and never their own privileges.
async fn regular_user_sees_only_themselves(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    let a = &ctx.admin;
    let alice = create_user(&ctx, json!({"username": "alice", "name": "Alice"})).await["pk"]
        .as_i64()
        .unwrap();
    let (bob, t) = ctx.app.regular_user("bob").await;
    let admins = admin_group(&ctx).await;

    let list = ctx.get(USERS, &t).await;
    list.ok();
    assert_eq!(list.count(), 1);
    assert_eq!(list.column("username"), ["bob"]);
    for query in ["?username=admin", "?username=alice", "?pk=1", "?search=a"] {
        let r = ctx.get(&format!("{USERS}{query}"), &t).await;
        r.ok();
        assert!(
            r.column("username").iter().all(|u| u == "bob"),
            "{query}: {}",
            r.text
        );
    }
    ctx.get(&format!("{USERS}?page=2"), &t)
        .await
        .detail(StatusCode::NOT_FOUND);

    ctx.get(&user_path(bob), &t).await.ok();
    for other in [alice, i64::from(ctx.app.admin_pk)] {
        let p = user_path(other);
        ctx.not_found(Method::GET, &p, &t, Body::None).await;
        ctx.not_found(Method::PATCH, &p, &t, Body::Json(json!({"name": "x"})))
            .await;
        ctx.not_found(
            Method::PUT,
            &p,
            &t,
            Body::Json(json!({"username": "x", "name": "x"})),
        )
        .await;
        ctx.not_found(Method::DELETE, &p, &t, Body::None).await;
    }

    let own = user_path(bob);
    for body in [
        json!({"groups": [admins]}),
        json!({"groups": []}),
        json!({"is_active": false}),
        json!({"is_active": true}),
        json!({"type": "service_account"}),
        json!({"path": "elsewhere"}),
        json!({"attributes": {"settings": {}}}),
        json!({"username": "bobby"}),
        json!({"roles": []}),
        json!({"name": "Sneaky", "groups": [admins]}),
    ] {
        ctx.forbidden(Method::PATCH, &own, &t, Body::Json(body))
            .await;
    }
    ctx.forbidden(
        Method::PUT,
        &own,
        &t,
        Body::Json(json!({"username": "bob", "name": "B", "groups": [admins]})),
    )
    .await;
    ctx.forbidden(Method::DELETE, &own, &t, Body::None).await;
    ctx.forbidden(
        Method::POST,
        USERS,
        &t,
        Body::Json(json!({"username": "new", "name": "New"})),
    )
    .await;

    let r = ctx.patch(&own, &t, json!({"name": "Bobby Tables"})).await;
    assert_eq!(r.ok()["name"], "Bobby Tables");
    assert_eq!(r.body["is_superuser"], false);
    let r = ctx
        .patch(
            &own,
            &t,
            json!({"username": "bob", "email": "bob@example.com"}),
        )
        .await;
    assert_eq!(r.ok()["email"], "bob@example.com");
    let r = ctx
        .put(&own, &t, json!({"username": "bob", "name": "Bob"}))
        .await;
    assert_eq!(r.ok()["name"], "Bob");
    ctx.invalid(Method::PATCH, &own, &t, json!({"email": "nope"}), "email")
        .await;

    // Once a superuser adds bob to a superuser group, bob sees everyone; and not after.
    ctx.patch(&own, a, json!({"groups": [admins]})).await.ok();
    let me = ctx.get(&format!("{USERS}me/"), &t).await;
    assert_eq!(me.ok()["user"]["is_superuser"], true);
    assert_eq!(ctx.get(USERS, &t).await.count(), 3);
    ctx.patch(&own, a, json!({"groups": []})).await.ok();
    assert_eq!(ctx.get(USERS, &t).await.count(), 1);
}

both_backends!(
    user_crud,
    user_validation,
    set_password,
    me,
    list_filters_and_pages,
    regular_user_sees_only_themselves,
);
