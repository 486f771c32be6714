//! The flow executor API driven as a client would: the admin logs in through the JSON executor,
//! the session cookie authenticates API calls (with CSRF for unsafe methods), wrong passwords get
//! error challenges, known and unknown usernames are indistinguishable, logout ends the session,
//! policies bound to flows, stage bindings and applications change outcomes, and malformed
//! requests never advance a flow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use portcullis_core::{
    Actor, Flow, FlowDesignation, FlowStageBinding, NewUser, Policy, PolicyBinding, Stage,
};
use portcullis_testkit::{Backend, TestApp, both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

/// A browser-like client: keeps cookies, never follows redirects by itself.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

struct Resp {
    status: StatusCode,
    location: Option<String>,
    body: Value,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            base: app.url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Resp {
        let rb = if self.cookies.is_empty() {
            rb
        } else {
            rb.header("cookie", self.cookie_header())
        };
        let r = rb.send().await.unwrap();
        for sc in r.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let first = sc.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if sc.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            location,
            body,
        }
    }

    fn url(&self, slug: &str) -> String {
        format!("{}/api/v3/flows/executor/{slug}/?query=", self.base)
    }

    async fn get(&mut self, slug: &str) -> Resp {
        let rb = self.http.get(self.url(slug));
        self.send(rb).await
    }

    async fn post(&mut self, slug: &str, body: Value) -> Resp {
        let rb = self.http.post(self.url(slug)).json(&body);
        self.send(rb).await
    }

    async fn post_raw(&mut self, slug: &str, content_type: &str, body: Vec<u8>) -> Resp {
        let rb = self
            .http
            .post(self.url(slug))
            .header("content-type", content_type)
            .body(body);
        self.send(rb).await
    }

    /// POST a well-formed response: the answer is `200` with the challenge that comes next.
    async fn solve(&mut self, slug: &str, body: Value) -> Resp {
        let r = self.post(slug, body).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r
    }

    /// `GET /api/v3/core/users/me/` with the browser's session.
    async fn me(&mut self) -> Resp {
        self.api(reqwest::Method::GET, "/api/v3/core/users/me/", false)
            .await
    }

    async fn api(&mut self, method: reqwest::Method, path: &str, csrf: bool) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if csrf && let Some(t) = self.cookies.get("authentik_csrf") {
            rb = rb.header("X-authentik-CSRF", t.clone());
        }
        let rb = rb.body("{}");
        self.send(rb).await
    }
}

fn component(r: &Resp) -> &str {
    r.body["component"].as_str().unwrap_or("")
}

/// The default authentication flow, as the built-in blueprint builds it.
async fn login_flow(app: &TestApp) -> Flow {
    let s = &app.state.store;
    let actor = Actor::system();
    let mut f = Flow::new(
        "Welcome to Portcullis!",
        "default-authentication-flow",
        FlowDesignation::Authentication,
    );
    f.title = "Welcome to Portcullis!".into();
    let flow = s.create_flow(f, &actor).await.unwrap();
    let stage = |name: &str, kind: &str, config: Value| Stage {
        uuid: Uuid::nil(),
        name: name.into(),
        kind: kind.into(),
        config: portcullis_flow::normalize_stage_config(kind, &config).unwrap(),
    };
    let stages = [
        stage(
            "ident",
            "identificationstage",
            json!({"user_fields": ["email", "username"], "show_matched_user": false}),
        ),
        stage(
            "password",
            "passwordstage",
            json!({"failed_attempts_before_cancel": 3}),
        ),
        stage("login", "userloginstage", json!({})),
    ];
    for (i, st) in stages.into_iter().enumerate() {
        let st = s.create_stage(st, &actor).await.unwrap();
        s.create_flow_binding(
            FlowStageBinding::new(flow.uuid, st.uuid, (i as i32 + 1) * 10),
            &actor,
        )
        .await
        .unwrap();
    }
    let mut logout = Flow::new(
        "Logout",
        "default-invalidation-flow",
        FlowDesignation::Invalidation,
    );
    logout.title = "Logout".into();
    let logout = s.create_flow(logout, &actor).await.unwrap();
    let st = s
        .create_stage(
            Stage {
                uuid: Uuid::nil(),
                name: "logout".into(),
                kind: "userlogoutstage".into(),
                config: json!({}),
            },
            &actor,
        )
        .await
        .unwrap();
    s.create_flow_binding(FlowStageBinding::new(logout.uuid, st.uuid, 0), &actor)
        .await
        .unwrap();
    let hash = app.state.hasher.hash(PASSWORD.to_owned()).await.unwrap();
    s.set_password(app.admin_pk, Some(hash), &actor)
        .await
        .unwrap();
    flow
}

const SLUG: &str = "default-authentication-flow";

