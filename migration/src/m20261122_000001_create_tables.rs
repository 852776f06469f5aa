//! The initial schema. Timestamps are `BIGINT` microseconds since the Unix epoch
//! (UTC): integers sort and compare identically on SQLite and PostgreSQL at exact
//! microsecond precision, which neither backend's timestamp or text types do alike.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Column helpers: every table here is built from these few shapes.
fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .text()
        .not_null()
        .to_owned()
}
fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}
fn big(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
}
fn big_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .null()
        .to_owned()
}
fn int(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .to_owned()
}
fn int_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().null().to_owned()
}
fn boolean(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .to_owned()
}
fn id_pk() -> ColumnDef {
    ColumnDef::new(Alias::new("id"))
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}
fn id_ref(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(64)
        .not_null()
        .to_owned()
}
fn id_ref_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string_len(64)
        .null()
        .to_owned()
}

fn table(name: &str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name)).if_not_exists();
    for mut c in columns {
        t.col(&mut c);
    }
    t.to_owned()
}

fn foreign_key(from: &str, column: &str, to: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{column}"))
        .from(Alias::new(from), Alias::new(column))
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn with_fks(mut t: TableCreateStatement, from: &str, fks: &[(&str, &str)]) -> TableCreateStatement {
    for (column, to) in fks {
        t.foreign_key(&mut foreign_key(from, column, to));
    }
    t
}

fn index(table: &str, name: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(format!("ix_{table}_{name}"))
        .table(Alias::new(table))
        .if_not_exists();
    for c in columns {
        i.col(Alias::new(*c));
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(table(
            "orgs",
            vec![id_pk(), text("name"), big("created_at")],
        ))
        .await?;
        m.create_table(with_fks(
            table("departments", vec![id_pk(), id_ref("org_id"), text("name")]),
            "departments",
            &[("org_id", "orgs")],
        ))
        .await?;
        m.create_table(with_fks(
            table(
                "workspaces",
                vec![id_pk(), id_ref("org_id"), text("name"), big("created_at")],
            ),
            "workspaces",
            &[("org_id", "orgs")],
        ))
        .await?;
        m.create_table(with_fks(
            table(
                "apps",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    id_ref("workspace_id"),
                    text("name"),
                    big("created_at"),
                ],
            ),
            "apps",
            &[("org_id", "orgs"), ("workspace_id", "workspaces")],
        ))
        .await?;
        m.create_table(with_fks(
            table(
                "endpoints",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    id_ref("workspace_id"),
                    id_ref("app_id"),
                    text("name"),
                    text("method"),
                    text("path"),
                    big("created_at"),
                ],
            ),
            "endpoints",
            &[
                ("org_id", "orgs"),
                ("workspace_id", "workspaces"),
                ("app_id", "apps"),
            ],
        ))
        .await?;
        m.create_table(with_fks(
            table(
                "augmentations",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    id_ref("workspace_id"),
                    text("name"),
                    int("total_stages"),
                    big("created_at"),
                ],
            ),
            "augmentations",
            &[("org_id", "orgs"), ("workspace_id", "workspaces")],
        ))
        .await?;
        m.create_table(with_fks(
            table(
                "users",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    text("email"),
                    text("name"),
                    text("role"),
                    id_ref_null("department_id"),
                    big("created_at"),
                ],
            ),
            "users",
            &[("org_id", "orgs"), ("department_id", "departments")],
        ))
        .await?;
        m.create_table(with_fks(
            table(
                "api_keys",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    id_ref_null("user_id"),
                    text("name"),
                    text("prefix"),
                    ColumnDef::new(Alias::new("secret_hash"))
                        .string_len(64)
                        .not_null()
                        .unique_key()
                        .to_owned(),
                    text_null("role"),
                    text("permissions"),
                    big("created_at"),
                    big_null("last_used_at"),
                    big_null("revoked_at"),
                ],
            ),
            "api_keys",
            &[("org_id", "orgs"), ("user_id", "users")],
        ))
        .await?;

        // Activity events carry no foreign keys: ingest validates ownership itself
        // (and must answer 422, not a constraint error), and the hot insert path
        // stays free of per-row lookups.
        m.create_table(table(
            "activity_events",
            vec![
                ColumnDef::new(Alias::new("seq"))
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key()
                    .to_owned(),
                ColumnDef::new(Alias::new("id"))
                    .string_len(64)
                    .not_null()
                    .unique_key()
                    .to_owned(),
                id_ref("org_id"),
                big("ts"),
                text_null("trace_id"),
                id_ref_null("user_id"),
                id_ref_null("workspace_id"),
                id_ref_null("app_id"),
                id_ref_null("endpoint_id"),
                id_ref_null("augmentation_id"),
                text_null("principal_type"),
                id_ref_null("principal_id"),
                id_ref_null("token_id"),
                text_null("token_type"),
                text_null("method"),
                text_null("path"),
                text_null("resource_type"),
                text_null("resource_id"),
                text("action"),
                int("status_code"),
                boolean("success"),
                text_null("error_code"),
                big("duration_ms"),
                text_null("execution_id"),
                int_null("stages_completed"),
                int_null("total_stages"),
                text("token_usage"),
                big("tokens_total"),
                text("metadata"),
            ],
        ))
        .await?;
        // One index per feed, in the feed's order (ts, id); both backends scan a
        // B-tree backwards for the newest-first order.
        let ev = "activity_events";
        for (name, cols) in [
            ("org_ts", &["org_id", "ts", "id"][..]),
            ("workspace_ts", &["workspace_id", "ts", "id"]),
            ("app_ts", &["app_id", "ts", "id"]),
            ("endpoint_ts", &["endpoint_id", "ts", "id"]),
            ("augmentation_ts", &["augmentation_id", "ts", "id"]),
            ("user_ts", &["user_id", "ts", "id"]),
            ("principal_ts", &["principal_id", "ts", "id"]),
            (
                "workspace_action_ts",
                &["workspace_id", "action", "ts", "id"],
            ),
            (
                "workspace_resource_ts",
                &["workspace_id", "resource_id", "ts", "id"],
            ),
        ] {
            m.create_index(index(ev, name, cols)).await?;
        }

        m.create_table(with_fks(
            table(
                "sessions",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    id_ref("user_id"),
                    text("kind"),
                    id_ref_null("emulated_by"),
                    big("started_at"),
                    big("last_seen_at"),
                    big_null("ended_at"),
                    text_null("ip"),
                    text_null("user_agent"),
                ],
            ),
            "sessions",
            &[("org_id", "orgs"), ("user_id", "users")],
        ))
        .await?;
        m.create_index(index(
            "sessions",
            "org_started",
            &["org_id", "started_at", "id"],
        ))
        .await?;
        m.create_index(index(
            "sessions",
            "user_started",
            &["user_id", "started_at", "id"],
        ))
        .await?;

        m.create_table(with_fks(
            table(
                "problems",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    text("kind"),
                    text("message"),
                    id_ref_null("activity_id"),
                    id_ref_null("session_id"),
                    id_ref_null("created_by"),
                    boolean("resolved"),
                    big_null("resolved_at"),
                    id_ref_null("resolved_by"),
                    big("created_at"),
                    big("updated_at"),
                ],
            ),
            "problems",
            &[("org_id", "orgs")],
        ))
        .await?;
        m.create_index(index(
            "problems",
            "org_created",
            &["org_id", "created_at", "id"],
        ))
        .await?;

        m.create_table(with_fks(
            table(
                "exports",
                vec![
                    id_pk(),
                    id_ref("org_id"),
                    text("file_name"),
                    big("row_count"),
                    big("byte_size"),
                    id_ref_null("created_by"),
                    big("created_at"),
                ],
            ),
            "exports",
            &[("org_id", "orgs")],
        ))
        .await?;

        let mut rollup = table(
            "activity_rollups_hourly",
            vec![
                id_ref("org_id"),
                ColumnDef::new(Alias::new("scope_kind"))
                    .string_len(16)
                    .not_null()
                    .to_owned(),
                id_ref("scope_id"),
                big("hour_start"),
                ColumnDef::new(Alias::new("action"))
                    .string_len(64)
                    .not_null()
                    .to_owned(),
                ColumnDef::new(Alias::new("resource_type"))
                    .string_len(64)
                    .not_null()
                    .to_owned(),
                big("request_count"),
                big("success_count"),
                big("duration_sum_ms"),
                big("tokens_sum"),
            ],
        );
        rollup.primary_key(
            Index::create()
                .col(Alias::new("org_id"))
                .col(Alias::new("scope_kind"))
                .col(Alias::new("scope_id"))
                .col(Alias::new("hour_start"))
                .col(Alias::new("action"))
                .col(Alias::new("resource_type")),
        );
        m.create_table(rollup).await?;
        m.create_table(table(
            "rollup_watermarks",
            vec![
                ColumnDef::new(Alias::new("name"))
                    .string_len(64)
                    .not_null()
                    .primary_key()
                    .to_owned(),
                big("last_seq"),
                big("refreshed_at"),
            ],
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "rollup_watermarks",
            "activity_rollups_hourly",
            "exports",
            "problems",
            "sessions",
            "activity_events",
            "api_keys",
            "users",
            "augmentations",
            "endpoints",
            "apps",
            "workspaces",
            "departments",
            "orgs",
        ] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
