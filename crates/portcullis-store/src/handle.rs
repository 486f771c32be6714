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
    QueryResult, Statement, TransactionTrait, Value,
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
        let stmt = inline_limit(stmt);
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
        let stmt = inline_limit(stmt);
        match self {
            Handle::Pool(c) => c.query_one_raw(stmt).await,
            Handle::Transaction(t) => t.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let stmt = inline_limit(stmt);
        match self {
            Handle::Pool(c) => c.query_all_raw(stmt).await,
            Handle::Transaction(t) => t.query_all_raw(stmt).await,
        }
    }
}

/// SQLite plans a query with the value bound to its `LIMIT`, so binding that parameter
/// expires the prepared statement and the next step parses and plans it again: with
/// sea-query's `LIMIT ?`, every `.one()` was a fresh parse. A statement's trailing `LIMIT ?`
/// becomes a literal instead (an integer formatted here, never text from outside); the few
/// distinct limits each stay prepared in the connection's statement cache.
fn inline_limit(mut stmt: Statement) -> Statement {
    if stmt.db_backend != DbBackend::Sqlite {
        return stmt;
    }
    let Some(values) = stmt.values.as_mut() else {
        return stmt;
    };
    let (at, from_end) = if let Some(head) = stmt.sql.strip_suffix(" LIMIT ?") {
        (head.len(), 1)
    } else if let Some(head) = stmt.sql.strip_suffix(" LIMIT ? OFFSET ?") {
        (head.len(), 2)
    } else {
        return stmt;
    };
    // Positional `?` placeholders, one per value: the limit is the last value, or the one
    // before the offset. Anything else (a `?` inside a literal) is left as it is.
    let placeholders = stmt.sql.bytes().filter(|b| *b == b'?').count();
    if placeholders != values.0.len() || values.0.len() < from_end {
        return stmt;
    }
    let index = values.0.len() - from_end;
    let limit = match values.0.get(index) {
        Some(Value::BigUnsigned(Some(n))) => n.to_string(),
        Some(Value::Unsigned(Some(n))) => n.to_string(),
        Some(Value::BigInt(Some(n))) => n.to_string(),
        Some(Value::Int(Some(n))) => n.to_string(),
        _ => return stmt,
    };
    values.0.remove(index);
    let rest = if from_end == 2 { " OFFSET ?" } else { "" };
    stmt.sql.truncate(at);
    stmt.sql.push_str(" LIMIT ");
    stmt.sql.push_str(&limit);
    stmt.sql.push_str(rest);
    stmt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(backend, sql, values)
    }

    #[test]
    fn trailing_limits_become_literals_on_sqlite() {
        let s = inline_limit(stmt(
            DbBackend::Sqlite,
            "SELECT a FROM t WHERE b = ? LIMIT ?",
            vec!["x".into(), Value::BigUnsigned(Some(1))],
        ));
        assert_eq!(s.sql, "SELECT a FROM t WHERE b = ? LIMIT 1");
        assert_eq!(s.values.map(|v| v.0), Some(vec![Value::from("x")]));

        let s = inline_limit(stmt(
            DbBackend::Sqlite,
            "SELECT a FROM t WHERE b = ? LIMIT ? OFFSET ?",
            vec![
                "x".into(),
                Value::BigUnsigned(Some(20)),
                Value::BigUnsigned(Some(40)),
            ],
        ));
        assert_eq!(s.sql, "SELECT a FROM t WHERE b = ? LIMIT 20 OFFSET ?");
        assert_eq!(
            s.values.map(|v| v.0),
            Some(vec![Value::from("x"), Value::BigUnsigned(Some(40))])
        );
    }

    #[test]
    fn everything_else_is_left_alone() {
        let cases = [
            // Not SQLite.
            stmt(
                DbBackend::Postgres,
                "SELECT a FROM t LIMIT $1",
                vec![Value::BigUnsigned(Some(1))],
            ),
            // No trailing limit.
            stmt(
                DbBackend::Sqlite,
                "SELECT a FROM t WHERE b IN (SELECT c FROM u LIMIT ?) AND d = ?",
                vec![Value::BigUnsigned(Some(1)), "x".into()],
            ),
            // Placeholders and values disagree (a `?` in a literal).
            stmt(
                DbBackend::Sqlite,
                "SELECT a FROM t WHERE b = '?' LIMIT ?",
                vec![Value::BigUnsigned(Some(1))],
            ),
            // Not an integer.
            stmt(
                DbBackend::Sqlite,
                "SELECT a FROM t LIMIT ?",
                vec!["1; DROP TABLE t".into()],
            ),
            stmt(
                DbBackend::Sqlite,
                "SELECT a FROM t LIMIT ?",
                vec![Value::BigUnsigned(None)],
            ),
        ];
        for case in cases {
            let before = (case.sql.clone(), case.values.clone());
            let after = inline_limit(case);
            assert_eq!((after.sql, after.values), before);
        }
    }
}
