//! The store's errors. Unique-constraint violations become `Conflict` naming the field, so the
//! API can answer 400 `{"field": ["... already exists."]}` rather than a 500.

use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique value already taken; names the field.
    #[error("{field}: an object with this value already exists")]
    Conflict { field: String },
    /// A reference to something that does not exist; names the field.
    #[error("{field}: referenced object does not exist")]
    InvalidReference { field: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database error: {0}")]
    Database(DbErr),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        match e {
            DbErr::RecordNotFound(_) => StoreError::NotFound,
            other => match other.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(msg)) => StoreError::Conflict {
                    field: unique_field(&msg),
                },
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => StoreError::InvalidReference {
                    field: "non_field_errors".to_owned(),
                },
                _ => StoreError::Database(other),
            },
        }
    }
}

/// Picks the column out of a unique violation message: SQLite says `UNIQUE constraint failed:
/// users.username`, PostgreSQL names the index (`idx-users-username` / `users_username_key`).
fn unique_field(msg: &str) -> String {
    if let Some(rest) = msg.split("UNIQUE constraint failed: ").nth(1) {
        // Unique together over several columns names no one field (as on PostgreSQL).
        if rest.contains(',') {
            return "non_field_errors".to_owned();
        }
        return rest.rsplit('.').next().unwrap_or(rest).trim().to_owned();
    }
    for known in [
        "username",
        "slug",
        "identifier",
        "key_hash",
        "domain",
        "name",
        "uuid",
        "is_default",
        "client_id",
        "managed",
        "provider_id",
    ] {
        if msg.contains(&format!("_{known}_key")) || msg.contains(&format!("({known})")) {
            return known.to_owned();
        }
    }
    "non_field_errors".to_owned()
}
