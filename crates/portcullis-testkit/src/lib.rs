//! Test support: fresh databases on SQLite and PostgreSQL, so every store test runs on both.
//!
//! PostgreSQL comes from `PORTCULLIS_TEST_POSTGRES_URL` (set by `scripts/test`, or by
//! `eval "$(scripts/pg-cluster start)"`); each test gets a database of its own on that server.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod serve;

use std::sync::Arc;

use portcullis_core::{Clock, SystemClock};
use portcullis_store::{Store, StoreOptions};

/// The two databases Portcullis supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test; the SQLite file (or directory) goes away with it.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// The PostgreSQL admin URL tests create their databases from.
/// A loopback port nobody listens on now, for a server a test starts as a separate process.
/// Never the same one twice in this process; another process may still take it before the
/// server binds it, so a caller retries on "Address already in use".
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "PORTCULLIS_TEST_POSTGRES_URL is not set: run the tests with `scripts/test`, or start \
             a throw-away cluster with `eval \"$(scripts/pg-cluster start)\"` first"
        )
    })
}

/// A fresh, empty database of the given kind.
pub async fn test_db(backend: Backend) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}/portcullis.db", dir.path().display()),
        Backend::Postgres => {
            let name = format!("pc_test_{}", uuid::Uuid::new_v4().simple());
            portcullis_store::create_postgres_database(&postgres_admin_url(), &name)
                .await
                .expect("create test database")
        }
    };
    TestDb { url, dir }
}

/// A migrated store on a fresh database.
pub async fn test_store(backend: Backend) -> (Store, TestDb) {
    test_store_with_clock(backend, Arc::new(SystemClock)).await
}

pub async fn test_store_with_clock(backend: Backend, clock: Arc<dyn Clock>) -> (Store, TestDb) {
    let db = test_db(backend).await;
    let store = Store::connect(&db.url, &StoreOptions::default(), clock)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (store, db)
}

/// Generates one `#[tokio::test]` per backend from an async fn taking a `Backend`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::Backend::Sqlite).await }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::Backend::Postgres).await }
            )+
        }
    };
}

/// A real server on a loopback port, on a fresh database, with a superuser `admin` whose API
/// token is `admin_token`.
pub struct TestApp {
    pub url: String,
    pub admin_token: String,
    pub admin_pk: i32,
    pub state: Arc<portcullis_http::AppState>,
    pub client: reqwest::Client,
    pub db: TestDb,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with_clock(backend, Arc::new(portcullis_core::SystemClock)).await
    }

    /// [`TestApp::spawn`] with the server's time taken from `clock` (a `FixedClock` lets a
    /// test move past an expiry).
    pub async fn spawn_with_clock(backend: Backend, clock: Arc<dyn Clock>) -> Self {
        let (store, db) = test_store_with_clock(backend, clock).await;
        let secret_key = "test-secret-key-0123456789";
        let secrets = portcullis_crypto::SecretBox::from_secret_key(secret_key);
        let state = Arc::new(portcullis_http::AppState::new(
            store,
            secrets,
            portcullis_crypto::PasswordHasher::new(2),
            secret_key,
        ));
        let actor = portcullis_core::Actor::system();
        let group = state
            .store
            .create_group(
                portcullis_core::NewGroup {
                    name: portcullis_core::ADMIN_GROUP_NAME.into(),
                    is_superuser: true,
                    parent: None,
                    attributes: serde_json::json!({}),
                    users: vec![],
                },
                &actor,
            )
            .await
            .expect("admin group");
        let mut admin = portcullis_core::NewUser::named("admin");
        admin.groups = vec![group.group.uuid];
        let admin = state.store.create_user(admin, &actor).await.expect("admin");
        let mut app = Self {
            url: String::new(),
            admin_token: String::new(),
            admin_pk: admin.user.pk,
            state: state.clone(),
            client: reqwest::Client::new(),
            db,
            shutdown: None,
        };
        app.admin_token = app.token_for(admin.user.pk, "admin-token").await;
        state
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        app.url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel();
        app.shutdown = Some(tx);
        tokio::spawn(portcullis_http::serve(listener, state, async move {
            let _ = rx.await;
        }));
        app
    }

    /// Applies every built-in blueprint, as the server does at start (default flows, stages,
    /// scope mappings).
    pub async fn apply_builtins(&self) {
        for (path, text) in portcullis_http::blueprints::BUILTINS {
            let bp = portcullis_blueprint::parse(text, path).expect("built-in blueprint parses");
            let options = portcullis_blueprint::ApplyOptions {
                context: serde_json::Map::new(),
                env: &|_| None,
                blueprints_dir: None,
            };
            if let Err(e) =
                portcullis_http::blueprints::apply_blueprint(&self.state, &bp, &options).await
            {
                panic!("{path}: {e}");
            }
        }
    }

    /// Creates a non-expiring API token for `user_pk` and returns its key.
    pub async fn token_for(&self, user_pk: i32, identifier: &str) -> String {
        self.token_expiring(user_pk, identifier, None).await
    }

    /// Creates an API token for `user_pk` that expires at `expires` (never when `None`) and
    /// returns its key.
    pub async fn token_expiring(
        &self,
        user_pk: i32,
        identifier: &str,
        expires: Option<chrono::DateTime<chrono::Utc>>,
    ) -> String {
        let key = portcullis_crypto::random_string(40);
        let hash = portcullis_crypto::sha256_hex(key.as_bytes());
        let enc = self.state.secrets.encrypt_str(&key).expect("encrypt");
        self.state
            .store
            .create_token(
                portcullis_core::NewToken {
                    identifier: identifier.into(),
                    intent: portcullis_core::TokenIntent::Api,
                    user_pk,
                    description: String::new(),
                    expires,
                    expiring: expires.is_some(),
                    managed: None,
                    key: key.clone(),
                },
                hash,
                enc,
                &portcullis_core::Actor::system(),
            )
            .await
            .expect("token");
        key
    }

    /// A regular (non-superuser) user and its token.
    pub async fn regular_user(&self, username: &str) -> (i32, String) {
        let u = self
            .state
            .store
            .create_user(
                portcullis_core::NewUser::named(username),
                &portcullis_core::Actor::system(),
            )
            .await
            .expect("user");
        let token = self
            .token_for(u.user.pk, &format!("{username}-token"))
            .await;
        (u.user.pk, token)
    }

    /// A request to `path` (relative to the server) with `token` as bearer, if any.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// Every row of the database, to compare before and after a request that must fail.
    pub async fn snapshot(&self) -> Vec<(String, Vec<serde_json::Value>)> {
        self.state.store.snapshot().await.expect("snapshot")
    }
}
