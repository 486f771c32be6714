//! The store contract, run against SQLite and PostgreSQL alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_core::*;
use portcullis_store::{EventFilter, GroupFilter, ListQuery, StoreError, UserFilter};
use portcullis_testkit::{Backend, both_backends, test_store};

fn actor() -> Actor {
    Actor {
        user: Some(EventUser {
            pk: 0,
            email: String::new(),
            username: "tester".into(),
        }),
        client_ip: Some("127.0.0.1".into()),
        brand: None,
    }
}

async fn users_round_trip(b: Backend) {
    let (store, _db) = test_store(b).await;
    let admins = store
        .create_group(
            NewGroup {
                name: "admins".into(),
                is_superuser: true,
                parent: None,
                attributes: serde_json::json!({}),
                users: vec![],
            },
            &actor(),
        )
        .await
        .unwrap();
    let mut n = NewUser::named("alice");
    n.email = "alice@example.com".into();
    n.groups = vec![admins.group.uuid];
    n.password_hash = Some("$argon2id$fake".into());
    let u = store.create_user(n, &actor()).await.unwrap();
    assert!(u.user.is_superuser);
    assert!(u.user.has_password);
    assert_eq!(u.groups.len(), 1);

    let dup = store.create_user(NewUser::named("alice"), &actor()).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict { ref field }) if field == "username"),
        "{dup:?}"
    );

    let found = store.find_user_by_username("alice").await.unwrap();
    assert_eq!(found.user.uuid, u.user.uuid);
    assert_eq!(
        store
            .find_password_hash(u.user.pk)
            .await
            .unwrap()
            .as_deref(),
        Some("$argon2id$fake")
    );
    // An upgrade applies only over the hash that was checked: a reset in between wins.
    assert!(
        !store
            .upgrade_password_hash(u.user.pk, "pbkdf2_sha256$other", "new1".into())
            .await
            .unwrap()
    );
    assert!(
        store
            .upgrade_password_hash(u.user.pk, "$argon2id$fake", "new2".into())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .find_password_hash(u.user.pk)
            .await
            .unwrap()
            .as_deref(),
        Some("new2")
    );
    store
        .set_password(u.user.pk, Some("$argon2id$fake".into()), &actor())
        .await
        .unwrap();

    let patched = store
        .update_user(
            u.user.pk,
            UserPatch {
                name: Some("Alice A.".into()),
                groups: Some(vec![]),
                ..Default::default()
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(patched.user.name, "Alice A.");
    assert!(!patched.user.is_superuser);

    // A failed update changes nothing.
    let bad = store
        .update_user(
            u.user.pk,
            UserPatch {
                name: Some("x".into()),
                groups: Some(vec![uuid::Uuid::new_v4()]),
                ..Default::default()
            },
            &actor(),
        )
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidReference { .. })));
    assert_eq!(
        store.find_user(u.user.pk).await.unwrap().user.name,
        "Alice A."
    );

    store.delete_user(u.user.pk, &actor()).await.unwrap();
    assert!(matches!(
        store.find_user(u.user.pk).await,
        Err(StoreError::NotFound)
    ));
}

