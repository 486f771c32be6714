//! OAuth grants: authorization codes, access tokens (by `jti`) and refresh tokens in one table,
//! found by the SHA-256 of their secret and grouped by `family` (everything one authorization
//! led to), so a reused code or rotated refresh token revokes the family in one statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_oauth_grants"
    }
}

fn n(s: &str) -> Alias {
    Alias::new(s)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(n("oauth_grants"))
                .col(pk_auto(n("id")))
                .col(string_len(n("kind"), 16))
                .col(string_len(n("key_hash"), 64))
                .col(integer(n("provider_id")))
                .col(integer_null(n("user_id")))
                .col(uuid(n("family")))
                .col(uuid_null(n("session_uuid")))
                .col(text(n("scope")))
                .col(json(n("data")))
                .col(timestamp_with_time_zone(n("created")))
                .col(timestamp_with_time_zone(n("expires")))
                .col(boolean(n("used")))
                .col(boolean(n("revoked")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("oauth_grants"), n("provider_id"))
                        .to(n("providers"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(n("oauth_grants"), n("user_id"))
                        .to(n("users"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("oauth_grants_kind_key_hash_key")
                .table(n("oauth_grants"))
                .col(n("kind"))
                .col(n("key_hash"))
                .unique()
                .take(),
        )
        .await?;
        for col in [
            "family",
            "user_id",
            "provider_id",
            "session_uuid",
            "expires",
        ] {
            m.create_index(
                Index::create()
                    .name(format!("idx_oauth_grants_{col}"))
                    .table(n("oauth_grants"))
                    .col(n(col))
                    .take(),
            )
            .await?;
        }
        Ok(())
    }
}
