//! Reading the org's records in keyset pages inside one snapshot, names beside ids.

use super::super::sessions::{self, Activeness, SessionFilter};
use crate::domain::error::{AppError, AppResult};
use crate::domain::time::format_micros;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use tokio::sync::mpsc;

use super::*;

/// Names beside ids: the org's directory, small next to its events.
pub(super) struct Names {
    pub(super) org: String,
    by_id: HashMap<String, String>,
    emails: HashMap<String, String>,
    departments_of: HashMap<String, String>,
}

impl Names {
    fn of(&self, id: &Option<String>) -> String {
        id.as_ref()
            .and_then(|id| self.by_id.get(id))
            .cloned()
            .unwrap_or_default()
    }
}

pub(super) async fn names(db: &impl ConnectionTrait, org_id: &str) -> AppResult<Names> {
    let org = entity::org::Entity::find_by_id(org_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("org", org_id))?;
    let mut by_id = HashMap::new();
    macro_rules! load {
        ($module:ident) => {
            for m in entity::$module::Entity::find()
                .filter(entity::$module::Column::OrgId.eq(org_id))
                .all(db)
                .await?
            {
                by_id.insert(m.id, m.name);
            }
        };
    }
    load!(workspace);
    load!(app);
    load!(endpoint);
    load!(augmentation);
    load!(department);
    let (mut emails, mut departments_of) = (HashMap::new(), HashMap::new());
    for u in entity::user::Entity::find()
        .filter(entity::user::Column::OrgId.eq(org_id))
        .all(db)
        .await?
    {
        if let Some(d) = u.department_id {
            departments_of.insert(u.id.clone(), d);
        }
        emails.insert(u.id.clone(), u.email);
        by_id.insert(u.id, u.name);
    }
    Ok(Names {
        org: org.name,
        by_id,
        emails,
        departments_of,
    })
}

/// Stored JSON as RFC 8785 text: the same bytes the event's leaf covers.
fn canonical_text(stored: &str) -> String {
    let value = crate::domain::text::stored_json(stored);
    String::from_utf8(crate::service::log::leaf::canonical_bytes(&value)).unwrap_or_default()
}

pub(super) fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

pub(super) fn time(v: Option<i64>) -> String {
    v.map(format_micros).unwrap_or_default()
}

