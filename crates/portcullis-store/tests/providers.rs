//! The store contract of m0007 (providers, property mappings and the links between them), run
//! against SQLite and PostgreSQL alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_core::*;
use portcullis_store::{
    EventFilter, ListQuery, PropertyMappingFilter, ProviderFilter, Store, StoreError,
    property_mapping_app_label, provider_app_label,
};
use portcullis_testkit::{Backend, both_backends, test_store};
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

fn scope(name: &str, scope_name: &str) -> PropertyMapping {
    PropertyMapping {
        uuid: Uuid::nil(),
        name: name.into(),
        managed: None,
        kind: "scopemapping".into(),
        expression: format!("return {{\"{scope_name}\": True}}"),
        config: json!({"scope_name": scope_name, "description": format!("Access to {scope_name}")}),
    }
}

fn oauth2(name: &str, client_id: Option<&str>) -> Provider {
    Provider {
        pk: 0,
        name: name.into(),
        kind: "oauth2provider".into(),
        authentication_flow: None,
        authorization_flow: None,
        invalidation_flow: None,
        property_mappings: vec![],
        client_id: client_id.map(str::to_owned),
        config: json!({"client_type": "confidential", "redirect_uris": [{"matching_mode": "strict", "url": format!("https://{name}.example/cb")}]}),
    }
}

