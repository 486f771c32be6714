//! The built-in stages driven through the real executor over a real store (SQLite and
//! PostgreSQL): a browser is a cookie, each request loads its session from the database, as the
//! HTTP layer does.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_core::{
    Actor, Application, Brand, Flow, FlowDesignation, FlowStageBinding, NewGroup, NewUser,
    PolicyEngineMode, Prompt, Stage,
};
use portcullis_crypto::PasswordHasher;
use portcullis_flow::{
    CookieChange, Executor, FlowPlan, FlowRequest, FlowServices, PolicyServices, Reply,
    SessionState,
};
use portcullis_policy::HttpRequestInfo;
use portcullis_store::Store;
use portcullis_testkit::{Backend, TestDb, both_backends, test_store};
use serde_json::{Value, json};
use uuid::Uuid;

/// A store, the flow services over it, and one browser (its session cookie).
struct T {
    store: Store,
    svc: FlowServices,
    request: FlowRequest,
    cookie: Option<String>,
    _db: TestDb,
}

impl T {
    async fn new(backend: Backend) -> Self {
        let (store, db) = test_store(backend).await;
        let clock = store.clock().clone();
        let svc = FlowServices {
            store: store.clone(),
            hasher: PasswordHasher::new(2),
            clock: clock.clone(),
            policies: PolicyServices {
                store: store.clone(),
                clock,
                breached: portcullis_policy::BreachedPasswords::embedded(),
                limits: portcullis_policy::ExpressionLimits::default(),
                cache: Default::default(),
            },
            session_end: None,
        };
        let request = FlowRequest {
            http: HttpRequestInfo {
                path: "/api/v3/flows/executor/".into(),
                method: "GET".into(),
                headers: vec![],
                client_ip: Some("192.0.2.10".into()),
            },
            query: String::new(),
            brand: Brand::fallback(),
        };
        Self {
            store,
            svc,
            request,
            cookie: None,
            _db: db,
        }
    }

    async fn session(&self) -> SessionState {
        SessionState::load(&self.store, self.cookie.as_deref(), "192.0.2.10", "test")
            .await
            .unwrap()
    }

    fn keep_cookie(&mut self, session: &SessionState) {
        match session.cookie_change() {
            CookieChange::Set { key, .. } => self.cookie = Some(key.clone()),
            CookieChange::Clear => self.cookie = None,
            CookieChange::None => {}
        }
    }

    /// GET: the current challenge, as JSON.
    async fn get(&mut self, slug: &str) -> Value {
        let mut session = self.session().await;
        let c = Executor::new(&self.svc, &mut session, &self.request)
            .get(slug)
            .await
            .unwrap();
        self.keep_cookie(&session);
        c.to_json()
    }

    /// POST: `None` when the stage accepted the response, else the challenge shown.
    async fn post(&mut self, slug: &str, body: Value) -> Option<Value> {
        let mut session = self.session().await;
        let r = Executor::new(&self.svc, &mut session, &self.request)
            .post(slug, &body)
            .await
            .unwrap();
        self.keep_cookie(&session);
        match r {
            Reply::Advanced => None,
            Reply::Challenge(c) => Some(c.to_json()),
        }
    }

    /// POST that must be accepted, then GET the next challenge.
    async fn answer(&mut self, slug: &str, body: Value) -> Value {
        if let Some(c) = self.post(slug, body.clone()).await {
            panic!("{body} was not accepted: {c:#}");
        }
        self.get(slug).await
    }

    /// The logged-in user of this browser.
    async fn user(&self) -> Option<String> {
        self.session().await.user().map(|u| u.user.username.clone())
    }

    /// Changes the stored plan of flow `slug` (as a provider would set its context).
    async fn edit_plan(&mut self, slug: &str, f: impl FnOnce(&mut FlowPlan)) {
        let mut session = self.session().await;
        let mut plan = FlowPlan::from_json(session.plan(slug).expect("a plan")).unwrap();
        f(&mut plan);
        session
            .set_plan(&self.store, slug, Some(plan.to_json()))
            .await
            .unwrap();
        session.save(&self.store).await.unwrap();
    }

    async fn plan(&self, slug: &str) -> Option<FlowPlan> {
        self.session()
            .await
            .plan(slug)
            .and_then(FlowPlan::from_json)
    }

