//! Portcullis' storage: the one place that knows SQL.
//!
//! One implementation serves SQLite (embedded, the default) and PostgreSQL: queries and
//! migrations are written once with SeaORM and run on both, and the same test suite runs against
//! both. Every mutation runs in one transaction together with the audit event that records it, so
//! a change and its event are stored together or not at all.
//!
//! SQLite allows one writer at a time. Rather than letting concurrent writers collide and fail
//! with "database is locked", the SQLite store keeps a separate single-connection pool for
//! writes: writers queue for it (bounded by the acquire timeout) while readers use a pool of
//! their own, which WAL lets run alongside the writer. On PostgreSQL both are one pool.

mod applications;
mod blueprint_instances;
mod brands;
mod certificates;
pub mod entity;
mod error;
mod events;
mod flows;
mod grant_writer;
mod groups;
mod handle;
pub mod migration;
mod oauth_grants;
mod policies;
mod prompts;
mod property_mappings;
mod providers;
mod query;
mod session_cache;
mod sessions;
mod stages;
mod tokens;
pub mod ttl_map;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::Clock;
use sea_orm::{SqlxPostgresConnector, SqlxSqliteConnector};
use sea_orm_migration::MigratorTrait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use applications::ApplicationFilter;
pub use blueprint_instances::{ApplyOutcome, BlueprintInstancePatch, NewBlueprintInstance};
pub use certificates::{CertificateFilter, CertificateKeyPairPatch};
pub use error::StoreError;
pub use events::EventFilter;
pub use flows::{FlowBindingFilter, FlowFilter, PlannedBindings};
pub use groups::{GroupFilter, GroupWithMembers};
pub use policies::{PolicyBindingFilter, PolicyFilter, policy_app_label};
pub use property_mappings::{PropertyMappingFilter, property_mapping_app_label};
pub use providers::{ProviderFilter, provider_app_label};
pub use query::ListQuery;
pub use sessions::ReputationRow;
pub use stages::{StageFilter, stage_app_label};
pub use tokens::TokenFilter;
pub use users::{IdentifiedUser, UserFilter, UserWithGroups, identify_select};