/// Reads every record of the org and hands it to the writer, page by page.
/// `confined`, only the events a viewer token may read: its other files are
/// empty and it carries no log (the events are not the whole tree's).
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_all(
    txn: &impl ConnectionTrait,
    log_key: &crate::service::log::checkpoints::LogKey,
    org_id: &str,
    confined: Option<&crate::domain::feed::ActivityFilter>,
    names: &Names,
    idle: Activeness,
    out: &mpsc::Sender<Part>,
    progress: Progress<'_>,
) -> AppResult<()> {
    let send = |part: Part| async move {
        out.send(part)
            .await
            .map_err(|_| AppError::internal_msg("the export writer stopped".to_owned()))
    };

    let events = || {
        let query = entity::activity_event::Entity::find()
            .filter(entity::activity_event::Column::OrgId.eq(org_id));
        match confined {
            Some(filter) => query.filter(crate::service::activity::filter_condition(
                txn.get_database_backend(),
                filter,
            )),
            None => query,
        }
    };
    let events_total = events().count(txn).await?;
    let whole = confined.is_none();
    let (sessions_total, problems_total, profiles, checkpoint) = if whole {
        let sessions_total = entity::session::Entity::find()
            .filter(entity::session::Column::OrgId.eq(org_id))
            .count(txn)
            .await?;
        let problems_total = entity::problem::Entity::find()
            .filter(entity::problem::Column::OrgId.eq(org_id))
            .count(txn)
            .await?;
        let all_time = SessionFilter::default();
        let profiles = sessions::analytics(txn, org_id, &all_time, idle)
            .await?
            .profiles;
        // The log as this snapshot holds it, signed now.
        let checkpoint =
            crate::service::log::export::checkpoint_for_export(txn, log_key, org_id).await?;
        (sessions_total, problems_total, profiles, Some(checkpoint))
    } else {
        (0, 0, Vec::new(), None)
    };
    let total = events_total + sessions_total + problems_total + profiles.len() as u64;
    let mut done = 0;
    progress(done, total);

    use entity::activity_event::Column as E;
    send(Part::File("events.csv", &EVENT_COLUMNS)).await?;
    let mut after: Option<(i64, String)> = None;
    loop {
        let mut query = events();
        if let Some((ts, id)) = &after {
            let key = Expr::tuple([Expr::col(E::Ts), Expr::col(E::Id)]);
            query = query.filter(key.gt(Expr::tuple([Expr::val(*ts), Expr::val(id.as_str())])));
        }
        let page = query
            .order_by_asc(E::Ts)
            .order_by_asc(E::Id)
            .limit(PAGE)
            .all(txn)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.ts, last.id.clone()));
        let rows: Vec<Vec<String>> = page
            .into_iter()
            .map(|e| {
                let department = e
                    .user_id
                    .as_ref()
                    .and_then(|u| names.departments_of.get(u))
                    .cloned();
                vec![
                    e.id,
                    format_micros(e.ts),
                    e.org_id,
                    names.org.clone(),
                    opt(&e.workspace_id),
                    names.of(&e.workspace_id),
                    opt(&e.app_id),
                    names.of(&e.app_id),
                    opt(&e.endpoint_id),
                    names.of(&e.endpoint_id),
                    opt(&e.augmentation_id),
                    names.of(&e.augmentation_id),
                    opt(&e.user_id),
                    names.of(&e.user_id),
                    e.user_id
                        .as_ref()
                        .and_then(|u| names.emails.get(u))
                        .cloned()
                        .unwrap_or_default(),
                    opt(&department),
                    names.of(&department),
                    opt(&e.principal_type),
                    opt(&e.principal_id),
                    opt(&e.token_id),
                    opt(&e.token_type),
                    opt(&e.method),
                    opt(&e.path),
                    opt(&e.resource_type),
                    opt(&e.resource_id),
                    e.action,
                    e.status_code.to_string(),
                    e.success.to_string(),
                    opt(&e.error_code),
                    e.duration_ms.to_string(),
                    opt(&e.trace_id),
                    opt(&e.execution_id),
                    opt(&e.stages_completed),
                    opt(&e.total_stages),
                    e.tokens_total.to_string(),
                    canonical_text(&e.token_usage),
                    canonical_text(&e.metadata),
                    e.seq.to_string(),
                    opt(&e.log_index),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
        progress(done, total);
    }

    send(Part::File("sessions.csv", &SESSION_COLUMNS)).await?;
    let mut after: Option<(i64, String)> = None;
    loop {
        // A confined export's sessions, profiles and problems stay empty.
        if !whole {
            break;
        }
        let page = sessions::in_start_order(
            txn,
            org_id,
            after.as_ref().map(|(t, id)| (*t, id.as_str())),
            PAGE,
            idle,
        )
        .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.started_at, last.id.clone()));
        let rows: Vec<Vec<String>> = page
            .into_iter()
            .map(|s| {
                let seconds = (s.duration_micros() / 1_000_000).to_string();
                vec![
                    s.id,
                    org_id.to_owned(),
                    names.org.clone(),
                    s.user_id,
                    s.user_name,
                    s.user_email,
                    opt(&s.department_id),
                    opt(&s.department_name),
                    s.role,
                    s.kind,
                    opt(&s.emulated_by),
                    opt(&s.emulated_by_name),
                    format_micros(s.started_at),
                    time(s.ended_at),
                    format_micros(s.last_seen_at),
                    seconds,
                    opt(&s.ip),
                    opt(&s.user_agent),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
        progress(done, total);
    }

    send(Part::File("profiles.csv", &PROFILE_COLUMNS)).await?;
    for chunk in profiles.chunks(PAGE as usize) {
        let rows: Vec<Vec<String>> = chunk
            .iter()
            .map(|p| {
                vec![
                    p.user_id.clone(),
                    org_id.to_owned(),
                    names.org.clone(),
                    p.name.clone(),
                    p.email.clone(),
                    opt(&p.department_id),
                    opt(&p.department_name),
                    p.role.clone(),
                    p.counts.sessions.to_string(),
                    p.counts.logins.to_string(),
                    p.counts.emulations.to_string(),
                    (p.total_session_micros / 1_000_000).to_string(),
                    format_micros(p.last_active),
                    p.active.to_string(),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
    }

    send(Part::File("problems.csv", &PROBLEM_COLUMNS)).await?;
    let mut cursor = None;
    loop {
        if !whole {
            break;
        }
        let (page, has_more) =
            super::super::problems::page(txn, org_id, None, PAGE, cursor.as_ref()).await?;
        cursor = page.last().map(|p| crate::domain::feed::Cursor {
            ts: p.created_at,
            id: p.id.clone(),
        });
        let rows: Vec<Vec<String>> = page
            .into_iter()
            .map(|p| {
                vec![
                    p.id,
                    p.org_id,
                    names.org.clone(),
                    p.kind,
                    p.message,
                    opt(&p.activity_id),
                    opt(&p.session_id),
                    opt(&p.created_by),
                    names.of(&p.created_by),
                    p.resolved.to_string(),
                    time(p.resolved_at),
                    opt(&p.resolved_by),
                    names.of(&p.resolved_by),
                    format_micros(p.created_at),
                    format_micros(p.updated_at),
                ]
            })
            .collect();
        done += rows.len() as u64;
        send(Part::Rows(rows)).await?;
        if !has_more {
            break;
        }
    }
    let Some(checkpoint) = checkpoint else {
        progress(done, total);
        return Ok(());
    };
    send(Part::LogFile(crate::service::log::export::LOG_FILE)).await?;
    let mut from = 0;
    while from < checkpoint.tree_size {
        let to = std::cmp::min(from + PAGE, checkpoint.tree_size);
        let lines = crate::service::log::export::log_lines(txn, org_id, from, to).await?;
        send(Part::Lines(lines, to - from)).await?;
        from = to;
    }
    send(Part::LogFile(crate::service::log::export::CHECKPOINT_FILE)).await?;
    send(Part::Lines(checkpoint.note.into_bytes(), 1)).await?;
    progress(done, total);
    Ok(())
}
