//! Providers, property mappings and the links between them.
//!
//! As stages and policies do, each kind keeps its own settings in a JSON `config` column, so
//! SAML, LDAP, proxy, RADIUS and SCIM providers (and their mappings) need no migration of their
//! own. A provider's flows are flow uuids that fall back to NULL when the flow goes (their
//! foreign keys); its links to mappings go with either side.
//! `applications.provider_id` (m0001) has no foreign key: SQLite cannot add one to an existing
//! table, so `Store::delete_provider` clears it. It gets a unique index: one provider, one
//! application.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_providers"
    }
}

fn n(s: &str) -> Alias {
    Alias::new(s)
}

fn index(table: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(format!("idx_{table}_{}", cols.join("_")))
        .table(n(table));
    for c in cols {
        i.col(n(c));
    }
    i.take()
}

/// A nullable flow column of `providers`, set to NULL when its flow is deleted.
fn flow_fk(col: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(n("providers"), n(col))
        .to(n("flows"), n("uuid"))
        .on_delete(ForeignKeyAction::SetNull)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(n("providers"))
                .col(pk_auto(n("id")))
                .col(text_uniq(n("name")))
                .col(string_len(n("kind"), 64))
                .col(uuid_null(n("authentication_flow")))
                .col(uuid_null(n("authorization_flow")))
                .col(uuid_null(n("invalidation_flow")))
                // Unique where set: both databases let several rows hold NULL.
                .col(string_len_null(n("client_id"), 255).unique_key())
                .col(json(n("config")))
                .foreign_key(&mut flow_fk("authentication_flow"))
                .foreign_key(&mut flow_fk("authorization_flow"))
                .foreign_key(&mut flow_fk("invalidation_flow"))
                .take(),
        )
        .await?;
        m.create_index(index("providers", &["kind"])).await?;

        m.create_table(
            Table::create()
                .table(n("property_mappings"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(text_uniq(n("name")))
                .col(text_null(n("managed")).unique_key())
                .col(string_len(n("kind"), 64))
                .col(text(n("expression")))
                .col(json(n("config")))
                .take(),
        )
        .await?;
        m.create_index(index("property_mappings", &["kind"]))
            .await?;

        m.create_table(
            Table::create()
                .table(n("provider_property_mappings"))
                .col(integer(n("provider_id")))
                .col(integer(n("mapping_id")))
                .primary_key(Index::create().col(n("provider_id")).col(n("mapping_id")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("provider_property_mappings"), n("provider_id"))
                        .to(n("providers"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(n("provider_property_mappings"), n("mapping_id"))
                        .to(n("property_mappings"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(index("provider_property_mappings", &["mapping_id"]))
            .await?;
        // An application has at most one provider and a provider serves at most one
        // application (authentik's one-to-one); NULLs repeat freely on both databases.
        m.create_index(
            Index::create()
                .name("applications_provider_id_key")
                .table(n("applications"))
                .col(n("provider_id"))
                .unique()
                .take(),
        )
        .await
    }
}
