//! `providers/oauth2/`, `providers/all/` and `propertymappings/provider/scope/`: authentik's
//! fields and defaults, validation that changes nothing, the secret kept encrypted, one
//! provider per application, and the managed default scope mappings.

use portcullis_testkit::both_backends;

use crate::common::*;

const OAUTH2: &str = "/api/v3/providers/oauth2/";
const ALL: &str = "/api/v3/providers/all/";
const SCOPES: &str = "/api/v3/propertymappings/provider/scope/";
const APPS: &str = "/api/v3/core/applications/";

/// The pk of the flow with this slug.
async fn flow(ctx: &Ctx, slug: &str) -> String {
    let r = ctx
        .get(&format!("/api/v3/flows/instances/?slug={slug}"), &ctx.admin)
        .await;
    r.ok()["results"][0]["pk"]
        .as_str()
        .unwrap_or_else(|| panic!("no flow {slug}"))
        .to_owned()
}

/// A valid request for a provider named `name`.
async fn provider_body(ctx: &Ctx, name: &str) -> Value {
    json!({
        "name": name,
        "authorization_flow": flow(ctx, "default-provider-authorization-implicit-consent").await,
        "invalidation_flow": flow(ctx, "default-provider-invalidation-flow").await,
        "redirect_uris": [{"matching_mode": "strict", "url": "https://app.example.com/cb"}],
    })
}

