//! Flows, stages, prompts, their bindings, policies and policy bindings, browser sessions, consents and
//! reputation scores.
//!
//! Stage and policy types keep their own settings in a JSON `config` column, so a new type needs
//! no migration. References are foreign keys to the referenced row's `uuid`, cascading on delete
//! as authentik's do; a policy binding's `target` is polymorphic (a flow's or stage binding's
//! `pbm_uuid`, or an application's uuid) and is cleaned up by the store when its target goes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_flows"
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

fn fk(from: &str, col: &str, to: &str, action: ForeignKeyAction) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(n(from), n(col))
        .to(n(to), n("uuid"))
        .on_delete(action)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(n("flows"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(uuid_uniq(n("pbm_uuid")))
                .col(text(n("name")))
                .col(string_len_uniq(n("slug"), 50))
                .col(text(n("title")))
                .col(string_len(n("designation"), 32))
                .col(string_len(n("authentication"), 32))
                .col(string_len(n("policy_engine_mode"), 8))
                .col(string_len(n("denied_action"), 32))
                .col(string_len(n("layout"), 32))
                .col(text(n("background")))
                .col(boolean(n("compatibility_mode")))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(n("stages"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("name"), 256))
                .col(string_len(n("kind"), 64))
                .col(json(n("config")))
                .take(),
        )
        .await?;
        m.create_index(index("stages", &["kind"], false)).await?;

        // Prompt stage fields (authentik's `Prompt`), shared between prompt stages.
        m.create_table(
            Table::create()
                .table(n("prompts"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("name"), 256))
                .col(json(n("config")))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(n("flow_stage_bindings"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(uuid_uniq(n("pbm_uuid")))
                .col(uuid(n("target")))
                .col(uuid(n("stage")))
                .col(integer(n("order")))
                .col(boolean(n("evaluate_on_plan")))
                .col(boolean(n("re_evaluate_policies")))
                .col(string_len(n("invalid_response_action"), 32))
                .col(string_len(n("policy_engine_mode"), 8))
                .foreign_key(&mut fk(
                    "flow_stage_bindings",
                    "target",
                    "flows",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "flow_stage_bindings",
                    "stage",
                    "stages",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        // authentik: unique together (target, stage, order).
        m.create_index(index(
            "flow_stage_bindings",
            &["target", "stage", "order"],
            true,
        ))
        .await?;
        m.create_index(index("flow_stage_bindings", &["stage"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(n("policies"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("name"), 256))
                .col(string_len(n("kind"), 64))
                .col(boolean(n("execution_logging")))
                .col(json(n("config")))
                .take(),
        )
        .await?;
        m.create_index(index("policies", &["kind"], false)).await?;

        m.create_table(
            Table::create()
                .table(n("policy_bindings"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(uuid(n("target")))
                .col(uuid_null(n("policy")))
                .col(uuid_null(n("group")))
                .col(integer_null(n("user_id")))
                .col(boolean(n("negate")))
                .col(boolean(n("enabled")))
                .col(integer(n("order")))
                .col(integer(n("timeout")))
                .col(boolean(n("failure_result")))
                .foreign_key(&mut fk(
                    "policy_bindings",
                    "policy",
                    "policies",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "policy_bindings",
                    "group",
                    "groups",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("policy_bindings"), n("user_id"))
                        .to(n("users"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        // authentik: unique together (policy, target, order); group and user bindings (policy
        // NULL) are not constrained, on either database.
        m.create_index(index(
            "policy_bindings",
            &["policy", "target", "order"],
            true,
        ))
        .await?;
        m.create_index(index("policy_bindings", &["target", "order"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(n("sessions"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(string_len_uniq(n("key_hash"), 64))
                .col(integer_null(n("user_id")))
                .col(timestamp_with_time_zone(n("created")))
                .col(timestamp_with_time_zone(n("expires")))
                .col(timestamp_with_time_zone(n("last_used")))
                .col(text(n("last_ip")))
                .col(text(n("last_user_agent")))
                .col(string_len(n("csrf_token"), 64))
                .col(json(n("data")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("sessions"), n("user_id"))
                        .to(n("users"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(index("sessions", &["user_id"], false))
            .await?;
        m.create_index(index("sessions", &["expires"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(n("user_consents"))
                .col(pk_auto(n("id")))
                .col(uuid_uniq(n("uuid")))
                .col(integer(n("user_id")))
                .col(uuid(n("application")))
                .col(timestamp_with_time_zone_null(n("expires")))
                .col(text(n("permissions")))
                .foreign_key(
                    ForeignKey::create()
                        .from(n("user_consents"), n("user_id"))
                        .to(n("users"), n("id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(&mut fk(
                    "user_consents",
                    "application",
                    "applications",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("user_consents", &["user_id", "application"], true))
            .await?;

        m.create_table(
            Table::create()
                .table(n("reputations"))
                .col(pk_auto(n("id")))
                .col(string_len(n("identifier"), 256))
                .col(string_len(n("ip"), 64))
                .col(big_integer(n("score")))
                .col(timestamp_with_time_zone(n("updated")))
                .take(),
        )
        .await?;
        m.create_index(index("reputations", &["identifier", "ip"], true))
            .await
    }
}