/// Starts the login flow and answers the identification stage: the password challenge is next.
async fn identify(b: &mut Browser, username: &str) {
    let r = b.get(SLUG).await;
    assert_eq!(component(&r), "ak-stage-identification", "{:?}", r.body);
    let r = b
        .solve(
            SLUG,
            json!({"component": "ak-stage-identification", "uid_field": username}),
        )
        .await;
    assert_eq!(component(&r), "ak-stage-password", "{:?}", r.body);
}

async fn log_in(b: &mut Browser, username: &str, password: &str) -> Resp {
    identify(b, username).await;
    b.solve(
        SLUG,
        json!({"component": "ak-stage-password", "password": password}),
    )
    .await
}

async fn admin_logs_in_and_the_session_authenticates_the_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await;
    let mut br = Browser::new(&app);
    let r = br.get(SLUG).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(component(&r), "ak-stage-identification");
    assert_eq!(r.body["flow_info"]["title"], "Welcome to Portcullis!");
    assert_eq!(r.body["user_fields"], json!(["email", "username"]));
    let anonymous_key = br.cookies.get("authentik_session").cloned().unwrap();

    // An accepted response is answered with the next challenge (no 302 and GET as in
    // authentik); a GET afterwards shows the same challenge again.
    let r = br
        .post(
            SLUG,
            json!({"component": "ak-stage-identification", "uid_field": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.location, None);
    assert_eq!(component(&r), "ak-stage-password");
    assert_eq!(r.body["pending_user"], "admin");
    assert_eq!(r.body["flow_info"]["title"], "Welcome to Portcullis!");
    let again = br.get(SLUG).await;
    assert_eq!(again.body, r.body);

    // Wrong password: an error challenge on the password field, and no session user.
    let r = br
        .post(
            SLUG,
            json!({"component": "ak-stage-password", "password": "wrong"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(component(&r), "ak-stage-password");
    assert_eq!(
        r.body["response_errors"]["password"][0]["string"],
        "Invalid password"
    );
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    // Right password: the flow ends with a redirect, and the session key changed.
    let r = br
        .solve(
            SLUG,
            json!({"component": "ak-stage-password", "password": PASSWORD}),
        )
        .await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    assert_eq!(r.body["to"], "/");
    let key = br.cookies.get("authentik_session").cloned().unwrap();
    assert_ne!(key, anonymous_key, "the session key must change at login");

    let me = br.me().await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["user"]["username"], "admin");

    // Unsafe methods need the CSRF header.
    let path = format!("/api/v3/core/users/{}/", app.admin_pk);
    let no_csrf = br.api(reqwest::Method::PATCH, &path, false).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let with_csrf = br.api(reqwest::Method::PATCH, &path, true).await;
    assert_eq!(with_csrf.status, StatusCode::OK, "{:?}", with_csrf.body);

    // Events: one login_failed without the password, one login.
    let events = events(&app).await;
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "login_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(!failed[0].to_string().contains("wrong"), "{}", failed[0]);
    assert_eq!(failed[0]["context"]["username"], "admin");
    assert!(events.iter().any(|e| e["action"] == "login"));
}

async fn wrong_passwords_cancel_the_flow_after_the_limit(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await;
    let mut br = Browser::new(&app);
    let r = log_in(&mut br, "admin", "wrong-1").await;
    assert_eq!(
        r.body["response_errors"]["password"][0]["string"],
        "Invalid password"
    );
    let r = br
        .post(
            SLUG,
            json!({"component": "ak-stage-password", "password": "wrong-2"}),
        )
        .await;
    assert_eq!(component(&r), "ak-stage-password");
    let r = br
        .post(
            SLUG,
            json!({"component": "ak-stage-password", "password": "wrong-3"}),
        )
        .await;
    assert_eq!(component(&r), "ak-stage-access-denied", "{:?}", r.body);
    // Cancelled: the next GET starts over.
    let r = br.get(SLUG).await;
    assert_eq!(component(&r), "ak-stage-identification");
}

/// The answers to an unknown username equal those to a known one (with the typed identifier in
/// the same place), and both cost a password hash.
async fn known_and_unknown_usernames_are_indistinguishable(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await;
    let mut known = Browser::new(&app);
    let mut unknown = Browser::new(&app);
    let mut answers = Vec::new();
    let mut timings = Vec::new();
    for (br, name) in [(&mut known, "admin"), (&mut unknown, "nobody-by-this-name")] {
        let r1 = br.get(SLUG).await;
        let r2 = br
            .post(
                SLUG,
                json!({"component": "ak-stage-identification", "uid_field": name}),
            )
            .await;
        let r3 = br.get(SLUG).await;
        let started = Instant::now();
        let r4 = br
            .post(
                SLUG,
                json!({"component": "ak-stage-password", "password": "wrong"}),
            )
            .await;
        timings.push(started.elapsed());
        let norm = |v: &Value| v.to_string().replace(name, "<id>");
        answers.push((
            r1.status,
            norm(&r1.body),
            r2.status,
            r2.location.map(|l| l.replace(name, "<id>")),
            r3.status,
            norm(&r3.body),
            r4.status,
            norm(&r4.body),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    // Both paths verify a hash (argon2id takes milliseconds; a skipped check takes microseconds).
    let (k, u) = (timings[0], timings[1]);
    assert!(
        u * 4 > k && k * 4 > u,
        "password check took {k:?} for a known user and {u:?} for an unknown one"
    );
    assert!(u > Duration::from_millis(2), "{u:?}");
}

async fn logout_ends_the_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await;
    let mut br = Browser::new(&app);
    let r = log_in(&mut br, "admin", PASSWORD).await;
    assert_eq!(component(&r), "xak-flow-redirect");
    let old = br.cookies.get("authentik_session").cloned().unwrap();
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::OK);
    let r = br.get("default-invalidation-flow").await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    // The old cookie is dead too (the row is gone, not just the cookie).
    br.cookies.clear();
    br.cookies.insert("authentik_session".into(), old);
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let events = events(&app).await;
    assert!(events.iter().any(|e| e["action"] == "logout"));
}

/// Every recorded event, as JSON.
async fn events(app: &TestApp) -> Vec<Value> {
    let q = portcullis_store::ListQuery {
        page: portcullis_core::PageRequest {
            page: 1,
            page_size: 1000,
        },
        ..Default::default()
    };
    let page = app
        .state
        .store
        .list_events(&portcullis_store::EventFilter::default(), &q)
        .await
        .unwrap();
    page.items
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// The stored session data (the flow plans).
async fn sessions(app: &TestApp) -> Vec<Value> {
    let snap = app.state.store.snapshot().await.unwrap();
    snap.into_iter()
        .find(|(t, _)| t == "session")
        .unwrap()
        .1
        .into_iter()
        .map(|mut s| {
            s.as_object_mut().unwrap().remove("last_used");
            s
        })
        .collect()
}

/// The browser's session as the store finds it by the cookie (the flow plans; anonymous
/// sessions may live in memory only, so the rows alone would not show them).
async fn browser_session(app: &TestApp, br: &Browser) -> Value {
    let key = br
        .cookies
        .get("authentik_session")
        .expect("a session cookie");
    let s = app
        .state
        .store
        .find_session(&portcullis_crypto::sha256_hex(key.as_bytes()))
        .await
        .unwrap()
        .expect("the browser's session");
    let mut v = serde_json::to_value(s).unwrap();
    v.as_object_mut().unwrap().remove("last_used");
    v
}

async fn malformed_responses_never_advance_the_flow(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await;
    let mut br = Browser::new(&app);
    br.get(SLUG).await;
    let before = sessions(&app).await;
    let before_session = browser_session(&app, &br).await;
    assert!(
        before_session["data"]["flows"][SLUG].is_object(),
        "the plan is in the session: {before_session}"
    );
    let cases: Vec<(&str, Vec<u8>, &[StatusCode])> = vec![
        (
            "text/plain",
            b"uid_field=admin".to_vec(),
            &[StatusCode::UNSUPPORTED_MEDIA_TYPE],
        ),
        (
            "application/json",
            b"{not json".to_vec(),
            &[StatusCode::BAD_REQUEST],
        ),
        (
            "application/json",
            b"[1,2,3]".to_vec(),
            &[StatusCode::BAD_REQUEST],
        ),
        (
            "application/json",
            b"\"admin\"".to_vec(),
            &[StatusCode::BAD_REQUEST],
        ),
        (
            "application/json",
            b"null".to_vec(),
            &[StatusCode::BAD_REQUEST],
        ),
        (
            "application/json",
            vec![0xff, 0xfe, 0x00, 0x7b],
            &[StatusCode::BAD_REQUEST],
        ),
        (
            "application/json",
            "[".repeat(100_000).into_bytes(),
            &[StatusCode::PAYLOAD_TOO_LARGE, StatusCode::BAD_REQUEST],
        ),
        (
            "application/json",
            format!(
                "{{\"component\":\"ak-stage-identification\",\"uid_field\":\"{}\"}}",
                "a".repeat(70_000)
            )
            .into_bytes(),
            &[StatusCode::PAYLOAD_TOO_LARGE],
        ),
        (
            "application/json",
            format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            &[StatusCode::BAD_REQUEST],
        ),
    ];
    for (ct, body, want) in cases {
        let r = br.post_raw(SLUG, ct, body.clone()).await;
        assert!(
            want.contains(&r.status),
            "{ct} {:?}: {} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(40)]),
            r.status,
            r.body
        );
        assert!(r.body.get("detail").is_some(), "{:?}", r.body);
    }
    // Well-formed JSON that does not answer the challenge: an error challenge.
    let challenges = [
        json!({"component": "ak-stage-password", "password": "x"}),
        json!({"component": 17, "uid_field": "admin"}),
        json!({"uid_field": "admin"}),
        json!({"component": "ak-stage-identification", "uid_field": 12345}),
        json!({"component": "ak-stage-identification", "uid_field": ["admin"]}),
        json!({"component": "ak-stage-identification", "uid_field": {"$ne": null}}),
        json!({"component": "ak-stage-identification", "uid_field": ""}),
        json!({"component": "ak-stage-identification", "uid_field": "a".repeat(5000)}),
        json!({"component": "ak-stage-identification", "uid_field": "admin\u{0}"}),
        json!({"component": "ak-stage-identification", "uid_field": 1e300}),
    ];
    for c in challenges {
        let r = br.post(SLUG, c.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{c}: {:?}", r.body);
        assert_eq!(
            component(&r),
            "ak-stage-identification",
            "{c}: {:?}",
            r.body
        );
        assert!(r.body["response_errors"].is_object(), "{c}: {:?}", r.body);
    }
    assert_eq!(
        sessions(&app).await,
        before,
        "a refused response changed the flow"
    );
    assert_eq!(
        browser_session(&app, &br).await,
        before_session,
        "a refused response changed the flow"
    );
    // Still at the first stage.
    assert_eq!(component(&br.get(SLUG).await), "ak-stage-identification");
    // An unknown flow is a 404.
    assert_eq!(br.get("no-such-flow").await.status, StatusCode::NOT_FOUND);
}

async fn expression(app: &TestApp, name: &str, code: &str) -> Policy {
    app.state
        .store
        .create_policy(
            Policy {
                uuid: Uuid::nil(),
                name: name.into(),
                kind: "expressionpolicy".into(),
                execution_logging: false,
                config: json!({"expression": code}),
            },
            &Actor::system(),
        )
        .await
        .unwrap()
}

async fn bind(
    app: &TestApp,
    target: Uuid,
    policy: Option<Uuid>,
    group: Option<Uuid>,
    failure_result: bool,
) {
    let mut b = PolicyBinding::new(target, 0);
    b.policy = policy;
    b.group = group;
    b.failure_result = failure_result;
    app.state
        .store
        .create_policy_binding(b, &Actor::system())
        .await
        .unwrap();
}

/// The binding of `flow`'s stage of type `kind`.
async fn stage_binding(app: &TestApp, flow: &Flow, kind: &str) -> FlowStageBinding {
    let bindings = app.state.store.flow_plan_bindings(flow.uuid).await.unwrap();
    bindings
        .into_iter()
        .find(|(_, s)| s.kind == kind)
        .unwrap()
        .0
}

async fn policies_bound_to_flows_and_stage_bindings_change_the_outcome(b: Backend) {
    let app = TestApp::spawn(b).await;
    let flow = login_flow(&app).await;
    // Bound to the flow: a policy that denies with a message.
    let deny = expression(
        &app,
        "deny",
        "ak_message(\"Closed for maintenance.\")\nreturn False",
    )
    .await;
    bind(&app, flow.pbm_uuid, Some(deny.uuid), None, false).await;
    let mut br = Browser::new(&app);
    let r = br.get(SLUG).await;
    assert_eq!(component(&r), "ak-stage-access-denied", "{:?}", r.body);
    assert_eq!(r.body["error_message"], "Closed for maintenance.");
    app.state
        .store
        .delete_policy(deny.uuid, &Actor::system())
        .await
        .unwrap();

    // Bound to the login stage's binding: the stage is skipped for this user, so the flow ends
    // without logging in.
    let login_binding = stage_binding(&app, &flow, "userloginstage").await;
    let not_admin = expression(
        &app,
        "not-admin",
        "return request.context[\"pending_user_identifier\"] != \"admin\"",
    )
    .await;
    bind(
        &app,
        login_binding.pbm_uuid,
        Some(not_admin.uuid),
        None,
        false,
    )
    .await;
    let mut br = Browser::new(&app);
    let r = log_in(&mut br, "admin", PASSWORD).await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let me = br.me().await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "the login stage should have been skipped"
    );
    // Another user passes the policy and logs in.
    let u = app
        .state
        .store
        .create_user(NewUser::named("alice"), &Actor::system())
        .await
        .unwrap();
    let hash = app.state.hasher.hash(PASSWORD.into()).await.unwrap();
    app.state
        .store
        .set_password(u.user.pk, Some(hash), &Actor::system())
        .await
        .unwrap();
    let mut br = Browser::new(&app);
    log_in(&mut br, "alice", PASSWORD).await;
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::OK);
}

/// After an accepted POST the next stages run as the GET authentik's client would send after
/// the 302: a policy on them sees method GET and the plan as the response left it.
async fn the_stages_after_an_accepted_response_run_as_a_get(b: Backend) {
    let app = TestApp::spawn(b).await;
    let flow = login_flow(&app).await;
    let as_get = expression(
        &app,
        "as-get",
        "return request.http_request.method == \"GET\" and \"content-type\" not in request.http_request.headers and request.context.get(\"pending_user_identifier\") == \"admin\"",
    )
    .await;
    // On the password stage (reached from the identification POST) and on the login stage
    // (reached from the password POST): were either skipped, nobody would be logged in.
    for kind in ["passwordstage", "userloginstage"] {
        let binding = stage_binding(&app, &flow, kind).await;
        bind(&app, binding.pbm_uuid, Some(as_get.uuid), None, false).await;
    }
    let mut br = Browser::new(&app);
    let r = log_in(&mut br, "admin", PASSWORD).await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
}

/// An expression that runs out of budget ends as a policy_exception event and counts as the
/// binding's failure_result, quickly.
async fn an_expression_over_budget_fails_with_the_binding_failure_result(b: Backend) {
    let app = TestApp::spawn(b).await;
    let flow = login_flow(&app).await;
    let looping = expression(
        &app,
        "looping",
        "x = 0\nfor i in range(100000000):\n    x += i\nreturn False",
    )
    .await;
    // failure_result = true: the flow goes on.
    bind(&app, flow.pbm_uuid, Some(looping.uuid), None, true).await;
    let mut br = Browser::new(&app);
    let started = Instant::now();
    let r = br.get(SLUG).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(component(&r), "ak-stage-identification", "{:?}", r.body);
    let events = events(&app).await;
    let ex: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "policy_exception")
        .collect();
    assert_eq!(ex.len(), 1, "{events:?}");
    assert_eq!(ex[0]["context"]["policy"]["name"], "looping");
    assert!(
        ex[0]["context"]["message"]
            .as_str()
            .unwrap()
            .contains("budget"),
        "{}",
        ex[0]
    );

    // failure_result = false: denied.
    let pbs = app
        .state
        .store
        .policy_bindings_for(flow.pbm_uuid)
        .await
        .unwrap();
    let mut pb = pbs[0].0.clone();
    pb.failure_result = false;
    app.state
        .store
        .update_policy_binding(pb.uuid, pb.clone(), &Actor::system())
        .await
        .unwrap();
    let mut br = Browser::new(&app);
    let r = br.get(SLUG).await;
    assert_eq!(component(&r), "ak-stage-access-denied", "{:?}", r.body);
}

/// A group bound to an application decides who may access it (and a policy alongside, in the
/// application's `any` mode, can open it to others).
async fn a_group_binding_on_an_application_decides_access(b: Backend) {
    let app = TestApp::spawn(b).await;
    let actor = Actor::system();
    let s = &app.state.store;
    let application = s
        .create_application(
            portcullis_core::Application {
                uuid: Uuid::nil(),
                name: "Wiki".into(),
                slug: "wiki".into(),
                provider: None,
                group: String::new(),
                meta_launch_url: String::new(),
                meta_description: String::new(),
                meta_publisher: String::new(),
                meta_icon: None,
                policy_engine_mode: portcullis_core::PolicyEngineMode::Any,
                open_in_new_tab: false,
                meta_hide: false,
            },
            &actor,
        )
        .await
        .unwrap();
    let group = s
        .create_group(
            portcullis_core::NewGroup {
                name: "wiki-users".into(),
                is_superuser: false,
                parent: None,
                attributes: json!({}),
                users: vec![],
            },
            &actor,
        )
        .await
        .unwrap();
    let alice = s
        .create_user(NewUser::named("alice"), &actor)
        .await
        .unwrap();
    let check = |pk: i32| {
        let url = format!(
            "{}/api/v3/core/applications/wiki/check_access/?for_user={pk}",
            app.url
        );
        let token = app.admin_token.clone();
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    // No bindings: everyone passes (authentik's empty result).
    assert_eq!(check(alice.user.pk).await["passing"], true);
    bind(&app, application.uuid, None, Some(group.group.uuid), false).await;
    assert_eq!(check(alice.user.pk).await["passing"], false);
    s.add_user_to_group(group.group.uuid, alice.user.pk, &actor)
        .await
        .unwrap();
    assert_eq!(check(alice.user.pk).await["passing"], true);
    // An expression bound beside it, in `any` mode, lets the admin in too.
    assert_eq!(check(app.admin_pk).await["passing"], false);
    let admins = expression(&app, "admins", "return request.user.is_superuser").await;
    let mut pb = PolicyBinding::new(application.uuid, 10);
    pb.policy = Some(admins.uuid);
    s.create_policy_binding(pb, &actor).await.unwrap();
    assert_eq!(check(app.admin_pk).await["passing"], true);
    // A regular user may only check themselves.
    let (_, token) = app.regular_user("bob").await;
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v3/core/applications/wiki/check_access/?for_user={}",
            app.url, alice.user.pk
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Every built-in blueprint, applied as at server start.
async fn apply_builtins(app: &TestApp) {
    app.apply_builtins().await;
}

/// Without a bootstrap password, initial-setup sets the admin's email and password once and
/// logs the person in; afterwards it denies everyone.
async fn initial_setup_sets_the_admin_password_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    apply_builtins(&app).await;
    let slug = "initial-setup";
    let mut br = Browser::new(&app);
    let r = br.get(slug).await;
    assert_eq!(component(&r), "ak-stage-prompt", "{:?}", r.body);
    let keys: Vec<&str> = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["email", "password", "password_repeat"]);
    // Mismatched passwords: an error, nothing written.
    let r = br
        .post(
            slug,
            json!({"component": "ak-stage-prompt", "email": "root@example.com",
                           "password": PASSWORD, "password_repeat": "other"}),
        )
        .await;
    assert_eq!(component(&r), "ak-stage-prompt", "{:?}", r.body);
    assert!(r.body["response_errors"].is_object());
    let r = br
        .solve(
            slug,
            json!({"component": "ak-stage-prompt", "email": "root@example.com",
                            "password": PASSWORD, "password_repeat": PASSWORD}),
        )
        .await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["user"]["username"], "admin");
    assert_eq!(me.body["user"]["email"], "root@example.com");
    // The password works in the login flow.
    let mut other = Browser::new(&app);
    let r = log_in(&mut other, "admin", PASSWORD).await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    // Once set up, the flow is closed.
    let mut late = Browser::new(&app);
    let r = late.get(slug).await;
    assert_eq!(component(&r), "ak-stage-access-denied", "{:?}", r.body);
    assert_eq!(r.body["error_message"], "Portcullis is already set up.");
}

/// Two people racing through setup: the second one's answer is refused, nothing is overwritten.
async fn initial_setup_cannot_be_raced(b: Backend) {
    let app = TestApp::spawn(b).await;
    apply_builtins(&app).await;
    let slug = "initial-setup";
    let mut first = Browser::new(&app);
    let mut second = Browser::new(&app);
    assert_eq!(component(&first.get(slug).await), "ak-stage-prompt");
    assert_eq!(component(&second.get(slug).await), "ak-stage-prompt");
    let r = first
        .solve(
            slug,
            json!({"component": "ak-stage-prompt", "email": "first@example.com",
                            "password": PASSWORD, "password_repeat": PASSWORD}),
        )
        .await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let r = second
        .solve(slug, json!({"component": "ak-stage-prompt", "email": "second@example.com",
                            "password": "another password 123", "password_repeat": "another password 123"}))
        .await;
    assert_eq!(component(&r), "ak-stage-access-denied", "{:?}", r.body);
    let me = second.me().await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let admin = app.state.store.find_user(app.admin_pk).await.unwrap();
    assert_eq!(admin.user.email, "first@example.com");
}

/// The user settings flow shows the user's own values (prompt expressions) and writes changes.
async fn user_settings_show_and_change_the_users_own_values(b: Backend) {
    let app = TestApp::spawn(b).await;
    apply_builtins(&app).await;
    let hash = app.state.hasher.hash(PASSWORD.into()).await.unwrap();
    let actor = Actor::system();
    app.state
        .store
        .set_password(app.admin_pk, Some(hash), &actor)
        .await
        .unwrap();
    let mut br = Browser::new(&app);
    // Not logged in: sent to the login flow.
    let r = br.get("default-user-settings-flow").await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    assert!(
        r.body["to"]
            .as_str()
            .unwrap()
            .starts_with("/if/flow/default-authentication-flow/")
    );
    log_in(&mut br, "admin", PASSWORD).await;
    let r = br.get("default-user-settings-flow").await;
    assert_eq!(component(&r), "ak-stage-prompt", "{:?}", r.body);
    let value = |key: &str| {
        r.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field_key"] == key)
            .unwrap()["initial_value"]
            .clone()
    };
    assert_eq!(value("username"), "admin");
    let r = br
        .solve(
            "default-user-settings-flow",
            json!({"component": "ak-stage-prompt", "username": "admin", "name": "Ada Admin",
                   "email": "ada@example.com", "attributes.settings.locale": "en"}),
        )
        .await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let admin = app.state.store.find_user(app.admin_pk).await.unwrap();
    assert_eq!(admin.user.name, "Ada Admin");
    assert_eq!(admin.user.email, "ada@example.com");
    assert_eq!(admin.user.attributes["settings"]["locale"], "en");
}

/// The identification stage links to the enrollment and recovery flows it names.
async fn identification_links_to_enrollment_and_recovery(b: Backend) {
    let app = TestApp::spawn(b).await;
    let flow = login_flow(&app).await;
    let actor = Actor::system();
    let s = &app.state.store;
    let enroll = s
        .create_flow(
            Flow::new("Sign up", "sign-up", FlowDesignation::Enrollment),
            &actor,
        )
        .await
        .unwrap();
    let bindings = s.flow_plan_bindings(flow.uuid).await.unwrap();
    let mut ident = bindings
        .iter()
        .find(|(_, st)| st.kind == "identificationstage")
        .unwrap()
        .1
        .clone();
    ident.config["enrollment_flow"] = json!(enroll.uuid.to_string());
    ident.config["recovery_flow"] = json!(Uuid::new_v4().to_string()); // gone: no link
    s.update_stage(ident.uuid, ident.clone(), &actor)
        .await
        .unwrap();
    let mut br = Browser::new(&app);
    let r = br.get(SLUG).await;
    assert_eq!(r.body["enroll_url"], "/if/flow/sign-up/", "{:?}", r.body);
    assert!(r.body.get("recovery_url").is_none(), "{:?}", r.body);
}

/// A brand names its flows: `/` on its host goes to the brand's authentication flow; unknown
/// flows are refused; deleting the flow makes the brand fall back to the default one.
async fn brands_choose_their_flows(b: Backend) {
    let app = TestApp::spawn(b).await;
    let default = login_flow(&app).await;
    let other = app
        .state
        .store
        .create_flow(
            Flow::new("Partners", "partner-login", FlowDesignation::Authentication),
            &Actor::system(),
        )
        .await
        .unwrap();
    let token = app.admin_token.clone();
    let api = |method: reqwest::Method, path: &str, body: Value| {
        app.request(method, path, Some(&token)).json(&body).send()
    };
    // An unknown flow is refused, and nothing is stored.
    let before = app.snapshot().await;
    let r = api(
        reqwest::Method::POST,
        "/api/v3/core/brands/",
        json!({"domain": "partners.example.test", "flow_authentication": Uuid::new_v4()}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["flow_authentication"][0],
        "Invalid pk - object does not exist."
    );
    assert_eq!(app.snapshot().await, before);

    let r = api(
        reqwest::Method::POST,
        "/api/v3/core/brands/",
        json!({"domain": "partners.example.test", "flow_authentication": other.uuid,
               "flow_invalidation": null}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let brand: Value = r.json().await.unwrap();
    assert_eq!(brand["flow_authentication"], json!(other.uuid));
    assert_eq!(brand["flow_invalidation"], Value::Null);
    // The current brand of that host names the flow by slug, and leaves out the unset ones.
    let current: Value = app
        .request(reqwest::Method::GET, "/api/v3/core/brands/current/", None)
        .header("host", "partners.example.test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["flow_authentication"], "partner-login");
    assert!(current.get("flow_invalidation").is_none(), "{current}");

    let location = |r: reqwest::Response| {
        r.headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The first hop only (the test client follows redirects).
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first_hop = |host: &'static str| {
        no_follow
            .get(format!("{}/", app.url))
            .header("host", host)
            .send()
    };
    assert_eq!(
        location(first_hop("sso.partners.example.test").await.unwrap()).as_deref(),
        Some("/if/flow/partner-login/")
    );
    assert_eq!(
        location(first_hop("other.example.test").await.unwrap()).as_deref(),
        Some(format!("/if/flow/{}/", default.slug).as_str())
    );

    // Deleting the flow clears the brand's reference: back to the default flow.
    app.state
        .store
        .delete_flow(other.uuid, &Actor::system())
        .await
        .unwrap();
    let uuid = brand["brand_uuid"].as_str().unwrap();
    let got: Value = api(
        reqwest::Method::GET,
        &format!("/api/v3/core/brands/{uuid}/"),
        Value::Null,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(got["flow_authentication"], Value::Null);
    assert_eq!(
        location(first_hop("partners.example.test").await.unwrap()).as_deref(),
        Some(format!("/if/flow/{}/", default.slug).as_str())
    );
}

/// A redirect stage in flow mode plans the target flow at once; with `keep_context` what the
/// first flow learned (the pending user) carries over, without it the next flow starts bare.
async fn redirect_to_a_flow_keeps_the_context_when_asked(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await; // sets the admin's password
    let s = &app.state.store;
    let actor = Actor::system();
    let stage = |name: &str, kind: &str, config: Value| Stage {
        uuid: Uuid::nil(),
        name: name.into(),
        kind: kind.into(),
        config: portcullis_flow::normalize_stage_config(kind, &config).unwrap(),
    };
    let second = s
        .create_flow(
            Flow::new("Second", "second-half", FlowDesignation::Authentication),
            &actor,
        )
        .await
        .unwrap();
    for (i, st) in [
        stage("second-password", "passwordstage", json!({})),
        stage("second-login", "userloginstage", json!({})),
    ]
    .into_iter()
    .enumerate()
    {
        let st = s.create_stage(st, &actor).await.unwrap();
        s.create_flow_binding(
            FlowStageBinding::new(second.uuid, st.uuid, (i as i32 + 1) * 10),
            &actor,
        )
        .await
        .unwrap();
    }
    for keep in [true, false] {
        let slug = if keep { "first-keep" } else { "first-bare" };
        let first = s
            .create_flow(
                Flow::new("First", slug, FlowDesignation::Authentication),
                &actor,
            )
            .await
            .unwrap();
        for (i, st) in [
            stage(
                &format!("{slug}-ident"),
                "identificationstage",
                json!({"user_fields": ["username"]}),
            ),
            stage(
                &format!("{slug}-redirect"),
                "redirectstage",
                json!({"mode": "flow", "target_flow": second.uuid, "keep_context": keep}),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let st = s.create_stage(st, &actor).await.unwrap();
            s.create_flow_binding(
                FlowStageBinding::new(first.uuid, st.uuid, (i as i32 + 1) * 10),
                &actor,
            )
            .await
            .unwrap();
        }
        let mut br = Browser::new(&app);
        assert_eq!(component(&br.get(slug).await), "ak-stage-identification");
        let r = br
            .solve(
                slug,
                json!({"component": "ak-stage-identification", "uid_field": "admin"}),
            )
            .await;
        assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
        assert_eq!(r.body["to"], "/if/flow/second-half/");
        let r = br.get("second-half").await;
        if !keep {
            // No pending user in a bare plan: the password stage has nobody to check.
            assert_eq!(component(&r), "ak-stage-access-denied", "{:?}", r.body);
            continue;
        }
        assert_eq!(component(&r), "ak-stage-password", "{:?}", r.body);
        assert_eq!(r.body["pending_user"], "admin");
        let r = br
            .solve(
                "second-half",
                json!({"component": "ak-stage-password", "password": PASSWORD}),
            )
            .await;
        assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
        let me = br
            .send(br.http.get(format!("{}/api/v3/core/users/me/", br.base)))
            .await;
        assert_eq!(me.body["user"]["username"], "admin");
    }
}

/// The password stage checks the user as they are when the password arrives: a password
/// changed or an account deactivated after the identification step counts, and a deactivated
/// user's right password gets the same answer as a wrong one.
async fn the_password_is_checked_against_the_user_as_it_is_now(b: Backend) {
    let app = TestApp::spawn(b).await;
    login_flow(&app).await;
    let store = &app.state.store;
    let alice = store
        .create_user(NewUser::named("alice"), &Actor::system())
        .await
        .unwrap()
        .user
        .pk;
    async fn set_password(app: &TestApp, pk: i32, pw: &str) {
        let hash = app.state.hasher.hash(pw.into()).await.unwrap();
        app.state
            .store
            .set_password(pk, Some(hash), &Actor::system())
            .await
            .unwrap();
    }
    let password = |pw: &str| json!({"component": "ak-stage-password", "password": pw});
    let invalid = |r: &Resp| {
        assert_eq!(component(r), "ak-stage-password", "{:?}", r.body);
        assert_eq!(
            r.body["response_errors"]["password"][0]["string"],
            "Invalid password"
        );
    };
    set_password(&app, alice, PASSWORD).await;

    // The password changes between the two steps: the old one no longer works.
    let mut br = Browser::new(&app);
    identify(&mut br, "alice").await;
    set_password(&app, alice, "a new passphrase").await;
    let r = br.post(SLUG, password(PASSWORD)).await;
    invalid(&r);
    let r = br.post(SLUG, password("a new passphrase")).await;
    assert_eq!(component(&r), "xak-flow-redirect", "{:?}", r.body);
    let me = br.me().await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["username"], "alice");

    // Deactivated between the two steps: the right password is refused.
    let mut br = Browser::new(&app);
    identify(&mut br, "alice").await;
    store
        .update_user(
            alice,
            portcullis_core::UserPatch {
                is_active: Some(false),
                ..Default::default()
            },
            &Actor::system(),
        )
        .await
        .unwrap();
    let r = br.post(SLUG, password("a new passphrase")).await;
    invalid(&r);
    assert_eq!(br.me().await.status, StatusCode::UNAUTHORIZED);

    // Inactive from the start: the same answer as a wrong password.
    let mut br = Browser::new(&app);
    invalid(&log_in(&mut br, "alice", "a new passphrase").await);
    let mut br = Browser::new(&app);
    invalid(&log_in(&mut br, "alice", "wrong").await);
}

both_backends!(
    the_password_is_checked_against_the_user_as_it_is_now,
    redirect_to_a_flow_keeps_the_context_when_asked,
    brands_choose_their_flows,
    identification_links_to_enrollment_and_recovery,
    user_settings_show_and_change_the_users_own_values,
    initial_setup_sets_the_admin_password_once,
    initial_setup_cannot_be_raced,
    a_group_binding_on_an_application_decides_access,
    admin_logs_in_and_the_session_authenticates_the_api,
    wrong_passwords_cancel_the_flow_after_the_limit,
    known_and_unknown_usernames_are_indistinguishable,
    logout_ends_the_session,
    malformed_responses_never_advance_the_flow,
    policies_bound_to_flows_and_stage_bindings_change_the_outcome,
    an_expression_over_budget_fails_with_the_binding_failure_result,
    the_stages_after_an_accepted_response_run_as_a_get,
);
