//! Helpers of the API test binary: a client for one running server, request bodies of every
//! kind (JSON, raw bytes, none), response checks in DRF's shapes, and the assertion that a
//! refused request left the database exactly as it was.

use std::fmt::Write as _;

pub use portcullis_testkit::{Backend, TestApp};
pub use reqwest::{Method, StatusCode};
pub use serde_json::{Value, json};

/// The largest body the API accepts (mirrors `portcullis_http::MAX_BODY_BYTES`).
pub const LIMIT: usize = portcullis_http::MAX_BODY_BYTES;

/// What a request carries.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    /// Bytes with the given `Content-Type` (none when `None`).
    Raw(Option<&'static str>, Vec<u8>),
}

impl Body {
    pub fn raw_json(s: impl Into<Vec<u8>>) -> Self {
        Body::Raw(Some("application/json"), s.into())
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body as JSON; `Value::Null` when it is not JSON.
    pub body: Value,
    pub what: String,
}

impl Resp {
    /// Asserts the status, showing the request and body when it differs.
    #[track_caller]
    pub fn status(&self, want: StatusCode) -> &Self {
        assert_eq!(
            self.status, want,
            "{}: expected {want}, got {} with body {}",
            self.what, self.status, self.text
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        self.status(StatusCode::OK);
        &self.body
    }

    #[track_caller]
    pub fn created(&self) -> &Value {
        self.status(StatusCode::CREATED);
        &self.body
    }

    #[track_caller]
    pub fn no_content(&self) {
        self.status(StatusCode::NO_CONTENT);
        assert!(self.text.is_empty(), "{}: 204 with a body", self.what);
    }

    /// Asserts a 400 in DRF's validation shape `{"field": ["message", ...]}` naming `field`.
    #[track_caller]
    pub fn field_error(&self, field: &str) -> &Self {
        self.status(StatusCode::BAD_REQUEST);
        let messages = self.body.get(field).and_then(Value::as_array);
        assert!(
            messages.is_some_and(|m| !m.is_empty() && m.iter().all(|s| s.as_str().is_some())),
            "{}: expected a validation error on {field:?}, got {}",
            self.what,
            self.text
        );
        self
    }

    /// Asserts `{"detail": "..."}` with the given status.
    #[track_caller]
    pub fn detail(&self, want: StatusCode) -> &str {
        self.status(want);
        self.body
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: expected {{\"detail\"}}, got {}", self.what, self.text))
    }

    /// The message list of a field error.
    pub fn messages(&self, field: &str) -> Vec<String> {
        self.body
            .get(field)
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn results(&self) -> &Vec<Value> {
        self.body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: not a list: {}", self.what, self.text))
    }

    pub fn count(&self) -> u64 {
        self.body["pagination"]["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: no pagination: {}", self.what, self.text))
    }

    /// A field of every result, as strings.
    pub fn column(&self, field: &str) -> Vec<String> {
        self.results()
            .iter()
            .map(|r| match &r[field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }
}

/// One server on a fresh database, and the client that talks to it.
pub struct Ctx {
    pub app: TestApp,
    pub admin: String,
}

impl Ctx {
    pub async fn spawn(b: Backend) -> Self {
        let app = TestApp::spawn(b).await;
        let admin = app.admin_token.clone();
        Self { app, admin }
    }

    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Body) -> Resp {
        let what = format!("{method} {path}");
        let mut r = self.app.request(method, path, token);
        r = match body {
            Body::None => r,
            Body::Json(v) => r.json(&v),
            Body::Raw(ct, bytes) => {
                if let Some(ct) = ct {
                    r = r.header(reqwest::header::CONTENT_TYPE, ct);
                }
                r.body(bytes)
            }
        };
        let res = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        read(res, what).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), Body::None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Body::Json(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(token), Body::Json(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(token), Body::Json(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), Body::None)
            .await
    }

    /// Sends a request that must fail with `want`, and checks that the database is unchanged
    /// (every row of every table, events included).
    pub async fn refused(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        want: StatusCode,
    ) -> Resp {
        let before = self.app.snapshot().await;
        let r = self.send(method, path, token, body).await;
        r.status(want);
        let after = self.app.snapshot().await;
        assert_unchanged(&before, &after, &r.what);
        r
    }

    /// A JSON request that must fail validation on `field`, leaving the database unchanged.
    pub async fn invalid(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
        field: &str,
    ) -> Resp {
        let r = self
            .refused(
                method,
                path,
                Some(token),
                Body::Json(body),
                StatusCode::BAD_REQUEST,
            )
            .await;
        r.field_error(field);
        r
    }

    /// A request that must be answered 404 `{"detail": "Not found."}`, changing nothing.
    pub async fn not_found(&self, method: Method, path: &str, token: &str, body: Body) {
        let r = self
            .refused(method, path, Some(token), body, StatusCode::NOT_FOUND)
            .await;
        r.detail(StatusCode::NOT_FOUND);
    }

    /// A request that must be refused 403 with DRF's detail, changing nothing.
    pub async fn forbidden(&self, method: Method, path: &str, token: &str, body: Body) {
        let r = self
            .refused(method, path, Some(token), body, StatusCode::FORBIDDEN)
            .await;
        r.detail(StatusCode::FORBIDDEN);
    }

    /// Sends `n` JSON requests at once (as the admin), built by `make(i)`; answers in order.
    pub async fn concurrently(
        &self,
        n: usize,
        make: impl Fn(usize) -> (Method, String, Value),
    ) -> Vec<Resp> {
        let mut tasks = Vec::new();
        for i in 0..n {
            let (method, path, body) = make(i);
            let req = self
                .app
                .request(method.clone(), &path, Some(&self.admin))
                .json(&body);
            let what = format!("{method} {path} (concurrent #{i})");
            tasks.push(tokio::spawn(async move {
                let res = req.send().await.expect("concurrent request");
                read(res, what).await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    /// Every event, newest first, as the admin sees them.
    pub async fn events(&self, query: &str) -> Vec<Value> {
        let sep = if query.is_empty() { "" } else { "&" };
        let r = self
            .get(
                &format!("/api/v3/events/events/?page_size=1000{sep}{query}"),
                &self.admin,
            )
            .await;
        r.ok();
        r.results().clone()
    }

    /// A user created through the store, with an API token, inactive from the start.
    pub async fn inactive_user_token(&self, username: &str) -> String {
        let (pk, token) = self.app.regular_user(username).await;
        self.app
            .state
            .store
            .update_user(
                pk,
                portcullis_core::UserPatch {
                    is_active: Some(false),
                    ..Default::default()
                },
                &portcullis_core::Actor::system(),
            )
            .await
            .expect("deactivate");
        token
    }

    /// An API token of `user_pk` that expired an hour ago.
    pub async fn expired_token(&self, user_pk: i32, identifier: &str) -> String {
        let an_hour_ago = self.app.state.clock.now() - chrono::Duration::hours(1);
        self.app
            .token_expiring(user_pk, identifier, Some(an_hour_ago))
            .await
    }
}

async fn read(res: reqwest::Response, what: String) -> Resp {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        body,
        what,
    }
}

type Snapshot = Vec<(String, Vec<Value>)>;

/// Fails naming the tables (and first rows) that differ.
#[track_caller]
pub fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    if before == after {
        return;
    }
    let mut report = String::new();
    for ((table, b), (_, a)) in before.iter().zip(after) {
        if a != b {
            let _ = write!(report, "\n  {table}: {} rows -> {} rows", b.len(), a.len());
            for row in a.iter().filter(|r| !b.contains(r)).take(3) {
                let _ = write!(report, "\n    new/changed: {row}");
            }
        }
    }
    panic!("{what}: a refused request changed the database:{report}");
}

/// `?k=v&...`, percent-encoded.
pub fn qs(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("?{}", s.finish())
}

/// A JSON body `{"<field>": "<filler>"}` of exactly `size` bytes.
pub fn json_of_size(field: &str, size: usize) -> Vec<u8> {
    let overhead = format!("{{\"{field}\":\"\"}}").len();
    let filler = "a".repeat(size.saturating_sub(overhead));
    let out = format!("{{\"{field}\":\"{filler}\"}}").into_bytes();
    assert_eq!(out.len(), size);
    out
}

/// Ids that name nothing: out of range, not numbers, not uuids, odd characters.
pub const BAD_INT_IDS: &[&str] = &[
    "999999",
    "0",
    "-1",
    "abc",
    "1.5",
    "99999999999999999999",
    "%20",
    "1e3",
];
pub const BAD_UUID_IDS: &[&str] = &[
    "00000000-0000-4000-8000-000000000000",
    "not-a-uuid",
    "123",
    "%C3%BC",
];

/// The credentials that must all be answered 401.
pub async fn bad_credentials(ctx: &Ctx) -> Vec<(&'static str, Option<String>)> {
    let inactive = ctx.inactive_user_token("inactive-user").await;
    let expired = ctx.expired_token(ctx.app.admin_pk, "expired-token").await;
    vec![
        ("no token", None),
        ("unknown token", Some("not-a-real-token".to_owned())),
        ("empty-looking token", Some(" ".to_owned())),
        ("inactive user's token", Some(inactive)),
        ("expired token", Some(expired)),
    ]
}

/// Checks a 401: DRF's detail and a `WWW-Authenticate` challenge.
#[track_caller]
pub fn assert_unauthorized(r: &Resp, label: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{} with {label}: got {} {}",
        r.what,
        r.status,
        r.text
    );
    assert!(
        r.body.get("detail").and_then(Value::as_str).is_some(),
        "{} with {label}: 401 without detail: {}",
        r.what,
        r.text
    );
    assert!(
        r.headers.contains_key(reqwest::header::WWW_AUTHENTICATE),
        "{} with {label}: 401 without WWW-Authenticate",
        r.what
    );
}
