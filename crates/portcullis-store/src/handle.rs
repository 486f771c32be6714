//! What the store's queries run on: the connection pools, or one open transaction.
//!
//! A `Store` normally holds pool handles and every mutation opens its own transaction. A
//! [`UnitOfWork`](crate::UnitOfWork) hands out a `Store` whose handles are one shared
//! transaction instead: its mutations then open savepoints inside it, its reads see its own
//! uncommitted writes, and nothing is visible to others until the unit commits — all of it or
//! none of it (how a blueprint applies).

use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

#[derive(Debug, Clone)]
pub(crate) enum Handle {
    Pool(DatabaseConnection),
    Transaction(Arc<DatabaseTransaction>),
}

impl Handle {
    /// A transaction: a real one on a pool, a savepoint inside an open transaction.
    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        match self {
            Handle::Pool(c) => c.begin().await,
            Handle::Transaction(t) => t.begin().await,
        }
    }

    pub(crate) fn pool(&self) -> Option<&DatabaseConnection> {
        match self {
            Handle::Pool(c) => Some(c),
            Handle::Transaction(_) => None,
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Handle {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Handle::Pool(c) => c.get_database_backend(),
            Handle::Transaction(t) => t.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Handle::Pool(c) => c.execute_raw(stmt).await,
            Handle::Transaction(t) => t.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Handle::Pool(c) => c.execute_unprepared(sql).await,
            Handle::Transaction(t) => t.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Handle::Pool(c) => c.query_one_raw(stmt).await,
            Handle::Transaction(t) => t.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Handle::Pool(c) => c.query_all_raw(stmt).await,
            Handle::Transaction(t) => t.query_all_raw(stmt).await,
        }
    }
}
