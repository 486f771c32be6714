//! Blueprint instances: which blueprints exist, and how their last apply went.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_blueprint_instances"
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
                .table(n("blueprint_instances"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(text(n("name")))
                .col(text(n("path")))
                .col(json(n("context")))
                .col(timestamp_with_time_zone(n("last_applied")))
                .col(string_len(n("last_applied_hash"), 128))
                .col(string_len(n("status"), 16))
                .col(boolean(n("enabled")))
                .col(json(n("managed_models")))
                .col(json(n("metadata")))
                .col(text_null(n("content")))
                .col(text_null(n("last_error")))
                .take(),
        )
        .await?;
        // One instance per file: two processes discovering the same file at once cannot both
        // add it. Instances stored in the database have no path.
        m.create_index(
            Index::create()
                .name("blueprint_instances_path_key")
                .table(n("blueprint_instances"))
                .col(n("path"))
                .unique()
                .and_where(Expr::col(n("path")).ne(""))
                .take(),
        )
        .await
    }
}
