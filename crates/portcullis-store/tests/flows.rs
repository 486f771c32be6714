//! The store contract of m0005 (flows, stages, stage bindings, policies and their bindings,
//! prompts, sessions, consents and reputation), run against SQLite and PostgreSQL alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis_core::*;
use portcullis_store::{
    EventFilter, FlowBindingFilter, FlowFilter, ListQuery, PolicyBindingFilter, PolicyFilter,
    StageFilter, Store, StoreError, policy_app_label, stage_app_label,
};
use portcullis_testkit::{Backend, both_backends, test_store, test_store_with_clock};
use serde_json::json;
use uuid::Uuid;

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

/// A fixed instant with whole seconds, so it round-trips exactly through both databases.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 5, 17, 12, 0, 0).unwrap()
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>, field: &str) {
    assert!(
        matches!(r, Err(StoreError::InvalidReference { field: ref f }) if f == field),
        "expected InvalidReference({field}), got {r:?}"
    );
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, field: &str) {
    assert!(
        matches!(r, Err(StoreError::Conflict { field: ref f }) if f == field),
        "expected Conflict({field}), got {r:?}"
    );
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "expected NotFound, got {r:?}"
    );
}

fn stage(name: &str, kind: &str) -> Stage {
    Stage {
        uuid: Uuid::nil(),
        name: name.into(),
        kind: kind.into(),
        config: json!({"setting": name}),
    }
}

fn policy(name: &str, kind: &str) -> Policy {
    Policy {
        uuid: Uuid::nil(),
        name: name.into(),
        kind: kind.into(),
        execution_logging: false,
        config: json!({"expression": "return True"}),
    }
}

fn application(slug: &str) -> Application {
    Application {
        uuid: Uuid::nil(),
        name: slug.into(),
        slug: slug.into(),
        provider: None,
        group: String::new(),
        meta_launch_url: String::new(),
        meta_description: String::new(),
        meta_publisher: String::new(),
        meta_icon: None,
        policy_engine_mode: PolicyEngineMode::Any,
        open_in_new_tab: false,
        meta_hide: false,
    }
}

fn new_group(name: &str) -> NewGroup {
    NewGroup {
        name: name.into(),
        is_superuser: false,
        parent: None,
        attributes: json!({}),
        users: vec![],
    }
}

fn session(key_hash: &str, user: Option<i32>, expires: DateTime<Utc>) -> Session {
    Session {
        uuid: Uuid::nil(),
        key_hash: key_hash.into(),
        user,
        created: t0(),
        expires,
        last_used: t0(),
        last_ip: "192.0.2.1".into(),
        last_user_agent: "test-agent".into(),
        csrf_token: format!("csrf-{key_hash}"),
        data: json!({"plans": {}}),
    }
}

/// A policy binding of `policy` to `target`.
fn bind_policy(target: Uuid, policy: Uuid, order: i32) -> PolicyBinding {
    let mut b = PolicyBinding::new(target, order);
    b.policy = Some(policy);
    b
}

fn all() -> ListQuery {
    ListQuery {
        page: PageRequest {
            page: 1,
            page_size: 1000,
        },
        ..Default::default()
    }
}