    async fn flow(&self, slug: &str, designation: FlowDesignation, stages: &[Uuid]) -> Flow {
        let flow = self
            .store
            .create_flow(Flow::new(slug, slug, designation), &Actor::system())
            .await
            .unwrap();
        for (i, s) in stages.iter().enumerate() {
            let order = i32::try_from(i).unwrap() * 10;
            self.store
                .create_flow_binding(
                    FlowStageBinding::new(flow.uuid, *s, order),
                    &Actor::system(),
                )
                .await
                .unwrap();
        }
        flow
    }

    async fn stage(&self, kind: &str, config: Value) -> Uuid {
        let config = portcullis_flow::normalize_stage_config(kind, &config).unwrap();
        self.store
            .create_stage(
                Stage {
                    uuid: Uuid::nil(),
                    name: format!("{kind}-{}", Uuid::new_v4().simple()),
                    kind: kind.into(),
                    config,
                },
                &Actor::system(),
            )
            .await
            .unwrap()
            .uuid
    }

    async fn prompt(&self, config: Value) -> Uuid {
        let config = portcullis_flow::stages::prompt::normalize_prompt_config(&config).unwrap();
        self.store
            .create_prompt(
                Prompt {
                    uuid: Uuid::nil(),
                    name: format!("prompt-{}", Uuid::new_v4().simple()),
                    config,
                },
                &Actor::system(),
            )
            .await
            .unwrap()
            .uuid
    }

    async fn expression(&self, expression: &str) -> Uuid {
        let config = portcullis_flow::policies::normalize_config(
            "expressionpolicy",
            &json!({"expression": expression}),
        )
        .unwrap();
        self.store
            .create_policy(
                portcullis_core::Policy {
                    uuid: Uuid::nil(),
                    name: format!("policy-{}", Uuid::new_v4().simple()),
                    kind: "expressionpolicy".into(),
                    execution_logging: false,
                    config,
                },
                &Actor::system(),
            )
            .await
            .unwrap()
            .uuid
    }

    async fn user_with_password(&self, username: &str, password: &str) -> i32 {
        let mut u = NewUser::named(username);
        u.email = format!("{username}@example.com");
        u.password_hash = Some(self.svc.hasher.hash(password.into()).await.unwrap());
        self.store
            .create_user(u, &Actor::system())
            .await
            .unwrap()
            .user
            .pk
    }

    async fn application(&self, slug: &str) -> Application {
        self.store
            .create_application(
                Application {
                    uuid: Uuid::nil(),
                    name: format!("App {slug}"),
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
                },
                &Actor::system(),
            )
            .await
            .unwrap()
    }

    async fn events(&self, action: &str) -> usize {
        self.store
            .snapshot()
            .await
            .unwrap()
            .into_iter()
            .filter(|(table, _)| table == "event")
            .flat_map(|(_, rows)| rows)
            .filter(|r| r.get("action").and_then(Value::as_str) == Some(action))
            .count()
    }
}

fn component(c: &Value) -> &str {
    c["component"].as_str().unwrap_or_default()
}

