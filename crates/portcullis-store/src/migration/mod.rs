//! Schema migrations, written once for SQLite and PostgreSQL with SeaORM's schema builder.
//!
//! Forward-only: a migration on `main` is never edited; a change adds a new one. The
//! `seaql_migrations` table records which ran, so `migrate` is idempotent and safe to run from
//! several processes in turn.

use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_one_default_brand;
mod m0003_blueprint_instances;
mod m0004_event_user_pk;
mod m0005_flows;
mod m0006_brand_flows;
mod m0007_providers;
mod m0008_oauth_grants;
mod m0009_user_lower_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_one_default_brand::Migration),
            Box::new(m0003_blueprint_instances::Migration),
            Box::new(m0004_event_user_pk::Migration),
            Box::new(m0005_flows::Migration),
            Box::new(m0006_brand_flows::Migration),
            Box::new(m0007_providers::Migration),
            Box::new(m0008_oauth_grants::Migration),
            Box::new(m0009_user_lower_indexes::Migration),
        ]
    }
}
