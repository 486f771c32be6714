//! Events remember the acting user's pk, so a user sees their own events and not those of a
//! deleted user whose username they now hold.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_event_user_pk"
    }
}

fn n(s: &str) -> Alias {
    Alias::new(s)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(n("events"))
                .add_column(integer_null(n("user_pk")))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_events_user_pk")
                .table(n("events"))
                .col(n("user_pk"))
                .take(),
        )
        .await
    }
}
