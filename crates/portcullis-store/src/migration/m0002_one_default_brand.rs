//! At most one default brand, enforced by the database: a partial unique index on
//! `brands.is_default` where it is true. The store clears the old default before setting a new
//! one, but two concurrent writers on PostgreSQL cannot see each other's uncommitted row and
//! both won; with the index the second waits, fails, and the store retries it.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_one_default_brand"
    }
}

fn n(s: &str) -> Alias {
    Alias::new(s)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A database that lost that race holds several defaults: keep the newest.
        let newest = Query::select()
            .expr(Expr::col(n("id")).max())
            .from(n("brands"))
            .and_where(Expr::col(n("is_default")).eq(true))
            .to_owned();
        m.exec_stmt(
            Query::update()
                .table(n("brands"))
                .value(n("is_default"), false)
                .and_where(Expr::col(n("is_default")).eq(true))
                .and_where(Expr::col(n("id")).not_in_subquery(newest))
                .to_owned(),
        )
        .await?;
        // Named like PostgreSQL's own unique constraints, so the store's error mapping names
        // the column.
        m.create_index(
            Index::create()
                .name("brands_is_default_key")
                .table(n("brands"))
                .col(n("is_default"))
                .unique()
                .and_where(Expr::col(n("is_default")).eq(true))
                .to_owned(),
        )
        .await
    }
}