async fn oauth2_provider_crud(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    ctx.app.apply_builtins().await;
    let a = &ctx.admin;
    let body = provider_body(&ctx, "Grafana").await;
    let created = ctx.post(OAUTH2, a, body.clone()).await;
    let p = created.created().clone();
    let pk = p["pk"].as_i64().unwrap();
    // authentik's defaults.
    assert_eq!(p["client_type"], "confidential");
    assert_eq!(p["client_id"].as_str().unwrap().len(), 40);
    assert_eq!(p["client_secret"].as_str().unwrap().len(), 128);
    assert_eq!(p["access_code_validity"], "minutes=1");
    assert_eq!(p["access_token_validity"], "hours=1");
    assert_eq!(p["refresh_token_validity"], "days=30");
    assert_eq!(p["include_claims_in_id_token"], true);
    assert_eq!(p["sub_mode"], "hashed_user_id");
    assert_eq!(p["issuer_mode"], "per_provider");
    assert_eq!(p["logout_method"], "backchannel");
    assert_eq!(p["signing_key"], Value::Null);
    assert_eq!(p["property_mappings"], json!([]));
    assert_eq!(p["component"], "ak-provider-oauth2-form");
    assert_eq!(
        p["meta_model_name"],
        "authentik_providers_oauth2.oauth2provider"
    );
    assert_eq!(p["assigned_application_slug"], Value::Null);
    assert_eq!(
        p["redirect_uris"],
        json!([{"matching_mode": "strict", "url": "https://app.example.com/cb", "redirect_uri_type": "authorization"}])
    );
    assert!(
        p["grant_types"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
    );

    // The secret is kept encrypted: no row of any table holds it in clear.
    let secret = p["client_secret"].as_str().unwrap().to_owned();
    let rows = format!("{:?}", ctx.app.snapshot().await);
    assert!(!rows.contains(&secret), "client secret stored in clear");
    let got = ctx.get(&format!("{OAUTH2}{pk}/"), a).await;
    assert_eq!(got.ok()["client_secret"], secret.as_str());

    // Filters, and the same provider under providers/all/.
    let by_id = ctx
        .get(
            &format!("{OAUTH2}?client_id={}", p["client_id"].as_str().unwrap()),
            a,
        )
        .await;
    assert_eq!(by_id.count(), 1);
    assert_eq!(
        ctx.get(&format!("{OAUTH2}?client_id=nope"), a)
            .await
            .count(),
        0
    );
    let all = ctx.get(ALL, a).await;
    assert_eq!(all.column("name"), ["Grafana"]);
    assert_eq!(all.results()[0]["verbose_name"], "OAuth2/OpenID Provider");
    let types = ctx.get(&format!("{ALL}types/"), a).await;
    assert_eq!(types.ok()[0]["model_name"], "oauth2provider");

    // PATCH changes what it names; PUT replaces; a given secret and client id are kept.
    let mapping = ctx
        .get(&format!("{SCOPES}?scope_name=email"), a)
        .await
        .results()[0]["pk"]
        .clone();
    let patched = ctx
        .patch(
            &format!("{OAUTH2}{pk}/"),
            a,
            json!({"client_type": "public", "sub_mode": "user_email", "access_token_validity": "minutes=5",
                   "property_mappings": [mapping], "client_secret": "s3cret", "client_id": "grafana"}),
        )
        .await;
    let patched = patched.ok();
    assert_eq!(patched["client_type"], "public");
    assert_eq!(patched["sub_mode"], "user_email");
    assert_eq!(patched["access_token_validity"], "minutes=5");
    assert_eq!(patched["property_mappings"], json!([mapping]));
    assert_eq!(patched["client_secret"], "s3cret");
    assert_eq!(patched["client_id"], "grafana");
    assert_eq!(patched["name"], "Grafana");
    let mut put = provider_body(&ctx, "Grafana 2").await;
    put["client_id"] = json!("grafana");
    let replaced = ctx.put(&format!("{OAUTH2}{pk}/"), a, put).await;
    assert_eq!(replaced.ok()["name"], "Grafana 2");
    assert_eq!(replaced.ok()["client_secret"], "s3cret");
    assert_eq!(replaced.ok()["client_type"], "public");

    // One provider, one application.
    let app = ctx
        .post(
            APPS,
            a,
            json!({"name": "Grafana", "slug": "grafana", "provider": pk}),
        )
        .await;
    assert_eq!(app.created()["provider"], pk);
    let p = ctx.get(&format!("{OAUTH2}{pk}/"), a).await;
    assert_eq!(p.ok()["assigned_application_slug"], "grafana");
    assert_eq!(p.ok()["assigned_application_name"], "Grafana");
    ctx.invalid(
        Method::POST,
        APPS,
        a,
        json!({"name": "Other", "slug": "other", "provider": pk}),
        "provider",
    )
    .await;
    ctx.invalid(
        Method::POST,
        APPS,
        a,
        json!({"name": "Other", "slug": "other", "provider": 999_999}),
        "provider",
    )
    .await;

    // Events name the model as authentik does.
    let events = ctx
        .events("action=model_created&context_model_app=authentik_providers_oauth2")
        .await;
    assert!(
        events
            .iter()
            .any(|e| e["context"]["model"]["model_name"] == "oauth2provider"),
        "{events:?}"
    );

    // Deleting the provider leaves the application without one.
    ctx.delete(&format!("{OAUTH2}{pk}/"), a).await.no_content();
    let app = ctx.get(&format!("{APPS}grafana/"), a).await;
    assert_eq!(app.ok()["provider"], Value::Null);
    ctx.not_found(Method::GET, &format!("{OAUTH2}{pk}/"), a, Body::None)
        .await;
    ctx.not_found(Method::DELETE, &format!("{ALL}{pk}/"), a, Body::None)
        .await;
}

async fn oauth2_provider_validation_changes_nothing(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    ctx.app.apply_builtins().await;
    let a = &ctx.admin;
    let good = provider_body(&ctx, "App").await;
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let authentication = flow(&ctx, "default-authentication-flow").await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "x"}), "authorization_flow"),
        (
            with("authorization_flow", json!(authentication)),
            "authorization_flow",
        ),
        (
            with("invalidation_flow", json!(uuid::Uuid::new_v4())),
            "invalidation_flow",
        ),
        (
            with("authorization_flow", json!("not-a-uuid")),
            "authorization_flow",
        ),
        (
            with(
                "redirect_uris",
                json!([{"matching_mode": "strict", "url": "javascript:alert(1)"}]),
            ),
            "redirect_uris",
        ),
        (
            with(
                "redirect_uris",
                json!([{"matching_mode": "strict", "url": "https://a/cb#frag"}]),
            ),
            "redirect_uris",
        ),
        (
            with(
                "redirect_uris",
                json!([{"matching_mode": "regex", "url": "https://(a"}]),
            ),
            "redirect_uris",
        ),
        (
            with(
                "redirect_uris",
                json!([{"matching_mode": "prefix", "url": "https://a/"}]),
            ),
            "redirect_uris",
        ),
        (
            with(
                "redirect_uris",
                json!([{"matching_mode": "strict", "url": "https://a/", "redirect_uri_type": "x"}]),
            ),
            "redirect_uris",
        ),
        (
            with("access_token_validity", json!("hours=-1")),
            "access_token_validity",
        ),
        (
            with("access_code_validity", json!("fortnights=1")),
            "access_code_validity",
        ),
        (with("client_type", json!("secret")), "client_type"),
        (with("sub_mode", json!("pairwise-ish")), "sub_mode"),
        (with("issuer_mode", json!("none")), "issuer_mode"),
        (with("logout_method", json!("email")), "logout_method"),
        (
            with("grant_types", json!(["authorization_code", "magic"])),
            "grant_types",
        ),
        (
            with("signing_key", json!(uuid::Uuid::new_v4())),
            "signing_key",
        ),
        (
            with("property_mappings", json!([uuid::Uuid::new_v4()])),
            "property_mappings",
        ),
        (
            with("jwt_federation_sources", json!([uuid::Uuid::new_v4()])),
            "jwt_federation_sources",
        ),
        (
            with("jwt_federation_providers", json!([424_242])),
            "jwt_federation_providers",
        ),
        (with("name", json!("")), "name"),
        (with("client_id", json!("x".repeat(256))), "client_id"),
        (with("logout_uri", json!("not a url")), "logout_uri"),
    ] {
        ctx.invalid(Method::POST, OAUTH2, a, body, field).await;
    }
    // A client id is unique.
    let mut first = good.clone();
    first["client_id"] = json!("taken");
    ctx.post(OAUTH2, a, first).await.created();
    let mut second = provider_body(&ctx, "Other").await;
    second["client_id"] = json!("taken");
    ctx.invalid(Method::POST, OAUTH2, a, second, "client_id")
        .await;
    // And names are unique.
    ctx.invalid(Method::POST, OAUTH2, a, good.clone(), "name")
        .await;
    // Only superusers.
    let (_, user) = ctx.app.regular_user("alice").await;
    ctx.forbidden(Method::POST, OAUTH2, &user, Body::Json(good))
        .await;
    ctx.forbidden(Method::GET, OAUTH2, &user, Body::None).await;
    ctx.forbidden(Method::GET, SCOPES, &user, Body::None).await;
    // Hostile ids.
    for id in ["abc", "1.5", "99999999999999999999", "%00"] {
        ctx.not_found(Method::GET, &format!("{OAUTH2}{id}/"), a, Body::None)
            .await;
    }
}