/// The advisory lock key that serializes migrations on PostgreSQL ("portcull" in ASCII).
const MIGRATION_LOCK: i64 = 0x706f_7274_6375_6c6c;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Tuning of the connection pools.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection (SQLite writers queue here) before failing.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The handle everything else uses to read and write. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    read: handle::Handle,
    write: handle::Handle,
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// Counts this process' changes (every recorded model event, every committed unit of work),
    /// so in-process caches of rarely changing definitions can tell they are stale.
    changes: Arc<std::sync::atomic::AtomicU64>,
    /// Sessions kept in memory: only where this process is the only one serving the database
    /// (SQLite). PostgreSQL deployments may run several processes: their sessions are read
    /// from the database on every request until cache invalidation over LISTEN/NOTIFY exists.
    session_cache: Option<Arc<session_cache::SessionCache>>,
    /// Inside a unit of work: the session-cache changes to make once it commits.
    unit_sessions: Option<Arc<std::sync::Mutex<Vec<session_cache::Pending>>>>,
    /// Stores issued tokens with group commit (see `grant_writer`).
    grant_writer: Arc<grant_writer::GrantWriter>,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`). SQLite databases are created
    /// when missing and run in WAL mode with full fsync on commit, so an acknowledged write
    /// survives a crash of the process or the machine.
    pub async fn connect(
        url: &str,
        options: &StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            // The writer first: it creates the file and switches it to WAL before readers open.
            // No ping before each use: a connection to a local file does not go stale the way a
            // network connection does, and the ping is a round trip to the connection's thread
            // on every query (sqlx still checks each connection when it returns to the pool).
            let write_pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            let read_pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .test_before_acquire(false)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.read_only(true))
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            Ok(Self {
                read: handle::Handle::Pool(SqlxSqliteConnector::from_sqlx_sqlite_pool(read_pool)),
                write: handle::Handle::Pool(SqlxSqliteConnector::from_sqlx_sqlite_pool(write_pool)),
                backend: Backend::Sqlite,
                clock,
                changes: Default::default(),
                session_cache: Some(Arc::new(session_cache::SessionCache::new())),
                unit_sessions: None,
                grant_writer: Default::default(),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            let conn = handle::Handle::Pool(SqlxPostgresConnector::from_sqlx_postgres_pool(pool));
            Ok(Self {
                read: conn.clone(),
                write: conn,
                backend: Backend::Postgres,
                clock,
                changes: Default::default(),
                session_cache: None,
                unit_sessions: None,
                grant_writer: Default::default(),
            })
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL (expected sqlite:// or postgres://): {}",
                redact_url(url)
            )))
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Applies every pending migration. Safe to call on every start, and from several
    /// processes at once: on PostgreSQL an advisory lock lets one migrate while the others
    /// wait, then find nothing left to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let write = self
            .write
            .pool()
            .ok_or_else(|| StoreError::Config("cannot migrate inside a unit of work".into()))?;
        if self.backend != Backend::Postgres {
            migration::Migrator::up(write, None).await?;
            return Ok(());
        }
        let pool = write.get_postgres_connection_pool();
        let mut lock = pool
            .acquire()
            .await
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        let db_err = |e: sqlx::Error| StoreError::Connect(format!("migration lock: {e}"));
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *lock)
            .await
            .map_err(db_err)?;
        let result = migration::Migrator::up(write, None).await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *lock)
            .await
            .map_err(db_err)?;
        result?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if let Some(read) = self.read.pool() {
            read.ping().await?;
        }
        Ok(())
    }

    /// Closes the pools, waiting for connections in use.
    pub async fn close(self) {
        if let Some(read) = self.read.pool() {
            let _ = read.clone().close().await;
        }
        if self.backend == Backend::Sqlite
            && let Some(write) = self.write.pool()
        {
            let _ = write.clone().close().await;
        }
    }

    /// Starts a unit of work: a `Store` whose every change lands in one transaction, committed
    /// or rolled back as a whole by [`UnitOfWork::commit`] / dropping the unit.
    pub async fn begin_unit(&self) -> Result<UnitOfWork, StoreError> {
        let tx = Arc::new(self.write.begin().await?);
        let handle = handle::Handle::Transaction(tx.clone());
        let sessions = match &self.unit_sessions {
            // A unit inside a unit (a savepoint) reports to the outer one.
            Some(outer) => outer.clone(),
            None => Arc::default(),
        };
        Ok(UnitOfWork {
            store: Store {
                read: handle.clone(),
                write: handle,
                backend: self.backend,
                clock: self.clock.clone(),
                changes: self.changes.clone(),
                session_cache: self.session_cache.clone(),
                grant_writer: self.grant_writer.clone(),
                unit_sessions: Some(sessions.clone()),
            },
            tx,
            outer: self.unit_sessions.is_some(),
            sessions,
        })
    }

    /// How many changes this process has made so far (see [`Store`]'s `changes`). Changes made
    /// by other processes are not counted: caches keyed on this also expire by time.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Changes made through [`UnitOfWork::store`] are visible to it at once and to everyone else
/// only after [`UnitOfWork::commit`]; dropping the unit rolls all of them back.
#[derive(Debug)]
pub struct UnitOfWork {
    store: Store,
    tx: Arc<sea_orm::DatabaseTransaction>,
    /// Opened inside another unit: its session-cache changes wait for the outermost commit.
    outer: bool,
    sessions: Arc<std::sync::Mutex<Vec<session_cache::Pending>>>,
}

impl UnitOfWork {
    /// The store to make the unit's changes with. Do not keep clones of it past `commit`.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes every change of the unit durable and visible.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.finish(true).await
    }

    /// [`UnitOfWork::commit`] for a unit that changed no definitions (flows, stages, policies,
    /// brands...), only what a login or a flow step leaves behind (sessions, events, reputation,
    /// last login): in-process caches of definitions stay valid.
    pub async fn commit_without_invalidating(self) -> Result<(), StoreError> {
        self.finish(false).await
    }

    async fn finish(self, invalidate: bool) -> Result<(), StoreError> {
        let UnitOfWork {
            store,
            tx,
            outer,
            sessions,
        } = self;
        let store_changes = store.changes.clone();
        let cache = store.session_cache.clone();
        drop(store);
        let tx = Arc::try_unwrap(tx).map_err(|_| {
            StoreError::Config("a unit of work's store is still in use at commit".into())
        })?;
        tx.commit().await?;
        if invalidate {
            // What readers cached while the unit was open is stale now.
            store_changes.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        if !outer && let Some(cache) = cache {
            let pending = std::mem::take(&mut *sessions.lock().unwrap_or_else(|e| e.into_inner()));
            cache.apply(pending);
        }
        Ok(())
    }

    /// Undoes every change of the unit (dropping it does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        let UnitOfWork { store, tx, .. } = self;
        drop(store);
        if let Ok(tx) = Arc::try_unwrap(tx) {
            tx.rollback().await?;
        }
        Ok(())
    }
}

/// A database URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = url.get(s + 3..at).unwrap_or("");
            let user = creds.split(':').next().unwrap_or("");
            format!(
                "{}{}:***@{}",
                url.get(..s + 3).unwrap_or(""),
                user,
                url.get(at + 1..).unwrap_or("")
            )
        }
        _ => url.to_owned(),
    }
}

/// Creates a fresh, empty PostgreSQL database next to the one `admin_url` names and returns its
/// URL. Used by tests and benchmarks to isolate runs on one server.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Config(format!(
            "invalid database name {name:?}"
        )));
    }
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| StoreError::Connect(e.to_string()))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .map_err(|e| StoreError::Connect(e.to_string()))?;
    let _ = conn.close().await;
    let base = match admin_url.rfind('/') {
        Some(i)
            if admin_url
                .get(..i)
                .is_some_and(|p| p.ends_with(|c: char| c != '/')) =>
        {
            admin_url.get(..i).unwrap_or(admin_url)
        }
        _ => admin_url,
    };
    let (base, query) = match admin_url.find('?') {
        Some(q) => (base, admin_url.get(q..).unwrap_or("")),
        None => (base, ""),
    };
    Ok(format!("{base}/{name}{query}"))
}

impl Store {
    /// Every row of every table as JSON, in a stable order: lets tests prove that a failed
    /// request changed nothing.
    pub async fn snapshot(&self) -> Result<Vec<(String, Vec<serde_json::Value>)>, StoreError> {
        use entity::*;
        use sea_orm::{EntityTrait, QueryOrder};
        macro_rules! dump {
            ($out:ident, $($m:ident => $col:expr),+ $(,)?) => {$(
                $out.push((
                    stringify!($m).to_owned(),
                    $m::Entity::find().order_by_asc($col).into_json().all(&self.read).await?,
                ));
            )+};
        }
        let mut out = Vec::new();
        dump!(out,
            user => user::Column::Id,
            group => group::Column::Id,
            group_user => group_user::Column::UserId,
            application => application::Column::Id,
            blueprint_instance => blueprint_instance::Column::Id,
            token => token::Column::Id,
            certificate_keypair => certificate_keypair::Column::Id,
            brand => brand::Column::Id,
            event => event::Column::Id,
            flow => flow::Column::Id,
            stage => stage::Column::Id,
            flow_stage_binding => flow_stage_binding::Column::Id,
            policy => policy::Column::Id,
            policy_binding => policy_binding::Column::Id,
            prompt => prompt::Column::Id,
            session => session::Column::Id,
            oauth_grant => oauth_grant::Column::Id,
            user_consent => user_consent::Column::Id,
            reputation => reputation::Column::Id,
            provider => provider::Column::Id,
            property_mapping => property_mapping::Column::Id,
        );
        out.push((
            "provider_property_mapping".to_owned(),
            provider_property_mapping::Entity::find()
                .order_by_asc(provider_property_mapping::Column::ProviderId)
                .order_by_asc(provider_property_mapping::Column::MappingId)
                .into_json()
                .all(&self.read)
                .await?,
        ));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