/// (action, pk) of every event about `app`/`model_name`, oldest first.
async fn model_events(store: &Store, app: &str, model_name: &str) -> Vec<(String, String)> {
    let mut q = all();
    q.ordering = Ordering::parse("created");
    store
        .list_events(&EventFilter::default(), &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.context["model"]["app"] == app && e.context["model"]["model_name"] == model_name
        })
        .map(|e| {
            (
                e.action,
                e.context["model"]["pk"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The rows of one table of the snapshot.
async fn rows(store: &Store, table: &str) -> Vec<serde_json::Value> {
    store
        .snapshot()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == table)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no table {table} in the snapshot"))
}

fn slugs(p: &Page<Flow>) -> Vec<&str> {
    p.items.iter().map(|f| f.slug.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Flows

async fn flows_create_find_and_list(b: Backend) {
    let (store, _db) = test_store(b).await;
    let login = store
        .create_flow(
            Flow::new("Login", "login", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    assert!(!login.uuid.is_nil(), "uuid assigned");
    assert!(!login.pbm_uuid.is_nil(), "pbm_uuid assigned");
    assert_ne!(login.uuid, login.pbm_uuid);
    assert_eq!(login.title, "Login");
    assert_eq!(login.authentication, FlowAuthentication::None);
    assert_eq!(login.layout, FlowLayout::Stacked);

    // Given uuids are kept.
    let (u, p) = (Uuid::new_v4(), Uuid::new_v4());
    let mut f = Flow::new("Backup Login", "a-login", FlowDesignation::Authentication);
    f.uuid = u;
    f.pbm_uuid = p;
    f.title = "Welcome back".into();
    f.denied_action = DeniedAction::Continue;
    f.policy_engine_mode = PolicyEngineMode::All;
    f.background = "/static/bg.png".into();
    f.compatibility_mode = true;
    let backup = store.create_flow(f.clone(), &actor()).await.unwrap();
    assert_eq!(backup, f, "every field round-trips");

    for (name, slug, d) in [
        ("Recover", "recovery", FlowDesignation::Recovery),
        ("Enroll", "enroll", FlowDesignation::Enrollment),
        ("Logout", "logout", FlowDesignation::Invalidation),
    ] {
        store
            .create_flow(Flow::new(name, slug, d), &actor())
            .await
            .unwrap();
    }

    assert_eq!(store.find_flow(login.uuid).await.unwrap(), login);
    assert_eq!(store.find_flow(u).await.unwrap(), backup);
    assert_eq!(store.find_flow_by_slug("a-login").await.unwrap(), backup);
    assert_eq!(
        store.find_flow_by_pbm(login.pbm_uuid).await.unwrap(),
        Some(login.clone())
    );
    // A flow's own uuid is not its policy binding model.
    assert_eq!(store.find_flow_by_pbm(login.uuid).await.unwrap(), None);
    assert_not_found(store.find_flow(Uuid::new_v4()).await);
    assert_not_found(store.find_flow(login.pbm_uuid).await);
    assert_not_found(store.find_flow_by_slug("nope").await);

    // The first by slug wins among flows of one designation.
    assert_eq!(
        store
            .find_flow_by_designation(FlowDesignation::Authentication)
            .await
            .unwrap()
            .map(|f| f.slug),
        Some("a-login".to_owned())
    );
    assert_eq!(
        store
            .find_flow_by_designation(FlowDesignation::StageConfiguration)
            .await
            .unwrap(),
        None
    );

    // Lists: default order is by slug.
    let every = store
        .list_flows(&FlowFilter::default(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(every.count, 5);
    assert_eq!(
        slugs(&every),
        ["a-login", "enroll", "login", "logout", "recovery"]
    );
    let by_slug = store
        .list_flows(
            &FlowFilter {
                slug: Some("login".into()),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_slug.count, 1);
    assert_eq!(by_slug.items, std::slice::from_ref(&login));
    let auth = store
        .list_flows(
            &FlowFilter {
                designation: Some(FlowDesignation::Authentication),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(slugs(&auth), ["a-login", "login"]);
    let by_name = store
        .list_flows(
            &FlowFilter {
                name: Some("Enroll".into()),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(slugs(&by_name), ["enroll"]);
    let both = store
        .list_flows(
            &FlowFilter {
                slug: Some("enroll".into()),
                designation: Some(FlowDesignation::Authentication),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(both.count, 0, "filters combine");

    // Search: case-insensitive, over name, slug and title.
    let search = |term: &str| ListQuery {
        search: Some(term.into()),
        ..Default::default()
    };
    let s = store
        .list_flows(&FlowFilter::default(), &search("WELCOME"))
        .await
        .unwrap();
    assert_eq!(slugs(&s), ["a-login"], "title is searched");
    let s = store
        .list_flows(&FlowFilter::default(), &search("log"))
        .await
        .unwrap();
    assert_eq!(slugs(&s), ["a-login", "login", "logout"]);
    let s = store
        .list_flows(&FlowFilter::default(), &search("a_l"))
        .await
        .unwrap();
    assert_eq!(s.count, 0, "`_` is not a wildcard");

    // Ordering.
    let order = |o: &str| ListQuery {
        ordering: Ordering::parse(o),
        ..Default::default()
    };
    let desc = store
        .list_flows(&FlowFilter::default(), &order("-slug"))
        .await
        .unwrap();
    assert_eq!(
        slugs(&desc),
        ["recovery", "logout", "login", "enroll", "a-login"]
    );
    let by_name = store
        .list_flows(&FlowFilter::default(), &order("name"))
        .await
        .unwrap();
    let names: Vec<&str> = by_name.items.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["Backup Login", "Enroll", "Login", "Logout", "Recover"]
    );
    let by_designation = store
        .list_flows(&FlowFilter::default(), &order("-designation"))
        .await
        .unwrap();
    assert_eq!(by_designation.items[0].slug, "recovery");
    let unknown = store
        .list_flows(&FlowFilter::default(), &order("-no_such_field"))
        .await
        .unwrap();
    assert_eq!(
        slugs(&unknown),
        slugs(&every),
        "unknown fields order by slug"
    );

    // Pagination.
    let page = |page: u64, page_size: u64| ListQuery {
        page: PageRequest { page, page_size },
        ..Default::default()
    };
    let p2 = store
        .list_flows(&FlowFilter::default(), &page(2, 2))
        .await
        .unwrap();
    assert_eq!(p2.count, 5);
    assert_eq!(slugs(&p2), ["login", "logout"]);
    let p3 = store
        .list_flows(&FlowFilter::default(), &page(3, 2))
        .await
        .unwrap();
    assert_eq!(slugs(&p3), ["recovery"]);
    let past = store
        .list_flows(&FlowFilter::default(), &page(9, 2))
        .await
        .unwrap();
    assert_eq!((past.count, past.items.len()), (5, 0));

    // A duplicate slug is a conflict on `slug`, and changes nothing.
    let before = store.snapshot().await.unwrap();
    assert_conflict(
        store
            .create_flow(
                Flow::new("Other", "login", FlowDesignation::Enrollment),
                &actor(),
            )
            .await,
        "slug",
    );
    assert_eq!(store.snapshot().await.unwrap(), before);
}

async fn flow_update_keeps_uuids_and_records_events(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("Login", "login", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let other = store
        .create_flow(
            Flow::new("Other", "other", FlowDesignation::Enrollment),
            &actor(),
        )
        .await
        .unwrap();

    let mut changed = Flow::new("Sign in", "sign-in", FlowDesignation::Authorization);
    // The uuids given are ignored: a flow keeps its own.
    changed.uuid = Uuid::new_v4();
    changed.pbm_uuid = Uuid::new_v4();
    changed.title = "Please sign in".into();
    changed.authentication = FlowAuthentication::RequireUnauthenticated;
    changed.policy_engine_mode = PolicyEngineMode::All;
    changed.denied_action = DeniedAction::Message;
    changed.layout = FlowLayout::SidebarRight;
    changed.background = "https://example.com/bg.jpg".into();
    changed.compatibility_mode = true;
    let updated = store
        .update_flow(f.uuid, changed.clone(), &actor())
        .await
        .unwrap();
    let expected = Flow {
        uuid: f.uuid,
        pbm_uuid: f.pbm_uuid,
        ..changed.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.find_flow(f.uuid).await.unwrap(), expected);
    assert_eq!(store.find_flow_by_slug("sign-in").await.unwrap(), expected);
    assert_not_found(store.find_flow_by_slug("login").await);
    assert_not_found(store.find_flow(changed.uuid).await);
    assert_eq!(
        store.find_flow_by_pbm(f.pbm_uuid).await.unwrap(),
        Some(expected.clone())
    );

    // Taking another flow's slug is a conflict and changes nothing.
    let before = store.snapshot().await.unwrap();
    let mut clash = expected.clone();
    clash.slug = "other".into();
    clash.name = "renamed".into();
    assert_conflict(store.update_flow(f.uuid, clash, &actor()).await, "slug");
    assert_not_found(
        store
            .update_flow(Uuid::new_v4(), expected.clone(), &actor())
            .await,
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    store.delete_flow(f.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_flow(f.uuid).await);
    assert_not_found(store.delete_flow(f.uuid, &actor()).await);
    assert_eq!(store.find_flow(other.uuid).await.unwrap(), other);

    let events = model_events(&store, "authentik_flows", "flow").await;
    let (pk, other_pk) = (f.uuid.to_string(), other.uuid.to_string());
    assert_eq!(
        events,
        [
            ("model_created".to_owned(), pk.clone()),
            ("model_created".to_owned(), other_pk),
            ("model_updated".to_owned(), pk.clone()),
            ("model_deleted".to_owned(), pk),
        ]
    );
    let all_events = store
        .list_events(&EventFilter::default(), &all())
        .await
        .unwrap();
    let updated_event = all_events
        .items
        .iter()
        .find(|e| e.action == "model_updated")
        .unwrap();
    assert_eq!(updated_event.context["model"]["name"], "Sign in");
    assert_eq!(updated_event.app, "authentik.events.signals");
    assert_eq!(updated_event.user["username"], "tester");
}

async fn flow_delete_cascades_bindings_and_policy_bindings(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("Login", "login", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let g = store
        .create_flow(
            Flow::new("Other", "other", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let s1 = store
        .create_stage(stage("ident", "identificationstage"), &actor())
        .await
        .unwrap();
    let s2 = store
        .create_stage(stage("pass", "passwordstage"), &actor())
        .await
        .unwrap();
    let b1 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, s1.uuid, 10), &actor())
        .await
        .unwrap();
    let b2 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, s2.uuid, 20), &actor())
        .await
        .unwrap();
    let b3 = store
        .create_flow_binding(FlowStageBinding::new(g.uuid, s1.uuid, 10), &actor())
        .await
        .unwrap();
    let p = store
        .create_policy(policy("p", "expressionpolicy"), &actor())
        .await
        .unwrap();
    let mut pbs = Vec::new();
    for target in [
        f.pbm_uuid,
        b1.pbm_uuid,
        b2.pbm_uuid,
        g.pbm_uuid,
        b3.pbm_uuid,
    ] {
        pbs.push(
            store
                .create_policy_binding(bind_policy(target, p.uuid, 0), &actor())
                .await
                .unwrap(),
        );
    }
    assert_eq!(store.policy_bound_to(p.uuid).await.unwrap(), 5);

    store.delete_flow(f.uuid, &actor()).await.unwrap();

    assert_not_found(store.find_flow(f.uuid).await);
    assert_not_found(store.find_flow_binding(b1.uuid).await);
    assert_not_found(store.find_flow_binding(b2.uuid).await);
    assert_eq!(
        store.find_flow_binding_by_pbm(b1.pbm_uuid).await.unwrap(),
        None
    );
    assert!(store.flow_plan_bindings(f.uuid).await.unwrap().is_empty());
    for gone in &pbs[..3] {
        assert_not_found(store.find_policy_binding(gone.uuid).await);
        assert!(
            store
                .policy_bindings_for(gone.target)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // What belonged to the other flow stays, and so do stages and the policy.
    for kept in &pbs[3..] {
        assert_eq!(store.find_policy_binding(kept.uuid).await.unwrap(), *kept);
    }
    assert_eq!(store.find_flow_binding(b3.uuid).await.unwrap(), b3);
    assert_eq!(store.find_stage(s1.uuid).await.unwrap(), s1);
    assert_eq!(store.find_stage(s2.uuid).await.unwrap(), s2);
    assert_eq!(store.policy_bound_to(p.uuid).await.unwrap(), 2);
    assert_eq!(rows(&store, "flow_stage_binding").await.len(), 1);
    assert_eq!(rows(&store, "policy_binding").await.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Stages

async fn stages_crud_and_labels(b: Backend) {
    let (store, _db) = test_store(b).await;
    assert_eq!(
        stage_app_label("identificationstage"),
        "authentik_stages_identification"
    );
    assert_eq!(
        stage_app_label("passwordstage"),
        "authentik_stages_password"
    );
    assert_eq!(
        stage_app_label("userloginstage"),
        "authentik_stages_user_login"
    );
    assert_eq!(
        stage_app_label("userwritestage"),
        "authentik_stages_user_write"
    );

    let ident = store
        .create_stage(stage("default-ident", "identificationstage"), &actor())
        .await
        .unwrap();
    assert!(!ident.uuid.is_nil());
    assert_eq!(ident.config, json!({"setting": "default-ident"}));
    let given = Uuid::new_v4();
    let pass = store
        .create_stage(
            Stage {
                uuid: given,
                ..stage("default-pass", "passwordstage")
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(pass.uuid, given);
    store
        .create_stage(stage("login", "userloginstage"), &actor())
        .await
        .unwrap();
    store
        .create_stage(stage("other-ident", "identificationstage"), &actor())
        .await
        .unwrap();

    assert_eq!(store.find_stage(ident.uuid).await.unwrap(), ident);
    assert_eq!(
        store.find_stage_by_name("default-pass").await.unwrap(),
        pass
    );
    assert_not_found(store.find_stage(Uuid::new_v4()).await);
    assert_not_found(store.find_stage_by_name("nope").await);

    let before = store.snapshot().await.unwrap();
    assert_conflict(
        store
            .create_stage(stage("default-ident", "passwordstage"), &actor())
            .await,
        "name",
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    let names = |p: Page<Stage>| p.items.into_iter().map(|s| s.name).collect::<Vec<_>>();
    let kinds = store
        .list_stages(
            &StageFilter {
                kinds: vec!["identificationstage".into(), "passwordstage".into()],
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(kinds.count, 3);
    assert_eq!(
        names(kinds),
        ["default-ident", "default-pass", "other-ident"]
    );
    let one_kind = store
        .list_stages(
            &StageFilter {
                kinds: vec!["userloginstage".into()],
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(names(one_kind), ["login"]);
    let every = store
        .list_stages(&StageFilter::default(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(every.count, 4, "no kinds: every stage");
    let by_name = store
        .list_stages(
            &StageFilter {
                name: Some("login".into()),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_name.count, 1);
    let searched = store
        .list_stages(
            &StageFilter::default(),
            &ListQuery {
                search: Some("IDENT".into()),
                ordering: Ordering::parse("-name"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(searched), ["other-ident", "default-ident"]);

    // Update: name and settings change, the kind may not.
    let renamed = store
        .update_stage(
            ident.uuid,
            Stage {
                uuid: Uuid::new_v4(),
                name: "ident-renamed".into(),
                kind: "identificationstage".into(),
                config: json!({"user_fields": ["email"]}),
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        renamed,
        Stage {
            uuid: ident.uuid,
            name: "ident-renamed".into(),
            kind: "identificationstage".into(),
            config: json!({"user_fields": ["email"]}),
        }
    );
    assert_eq!(store.find_stage(ident.uuid).await.unwrap(), renamed);
    let before = store.snapshot().await.unwrap();
    assert_invalid(
        store
            .update_stage(
                ident.uuid,
                Stage {
                    name: "x".into(),
                    ..stage("x", "passwordstage")
                },
                &actor(),
            )
            .await,
        "kind",
    );
    assert_conflict(
        store
            .update_stage(
                ident.uuid,
                stage("default-pass", "identificationstage"),
                &actor(),
            )
            .await,
        "name",
    );
    assert_not_found(
        store
            .update_stage(Uuid::new_v4(), stage("y", "passwordstage"), &actor())
            .await,
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    store.delete_stage(pass.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_stage(pass.uuid).await);
    assert_not_found(store.delete_stage(pass.uuid, &actor()).await);

    let events = model_events(
        &store,
        "authentik_stages_identification",
        "identificationstage",
    )
    .await;
    let actions: Vec<&str> = events
        .iter()
        .filter(|(_, pk)| *pk == ident.uuid.to_string())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(actions, ["model_created", "model_updated"]);
    let events = model_events(&store, "authentik_stages_password", "passwordstage").await;
    let actions: Vec<&str> = events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["model_created", "model_deleted"]);
}

async fn stage_delete_cascades_and_stage_flows(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let g = store
        .create_flow(
            Flow::new("G", "g", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let shared = store
        .create_stage(stage("shared", "identificationstage"), &actor())
        .await
        .unwrap();
    let only_f = store
        .create_stage(stage("only-f", "passwordstage"), &actor())
        .await
        .unwrap();
    let unused = store
        .create_stage(stage("unused", "denystage"), &actor())
        .await
        .unwrap();
    let fb1 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, shared.uuid, 10), &actor())
        .await
        .unwrap();
    // The same stage twice in one flow.
    let fb2 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, shared.uuid, 30), &actor())
        .await
        .unwrap();
    let fb3 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, only_f.uuid, 20), &actor())
        .await
        .unwrap();
    let gb = store
        .create_flow_binding(FlowStageBinding::new(g.uuid, shared.uuid, 10), &actor())
        .await
        .unwrap();

    let mut expected = vec![f.uuid, g.uuid];
    expected.sort();
    assert_eq!(store.stage_flows(shared.uuid).await.unwrap(), expected);
    assert_eq!(store.stage_flows(only_f.uuid).await.unwrap(), [f.uuid]);
    assert!(store.stage_flows(unused.uuid).await.unwrap().is_empty());
    assert!(store.stage_flows(Uuid::new_v4()).await.unwrap().is_empty());

    let p = store
        .create_policy(policy("p", "expressionpolicy"), &actor())
        .await
        .unwrap();
    let on_fb1 = store
        .create_policy_binding(bind_policy(fb1.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    let on_gb = store
        .create_policy_binding(bind_policy(gb.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    let on_fb3 = store
        .create_policy_binding(bind_policy(fb3.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    let on_flow = store
        .create_policy_binding(bind_policy(f.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();

    store.delete_stage(shared.uuid, &actor()).await.unwrap();

    for gone in [fb1.uuid, fb2.uuid, gb.uuid] {
        assert_not_found(store.find_flow_binding(gone).await);
    }
    for gone in [on_fb1.uuid, on_gb.uuid] {
        assert_not_found(store.find_policy_binding(gone).await);
    }
    assert_eq!(store.find_flow_binding(fb3.uuid).await.unwrap(), fb3);
    assert_eq!(
        store.find_policy_binding(on_fb3.uuid).await.unwrap(),
        on_fb3
    );
    assert_eq!(
        store.find_policy_binding(on_flow.uuid).await.unwrap(),
        on_flow
    );
    let plan = store.flow_plan_bindings(f.uuid).await.unwrap();
    assert_eq!(plan, [(fb3.clone(), only_f.clone())]);
    assert!(store.flow_plan_bindings(g.uuid).await.unwrap().is_empty());
    assert_eq!(store.find_flow(g.uuid).await.unwrap(), g);
    assert_eq!(store.policy_bound_to(p.uuid).await.unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// Flow stage bindings

async fn flow_bindings_validate_order_and_cascade(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let g = store
        .create_flow(Flow::new("G", "g", FlowDesignation::Enrollment), &actor())
        .await
        .unwrap();
    let ident = store
        .create_stage(stage("ident", "identificationstage"), &actor())
        .await
        .unwrap();
    let pass = store
        .create_stage(stage("pass", "passwordstage"), &actor())
        .await
        .unwrap();
    let login = store
        .create_stage(stage("login", "userloginstage"), &actor())
        .await
        .unwrap();

    // References are checked and named; nothing is written.
    let before = store.snapshot().await.unwrap();
    assert_invalid(
        store
            .create_flow_binding(
                FlowStageBinding::new(Uuid::new_v4(), ident.uuid, 0),
                &actor(),
            )
            .await,
        "target",
    );
    // The flow's pbm_uuid is not the flow.
    assert_invalid(
        store
            .create_flow_binding(FlowStageBinding::new(f.pbm_uuid, ident.uuid, 0), &actor())
            .await,
        "target",
    );
    assert_invalid(
        store
            .create_flow_binding(FlowStageBinding::new(f.uuid, Uuid::new_v4(), 0), &actor())
            .await,
        "stage",
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    // Created out of order; planned in order, each with its stage.
    let mut custom = FlowStageBinding::new(f.uuid, pass.uuid, 20);
    custom.evaluate_on_plan = true;
    custom.re_evaluate_policies = false;
    custom.invalid_response_action = InvalidResponseAction::RestartWithContext;
    custom.policy_engine_mode = PolicyEngineMode::All;
    let b20 = store
        .create_flow_binding(custom.clone(), &actor())
        .await
        .unwrap();
    assert!(!b20.uuid.is_nil() && !b20.pbm_uuid.is_nil());
    assert_ne!(b20.uuid, b20.pbm_uuid);
    assert_eq!(
        b20,
        FlowStageBinding {
            uuid: b20.uuid,
            pbm_uuid: b20.pbm_uuid,
            ..custom
        }
    );
    let b30 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, login.uuid, 30), &actor())
        .await
        .unwrap();
    let b10 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, ident.uuid, 10), &actor())
        .await
        .unwrap();
    assert!(b10.re_evaluate_policies && !b10.evaluate_on_plan);
    assert_eq!(b10.invalid_response_action, InvalidResponseAction::Retry);
    // The same stage at another order, and another stage at the same order, are fine.
    let b40 = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, ident.uuid, 40), &actor())
        .await
        .unwrap();
    let b10_pass = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, pass.uuid, 10), &actor())
        .await
        .unwrap();
    let gb = store
        .create_flow_binding(FlowStageBinding::new(g.uuid, ident.uuid, 10), &actor())
        .await
        .unwrap();

    let plan = store.flow_plan_bindings(f.uuid).await.unwrap();
    let got: Vec<(i32, &str)> = plan
        .iter()
        .map(|(b, s)| (b.order, s.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (10, "ident"),
            (10, "pass"),
            (20, "pass"),
            (30, "login"),
            (40, "ident")
        ]
    );
    for (binding, st) in &plan {
        assert_eq!(binding.stage, st.uuid);
        assert_eq!(binding.target, f.uuid);
    }
    assert_eq!(plan[2].0, b20);
    assert_eq!(plan[2].1, pass);
    assert_eq!(
        store.flow_plan_bindings(g.uuid).await.unwrap(),
        [(gb.clone(), ident.clone())]
    );
    assert!(
        store
            .flow_plan_bindings(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );

    // (target, stage, order) is unique.
    let before = store.snapshot().await.unwrap();
    let dup = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, ident.uuid, 10), &actor())
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    assert_eq!(store.snapshot().await.unwrap(), before);

    assert_eq!(store.find_flow_binding(b30.uuid).await.unwrap(), b30);
    assert_eq!(
        store.find_flow_binding_by_pbm(b30.pbm_uuid).await.unwrap(),
        Some(b30.clone())
    );
    assert_eq!(
        store.find_flow_binding_by_pbm(b30.uuid).await.unwrap(),
        None
    );
    assert_not_found(store.find_flow_binding(b30.pbm_uuid).await);

    let orders = |p: Page<FlowStageBinding>| p.items.iter().map(|b| b.order).collect::<Vec<_>>();
    let of_f = store
        .list_flow_bindings(
            &FlowBindingFilter {
                target: Some(f.uuid),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(of_f.count, 5);
    assert_eq!(orders(of_f), [10, 10, 20, 30, 40]);
    let of_ident = store
        .list_flow_bindings(
            &FlowBindingFilter {
                stage: Some(ident.uuid),
                ..Default::default()
            },
            &ListQuery {
                ordering: Ordering::parse("-order"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(orders(of_ident), [40, 10, 10]);
    let at_10_of_f = store
        .list_flow_bindings(
            &FlowBindingFilter {
                target: Some(f.uuid),
                order: Some(10),
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    let mut uuids: Vec<Uuid> = at_10_of_f.items.iter().map(|b| b.uuid).collect();
    uuids.sort();
    let mut expected = vec![b10.uuid, b10_pass.uuid];
    expected.sort();
    assert_eq!(uuids, expected);

    // Update replaces the settings, keeps the uuids, checks references and uniqueness.
    let mut moved = FlowStageBinding::new(g.uuid, login.uuid, 50);
    moved.uuid = Uuid::new_v4();
    moved.pbm_uuid = Uuid::new_v4();
    moved.evaluate_on_plan = true;
    moved.invalid_response_action = InvalidResponseAction::Restart;
    moved.policy_engine_mode = PolicyEngineMode::All;
    let updated = store
        .update_flow_binding(b40.uuid, moved.clone(), &actor())
        .await
        .unwrap();
    let expected = FlowStageBinding {
        uuid: b40.uuid,
        pbm_uuid: b40.pbm_uuid,
        ..moved
    };
    assert_eq!(updated, expected);
    assert_eq!(store.find_flow_binding(b40.uuid).await.unwrap(), expected);
    assert_eq!(
        store.flow_plan_bindings(g.uuid).await.unwrap(),
        [
            (gb.clone(), ident.clone()),
            (expected.clone(), login.clone())
        ]
    );
    let before = store.snapshot().await.unwrap();
    assert_invalid(
        store
            .update_flow_binding(
                b40.uuid,
                FlowStageBinding::new(g.uuid, Uuid::new_v4(), 50),
                &actor(),
            )
            .await,
        "stage",
    );
    assert_invalid(
        store
            .update_flow_binding(
                b40.uuid,
                FlowStageBinding::new(Uuid::new_v4(), login.uuid, 50),
                &actor(),
            )
            .await,
        "target",
    );
    let clash = store
        .update_flow_binding(
            b40.uuid,
            FlowStageBinding::new(g.uuid, ident.uuid, 10),
            &actor(),
        )
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict { .. })),
        "{clash:?}"
    );
    assert_not_found(
        store
            .update_flow_binding(
                Uuid::new_v4(),
                FlowStageBinding::new(g.uuid, login.uuid, 60),
                &actor(),
            )
            .await,
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    // Deleting a binding deletes the policy bindings guarding it, and only those.
    let p = store
        .create_policy(policy("p", "expressionpolicy"), &actor())
        .await
        .unwrap();
    let on_b30 = store
        .create_policy_binding(bind_policy(b30.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    let on_b30_too = store
        .create_policy_binding(bind_policy(b30.pbm_uuid, p.uuid, 1), &actor())
        .await
        .unwrap();
    let on_b20 = store
        .create_policy_binding(bind_policy(b20.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    let on_flow = store
        .create_policy_binding(bind_policy(f.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    store.delete_flow_binding(b30.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_flow_binding(b30.uuid).await);
    assert_not_found(store.delete_flow_binding(b30.uuid, &actor()).await);
    assert_not_found(store.find_policy_binding(on_b30.uuid).await);
    assert_not_found(store.find_policy_binding(on_b30_too.uuid).await);
    assert_eq!(
        store.find_policy_binding(on_b20.uuid).await.unwrap(),
        on_b20
    );
    assert_eq!(
        store.find_policy_binding(on_flow.uuid).await.unwrap(),
        on_flow
    );
    assert_eq!(store.find_stage(login.uuid).await.unwrap(), login);
    assert_eq!(store.flow_plan_bindings(f.uuid).await.unwrap().len(), 3);

    let events = model_events(&store, "authentik_flows", "flowstagebinding").await;
    let of_b30: Vec<&str> = events
        .iter()
        .filter(|(_, pk)| *pk == b30.uuid.to_string())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(of_b30, ["model_created", "model_deleted"]);
    let of_b40: Vec<&str> = events
        .iter()
        .filter(|(_, pk)| *pk == b40.uuid.to_string())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(of_b40, ["model_created", "model_updated"]);
}

/// authentik answers a duplicate (target, stage, order) with `non_field_errors` (DRF's
/// unique-together validator); the store must name the same field on both databases.
async fn flow_binding_conflict_names_the_same_field_on_both_backends(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let s = store
        .create_stage(stage("s", "identificationstage"), &actor())
        .await
        .unwrap();
    store
        .create_flow_binding(FlowStageBinding::new(f.uuid, s.uuid, 10), &actor())
        .await
        .unwrap();
    assert_conflict(
        store
            .create_flow_binding(FlowStageBinding::new(f.uuid, s.uuid, 10), &actor())
            .await,
        "non_field_errors",
    );
}

// ---------------------------------------------------------------------------------------------
// Policies and policy bindings

async fn policies_crud_and_labels(b: Backend) {
    let (store, _db) = test_store(b).await;
    assert_eq!(
        policy_app_label("passwordexpirypolicy"),
        "authentik_policies_expiry"
    );
    assert_eq!(
        policy_app_label("eventmatcherpolicy"),
        "authentik_policies_event_matcher"
    );
    assert_eq!(
        policy_app_label("expressionpolicy"),
        "authentik_policies_expression"
    );
    assert_eq!(
        policy_app_label("reputationpolicy"),
        "authentik_policies_reputation"
    );

    let mut p = policy("expiry", "passwordexpirypolicy");
    p.execution_logging = true;
    p.config = json!({"days": 30, "deny_only": false});
    let created = store.create_policy(p.clone(), &actor()).await.unwrap();
    assert!(!created.uuid.is_nil());
    assert_eq!(
        created,
        Policy {
            uuid: created.uuid,
            ..p
        }
    );
    assert_eq!(store.find_policy(created.uuid).await.unwrap(), created);
    assert_eq!(store.find_policy_by_name("expiry").await.unwrap(), created);
    assert_not_found(store.find_policy(Uuid::new_v4()).await);
    assert_not_found(store.find_policy_by_name("nope").await);
    let expr = store
        .create_policy(policy("expr", "expressionpolicy"), &actor())
        .await
        .unwrap();

    let before = store.snapshot().await.unwrap();
    assert_conflict(
        store
            .create_policy(policy("expiry", "expressionpolicy"), &actor())
            .await,
        "name",
    );
    assert_invalid(
        store
            .update_policy(created.uuid, policy("expiry", "expressionpolicy"), &actor())
            .await,
        "kind",
    );
    assert_conflict(
        store
            .update_policy(
                created.uuid,
                policy("expr", "passwordexpirypolicy"),
                &actor(),
            )
            .await,
        "name",
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    let updated = store
        .update_policy(
            created.uuid,
            Policy {
                uuid: Uuid::new_v4(),
                name: "expiry-90".into(),
                kind: "passwordexpirypolicy".into(),
                execution_logging: false,
                config: json!({"days": 90}),
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(updated.uuid, created.uuid);
    assert_eq!(updated.name, "expiry-90");
    assert!(!updated.execution_logging);
    assert_eq!(updated.config, json!({"days": 90}));
    assert_eq!(store.find_policy(created.uuid).await.unwrap(), updated);

    let kinds = store
        .list_policies(
            &PolicyFilter {
                kinds: vec!["expressionpolicy".into()],
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(kinds.items, std::slice::from_ref(&expr));
    let searched = store
        .list_policies(
            &PolicyFilter::default(),
            &ListQuery {
                search: Some("EXPI".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(searched.items, std::slice::from_ref(&updated));

    store.delete_policy(created.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_policy(created.uuid).await);
    assert_not_found(store.delete_policy(created.uuid, &actor()).await);

    let events = model_events(&store, "authentik_policies_expiry", "passwordexpirypolicy").await;
    let actions: Vec<&str> = events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["model_created", "model_updated", "model_deleted"]);
    assert!(events.iter().all(|(_, pk)| *pk == created.uuid.to_string()));
}

async fn policy_bindings_validate_references(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let s = store
        .create_stage(stage("s", "identificationstage"), &actor())
        .await
        .unwrap();
    let fb = store
        .create_flow_binding(FlowStageBinding::new(f.uuid, s.uuid, 0), &actor())
        .await
        .unwrap();
    let app = store
        .create_application(application("wiki"), &actor())
        .await
        .unwrap();
    let g = store
        .create_group(new_group("staff"), &actor())
        .await
        .unwrap();
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap();
    let p = store
        .create_policy(policy("p", "expressionpolicy"), &actor())
        .await
        .unwrap();

    let before = store.snapshot().await.unwrap();
    let with = |policy: Option<Uuid>, group: Option<Uuid>, user: Option<i32>| PolicyBinding {
        policy,
        group,
        user,
        ..PolicyBinding::new(f.pbm_uuid, 0)
    };
    // Exactly one of policy, group and user.
    for (policy, group, user) in [
        (None, None, None),
        (Some(p.uuid), Some(g.group.uuid), None),
        (Some(p.uuid), None, Some(u.user.pk)),
        (None, Some(g.group.uuid), Some(u.user.pk)),
        (Some(p.uuid), Some(g.group.uuid), Some(u.user.pk)),
    ] {
        assert_invalid(
            store
                .create_policy_binding(with(policy, group, user), &actor())
                .await,
            "non_field_errors",
        );
    }
    // The target must be a flow's or a stage binding's pbm_uuid, or an application.
    for target in [Uuid::new_v4(), f.uuid, fb.uuid, s.uuid, p.uuid] {
        assert_invalid(
            store
                .create_policy_binding(bind_policy(target, p.uuid, 0), &actor())
                .await,
            "target",
        );
    }
    // Each reference is named when it does not exist.
    assert_invalid(
        store
            .create_policy_binding(with(Some(Uuid::new_v4()), None, None), &actor())
            .await,
        "policy",
    );
    assert_invalid(
        store
            .create_policy_binding(with(None, Some(Uuid::new_v4()), None), &actor())
            .await,
        "group",
    );
    assert_invalid(
        store
            .create_policy_binding(with(None, None, Some(u.user.pk + 1000)), &actor())
            .await,
        "user",
    );
    assert_eq!(store.snapshot().await.unwrap(), before, "nothing written");

    // Every kind of target and of bound object is accepted.
    let mut made = Vec::new();
    for target in [f.pbm_uuid, fb.pbm_uuid, app.uuid] {
        let mut pb = bind_policy(target, p.uuid, 5);
        pb.negate = true;
        pb.enabled = false;
        pb.timeout = 7;
        pb.failure_result = true;
        let created = store
            .create_policy_binding(pb.clone(), &actor())
            .await
            .unwrap();
        assert!(!created.uuid.is_nil());
        assert_eq!(
            created,
            PolicyBinding {
                uuid: created.uuid,
                ..pb
            }
        );
        assert_eq!(
            store.find_policy_binding(created.uuid).await.unwrap(),
            created
        );
        made.push(created);
    }
    let to_group = store
        .create_policy_binding(with(None, Some(g.group.uuid), None), &actor())
        .await
        .unwrap();
    let to_user = store
        .create_policy_binding(with(None, None, Some(u.user.pk)), &actor())
        .await
        .unwrap();
    assert_eq!(to_group.group, Some(g.group.uuid));
    assert_eq!(to_user.user, Some(u.user.pk));
    assert_not_found(store.find_policy_binding(Uuid::new_v4()).await);

    // Updates are checked the same way and keep the uuid.
    let before = store.snapshot().await.unwrap();
    assert_invalid(
        store
            .update_policy_binding(
                to_user.uuid,
                bind_policy(Uuid::new_v4(), p.uuid, 0),
                &actor(),
            )
            .await,
        "target",
    );
    assert_invalid(
        store
            .update_policy_binding(to_user.uuid, with(None, None, None), &actor())
            .await,
        "non_field_errors",
    );
    assert_invalid(
        store
            .update_policy_binding(
                to_user.uuid,
                with(None, Some(Uuid::new_v4()), None),
                &actor(),
            )
            .await,
        "group",
    );
    assert_not_found(
        store
            .update_policy_binding(Uuid::new_v4(), with(Some(p.uuid), None, None), &actor())
            .await,
    );
    assert_eq!(store.snapshot().await.unwrap(), before);
    let mut changed = bind_policy(app.uuid, p.uuid, 9);
    changed.uuid = Uuid::new_v4();
    changed.timeout = 1;
    let updated = store
        .update_policy_binding(to_user.uuid, changed.clone(), &actor())
        .await
        .unwrap();
    let expected = PolicyBinding {
        uuid: to_user.uuid,
        ..changed
    };
    assert_eq!(updated, expected);
    assert_eq!(
        store.find_policy_binding(to_user.uuid).await.unwrap(),
        expected
    );

    store
        .delete_policy_binding(to_group.uuid, &actor())
        .await
        .unwrap();
    assert_not_found(store.find_policy_binding(to_group.uuid).await);
    assert_not_found(store.delete_policy_binding(to_group.uuid, &actor()).await);

    let events = model_events(&store, "authentik_policies", "policybinding").await;
    let of_user: Vec<&str> = events
        .iter()
        .filter(|(_, pk)| *pk == to_user.uuid.to_string())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(of_user, ["model_created", "model_updated"]);
    let of_group: Vec<&str> = events
        .iter()
        .filter(|(_, pk)| *pk == to_group.uuid.to_string())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(of_group, ["model_created", "model_deleted"]);
}

async fn policy_bindings_for_and_cascades(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let app = store
        .create_application(application("wiki"), &actor())
        .await
        .unwrap();
    let other_app = store
        .create_application(application("blog"), &actor())
        .await
        .unwrap();
    let g = store
        .create_group(new_group("staff"), &actor())
        .await
        .unwrap();
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap();
    let p1 = store
        .create_policy(policy("p1", "expressionpolicy"), &actor())
        .await
        .unwrap();
    let p2 = store
        .create_policy(policy("p2", "reputationpolicy"), &actor())
        .await
        .unwrap();

    let mut on_group = PolicyBinding::new(f.pbm_uuid, 10);
    on_group.group = Some(g.group.uuid);
    let mut on_user = PolicyBinding::new(f.pbm_uuid, 20);
    on_user.user = Some(u.user.pk);
    // Created out of order.
    let b30 = store
        .create_policy_binding(bind_policy(f.pbm_uuid, p1.uuid, 30), &actor())
        .await
        .unwrap();
    let b10g = store
        .create_policy_binding(on_group, &actor())
        .await
        .unwrap();
    let b20u = store
        .create_policy_binding(on_user, &actor())
        .await
        .unwrap();
    let b10p = store
        .create_policy_binding(bind_policy(f.pbm_uuid, p2.uuid, 10), &actor())
        .await
        .unwrap();
    let on_app = store
        .create_policy_binding(bind_policy(app.uuid, p1.uuid, 0), &actor())
        .await
        .unwrap();
    let on_app_group = store
        .create_policy_binding(
            PolicyBinding {
                group: Some(g.group.uuid),
                ..PolicyBinding::new(app.uuid, 1)
            },
            &actor(),
        )
        .await
        .unwrap();
    let on_other_app = store
        .create_policy_binding(bind_policy(other_app.uuid, p1.uuid, 0), &actor())
        .await
        .unwrap();

    let guarded = store.policy_bindings_for(f.pbm_uuid).await.unwrap();
    assert_eq!(
        guarded,
        [
            (b10g.clone(), None),
            (b10p.clone(), Some(p2.clone())),
            (b20u.clone(), None),
            (b30.clone(), Some(p1.clone())),
        ],
        "by order, ties by creation, each with its policy"
    );
    assert!(
        store
            .policy_bindings_for(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store.policy_bindings_for(f.uuid).await.unwrap().is_empty(),
        "bindings name the flow's pbm_uuid, not its uuid"
    );

    // List filters.
    let list = |f: PolicyBindingFilter| {
        let store = store.clone();
        async move {
            store
                .list_policy_bindings(&f, &ListQuery::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|b| b.uuid)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(PolicyBindingFilter {
            target: Some(f.pbm_uuid),
            ..Default::default()
        })
        .await,
        [b10g.uuid, b10p.uuid, b20u.uuid, b30.uuid]
    );
    assert_eq!(
        list(PolicyBindingFilter {
            policy: Some(p1.uuid),
            ..Default::default()
        })
        .await,
        [on_app.uuid, on_other_app.uuid, b30.uuid]
    );
    assert_eq!(
        list(PolicyBindingFilter {
            group: Some(g.group.uuid),
            ..Default::default()
        })
        .await,
        [on_app_group.uuid, b10g.uuid]
    );
    assert_eq!(
        list(PolicyBindingFilter {
            user: Some(u.user.pk),
            ..Default::default()
        })
        .await,
        [b20u.uuid]
    );
    assert_eq!(
        list(PolicyBindingFilter {
            target: Some(f.pbm_uuid),
            order: Some(10),
            ..Default::default()
        })
        .await,
        [b10g.uuid, b10p.uuid]
    );
    assert!(
        list(PolicyBindingFilter {
            enabled: Some(false),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Deleting a policy deletes its bindings.
    store.delete_policy(p2.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_policy_binding(b10p.uuid).await);
    assert_eq!(store.policy_bound_to(p2.uuid).await.unwrap(), 0);

    // Deleting a group deletes the bindings to it (foreign key, on both databases).
    store.delete_group(g.group.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_policy_binding(b10g.uuid).await);
    assert_not_found(store.find_policy_binding(on_app_group.uuid).await);

    // Deleting a user deletes the bindings to it.
    store.delete_user(u.user.pk, &actor()).await.unwrap();
    assert_not_found(store.find_policy_binding(b20u.uuid).await);

    assert_eq!(
        store.policy_bindings_for(f.pbm_uuid).await.unwrap(),
        [(b30.clone(), Some(p1.clone()))]
    );

    // Deleting an application deletes the bindings guarding it, and only those.
    store.delete_application("wiki", &actor()).await.unwrap();
    assert_not_found(store.find_policy_binding(on_app.uuid).await);
    assert!(
        store
            .policy_bindings_for(app.uuid)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.find_policy_binding(on_other_app.uuid).await.unwrap(),
        on_other_app
    );
    assert_eq!(store.find_policy_binding(b30.uuid).await.unwrap(), b30);
    assert_eq!(store.policy_bound_to(p1.uuid).await.unwrap(), 2);
    assert_eq!(rows(&store, "policy_binding").await.len(), 2);
}

/// authentik's `PolicyBinding` is unique together on (policy, target, order), and the migration
/// says it keeps that ("per kind of binding"): binding one policy twice to one target at one
/// order is refused, while group and user bindings (no policy) are not affected.
async fn policy_binding_policy_target_order_is_unique(b: Backend) {
    let (store, _db) = test_store(b).await;
    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let p = store
        .create_policy(policy("p", "expressionpolicy"), &actor())
        .await
        .unwrap();
    store
        .create_policy_binding(bind_policy(f.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    // Another order, or another policy at the same order, is fine.
    store
        .create_policy_binding(bind_policy(f.pbm_uuid, p.uuid, 1), &actor())
        .await
        .unwrap();
    let before = store.snapshot().await.unwrap();
    let dup = store
        .create_policy_binding(bind_policy(f.pbm_uuid, p.uuid, 0), &actor())
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    assert_eq!(store.snapshot().await.unwrap(), before);
}

async fn list_policies_unbound_and_bound_to(b: Backend) {
    let (store, _db) = test_store(b).await;
    let names = |p: Page<Policy>| p.items.into_iter().map(|p| p.name).collect::<Vec<_>>();
    let unbound = |v: bool| PolicyFilter {
        unbound: Some(v),
        ..Default::default()
    };
    let p1 = store
        .create_policy(policy("p1", "expressionpolicy"), &actor())
        .await
        .unwrap();
    let p2 = store
        .create_policy(policy("p2", "expressionpolicy"), &actor())
        .await
        .unwrap();
    let p3 = store
        .create_policy(policy("p3", "reputationpolicy"), &actor())
        .await
        .unwrap();

    // No bindings at all.
    assert_eq!(
        names(
            store
                .list_policies(&unbound(true), &ListQuery::default())
                .await
                .unwrap()
        ),
        ["p1", "p2", "p3"]
    );
    assert!(
        names(
            store
                .list_policies(&unbound(false), &ListQuery::default())
                .await
                .unwrap()
        )
        .is_empty()
    );

    let f = store
        .create_flow(
            Flow::new("F", "f", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let g = store
        .create_group(new_group("staff"), &actor())
        .await
        .unwrap();
    store
        .create_policy_binding(bind_policy(f.pbm_uuid, p2.uuid, 0), &actor())
        .await
        .unwrap();
    store
        .create_policy_binding(bind_policy(f.pbm_uuid, p2.uuid, 1), &actor())
        .await
        .unwrap();
    // A group binding binds no policy.
    store
        .create_policy_binding(
            PolicyBinding {
                group: Some(g.group.uuid),
                ..PolicyBinding::new(f.pbm_uuid, 2)
            },
            &actor(),
        )
        .await
        .unwrap();

    let free = store
        .list_policies(&unbound(true), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(free.count, 2);
    assert_eq!(names(free), ["p1", "p3"]);
    let bound = store
        .list_policies(&unbound(false), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(bound.count, 1, "a policy bound twice is listed once");
    assert_eq!(names(bound), ["p2"]);
    let free_expr = store
        .list_policies(
            &PolicyFilter {
                unbound: Some(true),
                kinds: vec!["expressionpolicy".into()],
                ..Default::default()
            },
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(names(free_expr), ["p1"]);
    assert_eq!(
        store
            .list_policies(&PolicyFilter::default(), &ListQuery::default())
            .await
            .unwrap()
            .count,
        3
    );

    assert_eq!(store.policy_bound_to(p1.uuid).await.unwrap(), 0);
    assert_eq!(store.policy_bound_to(p2.uuid).await.unwrap(), 2);
    assert_eq!(store.policy_bound_to(p3.uuid).await.unwrap(), 0);
    assert_eq!(store.policy_bound_to(Uuid::new_v4()).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Prompts

async fn prompts_crud(b: Backend) {
    let (store, _db) = test_store(b).await;
    let mk = |name: &str| Prompt {
        uuid: Uuid::nil(),
        name: name.into(),
        config: json!({"field_key": name, "type": "text", "required": true}),
    };
    let username = store.create_prompt(mk("username"), &actor()).await.unwrap();
    assert!(!username.uuid.is_nil());
    assert_eq!(username.config["field_key"], "username");
    let given = Uuid::new_v4();
    let email = store
        .create_prompt(
            Prompt {
                uuid: given,
                ..mk("email")
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(email.uuid, given);
    let password = store.create_prompt(mk("password"), &actor()).await.unwrap();

    assert_eq!(store.find_prompt(username.uuid).await.unwrap(), username);
    assert_eq!(store.find_prompt_by_name("email").await.unwrap(), email);
    assert_not_found(store.find_prompt(Uuid::new_v4()).await);
    assert_not_found(store.find_prompt_by_name("nope").await);
    let mut found = store
        .find_prompts(&[password.uuid, Uuid::new_v4(), username.uuid])
        .await
        .unwrap();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(found, [password.clone(), username.clone()]);
    assert!(store.find_prompts(&[]).await.unwrap().is_empty());

    let names = |p: Page<Prompt>| p.items.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(
            store
                .list_prompts(None, &ListQuery::default())
                .await
                .unwrap()
        ),
        ["email", "password", "username"]
    );
    assert_eq!(
        names(
            store
                .list_prompts(Some("email"), &ListQuery::default())
                .await
                .unwrap()
        ),
        ["email"]
    );
    assert_eq!(
        names(
            store
                .list_prompts(
                    None,
                    &ListQuery {
                        search: Some("SS".into()),
                        ordering: Ordering::parse("-name"),
                        ..Default::default()
                    }
                )
                .await
                .unwrap()
        ),
        ["password"]
    );
    let p2 = store
        .list_prompts(
            None,
            &ListQuery {
                page: PageRequest {
                    page: 2,
                    page_size: 2,
                },
                ordering: Ordering::parse("-name"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.count, 3);
    assert_eq!(names(p2), ["email"]);

    // Names are unique, on create and on update; a failure writes nothing.
    let before = store.snapshot().await.unwrap();
    assert_conflict(store.create_prompt(mk("email"), &actor()).await, "name");
    assert_conflict(
        store
            .update_prompt(username.uuid, mk("email"), &actor())
            .await,
        "name",
    );
    assert_not_found(
        store
            .update_prompt(Uuid::new_v4(), mk("new"), &actor())
            .await,
    );
    assert_eq!(store.snapshot().await.unwrap(), before);

    let updated = store
        .update_prompt(
            username.uuid,
            Prompt {
                uuid: Uuid::new_v4(),
                name: "login".into(),
                config: json!({"field_key": "login", "type": "username"}),
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        updated,
        Prompt {
            uuid: username.uuid,
            name: "login".into(),
            config: json!({"field_key": "login", "type": "username"}),
        }
    );
    assert_eq!(store.find_prompt_by_name("login").await.unwrap(), updated);
    assert_not_found(store.find_prompt_by_name("username").await);

    store.delete_prompt(email.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_prompt(email.uuid).await);
    assert_not_found(store.delete_prompt(email.uuid, &actor()).await);
    // The name is free again.
    store.create_prompt(mk("email"), &actor()).await.unwrap();

    let events = model_events(&store, "authentik_stages_prompt", "prompt").await;
    let of_email: Vec<&str> = events
        .iter()
        .filter(|(_, pk)| *pk == email.uuid.to_string())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(of_email, ["model_created", "model_deleted"]);
    assert_eq!(events.len(), 6);
}

// ---------------------------------------------------------------------------------------------
// Sessions

async fn sessions_find_save_and_delete(b: Backend) {
    let clock = FixedClock::new(t0());
    let (store, _db) = test_store_with_clock(b, Arc::new(clock.clone())).await;
    let alice = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap();
    let bob = store
        .create_user(NewUser::named("bob"), &actor())
        .await
        .unwrap();
    let a = alice.user.pk;

    let s1 = store
        .create_session(session("hash-1", Some(a), t0() + Duration::hours(1)))
        .await
        .unwrap();
    assert!(!s1.uuid.is_nil());
    assert_eq!(
        s1,
        Session {
            uuid: s1.uuid,
            ..session("hash-1", Some(a), t0() + Duration::hours(1))
        }
    );
    let mut later = session("hash-2", Some(a), t0() + Duration::hours(2));
    later.last_used = t0() + Duration::minutes(5);
    let s2 = store.create_session(later).await.unwrap();
    let expired = store
        .create_session(session("hash-old", Some(a), t0() - Duration::seconds(1)))
        .await
        .unwrap();
    let anon = store
        .create_session(session("hash-anon", None, t0() + Duration::hours(1)))
        .await
        .unwrap();
    let bobs = store
        .create_session(session(
            "hash-bob",
            Some(bob.user.pk),
            t0() + Duration::hours(1),
        ))
        .await
        .unwrap();

    assert_eq!(
        store.find_session("hash-1").await.unwrap(),
        Some(s1.clone())
    );
    assert_eq!(
        store.find_session("hash-anon").await.unwrap(),
        Some(anon.clone())
    );
    assert_eq!(
        store.find_session("hash-old").await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.find_session("unknown").await.unwrap(), None);

    // Key hashes are unique.
    assert_conflict(
        store
            .create_session(session(
                "hash-1",
                Some(bob.user.pk),
                t0() + Duration::hours(1),
            ))
            .await,
        "key_hash",
    );

    // Live sessions of a user, most recently used first.
    assert_eq!(
        store.list_user_sessions(a).await.unwrap(),
        [s2.clone(), s1.clone()]
    );
    assert_eq!(
        store.list_user_sessions(bob.user.pk).await.unwrap(),
        std::slice::from_ref(&bobs)
    );

    // Saving writes every mutable field; the old key no longer finds it.
    let saved = Session {
        uuid: anon.uuid,
        key_hash: "hash-anon-rotated".into(),
        user: Some(bob.user.pk),
        created: anon.created,
        expires: t0() + Duration::days(14),
        last_used: t0() + Duration::minutes(1),
        last_ip: "2001:db8::1".into(),
        last_user_agent: "other-agent".into(),
        csrf_token: "new-csrf".into(),
        data: json!({"plans": {"login": {"stage": 2}}}),
    };
    store.save_session(&saved).await.unwrap();
    assert_eq!(store.find_session("hash-anon").await.unwrap(), None);
    assert_eq!(
        store.find_session("hash-anon-rotated").await.unwrap(),
        Some(saved.clone())
    );
    assert_eq!(
        store.list_user_sessions(bob.user.pk).await.unwrap(),
        [saved.clone(), bobs.clone()]
    );
    // Taking another session's key is a conflict.
    assert_conflict(
        store
            .save_session(&Session {
                key_hash: "hash-1".into(),
                ..saved.clone()
            })
            .await,
        "key_hash",
    );

    // A deleted session cannot be saved.
    store.delete_session(saved.uuid).await.unwrap();
    assert_eq!(store.find_session("hash-anon-rotated").await.unwrap(), None);
    assert_not_found(store.save_session(&saved).await);
    store.delete_session(saved.uuid).await.unwrap();
    assert_not_found(
        store
            .save_session(&Session {
                uuid: Uuid::new_v4(),
                ..saved.clone()
            })
            .await,
    );

    // Expiry follows the store's clock: at `expires` a session is gone.
    clock.set(s1.expires);
    assert_eq!(store.find_session("hash-1").await.unwrap(), None);
    assert_eq!(
        store.list_user_sessions(a).await.unwrap(),
        std::slice::from_ref(&s2)
    );
    clock.set(t0());
    assert_eq!(
        store.find_session("hash-1").await.unwrap(),
        Some(s1.clone())
    );

    // Ending the other sessions of a user keeps the current one (expired ones go too).
    assert_eq!(
        store.delete_user_sessions(a, Some(s1.uuid)).await.unwrap(),
        2
    );
    assert_eq!(
        store.list_user_sessions(a).await.unwrap(),
        std::slice::from_ref(&s1)
    );
    assert!(
        !rows(&store, "session")
            .await
            .iter()
            .any(|r| r["uuid"] == json!(expired.uuid.to_string())
                || r["uuid"] == json!(s2.uuid.to_string()))
    );
    assert_eq!(store.delete_user_sessions(a, None).await.unwrap(), 1);
    assert_eq!(store.find_session("hash-1").await.unwrap(), None);
    assert_eq!(store.delete_user_sessions(a, None).await.unwrap(), 0);
    // Bob's were not touched.
    assert_eq!(
        store.find_session("hash-bob").await.unwrap(),
        Some(bobs.clone())
    );

    // Deleting a user deletes its sessions.
    store.delete_user(bob.user.pk, &actor()).await.unwrap();
    assert_eq!(store.find_session("hash-bob").await.unwrap(), None);
    assert!(rows(&store, "session").await.is_empty());
}

/// Expiry compares instants, not text: on SQLite timestamps are stored as strings, and a
/// fraction of a second (or its absence) must not flip the comparison.
async fn session_expiry_is_exact_below_a_second(b: Backend) {
    let ms = Duration::milliseconds;
    let clock = FixedClock::new(t0() + ms(500));
    let (store, _db) = test_store_with_clock(b, Arc::new(clock.clone())).await;
    // Logged-in sessions: those are stored, so the database's comparison is what is tested.
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap()
        .user
        .pk;
    for (key, expires) in [
        ("whole-before", t0()),
        ("frac-before", t0() + ms(100)),
        ("frac-before-long", t0() + Duration::microseconds(499_999)),
        ("at", t0() + ms(500)),
        ("frac-after", t0() + ms(900)),
        ("frac-after-short", t0() + Duration::microseconds(500_001)),
        ("whole-after", t0() + Duration::seconds(1)),
    ] {
        store
            .create_session(session(key, Some(u), expires))
            .await
            .unwrap();
    }
    let mut live = Vec::new();
    for key in [
        "whole-before",
        "frac-before",
        "frac-before-long",
        "at",
        "frac-after",
        "frac-after-short",
        "whole-after",
    ] {
        if store.find_session(key).await.unwrap().is_some() {
            live.push(key);
        }
    }
    assert_eq!(live, ["frac-after", "frac-after-short", "whole-after"]);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 4);
    // A clock on a whole second against stored fractions.
    clock.set(t0() + Duration::seconds(1));
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 3);
}

async fn expired_sessions_are_deleted(b: Backend) {
    let clock = FixedClock::new(t0());
    let (store, _db) = test_store_with_clock(b, Arc::new(clock.clone())).await;
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap()
        .user
        .pk;
    for (key, expires) in [
        ("past-1", t0() - Duration::days(1)),
        ("past-2", t0() - Duration::seconds(1)),
        ("now", t0()),
        ("soon", t0() + Duration::seconds(1)),
        ("later", t0() + Duration::hours(1)),
    ] {
        store
            .create_session(session(key, Some(u), expires))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 3);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    assert!(store.find_session("soon").await.unwrap().is_some());
    assert_eq!(rows(&store, "session").await.len(), 2);
    clock.advance(Duration::minutes(30));
    assert_eq!(store.find_session("soon").await.unwrap(), None);
    assert!(store.find_session("later").await.unwrap().is_some());
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
    clock.advance(Duration::hours(1));
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
    assert!(rows(&store, "session").await.is_empty());
}

/// Anonymous sessions (a login in progress) stay in memory where the store caches sessions
/// (SQLite), and are written when they log in; on PostgreSQL, where other processes may
/// continue the flow, they are stored at once. Either way the store answers the same.
async fn anonymous_sessions_are_written_when_they_log_in(b: Backend) {
    let clock = FixedClock::new(t0());
    let (store, _db) = test_store_with_clock(b, Arc::new(clock.clone())).await;
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap()
        .user
        .pk;
    let in_memory = b == Backend::Sqlite;
    let mut anon = store
        .create_session(session("anon-1", None, t0() + Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(rows(&store, "session").await.len(), usize::from(!in_memory));
    assert_eq!(
        store.find_session("anon-1").await.unwrap(),
        Some(anon.clone())
    );

    // A flow step saves its plan: found again with it.
    anon.data = json!({"flows": {"login": {"stage": 1}}});
    store.save_session(&anon).await.unwrap();
    assert_eq!(
        store.find_session("anon-1").await.unwrap(),
        Some(anon.clone())
    );
    assert_eq!(rows(&store, "session").await.len(), usize::from(!in_memory));

    // The login (a new key, the user) writes it, in a unit of work like the login stage's.
    let mut logged_in = anon.clone();
    logged_in.key_hash = "user-1".into();
    logged_in.user = Some(u);
    let unit = store.begin_unit().await.unwrap();
    unit.store().save_session(&logged_in).await.unwrap();
    // Not visible to others before the commit.
    assert_eq!(store.find_session("user-1").await.unwrap(), None);
    unit.commit_without_invalidating().await.unwrap();
    assert_eq!(store.find_session("anon-1").await.unwrap(), None, "old key");
    assert_eq!(
        store.find_session("user-1").await.unwrap(),
        Some(logged_in.clone())
    );
    let stored = rows(&store, "session").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["uuid"], json!(anon.uuid.to_string()));
    assert_eq!(
        store.list_user_sessions(u).await.unwrap(),
        [logged_in.clone()]
    );

    // A login that rolls back leaves the anonymous session as it was.
    let anon2 = store
        .create_session(session("anon-2", None, t0() + Duration::days(1)))
        .await
        .unwrap();
    let unit = store.begin_unit().await.unwrap();
    unit.store()
        .save_session(&Session {
            key_hash: "user-2".into(),
            user: Some(u),
            ..anon2.clone()
        })
        .await
        .unwrap();
    unit.rollback().await.unwrap();
    assert_eq!(
        store.find_session("anon-2").await.unwrap(),
        Some(anon2.clone())
    );
    assert_eq!(store.find_session("user-2").await.unwrap(), None);

    // Deleted and expired anonymous sessions are gone.
    store.delete_session(anon2.uuid).await.unwrap();
    assert_eq!(store.find_session("anon-2").await.unwrap(), None);
    store
        .create_session(session("anon-3", None, t0() + Duration::hours(1)))
        .await
        .unwrap();
    clock.advance(Duration::hours(1));
    assert_eq!(store.find_session("anon-3").await.unwrap(), None);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// Consents

async fn consents_save_and_expire(b: Backend) {
    let clock = FixedClock::new(t0());
    let (store, _db) = test_store_with_clock(b, Arc::new(clock.clone())).await;
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap();
    let other = store
        .create_user(NewUser::named("bob"), &actor())
        .await
        .unwrap();
    let app = store
        .create_application(application("wiki"), &actor())
        .await
        .unwrap();
    let app2 = store
        .create_application(application("blog"), &actor())
        .await
        .unwrap();
    let pk = u.user.pk;

    assert_eq!(store.find_consent(pk, app.uuid).await.unwrap(), None);
    let first = store
        .save_consent(pk, app.uuid, Some(t0() + Duration::hours(1)), "openid")
        .await
        .unwrap();
    assert_eq!(
        first,
        UserConsent {
            uuid: first.uuid,
            user: pk,
            application: app.uuid,
            expires: Some(t0() + Duration::hours(1)),
            permissions: "openid".into(),
        }
    );
    assert_eq!(
        store.find_consent(pk, app.uuid).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.find_consent(pk, app2.uuid).await.unwrap(), None);
    assert_eq!(
        store.find_consent(other.user.pk, app.uuid).await.unwrap(),
        None
    );

    // Expired: not found (at `expires` exactly, too).
    clock.set(t0() + Duration::hours(1));
    assert_eq!(store.find_consent(pk, app.uuid).await.unwrap(), None);

    // Saving again updates the same row.
    let second = store
        .save_consent(pk, app.uuid, None, "openid profile email")
        .await
        .unwrap();
    assert_eq!(second.uuid, first.uuid, "same row");
    assert_eq!(second.expires, None);
    assert_eq!(second.permissions, "openid profile email");
    assert_eq!(rows(&store, "user_consent").await.len(), 1);
    // Permanent consent never expires.
    clock.advance(Duration::days(3650));
    assert_eq!(
        store.find_consent(pk, app.uuid).await.unwrap(),
        Some(second.clone())
    );
    // And back to an expiring one, already past.
    let third = store
        .save_consent(pk, app.uuid, Some(t0()), "openid")
        .await
        .unwrap();
    assert_eq!(third.uuid, first.uuid);
    assert_eq!(store.find_consent(pk, app.uuid).await.unwrap(), None);

    // Other users and applications have rows of their own.
    store
        .save_consent(other.user.pk, app.uuid, None, "openid")
        .await
        .unwrap();
    store
        .save_consent(pk, app2.uuid, None, "openid")
        .await
        .unwrap();
    assert_eq!(rows(&store, "user_consent").await.len(), 3);

    // Deleting a user or an application deletes their consents.
    store.delete_user(other.user.pk, &actor()).await.unwrap();
    assert_eq!(rows(&store, "user_consent").await.len(), 2);
    store.delete_application("blog", &actor()).await.unwrap();
    assert_eq!(rows(&store, "user_consent").await.len(), 1);
    assert_eq!(store.find_consent(pk, app2.uuid).await.unwrap(), None);
}

/// Two requests granting the same consent at once (a double-clicked consent form) must both
/// succeed and leave one row: `save_consent` "records (or replaces)". The interleaving is made
/// deterministic with a unit of work: it inserts the consent and holds it uncommitted while a
/// second save looks (finds nothing committed yet) and inserts; then the unit commits.
async fn concurrent_consent_saves_all_succeed(b: Backend) {
    let (store, _db) = test_store(b).await;
    let u = store
        .create_user(NewUser::named("alice"), &actor())
        .await
        .unwrap();
    let app = store
        .create_application(application("wiki"), &actor())
        .await
        .unwrap();
    let (user, app) = (u.user.pk, app.uuid);

    let unit = store.begin_unit().await.unwrap();
    unit.store()
        .save_consent(user, app, None, "openid")
        .await
        .unwrap();
    let second = {
        let store = store.clone();
        tokio::spawn(async move { store.save_consent(user, app, None, "openid email").await })
    };
    // Let the second save get as far as it can while the first is uncommitted.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    unit.commit().await.unwrap();
    let second = second.await.unwrap();
    assert!(second.is_ok(), "the second save failed: {second:?}");

    // And many at once.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .save_consent(user, app, None, &format!("openid scope{i}"))
                .await
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "concurrent saves failed: {failures:?}");
    assert_eq!(rows(&store, "user_consent").await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Reputation

fn sorted(mut rows: Vec<portcullis_store::ReputationRow>) -> Vec<(String, String, i64)> {
    rows.sort_by(|a, b| (&a.identifier, &a.ip).cmp(&(&b.identifier, &b.ip)));
    rows.into_iter()
        .map(|r| (r.identifier, r.ip, r.score))
        .collect()
}

fn row(identifier: &str, ip: &str, score: i64) -> (String, String, i64) {
    (identifier.to_owned(), ip.to_owned(), score)
}

async fn reputation_accumulates_and_filters(b: Backend) {
    let (store, _db) = test_store(b).await;
    assert!(store.reputation_rows(None, None).await.unwrap().is_empty());
    store
        .add_reputation("alice", "192.0.2.1", -1)
        .await
        .unwrap();
    assert_eq!(
        sorted(store.reputation_rows(None, None).await.unwrap()),
        [row("alice", "192.0.2.1", -1)]
    );
    store
        .add_reputation("alice", "192.0.2.1", -1)
        .await
        .unwrap();
    store.add_reputation("alice", "192.0.2.1", 5).await.unwrap();
    store.add_reputation("bob", "192.0.2.1", 3).await.unwrap();
    store
        .add_reputation("alice", "198.51.100.7", -5)
        .await
        .unwrap();
    store
        .add_reputation("carol", "203.0.113.9", 1)
        .await
        .unwrap();

    assert_eq!(
        sorted(store.reputation_rows(None, None).await.unwrap()),
        [
            row("alice", "192.0.2.1", 3),
            row("alice", "198.51.100.7", -5),
            row("bob", "192.0.2.1", 3),
            row("carol", "203.0.113.9", 1),
        ],
        "neither: every row"
    );
    assert_eq!(
        sorted(
            store
                .reputation_rows(Some("192.0.2.1"), None)
                .await
                .unwrap()
        ),
        [row("alice", "192.0.2.1", 3), row("bob", "192.0.2.1", 3)]
    );
    assert_eq!(
        sorted(store.reputation_rows(None, Some("alice")).await.unwrap()),
        [
            row("alice", "192.0.2.1", 3),
            row("alice", "198.51.100.7", -5)
        ]
    );
    assert_eq!(
        sorted(
            store
                .reputation_rows(Some("203.0.113.9"), Some("alice"))
                .await
                .unwrap()
        ),
        [
            row("alice", "192.0.2.1", 3),
            row("alice", "198.51.100.7", -5),
            row("carol", "203.0.113.9", 1),
        ],
        "both: either matches"
    );
    assert!(
        store
            .reputation_rows(Some("10.0.0.1"), Some("nobody"))
            .await
            .unwrap()
            .is_empty()
    );

    // Over-long values are truncated, consistently, rather than refused.
    let long: String = "é".repeat(300);
    let long_ip: String = "1".repeat(100);
    store.add_reputation(&long, &long_ip, -1).await.unwrap();
    store.add_reputation(&long, &long_ip, -1).await.unwrap();
    let cut: String = "é".repeat(256);
    let cut_ip: String = "1".repeat(64);
    assert_eq!(
        sorted(store.reputation_rows(None, Some(&cut)).await.unwrap()),
        [row(&cut, &cut_ip, -2)]
    );
    assert_eq!(store.reputation_rows(None, None).await.unwrap().len(), 5);
}

async fn concurrent_reputation_adds_all_count(b: Backend) {
    let (store, _db) = test_store(b).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.add_reputation("target", "192.0.2.1", 1).await?;
            // And a row per task, created concurrently with the others.
            store
                .add_reputation(&format!("user{i}"), "192.0.2.1", -1)
                .await?;
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let rows = sorted(store.reputation_rows(None, Some("target")).await.unwrap());
    assert_eq!(rows, [row("target", "192.0.2.1", 20)]);
    let all = store
        .reputation_rows(Some("192.0.2.1"), None)
        .await
        .unwrap();
    assert_eq!(all.len(), 21);
    assert_eq!(all.iter().map(|r| r.score).sum::<i64>(), 0);
}

// ---------------------------------------------------------------------------------------------
// Units of work

async fn unit_of_work_rolls_back_flow_changes(b: Backend) {
    let (store, _db) = test_store(b).await;
    // Something to start from, so the rollback has rows to keep.
    let kept = store
        .create_flow(
            Flow::new("Kept", "kept", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let before = store.snapshot().await.unwrap();

    let unit = store.begin_unit().await.unwrap();
    let f = unit
        .store()
        .create_flow(
            Flow::new("In unit", "in-unit", FlowDesignation::Authentication),
            &actor(),
        )
        .await
        .unwrap();
    let s = unit
        .store()
        .create_stage(stage("unit-stage", "identificationstage"), &actor())
        .await
        .unwrap();
    let fb = unit
        .store()
        .create_flow_binding(FlowStageBinding::new(f.uuid, s.uuid, 10), &actor())
        .await
        .unwrap();
    let p = unit
        .store()
        .create_policy(policy("unit-policy", "expressionpolicy"), &actor())
        .await
        .unwrap();
    unit.store()
        .create_policy_binding(bind_policy(fb.pbm_uuid, p.uuid, 0), &actor())
        .await
        .unwrap();
    // A failure inside the unit does not spoil it.
    assert_conflict(
        unit.store()
            .create_flow(
                Flow::new("Dup", "kept", FlowDesignation::Authentication),
                &actor(),
            )
            .await,
        "slug",
    );
    unit.store()
        .update_flow(
            kept.uuid,
            Flow::new("Changed", "kept", FlowDesignation::Recovery),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        unit.store().flow_plan_bindings(f.uuid).await.unwrap(),
        [(fb.clone(), s.clone())]
    );
    assert_eq!(
        unit.store()
            .policy_bindings_for(fb.pbm_uuid)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_not_found(store.find_flow(f.uuid).await);
    unit.rollback().await.unwrap();

    assert_eq!(store.snapshot().await.unwrap(), before);
    assert_not_found(store.find_flow_by_slug("in-unit").await);
    assert_not_found(store.find_stage(s.uuid).await);
    assert_eq!(store.find_flow(kept.uuid).await.unwrap(), kept);

    // Dropping a unit rolls it back as well.
    {
        let unit = store.begin_unit().await.unwrap();
        let f = unit
            .store()
            .create_flow(
                Flow::new("Dropped", "dropped", FlowDesignation::Enrollment),
                &actor(),
            )
            .await
            .unwrap();
        let s = unit
            .store()
            .create_stage(stage("dropped", "denystage"), &actor())
            .await
            .unwrap();
        unit.store()
            .create_flow_binding(FlowStageBinding::new(f.uuid, s.uuid, 0), &actor())
            .await
            .unwrap();
    }
    assert_eq!(store.snapshot().await.unwrap(), before);

    // A committed unit lands whole.
    let unit = store.begin_unit().await.unwrap();
    let f = unit
        .store()
        .create_flow(
            Flow::new("Committed", "committed", FlowDesignation::Enrollment),
            &actor(),
        )
        .await
        .unwrap();
    let s = unit
        .store()
        .create_stage(stage("committed", "denystage"), &actor())
        .await
        .unwrap();
    let fb = unit
        .store()
        .create_flow_binding(FlowStageBinding::new(f.uuid, s.uuid, 0), &actor())
        .await
        .unwrap();
    unit.commit().await.unwrap();
    assert_eq!(store.flow_plan_bindings(f.uuid).await.unwrap(), [(fb, s)]);
}

both_backends!(
    flows_create_find_and_list,
    flow_update_keeps_uuids_and_records_events,
    flow_delete_cascades_bindings_and_policy_bindings,
    stages_crud_and_labels,
    stage_delete_cascades_and_stage_flows,
    flow_bindings_validate_order_and_cascade,
    flow_binding_conflict_names_the_same_field_on_both_backends,
    policies_crud_and_labels,
    policy_bindings_validate_references,
    policy_bindings_for_and_cascades,
    policy_binding_policy_target_order_is_unique,
    list_policies_unbound_and_bound_to,
    prompts_crud,
    sessions_find_save_and_delete,
    expired_sessions_are_deleted,
    session_expiry_is_exact_below_a_second,
    anonymous_sessions_are_written_when_they_log_in,
    consents_save_and_expire,
    concurrent_consent_saves_all_succeed,
    reputation_accumulates_and_filters,
    concurrent_reputation_adds_all_count,
    unit_of_work_rolls_back_flow_changes,
);