async fn scope_mappings(b: Backend) {
    let ctx = Ctx::spawn(b).await;
    ctx.app.apply_builtins().await;
    let a = &ctx.admin;
    // The managed defaults, under authentik's keys.
    let managed = ctx.get(&format!("{SCOPES}?managed__isnull=false"), a).await;
    let mut keys = managed.column("managed");
    keys.sort();
    assert_eq!(
        keys,
        [
            "goauthentik.io/providers/oauth2/scope-email",
            "goauthentik.io/providers/oauth2/scope-entitlements",
            "goauthentik.io/providers/oauth2/scope-offline_access",
            "goauthentik.io/providers/oauth2/scope-openid",
            "goauthentik.io/providers/oauth2/scope-profile",
        ]
    );
    let email = ctx.get(&format!("{SCOPES}?scope_name=email"), a).await;
    assert_eq!(email.count(), 1);
    assert_eq!(email.results()[0]["description"], "Email address");
    assert_eq!(
        email.results()[0]["component"],
        "ak-property-mapping-provider-scope-form"
    );

    let created = ctx
        .post(
            SCOPES,
            a,
            json!({"name": "Department", "scope_name": "department", "description": "Your department",
                   "expression": "return {\"department\": request.user.attributes.get(\"department\", \"\")}"}),
        )
        .await;
    let m = created.created().clone();
    let pk = m["pk"].as_str().unwrap().to_owned();
    assert_eq!(m["managed"], Value::Null);
    assert_eq!(
        m["meta_model_name"],
        "authentik_providers_oauth2.scopemapping"
    );
    let patched = ctx
        .patch(
            &format!("{SCOPES}{pk}/"),
            a,
            json!({"description": "Dept."}),
        )
        .await;
    assert_eq!(patched.ok()["description"], "Dept.");
    assert_eq!(patched.ok()["scope_name"], "department");
    assert_eq!(
        ctx.get(&format!("{SCOPES}?managed__isnull=true"), a)
            .await
            .count(),
        1
    );

    for (body, field) in [
        (json!({"name": "x", "scope_name": "x"}), "expression"),
        (
            json!({"name": "x", "scope_name": "x", "expression": "return {"}),
            "expression",
        ),
        (
            json!({"name": "x", "scope_name": "a b", "expression": "return {}"}),
            "scope_name",
        ),
        (
            json!({"name": "x", "scope_name": "x\"", "expression": "return {}"}),
            "scope_name",
        ),
        (
            json!({"name": "x", "scope_name": "x", "expression": "x".repeat(70_000)}),
            "expression",
        ),
        (
            json!({"name": "Department", "scope_name": "x", "expression": "return {}"}),
            "name",
        ),
    ] {
        ctx.invalid(Method::POST, SCOPES, a, body, field).await;
    }
    ctx.refused(
        Method::GET,
        &format!("{SCOPES}?managed__isnull=maybe"),
        Some(a),
        Body::None,
        StatusCode::BAD_REQUEST,
    )
    .await;
    ctx.delete(&format!("{SCOPES}{pk}/"), a).await.no_content();
    ctx.not_found(Method::GET, &format!("{SCOPES}{pk}/"), a, Body::None)
        .await;
    // Applying the built-ins again changes nothing.
    let before = ctx.app.snapshot().await;
    ctx.app.apply_builtins().await;
    let after = ctx.app.snapshot().await;
    assert_unchanged(&before, &after, "re-applying the built-in blueprints");
}

both_backends!(
    oauth2_provider_crud,
    oauth2_provider_validation_changes_nothing,
    scope_mappings
);
