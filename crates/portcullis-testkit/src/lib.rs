//! Test support: fresh databases on SQLite and PostgreSQL, so every store test runs on both.
//!
//! PostgreSQL comes from `PORTCULLIS_TEST_POSTGRES_URL` (set by `scripts/test`, or by
//! `eval "$(scripts/pg-cluster start)"`); each test gets a database of its own on that server.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

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
