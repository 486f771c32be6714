//! Case-insensitive identification (`lower(username) = ?`, `lower(email) = ?`, the default
//! authentication flow's way) uses an index instead of reading every user.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_user_lower_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Expression indexes: the schema builder has no form for them, the SQL is the same on
        // SQLite and PostgreSQL. `IF NOT EXISTS`: SQLite runs migrations outside a transaction,
        // so a failure after the first index must not stop the rerun.
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_users_username_lower ON \"users\" (lower(\"username\"))",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_users_email_lower ON \"users\" (lower(\"email\"))",
        )
        .await?;
        Ok(())
    }
}