async fn user_lists_filter_search_and_page(b: Backend) {
    let (store, _db) = test_store(b).await;
    let g = store
        .create_group(
            NewGroup {
                name: "staff".into(),
                is_superuser: false,
                parent: None,
                attributes: serde_json::json!({}),
                users: vec![],
            },
            &actor(),
        )
        .await
        .unwrap();
    for i in 0..25 {
        let mut n = NewUser::named(&format!("user{i:02}"));
        n.email = format!("u{i}@Example.com");
        n.is_active = i % 2 == 0;
        if i < 3 {
            n.groups = vec![g.group.uuid];
        }
        store.create_user(n, &actor()).await.unwrap();
    }
    let q = ListQuery {
        page: PageRequest {
            page: 2,
            page_size: 10,
        },
        ..Default::default()
    };
    let p = store.list_users(&UserFilter::default(), &q).await.unwrap();
    assert_eq!(p.count, 25);
    assert_eq!(p.items.len(), 10);
    assert_eq!(p.items[0].user.username, "user10");

    let active = store
        .list_users(
            &UserFilter {
                is_active: Some(true),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(active.count, 13);
    let staff = store
        .list_users(
            &UserFilter {
                groups_by_name: vec!["staff".into()],
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(staff.count, 3);
    let search = store
        .list_users(
            &UserFilter::default(),
            &ListQuery {
                search: Some("U1@EXAMPLE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(search.count, 1, "case-insensitive search on email");
    let pct = store
        .list_users(
            &UserFilter::default(),
            &ListQuery {
                search: Some("%".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(pct.count, 0, "LIKE wildcards are escaped");
    let desc = store
        .list_users(
            &UserFilter::default(),
            &ListQuery {
                ordering: Ordering::parse("-username"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(desc.items[0].user.username, "user24");
}

async fn groups_membership_and_parents(b: Backend) {
    let (store, _db) = test_store(b).await;
    let u = store
        .create_user(NewUser::named("bob"), &actor())
        .await
        .unwrap();
    let parent = store
        .create_group(
            NewGroup {
                name: "parent".into(),
                is_superuser: false,
                parent: None,
                attributes: serde_json::json!({}),
                users: vec![],
            },
            &actor(),
        )
        .await
        .unwrap();
    let child = store
        .create_group(
            NewGroup {
                name: "child".into(),
                is_superuser: false,
                parent: Some(parent.group.uuid),
                attributes: serde_json::json!({"a": 1}),
                users: vec![u.user.pk],
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(child.group.parent, Some(parent.group.uuid));
    assert_eq!(child.parent_name.as_deref(), Some("parent"));
    assert_eq!(child.users.len(), 1);

    // A loop is refused and changes nothing.
    let looped = store
        .update_group(
            parent.group.uuid,
            GroupPatch {
                parent: Some(Some(child.group.uuid)),
                ..Default::default()
            },
            &actor(),
        )
        .await;
    assert!(matches!(looped, Err(StoreError::InvalidReference { ref field }) if field == "parent"));
    assert_eq!(
        store
            .find_group(parent.group.uuid)
            .await
            .unwrap()
            .group
            .parent,
        None
    );

    store
        .add_user_to_group(parent.group.uuid, u.user.pk, &actor())
        .await
        .unwrap();
    store
        .add_user_to_group(parent.group.uuid, u.user.pk, &actor())
        .await
        .unwrap();
    assert_eq!(store.find_user(u.user.pk).await.unwrap().groups.len(), 2);
    let of_bob = store
        .list_groups(
            &GroupFilter {
                members_by_username: vec!["bob".into()],
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(of_bob.count, 2);
    store
        .remove_user_from_group(parent.group.uuid, u.user.pk, &actor())
        .await
        .unwrap();
    assert_eq!(store.find_user(u.user.pk).await.unwrap().groups.len(), 1);

    store
        .delete_group(parent.group.uuid, &actor())
        .await
        .unwrap();
    assert_eq!(
        store
            .find_group(child.group.uuid)
            .await
            .unwrap()
            .group
            .parent,
        None
    );
}

async fn superuser_status_is_inherited_from_parent_groups(b: Backend) {
    let (store, _db) = test_store(b).await;
    let g = |name: &str, su: bool, parent: Option<uuid::Uuid>| NewGroup {
        name: name.into(),
        is_superuser: su,
        parent,
        attributes: serde_json::json!({}),
        users: vec![],
    };
    let admins = store
        .create_group(g("admins", true, None), &actor())
        .await
        .unwrap();
    let ops = store
        .create_group(g("ops", false, Some(admins.group.uuid)), &actor())
        .await
        .unwrap();
    let oncall = store
        .create_group(g("oncall", false, Some(ops.group.uuid)), &actor())
        .await
        .unwrap();
    let plain = store
        .create_group(g("plain", false, None), &actor())
        .await
        .unwrap();
    let mut n = NewUser::named("deep");
    n.groups = vec![oncall.group.uuid];
    let deep = store.create_user(n, &actor()).await.unwrap();
    assert!(
        deep.user.is_superuser,
        "member of a grandchild of a superuser group"
    );
    let mut n = NewUser::named("flat");
    n.groups = vec![plain.group.uuid];
    assert!(
        !store
            .create_user(n, &actor())
            .await
            .unwrap()
            .user
            .is_superuser
    );
    let listed = store
        .list_users(
            &UserFilter {
                username: Some("deep".into()),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert!(listed.items[0].user.is_superuser);
    // Cutting the chain takes it away.
    store
        .update_group(
            ops.group.uuid,
            GroupPatch {
                parent: Some(None),
                ..Default::default()
            },
            &actor(),
        )
        .await
        .unwrap();
    assert!(
        !store
            .find_user(deep.user.pk)
            .await
            .unwrap()
            .user
            .is_superuser
    );
}

async fn tokens_by_hash(b: Backend) {
    let (store, _db) = test_store(b).await;
    let u = store
        .create_user(NewUser::named("carol"), &actor())
        .await
        .unwrap();
    let t = store
        .create_token(
            NewToken {
                identifier: "carol-api".into(),
                intent: TokenIntent::Api,
                user_pk: u.user.pk,
                description: String::new(),
                expires: None,
                expiring: false,
                managed: None,
                key: "k".into(),
            },
            "hash1".into(),
            "enc1".into(),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.find_token_by_key_hash("hash1").await.unwrap().uuid,
        t.uuid
    );
    assert!(matches!(
        store.find_token_by_key_hash("nope").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.view_token_key("carol-api", &actor()).await.unwrap(),
        "enc1"
    );
    let views = store
        .list_events(
            &EventFilter {
                action: Some("secret_view".into()),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(views.count, 1);
    // Deleting the user removes its tokens.
    store.delete_user(u.user.pk, &actor()).await.unwrap();
    assert!(matches!(
        store.find_token("carol-api").await,
        Err(StoreError::NotFound)
    ));
}

async fn applications_and_brands(b: Backend) {
    let (store, _db) = test_store(b).await;
    let app = Application {
        uuid: uuid::Uuid::nil(),
        name: "Wiki".into(),
        slug: "wiki".into(),
        provider: None,
        group: String::new(),
        meta_launch_url: String::new(),
        meta_description: String::new(),
        meta_publisher: String::new(),
        meta_icon: None,
        policy_engine_mode: PolicyEngineMode::Any,
        open_in_new_tab: false,
        meta_hide: false,
    };
    store
        .create_application(app.clone(), &actor())
        .await
        .unwrap();
    assert!(
        matches!(store.create_application(app, &actor()).await, Err(StoreError::Conflict { ref field }) if field == "slug")
    );
    let renamed = store
        .update_application(
            "wiki",
            ApplicationPatch {
                slug: Some("wiki2".into()),
                ..Default::default()
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(renamed.slug, "wiki2");

    let mut b1 = Brand::fallback();
    b1.uuid = uuid::Uuid::nil();
    b1.domain = "a.example".into();
    b1.default = true;
    let b1 = store.create_brand(b1, &actor()).await.unwrap();
    let mut b2 = Brand::fallback();
    b2.uuid = uuid::Uuid::nil();
    b2.domain = "b.example".into();
    b2.default = true;
    store.create_brand(b2, &actor()).await.unwrap();
    assert!(
        !store.find_brand(b1.uuid).await.unwrap().default,
        "one default brand at a time"
    );
}

async fn events_record_changes(b: Backend) {
    let (store, _db) = test_store(b).await;
    store
        .create_user(NewUser::named("dave"), &actor())
        .await
        .unwrap();
    let created = store
        .list_events(
            &EventFilter {
                action: Some("model_created".into()),
                username: Some("tester".into()),
                client_ip: Some("127.0.0.1".into()),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(created.count, 1);
    assert_eq!(created.items[0].context["model"]["name"], "dave");
    // A failed create records nothing.
    let _ = store.create_user(NewUser::named("dave"), &actor()).await;
    let all = store
        .list_events(&EventFilter::default(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.count, 1);
}

async fn migrate_twice_is_a_no_op(b: Backend) {
    let (store, _db) = test_store(b).await;
    store
        .create_user(NewUser::named("erin"), &actor())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(store.find_user_by_username("erin").await.is_ok());
}

async fn concurrent_writers_all_succeed(b: Backend) {
    let (store, _db) = test_store(b).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                store
                    .create_user(NewUser::named(&format!("w{w}-{i}")), &Actor::system())
                    .await?;
                store
                    .list_users(&UserFilter::default(), &ListQuery::default())
                    .await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = store
        .list_users(&UserFilter::default(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.count, 120);
}

/// m0002 adds a one-default index; a database that lost the race it closes (several default
/// brands) keeps only its newest default, and every brand.
async fn one_default_brand_migration(b: Backend) {
    use portcullis_store::entity::brand;
    use sea_orm::{EntityTrait, Set};
    use sea_orm_migration::MigratorTrait;

    let db = portcullis_testkit::test_db(b).await;
    let url = match b {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let conn = sea_orm::Database::connect(&url).await.unwrap();
    portcullis_store::migration::Migrator::up(&conn, Some(1))
        .await
        .unwrap();
    // Rows as migration 1 knew them: the entity has grown columns since, so nothing is read
    // back (no RETURNING).
    for (domain, default) in [
        ("a.example", true),
        ("b.example", false),
        ("c.example", true),
    ] {
        let row = brand::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4()),
            domain: Set(domain.to_owned()),
            is_default: Set(default),
            branding_title: Set(String::new()),
            branding_logo: Set(String::new()),
            branding_favicon: Set(String::new()),
            branding_custom_css: Set(String::new()),
            branding_default_flow_background: Set(String::new()),
            web_certificate: Set(None),
            attributes: Set(serde_json::json!({})),
            ..Default::default()
        };
        brand::Entity::insert(row)
            .exec_without_returning(&conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    let store = portcullis_store::Store::connect(
        &db.url,
        &portcullis_store::StoreOptions::default(),
        std::sync::Arc::new(SystemClock),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let mut brands = store.all_brands().await.unwrap();
    brands.sort_by(|x, y| x.domain.cmp(&y.domain));
    let defaults: Vec<(&str, bool)> = brands
        .iter()
        .map(|b| (b.domain.as_str(), b.default))
        .collect();
    assert_eq!(
        defaults,
        [
            ("a.example", false),
            ("b.example", false),
            ("c.example", true)
        ]
    );
    // The index holds from now on; the store still moves the default when asked.
    let mut a = brands[0].clone();
    a.default = true;
    store.update_brand(a.uuid, a, &actor()).await.unwrap();
    let now: Vec<bool> = {
        let mut all = store.all_brands().await.unwrap();
        all.sort_by(|x, y| x.domain.cmp(&y.domain));
        all.iter().map(|b| b.default).collect()
    };
    assert_eq!(now, [true, false, false]);
}

async fn unit_of_work_is_all_or_nothing(b: Backend) {
    let (store, _db) = test_store(b).await;
    // Committed: every change lands, events included.
    let unit = store.begin_unit().await.unwrap();
    let g = unit
        .store()
        .create_group(
            NewGroup {
                name: "unit".into(),
                is_superuser: false,
                parent: None,
                attributes: serde_json::json!({}),
                users: vec![],
            },
            &actor(),
        )
        .await
        .unwrap();
    let mut n = NewUser::named("in-unit");
    n.groups = vec![g.group.uuid];
    unit.store().create_user(n, &actor()).await.unwrap();
    // The unit sees its own writes; others do not yet (on PostgreSQL; SQLite readers use
    // another connection, so the same holds).
    assert!(unit.store().find_user_by_username("in-unit").await.is_ok());
    assert!(matches!(
        store.find_user_by_username("in-unit").await,
        Err(StoreError::NotFound)
    ));
    unit.commit().await.unwrap();
    assert_eq!(
        store
            .find_user_by_username("in-unit")
            .await
            .unwrap()
            .groups
            .len(),
        1
    );

    // A failure inside a unit leaves the unit usable (savepoint), and a rollback undoes all.
    let before = store.snapshot().await.unwrap();
    let unit = store.begin_unit().await.unwrap();
    unit.store()
        .create_user(NewUser::named("rolled-back"), &actor())
        .await
        .unwrap();
    let dup = unit
        .store()
        .create_user(NewUser::named("in-unit"), &actor())
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })));
    assert!(
        unit.store()
            .find_user_by_username("rolled-back")
            .await
            .is_ok(),
        "savepoint kept earlier work"
    );
    unit.rollback().await.unwrap();
    assert_eq!(store.snapshot().await.unwrap(), before);

    // Dropping a unit rolls it back too.
    {
        let unit = store.begin_unit().await.unwrap();
        unit.store()
            .create_user(NewUser::named("dropped"), &actor())
            .await
            .unwrap();
    }
    assert!(matches!(
        store.find_user_by_username("dropped").await,
        Err(StoreError::NotFound)
    ));
    // And the store still writes afterwards (the SQLite writer was released).
    store
        .create_user(NewUser::named("after"), &actor())
        .await
        .unwrap();
}

/// Identifying a user for a login: exact and case-insensitive, at most two answers (two means
/// ambiguous), inactive users flagged; the case-insensitive query uses the lower() indexes;
/// `find_user_for_login` brings the usable hash with the user.
async fn identify_users_for_logins(b: Backend) {
    use sea_orm::{ConnectionTrait, QueryTrait};
    let (store, db) = test_store(b).await;
    let mut n = NewUser::named("Carol");
    n.email = "Shared@Example.com".into();
    n.attributes = serde_json::json!({"upn": "carol@corp.example"});
    n.password_hash = Some("$argon2id$fake-carol".into());
    let carol = store.create_user(n, &actor()).await.unwrap();
    let mut n = NewUser::named("dave");
    n.email = "shared@example.com".into();
    n.is_active = false;
    let dave = store.create_user(n, &actor()).await.unwrap();

    let pks = |v: Vec<portcullis_store::IdentifiedUser>| {
        v.into_iter()
            .map(|u| (u.pk, u.is_active))
            .collect::<Vec<_>>()
    };
    let by = |f: &'static str, v: &'static str, ci: bool| {
        let store = &store;
        async move { pks(store.identify_users(f, v, ci).await.unwrap()) }
    };
    assert_eq!(
        by("username", "Carol", false).await,
        vec![(carol.user.pk, true)]
    );
    assert_eq!(by("username", "carol", false).await, vec![]);
    assert_eq!(
        by("username", "CAROL", true).await,
        vec![(carol.user.pk, true)]
    );
    assert_eq!(
        by("username", "DAVE", true).await,
        vec![(dave.user.pk, false)]
    );
    assert_eq!(
        by("email", "SHARED@example.COM", true).await,
        vec![(carol.user.pk, true), (dave.user.pk, false)]
    );
    assert_eq!(
        by("email", "shared@example.com", false).await,
        vec![(dave.user.pk, false)]
    );
    assert_eq!(
        by("upn", "carol@corp.example", false).await,
        vec![(carol.user.pk, true)]
    );
    assert_eq!(by("nickname", "Carol", true).await, vec![]);
    // Hostile input is a value, never SQL.
    assert_eq!(by("username", "x' OR '1'='1", true).await, vec![]);

    let (u, hash) = store.find_user_for_login(carol.user.pk).await.unwrap();
    assert_eq!(u.user.username, "Carol");
    assert_eq!(hash.as_deref(), Some("$argon2id$fake-carol"));
    let (_, hash) = store.find_user_for_login(dave.user.pk).await.unwrap();
    assert_eq!(hash, None, "no password set: no usable hash");
    assert!(matches!(
        store.find_user_for_login(dave.user.pk + 100).await,
        Err(StoreError::NotFound)
    ));

    // The plan of the case-insensitive lookups names the expression indexes.
    // One connection: the `SET` below must reach the session that runs the `EXPLAIN`s.
    let mut opts = sea_orm::ConnectOptions::new(db.url.clone());
    opts.max_connections(1).min_connections(1);
    let conn = sea_orm::Database::connect(opts).await.unwrap();
    let (backend, explain) = match b {
        Backend::Sqlite => (portcullis_store::Backend::Sqlite, "EXPLAIN QUERY PLAN "),
        Backend::Postgres => {
            // Few rows: make the planner show whether it could use an index at all.
            conn.execute_unprepared("SET enable_seqscan = off")
                .await
                .unwrap();
            (portcullis_store::Backend::Postgres, "EXPLAIN ")
        }
    };
    for (field, index) in [
        ("username", "idx_users_username_lower"),
        ("email", "idx_users_email_lower"),
    ] {
        let select = portcullis_store::identify_select(backend, field, "X", true).unwrap();
        let stmt = select.build(conn.get_database_backend());
        let plan_stmt = sea_orm::Statement::from_sql_and_values(
            conn.get_database_backend(),
            format!("{explain}{}", stmt.sql),
            stmt.values.map(|v| v.0).unwrap_or_default(),
        );
        let rows = conn.query_all_raw(plan_stmt).await.unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| {
                r.try_get_by_index::<String>(if b == Backend::Sqlite { 3 } else { 0 })
                    .unwrap()
            })
            .collect();
        assert!(
            plan.iter().any(|l| l.contains(index)),
            "{field}: {plan:?} should use {index}"
        );
    }
}

both_backends!(
    identify_users_for_logins,
    superuser_status_is_inherited_from_parent_groups,
    unit_of_work_is_all_or_nothing,
    one_default_brand_migration,
    users_round_trip,
    user_lists_filter_search_and_page,
    groups_membership_and_parents,
    tokens_by_hash,
    applications_and_brands,
    events_record_changes,
    migrate_twice_is_a_no_op,
    concurrent_writers_all_succeed,
);
