//! The core model: users, groups and their membership, applications, tokens, certificate
//! keypairs, brands and events.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

fn n(s: &str) -> Alias {
    Alias::new(s)
}

fn index(table: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(format!("idx_{table}_{}", cols.join("_")))
        .table(n(table));
    for c in cols {
        i.col(n(c));
    }
    if unique {
        i.unique();
    }
    i.take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(n("users"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("username"), 150))
                .col(text(n("name")))
                .col(string_len(n("email"), 254))
                .col(boolean(n("is_active")))
                .col(timestamp_with_time_zone_null(n("last_login")))
                .col(timestamp_with_time_zone(n("date_joined")))
                .col(text(n("password")))
                .col(timestamp_with_time_zone(n("password_change_date")))
                .col(timestamp_with_time_zone(n("last_updated")))
                .col(json(n("attributes")))
                .col(text(n("path")))
                .col(string_len(n("user_type"), 32))
                .take(),
        )
        .await?;
        m.create_index(index("users", &["email"], false)).await?;

        m.create_table(
            Table::create()
                .table(n("groups"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("name"), 256))
                .col(boolean(n("is_superuser")))
                .col(integer_null(n("parent_id")))
                .col(json(n("attributes")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("groups"), n("parent_id"))
                        .to(n("groups"), n("id"))
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(n("group_users"))
                .col(integer(n("group_id")))
                .col(integer(n("user_id")))
                .primary_key(Index::create().col(n("group_id")).col(n("user_id")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("group_users"), n("group_id"))
                        .to(n("groups"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(n("group_users"), n("user_id"))
                        .to(n("users"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(index("group_users", &["user_id"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(n("applications"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(text(n("name")))
                .col(string_len_uniq(n("slug"), 50))
                .col(integer_null(n("provider_id")))
                .col(text(n("group")))
                .col(text(n("meta_launch_url")))
                .col(text(n("meta_description")))
                .col(text(n("meta_publisher")))
                .col(text_null(n("meta_icon")))
                .col(string_len(n("policy_engine_mode"), 8))
                .col(boolean(n("open_in_new_tab")))
                .col(boolean(n("meta_hide")))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(n("tokens"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("identifier"), 255))
                .col(string_len_uniq(n("key_hash"), 64))
                .col(text(n("key_encrypted")))
                .col(string_len(n("intent"), 32))
                .col(integer(n("user_id")))
                .col(text(n("description")))
                .col(timestamp_with_time_zone_null(n("expires")))
                .col(boolean(n("expiring")))
                .col(text_null(n("managed")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("tokens"), n("user_id"))
                        .to(n("users"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(index("tokens", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(n("certificate_keypairs"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("name"), 256))
                .col(text(n("certificate_data")))
                .col(text_null(n("key_data")))
                .col(string_len(n("fingerprint_sha256"), 128))
                .col(string_len(n("fingerprint_sha1"), 64))
                .col(timestamp_with_time_zone(n("cert_expiry")))
                .col(text(n("cert_subject")))
                .col(string_len_null(n("private_key_type"), 16))
                .col(text_null(n("managed")))
                .col(timestamp_with_time_zone(n("created")))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(n("brands"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("domain"), 255))
                .col(boolean(n("is_default")))
                .col(text(n("branding_title")))
                .col(text(n("branding_logo")))
                .col(text(n("branding_favicon")))
                .col(text(n("branding_custom_css")))
                .col(text(n("branding_default_flow_background")))
                .col(uuid_null(n("web_certificate")))
                .col(json(n("attributes")))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(n("events"))
                .col(big_pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(json(n("user")))
                .col(string_len_null(n("username"), 150))
                .col(string_len(n("action"), 64))
                .col(text(n("app")))
                .col(json(n("context")))
                .col(string_len_null(n("client_ip"), 64))
                .col(timestamp_with_time_zone(n("created")))
                .col(timestamp_with_time_zone(n("expires")))
                .col(json(n("brand")))
                .take(),
        )
        .await?;
        m.create_index(index("events", &["action"], false)).await?;
        m.create_index(index("events", &["created"], false)).await?;
        m.create_index(index("events", &["username"], false))
            .await?;
        Ok(())
    }
}
