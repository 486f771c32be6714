//! Brands name their flows (authentik's `flow_authentication`, `flow_invalidation`, ...): the
//! login page of a host is its brand's authentication flow. Stored as flow uuids; deleting a
//! flow clears the brands that named it (see `Store::delete_flow`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_brand_flows"
    }
}

/// The brand columns, in authentik's names.
const COLUMNS: [&str; 6] = [
    "flow_authentication",
    "flow_invalidation",
    "flow_recovery",
    "flow_unenrollment",
    "flow_user_settings",
    "flow_device_code",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for c in COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("brands"))
                    .add_column(uuid_null(Alias::new(c)))
                    .take(),
            )
            .await?;
        }
        Ok(())
    }
}