fn application(slug: &str, provider: Option<i32>) -> Application {
    Application {
        uuid: Uuid::nil(),
        name: slug.into(),
        slug: slug.into(),
        provider,
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

async fn flow(store: &Store, slug: &str, designation: FlowDesignation) -> Flow {
    store
        .create_flow(Flow::new(slug, slug, designation), &actor())
        .await
        .unwrap()
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

fn query(page: u64, page_size: u64, ordering: &str, search: Option<&str>) -> ListQuery {
    ListQuery {
        page: PageRequest { page, page_size },
        ordering: Ordering::parse(ordering),
        search: search.map(str::to_owned),
    }
}

/// (action, pk, name) of every event about `app`/`model_name`, oldest first.
async fn model_events(store: &Store, app: &str, model_name: &str) -> Vec<(String, String, String)> {
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
                e.context["model"]["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn ev(action: &str, pk: impl ToString, name: &str) -> (String, String, String) {
    (action.to_owned(), pk.to_string(), name.to_owned())
}

async fn event_count(store: &Store) -> u64 {
    store
        .list_events(&EventFilter::default(), &all())
        .await
        .unwrap()
        .count
}

fn names_of_providers(p: &Page<Provider>) -> Vec<&str> {
    p.items.iter().map(|p| p.name.as_str()).collect()
}

fn names_of_mappings(p: &Page<PropertyMapping>) -> Vec<&str> {
    p.items.iter().map(|p| p.name.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Property mappings

async fn property_mappings_crud_and_events(b: Backend) {
    let (store, _db) = test_store(b).await;
    assert_eq!(
        property_mapping_app_label("scopemapping"),
        Some(("authentik_providers_oauth2", "scopemapping"))
    );
    assert_eq!(property_mapping_app_label("samlpropertymapping"), None);

    let mut email = scope("authentik default OAuth Mapping: OpenID 'email'", "email");
    email.managed = Some("goauthentik.io/providers/oauth2/scope-email".into());
    let email = store
        .create_property_mapping(email, &actor())
        .await
        .unwrap();
    assert!(!email.uuid.is_nil(), "uuid assigned");
    assert_eq!(email.kind, "scopemapping");
    assert_eq!(
        email.config,
        json!({"scope_name": "email", "description": "Access to email"})
    );
    assert_eq!(email.expression, "return {\"email\": True}");

    // A given uuid is kept.
    let given = Uuid::new_v4();
    let mut profile = scope("profile", "profile");
    profile.uuid = given;
    let profile = store
        .create_property_mapping(profile, &actor())
        .await
        .unwrap();
    assert_eq!(profile.uuid, given);
    assert_eq!(profile.managed, None);

    assert_eq!(
        store.find_property_mapping(email.uuid).await.unwrap(),
        email
    );
    assert_eq!(
        store
            .find_property_mapping_by_managed("goauthentik.io/providers/oauth2/scope-email")
            .await
            .unwrap(),
        email
    );
    assert_not_found(store.find_property_mapping(Uuid::new_v4()).await);
    assert_not_found(
        store
            .find_property_mapping_by_managed("goauthentik.io/providers/oauth2/scope-nope")
            .await,
    );

    // Update replaces name, managed, expression and config; uuid and kind stay.
    let mut changed = email.clone();
    changed.uuid = Uuid::new_v4();
    changed.name = "email v2".into();
    changed.managed = None;
    changed.expression = "return {}".into();
    changed.config = json!({"scope_name": "email", "description": ""});
    let updated = store
        .update_property_mapping(email.uuid, changed, &actor())
        .await
        .unwrap();
    assert_eq!(updated.uuid, email.uuid);
    assert_eq!(updated.name, "email v2");
    assert_eq!(updated.managed, None);
    assert_eq!(updated.expression, "return {}");
    assert_eq!(
        store.find_property_mapping(email.uuid).await.unwrap(),
        updated
    );
    assert_not_found(
        store
            .find_property_mapping_by_managed("goauthentik.io/providers/oauth2/scope-email")
            .await,
    );

    // The kind never changes; unknown kinds are refused; nothing changes either way.
    let mut other_kind = updated.clone();
    other_kind.kind = "samlpropertymapping".into();
    other_kind.name = "renamed".into();
    assert_invalid(
        store
            .update_property_mapping(email.uuid, other_kind, &actor())
            .await,
        "kind",
    );
    assert_eq!(
        store.find_property_mapping(email.uuid).await.unwrap(),
        updated
    );
    let mut saml = scope("saml", "x");
    saml.kind = "samlpropertymapping".into();
    let events_before = event_count(&store).await;
    assert_invalid(store.create_property_mapping(saml, &actor()).await, "kind");
    assert_eq!(event_count(&store).await, events_before);
    assert_eq!(
        store
            .list_property_mappings(&PropertyMappingFilter::default(), &all())
            .await
            .unwrap()
            .count,
        2
    );
    assert_not_found(
        store
            .update_property_mapping(Uuid::new_v4(), scope("x", "x"), &actor())
            .await,
    );

    store
        .delete_property_mapping(email.uuid, &actor())
        .await
        .unwrap();
    assert_not_found(store.find_property_mapping(email.uuid).await);
    assert_not_found(store.delete_property_mapping(email.uuid, &actor()).await);

    assert_eq!(
        model_events(&store, "authentik_providers_oauth2", "scopemapping").await,
        [
            ev(
                "model_created",
                email.uuid,
                "authentik default OAuth Mapping: OpenID 'email'"
            ),
            ev("model_created", given, "profile"),
            ev("model_updated", email.uuid, "email v2"),
            ev("model_deleted", email.uuid, "email v2"),
        ]
    );
}

async fn property_mapping_conflicts(b: Backend) {
    let (store, _db) = test_store(b).await;
    let mut first = scope("first", "email");
    first.managed = Some("managed-1".into());
    let first = store
        .create_property_mapping(first, &actor())
        .await
        .unwrap();
    // Several unmanaged mappings may coexist.
    let second = store
        .create_property_mapping(scope("second", "profile"), &actor())
        .await
        .unwrap();
    store
        .create_property_mapping(scope("third", "openid"), &actor())
        .await
        .unwrap();

    let events_before = event_count(&store).await;
    assert_conflict(
        store
            .create_property_mapping(scope("first", "other"), &actor())
            .await,
        "name",
    );
    let mut managed = scope("fourth", "other");
    managed.managed = Some("managed-1".into());
    assert_conflict(
        store.create_property_mapping(managed, &actor()).await,
        "managed",
    );
    let mut same_uuid = scope("fifth", "other");
    same_uuid.uuid = first.uuid;
    assert_conflict(
        store.create_property_mapping(same_uuid, &actor()).await,
        "uuid",
    );

    // Updates name the field too, and change nothing.
    let mut renamed = second.clone();
    renamed.name = "first".into();
    assert_conflict(
        store
            .update_property_mapping(second.uuid, renamed, &actor())
            .await,
        "name",
    );
    let mut remanaged = second.clone();
    remanaged.managed = Some("managed-1".into());
    assert_conflict(
        store
            .update_property_mapping(second.uuid, remanaged, &actor())
            .await,
        "managed",
    );
    assert_eq!(
        store.find_property_mapping(second.uuid).await.unwrap(),
        second
    );
    assert_eq!(event_count(&store).await, events_before);
    assert_eq!(
        store
            .list_property_mappings(&PropertyMappingFilter::default(), &all())
            .await
            .unwrap()
            .count,
        3
    );
}

async fn property_mappings_list_page_search_order(b: Backend) {
    let (store, _db) = test_store(b).await;
    for (name, managed) in [
        ("openid email", Some("m/email")),
        ("openid profile", Some("m/profile")),
        ("custom groups", None),
        ("another", None),
        ("openid offline_access", Some("m/offline")),
    ] {
        let mut m = scope(name, "x");
        m.managed = managed.map(str::to_owned);
        store.create_property_mapping(m, &actor()).await.unwrap();
    }
    let f = PropertyMappingFilter::default();

    // Default order: name ascending. The names are lower case, so every collation (SQLite's
    // binary, PostgreSQL's locale) orders them the same way.
    let page = store.list_property_mappings(&f, &all()).await.unwrap();
    let mut expected = vec![
        "another",
        "custom groups",
        "openid email",
        "openid offline_access",
        "openid profile",
    ];
    assert_eq!(names_of_mappings(&page), expected);
    assert_eq!(page.count, 5);

    let desc = store
        .list_property_mappings(&f, &query(1, 100, "-name", None))
        .await
        .unwrap();
    expected.reverse();
    assert_eq!(names_of_mappings(&desc), expected);

    // Pages of two.
    let p2 = store
        .list_property_mappings(&f, &query(2, 2, "name", None))
        .await
        .unwrap();
    assert_eq!(
        names_of_mappings(&p2),
        ["openid email", "openid offline_access"]
    );
    assert_eq!(p2.count, 5);
    let p4 = store
        .list_property_mappings(&f, &query(4, 2, "name", None))
        .await
        .unwrap();
    assert!(p4.items.is_empty());
    assert_eq!(p4.count, 5);

    // Search is case-insensitive, on the name; `%` and `_` are literal.
    let found = store
        .list_property_mappings(&f, &query(1, 100, "", Some("OPENID")))
        .await
        .unwrap();
    assert_eq!(
        names_of_mappings(&found),
        ["openid email", "openid offline_access", "openid profile"]
    );
    assert_eq!(found.count, 3);
    let underscore = store
        .list_property_mappings(&f, &query(1, 100, "", Some("_")))
        .await
        .unwrap();
    assert_eq!(names_of_mappings(&underscore), ["openid offline_access"]);

    // Filters.
    let managed = store
        .list_property_mappings(
            &PropertyMappingFilter {
                managed_is_null: Some(false),
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(
        names_of_mappings(&managed),
        ["openid email", "openid offline_access", "openid profile"]
    );
    let unmanaged = store
        .list_property_mappings(
            &PropertyMappingFilter {
                managed_is_null: Some(true),
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(names_of_mappings(&unmanaged), ["another", "custom groups"]);
    let by_name = store
        .list_property_mappings(
            &PropertyMappingFilter {
                name: Some("another".into()),
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(names_of_mappings(&by_name), ["another"]);
    let other_kind = store
        .list_property_mappings(
            &PropertyMappingFilter {
                kinds: vec!["samlpropertymapping".into()],
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(other_kind.count, 0);
}

// ---------------------------------------------------------------------------------------------
// Providers

async fn providers_crud_and_events(b: Backend) {
    let (store, _db) = test_store(b).await;
    assert_eq!(
        provider_app_label("oauth2provider"),
        Some(("authentik_providers_oauth2", "oauth2provider"))
    );
    assert_eq!(provider_app_label("samlprovider"), None);

    let login = flow(&store, "login", FlowDesignation::Authentication).await;
    let consent = flow(&store, "consent", FlowDesignation::Authorization).await;
    let logout = flow(&store, "logout", FlowDesignation::Invalidation).await;
    let implicit = flow(&store, "implicit", FlowDesignation::Authorization).await;
    let openid = store
        .create_property_mapping(scope("openid", "openid"), &actor())
        .await
        .unwrap();
    let email = store
        .create_property_mapping(scope("email", "email"), &actor())
        .await
        .unwrap();

    let mut p = oauth2("Grafana", Some("grafana-client"));
    p.pk = 12345; // ignored: the store assigns it
    p.authentication_flow = Some(login.uuid);
    p.authorization_flow = Some(consent.uuid);
    p.invalidation_flow = Some(logout.uuid);
    p.property_mappings = vec![openid.uuid, email.uuid];
    let created = store.create_provider(p.clone(), &actor()).await.unwrap();
    assert_ne!(created.pk, 12345);
    assert_eq!(created.name, "Grafana");
    assert_eq!(created.kind, "oauth2provider");
    assert_eq!(created.authentication_flow, Some(login.uuid));
    assert_eq!(created.authorization_flow, Some(consent.uuid));
    assert_eq!(created.invalidation_flow, Some(logout.uuid));
    // Ordered by the mappings' names.
    assert_eq!(created.property_mappings, [email.uuid, openid.uuid]);
    assert_eq!(created.client_id.as_deref(), Some("grafana-client"));
    assert_eq!(created.config, p.config);

    assert_eq!(store.find_provider(created.pk).await.unwrap(), created);
    assert_eq!(
        store
            .find_provider_by_client_id("grafana-client")
            .await
            .unwrap(),
        created
    );
    assert_not_found(store.find_provider(created.pk + 1000).await);
    assert_not_found(store.find_provider_by_client_id("GRAFANA-CLIENT").await);

    // A provider with no flows, no mappings and no client id.
    let bare = store
        .create_provider(oauth2("Bare", None), &actor())
        .await
        .unwrap();
    assert_ne!(bare.pk, created.pk);
    assert_eq!(bare.authentication_flow, None);
    assert!(bare.property_mappings.is_empty());
    assert_eq!(store.find_provider(bare.pk).await.unwrap(), bare);

    // Update replaces everything but pk and kind.
    let mut changed = created.clone();
    changed.pk = bare.pk; // ignored
    changed.name = "Grafana (prod)".into();
    changed.authentication_flow = None;
    changed.authorization_flow = Some(implicit.uuid);
    changed.invalidation_flow = None;
    changed.property_mappings = vec![openid.uuid];
    changed.client_id = Some("grafana-prod".into());
    changed.config = json!({"client_type": "public"});
    let updated = store
        .update_provider(created.pk, changed, &actor())
        .await
        .unwrap();
    assert_eq!(updated.pk, created.pk);
    assert_eq!(updated.name, "Grafana (prod)");
    assert_eq!(updated.authentication_flow, None);
    assert_eq!(updated.authorization_flow, Some(implicit.uuid));
    assert_eq!(updated.invalidation_flow, None);
    assert_eq!(updated.property_mappings, [openid.uuid]);
    assert_eq!(updated.client_id.as_deref(), Some("grafana-prod"));
    assert_eq!(updated.config, json!({"client_type": "public"}));
    assert_eq!(store.find_provider(created.pk).await.unwrap(), updated);
    assert_eq!(store.find_provider(bare.pk).await.unwrap(), bare);
    assert_not_found(store.find_provider_by_client_id("grafana-client").await);
    assert_eq!(
        store
            .find_provider_by_client_id("grafana-prod")
            .await
            .unwrap()
            .pk,
        created.pk
    );

    // The kind never changes; unknown kinds are refused; nothing is written either way.
    let events_before = event_count(&store).await;
    let mut other_kind = updated.clone();
    other_kind.kind = "samlprovider".into();
    other_kind.name = "renamed".into();
    assert_invalid(
        store
            .update_provider(created.pk, other_kind, &actor())
            .await,
        "kind",
    );
    let mut saml = oauth2("SAML", None);
    saml.kind = "samlprovider".into();
    assert_invalid(store.create_provider(saml, &actor()).await, "kind");
    assert_not_found(
        store
            .update_provider(created.pk + 1000, oauth2("x", None), &actor())
            .await,
    );
    assert_eq!(store.find_provider(created.pk).await.unwrap(), updated);
    assert_eq!(event_count(&store).await, events_before);
    assert_eq!(
        store
            .list_providers(&ProviderFilter::default(), &all())
            .await
            .unwrap()
            .count,
        2
    );

    store.delete_provider(bare.pk, &actor()).await.unwrap();
    assert_not_found(store.find_provider(bare.pk).await);
    assert_not_found(store.delete_provider(bare.pk, &actor()).await);
    assert_eq!(store.find_provider(created.pk).await.unwrap(), updated);

    assert_eq!(
        model_events(&store, "authentik_providers_oauth2", "oauth2provider").await,
        [
            ev("model_created", created.pk, "Grafana"),
            ev("model_created", bare.pk, "Bare"),
            ev("model_updated", created.pk, "Grafana (prod)"),
            ev("model_deleted", bare.pk, "Bare"),
        ]
    );
}

async fn provider_conflicts(b: Backend) {
    let (store, _db) = test_store(b).await;
    let a = store
        .create_provider(oauth2("A", Some("client-a")), &actor())
        .await
        .unwrap();
    // Several providers may have no client id.
    let b1 = store
        .create_provider(oauth2("B", None), &actor())
        .await
        .unwrap();
    store
        .create_provider(oauth2("C", None), &actor())
        .await
        .unwrap();

    let events_before = event_count(&store).await;
    assert_conflict(
        store
            .create_provider(oauth2("A", Some("client-other")), &actor())
            .await,
        "name",
    );
    assert_conflict(
        store
            .create_provider(oauth2("D", Some("client-a")), &actor())
            .await,
        "client_id",
    );

    let mut renamed = b1.clone();
    renamed.name = "A".into();
    assert_conflict(
        store.update_provider(b1.pk, renamed, &actor()).await,
        "name",
    );
    let mut same_client = b1.clone();
    same_client.client_id = Some("client-a".into());
    assert_conflict(
        store.update_provider(b1.pk, same_client, &actor()).await,
        "client_id",
    );
    assert_eq!(store.find_provider(b1.pk).await.unwrap(), b1);
    assert_eq!(store.find_provider(a.pk).await.unwrap(), a);
    assert_eq!(event_count(&store).await, events_before);
    assert_eq!(
        store
            .list_providers(&ProviderFilter::default(), &all())
            .await
            .unwrap()
            .count,
        3
    );

    // The freed client id can be taken.
    let mut moved = a.clone();
    moved.client_id = None;
    store.update_provider(a.pk, moved, &actor()).await.unwrap();
    let mut taken = b1.clone();
    taken.client_id = Some("client-a".into());
    store.update_provider(b1.pk, taken, &actor()).await.unwrap();
    assert_eq!(
        store
            .find_provider_by_client_id("client-a")
            .await
            .unwrap()
            .pk,
        b1.pk
    );
}

async fn provider_invalid_references(b: Backend) {
    let (store, _db) = test_store(b).await;
    let login = flow(&store, "login", FlowDesignation::Authentication).await;
    let email = store
        .create_property_mapping(scope("email", "email"), &actor())
        .await
        .unwrap();
    let existing = store
        .create_provider(oauth2("Existing", Some("existing")), &actor())
        .await
        .unwrap();
    let events_before = event_count(&store).await;

    type Spoil = fn(&mut Provider);
    let cases: [(&str, Spoil); 4] = [
        ("authentication_flow", |p| {
            p.authentication_flow = Some(Uuid::new_v4())
        }),
        ("authorization_flow", |p| {
            p.authorization_flow = Some(Uuid::new_v4())
        }),
        ("invalidation_flow", |p| {
            p.invalidation_flow = Some(Uuid::new_v4())
        }),
        ("property_mappings", |p| {
            p.property_mappings.push(Uuid::new_v4())
        }),
    ];
    for (field, spoil) in cases {
        // Everything else valid: the spoiled field is the one named.
        let mut p = oauth2("New", Some("new"));
        p.authentication_flow = Some(login.uuid);
        p.authorization_flow = Some(login.uuid);
        p.invalidation_flow = Some(login.uuid);
        p.property_mappings = vec![email.uuid];
        spoil(&mut p);
        assert_invalid(store.create_provider(p.clone(), &actor()).await, field);
        p.name = existing.name.clone();
        p.client_id = existing.client_id.clone();
        assert_invalid(store.update_provider(existing.pk, p, &actor()).await, field);
    }
    // A flow's pbm_uuid is not the flow.
    let mut p = oauth2("New", None);
    p.authorization_flow = Some(login.pbm_uuid);
    assert_invalid(
        store.create_provider(p, &actor()).await,
        "authorization_flow",
    );

    assert_eq!(store.find_provider(existing.pk).await.unwrap(), existing);
    assert_eq!(
        store
            .list_providers(&ProviderFilter::default(), &all())
            .await
            .unwrap()
            .count,
        1
    );
    assert_not_found(store.find_provider_by_client_id("new").await);
    assert_eq!(event_count(&store).await, events_before);
}

async fn provider_property_mapping_links(b: Backend) {
    let (store, _db) = test_store(b).await;
    let mut m = Vec::new();
    for name in ["openid", "email", "profile", "groups"] {
        m.push(
            store
                .create_property_mapping(scope(name, name), &actor())
                .await
                .unwrap(),
        );
    }
    let (openid, email, profile, groups) = (&m[0], &m[1], &m[2], &m[3]);

    // Duplicates are dropped; the set comes back ordered by name.
    let mut p = oauth2("P", Some("p"));
    p.property_mappings = vec![profile.uuid, openid.uuid, profile.uuid, email.uuid];
    let p = store.create_provider(p, &actor()).await.unwrap();
    assert_eq!(p.property_mappings, [email.uuid, openid.uuid, profile.uuid]);
    assert_eq!(
        store.list_property_mappings_of(p.pk).await.unwrap(),
        [email.clone(), openid.clone(), profile.clone()]
    );

    // Another provider shares some mappings.
    let mut q = oauth2("Q", Some("q"));
    q.property_mappings = vec![openid.uuid, groups.uuid];
    let q = store.create_provider(q, &actor()).await.unwrap();
    assert_eq!(q.property_mappings, [groups.uuid, openid.uuid]);

    // Update replaces the whole set.
    let mut replaced = p.clone();
    replaced.property_mappings = vec![groups.uuid, email.uuid];
    let replaced = store
        .update_provider(p.pk, replaced, &actor())
        .await
        .unwrap();
    assert_eq!(replaced.property_mappings, [email.uuid, groups.uuid]);
    assert_eq!(
        store.list_property_mappings_of(p.pk).await.unwrap(),
        [email.clone(), groups.clone()]
    );
    let mut emptied = replaced.clone();
    emptied.property_mappings = vec![];
    let emptied = store
        .update_provider(p.pk, emptied, &actor())
        .await
        .unwrap();
    assert!(emptied.property_mappings.is_empty());
    assert!(
        store
            .list_property_mappings_of(p.pk)
            .await
            .unwrap()
            .is_empty()
    );
    let mut refilled = emptied.clone();
    refilled.property_mappings = vec![openid.uuid, email.uuid];
    store
        .update_provider(p.pk, refilled, &actor())
        .await
        .unwrap();

    // Q was not touched by P's updates.
    assert_eq!(store.find_provider(q.pk).await.unwrap(), q);

    // Deleting a mapping removes it from every provider.
    store
        .delete_property_mapping(openid.uuid, &actor())
        .await
        .unwrap();
    assert_eq!(
        store.find_provider(p.pk).await.unwrap().property_mappings,
        [email.uuid]
    );
    assert_eq!(
        store.find_provider(q.pk).await.unwrap().property_mappings,
        [groups.uuid]
    );
    assert_eq!(
        store.list_property_mappings_of(q.pk).await.unwrap(),
        std::slice::from_ref(groups)
    );
    // The providers themselves are untouched (no event for them).
    assert_eq!(
        model_events(&store, "authentik_providers_oauth2", "oauth2provider")
            .await
            .len(),
        5
    );

    // Lists carry each provider's own set.
    let listed = store
        .list_providers(&ProviderFilter::default(), &all())
        .await
        .unwrap();
    assert_eq!(names_of_providers(&listed), ["P", "Q"]);
    assert_eq!(listed.items[0].property_mappings, [email.uuid]);
    assert_eq!(listed.items[1].property_mappings, [groups.uuid]);

    // Deleting a provider removes its links, not the mappings.
    store.delete_provider(p.pk, &actor()).await.unwrap();
    assert_not_found(store.list_property_mappings_of(p.pk).await);
    assert_eq!(
        store.find_property_mapping(email.uuid).await.unwrap(),
        *email
    );
    // A mapping whose provider went can be deleted, and linked to a new provider.
    let mut r = oauth2("R", None);
    r.property_mappings = vec![email.uuid];
    let r = store.create_provider(r, &actor()).await.unwrap();
    assert_eq!(r.property_mappings, [email.uuid]);
    store
        .delete_property_mapping(email.uuid, &actor())
        .await
        .unwrap();
    assert!(
        store
            .find_provider(r.pk)
            .await
            .unwrap()
            .property_mappings
            .is_empty()
    );
}

async fn provider_delete_clears_applications(b: Backend) {
    let (store, _db) = test_store(b).await;
    let gone = store
        .create_provider(oauth2("Gone", Some("gone")), &actor())
        .await
        .unwrap();
    let kept = store
        .create_provider(oauth2("Kept", Some("kept")), &actor())
        .await
        .unwrap();
    let a1 = store
        .create_application(application("one", Some(gone.pk)), &actor())
        .await
        .unwrap();
    // One provider, one application.
    let dup = store
        .create_application(application("two", Some(gone.pk)), &actor())
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { field }) if field == "provider_id"),
        "{dup:?}"
    );
    let a2 = store
        .create_application(application("two", None), &actor())
        .await
        .unwrap();
    let a3 = store
        .create_application(application("three", Some(kept.pk)), &actor())
        .await
        .unwrap();
    let a4 = store
        .create_application(application("four", None), &actor())
        .await
        .unwrap();
    assert_eq!(a1.provider, Some(gone.pk));

    store.delete_provider(gone.pk, &actor()).await.unwrap();
    let provider_of = |slug: &'static str| {
        let store = store.clone();
        async move { store.find_application(slug).await.unwrap().provider }
    };
    assert_eq!(provider_of("one").await, None);
    assert_eq!(provider_of("two").await, None);
    assert_eq!(provider_of("three").await, Some(kept.pk));
    assert_eq!(provider_of("four").await, None);
    // The applications are otherwise unchanged.
    let mut expected = a2.clone();
    expected.provider = None;
    assert_eq!(store.find_application("two").await.unwrap(), expected);
    assert_eq!(store.find_application("three").await.unwrap(), a3);
    assert_eq!(store.find_application("four").await.unwrap(), a4);
    assert_eq!(
        model_events(&store, "authentik_providers_oauth2", "oauth2provider")
            .await
            .last()
            .unwrap(),
        &ev("model_deleted", gone.pk, "Gone")
    );
}

async fn flow_delete_clears_provider_flows(b: Backend) {
    let (store, _db) = test_store(b).await;
    let doomed = flow(&store, "doomed", FlowDesignation::Authorization).await;
    let other = flow(&store, "other", FlowDesignation::Authentication).await;

    let mut all_doomed = oauth2("All doomed", None);
    all_doomed.authentication_flow = Some(doomed.uuid);
    all_doomed.authorization_flow = Some(doomed.uuid);
    all_doomed.invalidation_flow = Some(doomed.uuid);
    let all_doomed = store.create_provider(all_doomed, &actor()).await.unwrap();

    let mut mixed = oauth2("Mixed", Some("mixed"));
    mixed.authentication_flow = Some(other.uuid);
    mixed.authorization_flow = Some(doomed.uuid);
    mixed.invalidation_flow = Some(other.uuid);
    let mixed = store.create_provider(mixed, &actor()).await.unwrap();

    let mut untouched = oauth2("Untouched", None);
    untouched.authorization_flow = Some(other.uuid);
    let untouched = store.create_provider(untouched, &actor()).await.unwrap();

    store.delete_flow(doomed.uuid, &actor()).await.unwrap();
    assert_not_found(store.find_flow(doomed.uuid).await);

    let after = store.find_provider(all_doomed.pk).await.unwrap();
    assert_eq!(after.authentication_flow, None);
    assert_eq!(after.authorization_flow, None);
    assert_eq!(after.invalidation_flow, None);
    let after = store.find_provider(mixed.pk).await.unwrap();
    assert_eq!(after.authentication_flow, Some(other.uuid));
    assert_eq!(after.authorization_flow, None);
    assert_eq!(after.invalidation_flow, Some(other.uuid));
    assert_eq!(after.client_id.as_deref(), Some("mixed"));
    assert_eq!(store.find_provider(untouched.pk).await.unwrap(), untouched);

    // The cleared provider can be saved again as it is now.
    let mut again = store.find_provider(all_doomed.pk).await.unwrap();
    again.authorization_flow = Some(other.uuid);
    let again = store
        .update_provider(all_doomed.pk, again, &actor())
        .await
        .unwrap();
    assert_eq!(again.authorization_flow, Some(other.uuid));
}

async fn providers_list_page_search_order(b: Backend) {
    let (store, _db) = test_store(b).await;
    for name in [
        "grafana",
        "nextcloud",
        "gitea",
        "argo cd",
        "grafana-staging",
    ] {
        store
            .create_provider(oauth2(name, None), &actor())
            .await
            .unwrap();
    }
    let f = ProviderFilter::default();

    let page = store.list_providers(&f, &all()).await.unwrap();
    // Lower case names: every collation orders them the same way.
    let mut expected = vec![
        "argo cd",
        "gitea",
        "grafana",
        "grafana-staging",
        "nextcloud",
    ];
    assert_eq!(names_of_providers(&page), expected);
    assert_eq!(page.count, 5);

    let desc = store
        .list_providers(&f, &query(1, 100, "-name", None))
        .await
        .unwrap();
    expected.reverse();
    assert_eq!(names_of_providers(&desc), expected);

    // An ordering it does not know falls back to the name.
    let unknown = store
        .list_providers(&f, &query(1, 100, "client_secret", None))
        .await
        .unwrap();
    assert_eq!(names_of_providers(&unknown)[0], "argo cd");

    let p2 = store
        .list_providers(&f, &query(2, 2, "name", None))
        .await
        .unwrap();
    assert_eq!(names_of_providers(&p2), ["grafana", "grafana-staging"]);
    assert_eq!(p2.count, 5);
    let p3 = store
        .list_providers(&f, &query(3, 2, "name", None))
        .await
        .unwrap();
    assert_eq!(names_of_providers(&p3), ["nextcloud"]);

    let found = store
        .list_providers(&f, &query(1, 100, "", Some("GRAFANA")))
        .await
        .unwrap();
    assert_eq!(names_of_providers(&found), ["grafana", "grafana-staging"]);
    assert_eq!(found.count, 2);
    let found = store
        .list_providers(&f, &query(1, 1, "-name", Some("g")))
        .await
        .unwrap();
    assert_eq!(names_of_providers(&found), ["grafana-staging"]);
    assert_eq!(found.count, 4, "argo cd, gitea, grafana, grafana-staging");
    let none = store
        .list_providers(&f, &query(1, 100, "", Some("%")))
        .await
        .unwrap();
    assert_eq!(none.count, 0);

    let by_name = store
        .list_providers(
            &ProviderFilter {
                name: Some("gitea".into()),
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(names_of_providers(&by_name), ["gitea"]);
    let by_kind = store
        .list_providers(
            &ProviderFilter {
                kinds: vec!["oauth2provider".into()],
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(by_kind.count, 5);
    let other_kind = store
        .list_providers(
            &ProviderFilter {
                kinds: vec!["samlprovider".into()],
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(other_kind.count, 0);
}

async fn unit_of_work_rolls_back_providers(b: Backend) {
    let (store, _db) = test_store(b).await;
    let email = store
        .create_property_mapping(scope("email", "email"), &actor())
        .await
        .unwrap();
    let events_before = event_count(&store).await;
    let unit = store.begin_unit().await.unwrap();
    let mut p = oauth2("In unit", Some("in-unit"));
    p.property_mappings = vec![email.uuid];
    let p = unit.store().create_provider(p, &actor()).await.unwrap();
    assert_eq!(
        unit.store()
            .find_provider(p.pk)
            .await
            .unwrap()
            .property_mappings,
        [email.uuid]
    );
    unit.store()
        .delete_property_mapping(email.uuid, &actor())
        .await
        .unwrap();
    unit.rollback().await.unwrap();

    assert_not_found(store.find_provider_by_client_id("in-unit").await);
    assert_eq!(
        store.find_property_mapping(email.uuid).await.unwrap(),
        email
    );
    assert_eq!(event_count(&store).await, events_before);
}

// ---------------------------------------------------------------------------- oauth grants

fn grant(kind: OAuthGrantKind, key: &str, provider: i32, user: i32, family: Uuid) -> OAuthGrant {
    let now = SystemClock.now();
    OAuthGrant {
        id: 0,
        kind,
        key_hash: key.into(),
        provider,
        user: Some(user),
        family,
        session: None,
        scope: "openid email".into(),
        data: json!({"redirect_uri": "https://app/cb"}),
        created: now,
        expires: now + chrono::Duration::minutes(1),
        used: true,
        revoked: true,
    }
}

/// Codes are consumed once, whoever races; families revoke together; grants go with their
/// provider and user; expired ones are swept.
async fn oauth_grants_single_use_and_families(b: Backend) {
    let (store, _db) = test_store(b).await;
    let p = store
        .create_provider(oauth2("P", Some("p")), &actor())
        .await
        .unwrap();
    let u = store
        .create_user(NewUser::named("alice"), &Actor::system())
        .await
        .unwrap()
        .user;
    let family = Uuid::new_v4();
    let code = store
        .create_oauth_grant(grant(OAuthGrantKind::Code, "c1", p.pk, u.pk, family))
        .await
        .unwrap();
    // Created fresh whatever was asked.
    assert!(!code.used && !code.revoked);
    assert_eq!(code.scope, "openid email");
    let found = store
        .find_oauth_grant(OAuthGrantKind::Code, "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, code);
    // The same hash under another kind is another grant.
    assert!(
        store
            .find_oauth_grant(OAuthGrantKind::RefreshToken, "c1")
            .await
            .unwrap()
            .is_none()
    );
    let dup = store
        .create_oauth_grant(grant(OAuthGrantKind::Code, "c1", p.pk, u.pk, family))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");

    // Eight concurrent redemptions: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_oauth_grant(code.id).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);

    let access = store
        .create_oauth_grant(grant(OAuthGrantKind::AccessToken, "a1", p.pk, u.pk, family))
        .await
        .unwrap();
    let refresh = store
        .create_oauth_grant(grant(
            OAuthGrantKind::RefreshToken,
            "r1",
            p.pk,
            u.pk,
            family,
        ))
        .await
        .unwrap();
    let other = store
        .create_oauth_grant(grant(
            OAuthGrantKind::RefreshToken,
            "r2",
            p.pk,
            u.pk,
            Uuid::new_v4(),
        ))
        .await
        .unwrap();
    assert_eq!(store.revoke_oauth_family(family).await.unwrap(), 3);
    assert_eq!(store.revoke_oauth_family(family).await.unwrap(), 0);
    for (kind, key) in [
        (OAuthGrantKind::AccessToken, "a1"),
        (OAuthGrantKind::RefreshToken, "r1"),
    ] {
        let g = store.find_oauth_grant(kind, key).await.unwrap().unwrap();
        assert!(g.revoked, "{key}");
    }
    // A revoked grant cannot be consumed; the other family is untouched.
    assert!(!store.consume_oauth_grant(refresh.id).await.unwrap());
    assert!(store.consume_oauth_grant(other.id).await.unwrap());
    assert!(store.revoke_oauth_grant(other.id).await.unwrap());
    assert!(!store.revoke_oauth_grant(other.id).await.unwrap());
    assert_eq!(access.family, family);

    // Sweeping removes only what expired before the cut.
    let swept = store
        .delete_expired_oauth_grants(SystemClock.now() + chrono::Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(swept, 4);
    let kept = store
        .create_oauth_grant(grant(OAuthGrantKind::Code, "c2", p.pk, u.pk, family))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_expired_oauth_grants(SystemClock.now())
            .await
            .unwrap(),
        0
    );

    // Grants go with their user and their provider.
    store.delete_user(u.pk, &Actor::system()).await.unwrap();
    assert!(
        store
            .find_oauth_grant(OAuthGrantKind::Code, &kept.key_hash)
            .await
            .unwrap()
            .is_none()
    );
}

/// Recorded grants (what the token endpoint stores per token, many sharing one commit) are all
/// there once each call returns, each with its own answer: a duplicate fails alone, not the
/// others written with it. Inside a unit of work they go with the unit.
async fn recorded_grants_are_durable_and_fail_alone(b: Backend) {
    let (store, _db) = test_store(b).await;
    let p = store
        .create_provider(oauth2("P", Some("p")), &actor())
        .await
        .unwrap();
    let u = store
        .create_user(NewUser::named("alice"), &Actor::system())
        .await
        .unwrap()
        .user;
    let family = Uuid::new_v4();
    store
        .create_oauth_grant(grant(
            OAuthGrantKind::AccessToken,
            "taken",
            p.pk,
            u.pk,
            family,
        ))
        .await
        .unwrap();
    // 200 at once, one of them a duplicate of a stored hash.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        let key = if i == 100 {
            "taken".to_owned()
        } else {
            format!("at-{i}")
        };
        tasks.push(tokio::spawn(async move {
            let g = grant(OAuthGrantKind::AccessToken, &key, p.pk, u.pk, family);
            (key, store.record_oauth_grant(g).await)
        }));
    }
    for t in tasks {
        let (key, result) = t.await.unwrap();
        if key == "taken" {
            assert!(
                matches!(result, Err(StoreError::Conflict { .. })),
                "{result:?}"
            );
            continue;
        }
        result.unwrap();
        let found = store
            .find_oauth_grant(OAuthGrantKind::AccessToken, &key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.family, family);
        assert!(!found.used && !found.revoked, "recorded fresh");
    }

    let unit = store.begin_unit().await.unwrap();
    unit.store()
        .record_oauth_grant(grant(
            OAuthGrantKind::AccessToken,
            "in-unit",
            p.pk,
            u.pk,
            family,
        ))
        .await
        .unwrap();
    unit.rollback().await.unwrap();
    assert!(
        store
            .find_oauth_grant(OAuthGrantKind::AccessToken, "in-unit")
            .await
            .unwrap()
            .is_none()
    );
}

both_backends!(
    oauth_grants_single_use_and_families,
    recorded_grants_are_durable_and_fail_alone,
    property_mappings_crud_and_events,
    property_mapping_conflicts,
    property_mappings_list_page_search_order,
    providers_crud_and_events,
    provider_conflicts,
    provider_invalid_references,
    provider_property_mapping_links,
    provider_delete_clears_applications,
    flow_delete_clears_provider_flows,
    providers_list_page_search_order,
    unit_of_work_rolls_back_providers,
);