fn errors(c: &Value, field: &str) -> Vec<String> {
    c["response_errors"][field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["string"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The enrollment prompt fields: username, name, email, password, password_repeat.
async fn enrollment_prompts(t: &T) -> Vec<Uuid> {
    let mut out = Vec::new();
    for (i, (key, kind)) in [
        ("username", "username"),
        ("name", "text"),
        ("email", "email"),
        ("password", "password"),
        ("password_repeat", "password"),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(
            t.prompt(json!({
                "field_key": key, "label": key, "type": kind,
                "order": i32::try_from(i).unwrap(),
            }))
            .await,
        );
    }
    out
}

async fn enroll_creates_and_logs_in(backend: Backend) {
    let mut t = T::new(backend).await;
    let group = t
        .store
        .create_group(
            NewGroup {
                name: "enrolled".into(),
                is_superuser: false,
                parent: None,
                attributes: json!({}),
                users: vec![],
            },
            &Actor::system(),
        )
        .await
        .unwrap();
    let mut fields = enrollment_prompts(&t).await;
    // Shown first though listed last: fields are sorted by order.
    fields.push(
        t.prompt(
            json!({"field_key": "attributes.settings.locale", "label": "Locale",
                        "type": "ak-locale", "required": false, "order": -1}),
        )
        .await,
    );
    let prompt = t.stage("promptstage", json!({"fields": fields})).await;
    let write = t
        .stage(
            "userwritestage",
            json!({"create_users_group": group.group.uuid, "user_path_template": "users/enrolled"}),
        )
        .await;
    let login = t.stage("userloginstage", json!({})).await;
    t.flow(
        "enroll",
        FlowDesignation::Enrollment,
        &[prompt, write, login],
    )
    .await;

    let c = t.get("enroll").await;
    assert_eq!(component(&c), "ak-stage-prompt");
    let keys: Vec<&str> = c["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "attributes.settings.locale",
            "username",
            "name",
            "email",
            "password",
            "password_repeat"
        ]
    );
    let f = &c["fields"][1];
    for k in [
        "label",
        "type",
        "required",
        "placeholder",
        "initial_value",
        "order",
        "sub_text",
        "choices",
    ] {
        assert!(f.get(k).is_some(), "field lacks {k}: {f}");
    }

    let done = t
        .answer(
            "enroll",
            json!({
                "component": "ak-stage-prompt", "username": "newbie", "name": "New Bie",
                "email": "newbie@example.com", "password": "correct horse 1",
                "password_repeat": "correct horse 1", "attributes.settings.locale": "de",
                "is_superuser": true,
            }),
        )
        .await;
    assert_eq!(component(&done), "xak-flow-redirect", "{done}");
    assert_eq!(t.user().await.as_deref(), Some("newbie"));

    let u = t.store.find_user_by_username("newbie").await.unwrap();
    assert_eq!(u.user.email, "newbie@example.com");
    assert_eq!(u.user.name, "New Bie");
    assert_eq!(u.user.path, "users/enrolled");
    assert_eq!(u.user.user_type.as_str(), "external");
    assert!(u.user.is_active && !u.user.is_superuser);
    assert_eq!(u.user.attributes, json!({"settings": {"locale": "de"}}));
    assert_eq!(u.groups.len(), 1);
    assert_eq!(u.groups[0].name, "enrolled");
    let hash = t
        .store
        .find_password_hash(u.user.pk)
        .await
        .unwrap()
        .unwrap();
    assert!(portcullis_crypto::verify_password(&hash, "correct horse 1").valid);
    assert_eq!(t.events("user_write").await, 1);
    assert_eq!(t.events("login").await, 1);
}

async fn prompt_field_errors_never_advance(backend: Backend) {
    let mut t = T::new(backend).await;
    t.user_with_password("taken", "pw").await;
    let mut fields = Vec::new();
    for (i, (key, kind, extra)) in [
        ("t", "text", json!({})),
        ("ta", "text_area", json!({})),
        ("u", "username", json!({})),
        ("e", "email", json!({})),
        ("n", "number", json!({})),
        ("c", "checkbox", json!({})),
        (
            "r",
            "radio-button-group",
            json!({"placeholder": "return [\"a\", \"b\"]", "placeholder_expression": true}),
        ),
        ("d", "dropdown", json!({"placeholder": "only"})),
        ("dt", "date", json!({})),
        ("dtt", "date-time", json!({})),
        ("f", "file", json!({"required": false})),
        ("h", "hidden", json!({"initial_value": "from-server"})),
        ("s", "static", json!({"placeholder": "<b>hello</b>"})),
        ("sep", "separator", json!({})),
        ("ro", "text_read_only", json!({"initial_value": "shown"})),
        ("l", "ak-locale", json!({"required": false})),
    ]
    .into_iter()
    .enumerate()
    {
        let mut config = json!({"field_key": key, "label": key, "type": kind,
                                "order": i32::try_from(i).unwrap()});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        fields.push(t.prompt(config).await);
    }
    let prompt = t.stage("promptstage", json!({"fields": fields})).await;
    let dummy = t.stage("dummystage", json!({})).await;
    t.flow("form", FlowDesignation::Enrollment, &[prompt, dummy])
        .await;
    let c = t.get("form").await;
    assert_eq!(c["fields"][6]["choices"], json!(["a", "b"]));
    assert_eq!(c["fields"][7]["choices"], json!(["only"]));
    assert_eq!(c["fields"][0]["choices"], Value::Null);

    let huge = "x".repeat(1024 * 1024);
    let bad_answers = [
        // Everything missing.
        (
            json!({}),
            vec!["t", "ta", "u", "e", "n", "c", "r", "d", "dt", "dtt"],
        ),
        // Wrong JSON types everywhere.
        (
            json!({"t": ["a"], "ta": {"x": 1}, "u": 5, "e": true, "n": "seven", "c": [true],
                   "r": ["a"], "d": {"only": 1}, "dt": 20240101, "dtt": [], "f": 1, "l": {}}),
            vec![
                "t", "ta", "u", "e", "n", "c", "r", "d", "dt", "dtt", "f", "l",
            ],
        ),
        // Huge strings.
        (
            json!({"t": huge, "ta": huge, "u": huge, "e": huge, "n": huge, "c": huge,
                   "r": huge, "d": huge, "dt": huge, "dtt": huge, "f": huge, "l": huge}),
            vec![
                "t", "ta", "u", "e", "n", "c", "r", "d", "dt", "dtt", "f", "l",
            ],
        ),
        // Well-typed but invalid values.
        (
            json!({"t": "a\u{0}b", "ta": "   ", "u": "Taken", "e": "not-an-email", "n": "1.5",
                   "c": false, "r": "c", "d": "other", "dt": "2023-02-29", "dtt": "tomorrow",
                   "f": "hello", "l": "<script>"}),
            vec![
                "t", "ta", "u", "e", "n", "c", "r", "d", "dt", "dtt", "f", "l",
            ],
        ),
    ];
    for (mut body, expected) in bad_answers {
        body["component"] = json!("ak-stage-prompt");
        let c = t.post("form", body.clone()).await.expect("refused");
        assert_eq!(component(&c), "ak-stage-prompt");
        for key in &expected {
            assert!(!errors(&c, key).is_empty(), "no error for {key} in {c}");
        }
        let errs = c["response_errors"].as_object().unwrap();
        assert_eq!(errs.len(), expected.len(), "{errs:?}");
        // Still on the prompt, nothing stored.
        let plan = t.plan("form").await.unwrap();
        assert!(!plan.context.contains_key("prompt_data"));
        assert_eq!(component(&t.get("form").await), "ak-stage-prompt");
    }
    let c = t
        .post(
            "form",
            json!({"component": "ak-stage-prompt", "u": "Taken"}),
        )
        .await
        .unwrap();
    assert_eq!(errors(&c, "u"), ["Username is already taken."]);

    // A valid answer: values normalized, hidden from the server, display-only fields dropped.
    let next = t
        .answer(
            "form",
            json!({"component": "ak-stage-prompt", "t": "text", "ta": "two\nlines", "u": "fresh",
                   "e": "a@b.c", "n": "42", "c": "on", "r": "b", "d": "only", "dt": "2024-02-29",
                   "dtt": "2024-01-02T03:04", "h": "forged", "s": "x", "ro": "changed",
                   "l": "fr"}),
        )
        .await;
    assert_eq!(component(&next), "ak-stage-dummy");
    let plan = t.plan("form").await.unwrap();
    assert_eq!(
        plan.context["prompt_data"],
        json!({"t": "text", "ta": "two\nlines", "u": "fresh", "e": "a@b.c", "n": 42, "c": true,
               "r": "b", "d": "only", "dt": "2024-02-29", "dtt": "2024-01-02T03:04:00",
               "h": "from-server", "l": "fr"})
    );
}

async fn password_mismatch(backend: Backend) {
    let mut t = T::new(backend).await;
    let fields = enrollment_prompts(&t).await;
    let prompt = t.stage("promptstage", json!({"fields": fields})).await;
    let write = t.stage("userwritestage", json!({})).await;
    t.flow("enroll", FlowDesignation::Enrollment, &[prompt, write])
        .await;
    t.get("enroll").await;
    let c = t
        .post(
            "enroll",
            json!({"component": "ak-stage-prompt", "username": "someone", "name": "S",
                   "email": "s@example.com", "password": "one", "password_repeat": "two"}),
        )
        .await
        .unwrap();
    assert_eq!(errors(&c, "non_field_errors"), ["Passwords don't match."]);
    // The challenge never echoes a password back.
    assert!(!c.to_string().contains("\"one\""));
    assert!(t.store.find_user_by_username("someone").await.is_err());
    assert_eq!(component(&t.get("enroll").await), "ak-stage-prompt");
}

async fn validation_policies(backend: Backend) {
    let mut t = T::new(backend).await;
    let username = t
        .prompt(json!({"field_key": "username", "label": "Username", "type": "username"}))
        .await;
    let long = t
        .expression(
            "if len(request.context[\"prompt_data\"][\"username\"]) > 3:\n    return True\n\
             ak_message(\"Username too short.\")\nreturn False",
        )
        .await;
    let prompt = t
        .stage(
            "promptstage",
            json!({"fields": [username], "validation_policies": [long]}),
        )
        .await;
    let dummy = t.stage("dummystage", json!({})).await;
    t.flow("v", FlowDesignation::Enrollment, &[prompt, dummy])
        .await;
    t.get("v").await;
    let c = t
        .post(
            "v",
            json!({"component": "ak-stage-prompt", "username": "abc"}),
        )
        .await
        .unwrap();
    assert_eq!(errors(&c, "non_field_errors"), ["Username too short."]);
    assert!(
        !t.plan("v")
            .await
            .unwrap()
            .context
            .contains_key("prompt_data")
    );
    let next = t
        .answer(
            "v",
            json!({"component": "ak-stage-prompt", "username": "abcd"}),
        )
        .await;
    assert_eq!(component(&next), "ak-stage-dummy");
    assert_eq!(
        t.plan("v").await.unwrap().context["prompt_data"],
        json!({"username": "abcd"})
    );

    // A policy that raises fails closed and is recorded.
    let broken = t.expression("return request.context[\"nope\"]").await;
    let prompt = t
        .stage(
            "promptstage",
            json!({"fields": [username], "validation_policies": [broken]}),
        )
        .await;
    t.flow("b", FlowDesignation::Enrollment, &[prompt]).await;
    t.get("b").await;
    let c = t
        .post(
            "b",
            json!({"component": "ak-stage-prompt", "username": "abcd"}),
        )
        .await
        .unwrap();
    assert!(!errors(&c, "non_field_errors").is_empty());
    assert_eq!(t.events("policy_exception").await, 1);
}

async fn user_write_updates_pending_user(backend: Backend) {
    let mut t = T::new(backend).await;
    let pk = t.user_with_password("alice", "old password").await;
    let ident = t
        .stage("identificationstage", json!({"user_fields": ["username"]}))
        .await;
    let password = t.stage("passwordstage", json!({})).await;
    let name = t
        .prompt(json!({"field_key": "name", "label": "Name", "type": "text"}))
        .await;
    let new_password = t
        .prompt(json!({"field_key": "password", "label": "Password", "type": "password"}))
        .await;
    let prompt = t
        .stage("promptstage", json!({"fields": [name, new_password]}))
        .await;
    let write = t
        .stage(
            "userwritestage",
            json!({"user_creation_mode": "never_create", "create_users_as_inactive": true}),
        )
        .await;
    let login = t.stage("userloginstage", json!({})).await;
    t.flow(
        "update",
        FlowDesignation::Authentication,
        &[ident, password, prompt, write, login],
    )
    .await;
    t.get("update").await;
    t.answer(
        "update",
        json!({"component": "ak-stage-identification", "uid_field": "alice"}),
    )
    .await;
    let c = t
        .answer(
            "update",
            json!({"component": "ak-stage-password", "password": "old password"}),
        )
        .await;
    assert_eq!(component(&c), "ak-stage-prompt");
    let done = t
        .answer(
            "update",
            json!({"component": "ak-stage-prompt", "name": "Alice A.", "password": "new password"}),
        )
        .await;
    assert_eq!(component(&done), "xak-flow-redirect", "{done}");
    let u = t.store.find_user(pk).await.unwrap();
    assert_eq!(u.user.name, "Alice A.");
    // Updating never deactivates (create_users_as_inactive is for new users).
    assert!(u.user.is_active);
    let hash = t.store.find_password_hash(pk).await.unwrap().unwrap();
    assert!(portcullis_crypto::verify_password(&hash, "new password").valid);
    assert_eq!(t.user().await.as_deref(), Some("alice"));
}

async fn user_write_denials(backend: Backend) {
    let mut t = T::new(backend).await;
    t.user_with_password("existing", "pw").await;
    let username = t
        .prompt(json!({"field_key": "username", "label": "Username", "type": "text"}))
        .await;
    let prompt = t.stage("promptstage", json!({"fields": [username]})).await;
    let never = t
        .stage(
            "userwritestage",
            json!({"user_creation_mode": "never_create"}),
        )
        .await;
    t.flow("never", FlowDesignation::Enrollment, &[prompt, never])
        .await;
    t.get("never").await;
    let c = t
        .answer(
            "never",
            json!({"component": "ak-stage-prompt", "username": "ghost"}),
        )
        .await;
    assert_eq!(component(&c), "ak-stage-access-denied");
    assert_eq!(
        c["error_message"],
        "No user found and can't create new user."
    );
    assert!(t.store.find_user_by_username("ghost").await.is_err());
    assert!(t.plan("never").await.is_none());

    // Without prompt data there is nothing to write.
    let bare = t.stage("userwritestage", json!({})).await;
    t.flow("bare", FlowDesignation::Enrollment, &[bare]).await;
    let c = t.get("bare").await;
    assert_eq!(c["error_message"], "No Pending data.");

    // A text prompt does not check usernames; user_write refuses a taken one.
    let always = t
        .stage(
            "userwritestage",
            json!({"user_creation_mode": "always_create"}),
        )
        .await;
    t.flow("dup", FlowDesignation::Enrollment, &[prompt, always])
        .await;
    t.get("dup").await;
    let c = t
        .answer(
            "dup",
            json!({"component": "ak-stage-prompt", "username": "existing"}),
        )
        .await;
    assert_eq!(c["error_message"], "Username is already taken.");
    t.get("dup").await;
    let c = t
        .answer(
            "dup",
            json!({"component": "ak-stage-prompt", "username": " spaced"}),
        )
        .await;
    assert_eq!(component(&c), "ak-stage-access-denied");
    assert!(
        c["error_message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to update user")
    );
    assert_eq!(t.events("user_write").await, 0);
}

/// A flow dummy → consent.
async fn consent_flow(t: &T, slug: &str, config: Value) {
    let dummy = t.stage("dummystage", json!({})).await;
    let consent = t.stage("consentstage", config).await;
    t.flow(slug, FlowDesignation::Authorization, &[dummy, consent])
        .await;
}

/// Starts flow `slug` afresh with `app` as its application (as a provider would), passes the
/// dummy stage and returns the next challenge.
async fn start_consent(t: &mut T, slug: &str, app: &Application, perms: Value) -> Value {
    assert_eq!(component(&t.get(slug).await), "ak-stage-dummy");
    let application = json!({"pk": app.uuid.to_string(), "name": app.name, "slug": app.slug});
    t.edit_plan(slug, move |p| {
        p.context.insert("application".into(), application);
        p.context.insert("consent_permissions".into(), perms);
    })
    .await;
    t.answer(slug, json!({"component": "ak-stage-dummy"})).await
}

/// Logs `username` in through a small authentication flow.
async fn log_in(t: &mut T, username: &str, password: &str) {
    if t.store.find_flow_by_slug("login").await.is_err() {
        let ident = t
            .stage(
                "identificationstage",
                json!({"user_fields": ["username"], "password_stage": null}),
            )
            .await;
        let pw = t.stage("passwordstage", json!({})).await;
        let login = t.stage("userloginstage", json!({})).await;
        t.flow(
            "login",
            FlowDesignation::Authentication,
            &[ident, pw, login],
        )
        .await;
    }
    t.get("login").await;
    t.answer(
        "login",
        json!({"component": "ak-stage-identification", "uid_field": username}),
    )
    .await;
    let done = t
        .answer(
            "login",
            json!({"component": "ak-stage-password", "password": password}),
        )
        .await;
    assert_eq!(component(&done), "xak-flow-redirect");
}

async fn consent_modes(backend: Backend) {
    let mut t = T::new(backend).await;
    let pk = t.user_with_password("carol", "pw").await;
    log_in(&mut t, "carol", "pw").await;
    let app = t.application("wiki").await;
    let perms = json!([{"id": "openid", "name": "OpenID"}, {"id": "email", "name": "Email"}]);

    // always_require: asked every time, nothing stored.
    consent_flow(&t, "always", json!({})).await;
    for _ in 0..2 {
        let c = start_consent(&mut t, "always", &app, perms.clone()).await;
        assert_eq!(component(&c), "ak-stage-consent");
        assert_eq!(c["header_text"], "You're about to sign into App wiki.");
        assert_eq!(c["permissions"], perms);
        assert_eq!(c["additional_permissions"], json!([]));
        let token = c["token"].as_str().unwrap().to_owned();
        assert!(token.len() >= 32);
        let done = t
            .answer(
                "always",
                json!({"component": "ak-stage-consent", "token": token}),
            )
            .await;
        assert_eq!(component(&done), "xak-flow-redirect");
        assert!(t.store.find_consent(pk, app.uuid).await.unwrap().is_none());
    }

    // permanent: asked once, then skipped.
    let slug = "permanent";
    consent_flow(&t, slug, json!({"mode": "permanent"})).await;
    let c = start_consent(&mut t, slug, &app, perms.clone()).await;
    assert_eq!(component(&c), "ak-stage-consent");
    let done = t
        .answer(
            slug,
            json!({"component": "ak-stage-consent", "token": c["token"]}),
        )
        .await;
    assert_eq!(component(&done), "xak-flow-redirect");
    let consent = t.store.find_consent(pk, app.uuid).await.unwrap().unwrap();
    assert_eq!(consent.expires, None);
    assert_eq!(consent.permissions, "email openid");
    let c = start_consent(&mut t, slug, &app, perms.clone()).await;
    assert_eq!(
        component(&c),
        "xak-flow-redirect",
        "consent remembered: {c}"
    );
    // Fewer permissions than consented to: still covered.
    let c = start_consent(
        &mut t,
        slug,
        &app,
        json!([{"id": "openid", "name": "OpenID"}]),
    )
    .await;
    assert_eq!(component(&c), "xak-flow-redirect", "{c}");
    // A new permission asks again, showing only it as additional.
    let more = json!([{"id": "openid", "name": "OpenID"}, {"id": "email", "name": "Email"},
                      {"id": "groups", "name": "Groups"}]);
    let c = start_consent(&mut t, slug, &app, more).await;
    assert_eq!(component(&c), "ak-stage-consent");
    assert_eq!(
        c["additional_permissions"],
        json!([{"id": "groups", "name": "Groups"}])
    );
    assert_eq!(c["permissions"].as_array().unwrap().len(), 2);
    t.answer(
        slug,
        json!({"component": "ak-stage-consent", "token": c["token"]}),
    )
    .await;
    let consent = t.store.find_consent(pk, app.uuid).await.unwrap().unwrap();
    assert_eq!(consent.permissions, "email groups openid");

    // expiring: stored with an expiry.
    let app2 = t.application("chat").await;
    let slug = "expiring";
    consent_flow(
        &t,
        slug,
        json!({"mode": "expiring", "consent_expire_in": "days=2"}),
    )
    .await;
    let before = t.svc.clock.now();
    let c = start_consent(&mut t, slug, &app2, json!([])).await;
    t.answer(
        slug,
        json!({"component": "ak-stage-consent", "token": c["token"]}),
    )
    .await;
    let consent = t.store.find_consent(pk, app2.uuid).await.unwrap().unwrap();
    let expires = consent.expires.unwrap();
    assert!(expires >= before + chrono::Duration::days(2));
    assert!(expires <= t.svc.clock.now() + chrono::Duration::days(2));
    assert_eq!(consent.permissions, "");
    let c = start_consent(&mut t, slug, &app2, json!([])).await;
    assert_eq!(component(&c), "xak-flow-redirect");
}

async fn consent_token_mismatch(backend: Backend) {
    let mut t = T::new(backend).await;
    let pk = t.user_with_password("dave", "pw").await;
    log_in(&mut t, "dave", "pw").await;
    let app = t.application("mail").await;
    let slug = "tok";
    consent_flow(&t, slug, json!({"mode": "permanent"})).await;
    let c = start_consent(&mut t, slug, &app, json!([])).await;
    let token = c["token"].as_str().unwrap().to_owned();
    for bad in [
        json!({"component": "ak-stage-consent"}),
        json!({"component": "ak-stage-consent", "token": "wrong"}),
        json!({"component": "ak-stage-consent", "token": ["x"]}),
        json!({"component": "ak-stage-consent", "token": format!("{token}x")}),
        json!({"component": "ak-stage-consent", "token": "y".repeat(100_000)}),
    ] {
        let c = t.post(slug, bad).await.expect("refused");
        assert_eq!(component(&c), "ak-stage-consent");
        assert_eq!(
            errors(&c, "token"),
            ["Invalid consent token, refresh the page and try again"]
        );
        assert!(t.store.find_consent(pk, app.uuid).await.unwrap().is_none());
    }
    // Each challenge has a new token: the first one no longer works.
    let c = t
        .post(
            slug,
            json!({"component": "ak-stage-consent", "token": token}),
        )
        .await
        .expect("an old token is refused");
    assert!(!errors(&c, "token").is_empty());
    let fresh = c["token"].as_str().unwrap().to_owned();
    assert!(
        t.post(
            slug,
            json!({"component": "ak-stage-consent", "token": fresh})
        )
        .await
        .is_none()
    );
    assert!(t.store.find_consent(pk, app.uuid).await.unwrap().is_some());
}

async fn consent_without_application(backend: Backend) {
    let mut t = T::new(backend).await;
    let consent = t.stage("consentstage", json!({"mode": "permanent"})).await;
    t.flow("tos", FlowDesignation::Enrollment, &[consent]).await;
    let c = t.get("tos").await;
    assert_eq!(component(&c), "ak-stage-consent");
    assert_eq!(c["header_text"], "");
    let done = t
        .answer(
            "tos",
            json!({"component": "ak-stage-consent", "token": c["token"]}),
        )
        .await;
    assert_eq!(component(&done), "xak-flow-redirect");
}

async fn password_login(backend: Backend) {
    let mut t = T::new(backend).await;
    t.user_with_password("erin", "secret").await;
    log_in(&mut t, "erin", "secret").await;
    assert_eq!(t.user().await.as_deref(), Some("erin"));
    assert_eq!(t.events("login").await, 1);

    // Another browser: an unknown user sees exactly what a known one sees.
    let mut shapes = Vec::new();
    for who in ["erin", "nobody"] {
        t.cookie = None;
        let c = t.get("login").await;
        assert_eq!(component(&c), "ak-stage-identification");
        let c = t
            .answer(
                "login",
                json!({"component": "ak-stage-identification", "uid_field": who}),
            )
            .await;
        assert_eq!(component(&c), "ak-stage-password");
        assert_eq!(c["pending_user"], who);
        let wrong = t
            .post(
                "login",
                json!({"component": "ak-stage-password", "password": "wrong"}),
            )
            .await
            .unwrap();
        assert_eq!(errors(&wrong, "password"), ["Invalid password"]);
        let mut shape = wrong.clone();
        shape["pending_user"] = json!("");
        shapes.push((
            c.as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
            shape,
        ));
        assert_eq!(t.user().await, None);
    }
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(t.events("login_failed").await, 2);
}

/// The per-request user memo never serves a password hash that a write in this process
/// replaced: setting a password and upgrading a hash both count as changes.
async fn user_memo_never_serves_a_replaced_hash(b: Backend) {
    let (store, _db) = test_store(b).await;
    let mut n = NewUser::named("memo");
    n.password_hash = Some("$argon2id$first".into());
    let pk = store
        .create_user(n, &Actor::system())
        .await
        .unwrap()
        .user
        .pk;
    let memo = portcullis_flow::stages::UserMemo::default();
    memo.get(&store, pk).await.unwrap();
    assert_eq!(
        memo.password_hash(&store, pk).await.unwrap().as_deref(),
        Some("$argon2id$first")
    );
    store
        .set_password(pk, Some("$argon2id$second".into()), &Actor::system())
        .await
        .unwrap();
    assert_eq!(
        memo.password_hash(&store, pk).await.unwrap().as_deref(),
        Some("$argon2id$second")
    );
    memo.get(&store, pk).await.unwrap();
    assert!(
        store
            .upgrade_password_hash(pk, "$argon2id$second", "$argon2id$third".into())
            .await
            .unwrap()
    );
    assert_eq!(
        memo.password_hash(&store, pk).await.unwrap().as_deref(),
        Some("$argon2id$third")
    );
    // Another user's pk is never answered from the memo.
    assert!(matches!(
        memo.password_hash(&store, pk + 1000).await,
        Err(portcullis_store::StoreError::NotFound)
    ));
}

both_backends!(
    user_memo_never_serves_a_replaced_hash,
    enroll_creates_and_logs_in,
    prompt_field_errors_never_advance,
    password_mismatch,
    validation_policies,
    user_write_updates_pending_user,
    user_write_denials,
    consent_modes,
    consent_token_mismatch,
    consent_without_application,
    password_login,
);
