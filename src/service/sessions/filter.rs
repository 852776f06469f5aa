//! Reading a session filter and its paging, as both APIs spell them, and the SQL it becomes.

use crate::domain::error::InvalidInput;
use crate::domain::paging::SessionPaging;
use crate::domain::time::{parse_timestamp, MICROS_PER_DAY};
use sea_orm::Value;
use serde_json::json;

use super::*;

/// How the caller spells the fields, for the locations and messages of its
/// errors. Each transport names its own spelling; the service knows none.
pub struct FieldNames {
    pub date_from: &'static str,
    pub date_to: &'static str,
    pub roles: &'static str,
    pub page: &'static str,
    pub page_size: &'static str,
    pub sort_order: &'static str,
}

pub(super) fn at<'a>(prefix: &[&'a str], field: &'a str) -> Vec<&'a str> {
    prefix.iter().copied().chain([field]).collect()
}

/// The filter from its raw parts. `date_from` is inclusive; `date_to` is
/// exclusive, and a bare date (`2026-11-01`) includes that whole day. Every
/// problem is pushed, located under `prefix`.
#[allow(clippy::too_many_arguments)]
pub fn parse_filter(
    names: &FieldNames,
    prefix: &[&str],
    date_from: Option<&str>,
    date_to: Option<&str>,
    department_ids: Vec<String>,
    roles: Vec<String>,
    active: Option<bool>,
    problems: &mut Vec<InvalidInput>,
) -> SessionFilter {
    let mut time = |name: &'static str, text: Option<&str>| -> Option<i64> {
        let text = text?;
        let parsed = parse_timestamp(text);
        if parsed.is_none() {
            problems.push(InvalidInput::new(
                &at(prefix, name),
                "datetime_parsing",
                format!("{name} should be an ISO 8601 date or datetime"),
                text,
            ));
        }
        parsed
    };
    let started_from = time(names.date_from, date_from);
    let mut started_before = time(names.date_to, date_to);
    if let (Some(end), Some(text)) = (started_before, date_to) {
        // A bare date names a whole day: the range ends where the next one begins.
        if chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").is_ok() {
            started_before = Some(end + MICROS_PER_DAY);
        }
    }
    if let (Some(from), Some(before)) = (started_from, started_before) {
        if before <= from {
            problems.push(InvalidInput::new(
                &at(prefix, names.date_to),
                "value_error",
                format!("{} must be after {}", names.date_to, names.date_from),
                date_to.unwrap_or_default(),
            ));
        }
    }
    for (i, role) in roles.iter().enumerate() {
        if !ROLES.contains(&role.as_str()) {
            let mut loc: Vec<serde_json::Value> = at(prefix, names.roles)
                .into_iter()
                .map(serde_json::Value::from)
                .collect();
            loc.push(json!(i));
            problems.push(InvalidInput {
                loc,
                msg: "Input should be 'admin', 'member' or 'viewer'".into(),
                kind: "literal_error".into(),
                input: json!(role),
                ctx: Some(json!({ "expected": "'admin', 'member' or 'viewer'" })),
            });
        }
    }
    SessionFilter {
        started_from,
        started_before,
        department_ids,
        roles,
        active,
    }
}

/// Page (from 1), page size (1 to 200, default 20) and order (`desc` by default).
pub fn parse_paging(
    names: &FieldNames,
    page: Option<i64>,
    page_size: Option<i64>,
    sort_order: Option<&str>,
    problems: &mut Vec<InvalidInput>,
) -> (SessionPaging, SortOrder) {
    let paging = SessionPaging::parse(page, page_size, (names.page, names.page_size))
        .unwrap_or_else(|refused| {
            problems.extend(refused);
            SessionPaging::default()
        });
    let sort = match sort_order.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("desc") => SortOrder::Desc,
        Some("asc") => SortOrder::Asc,
        Some(_) => {
            problems.push(
                InvalidInput::new(
                    &[names.sort_order],
                    "literal_error",
                    "Input should be 'asc' or 'desc'",
                    sort_order.unwrap_or_default(),
                )
                .with_ctx(json!({ "expected": "'asc' or 'desc'" })),
            );
            SortOrder::Desc
        }
    };
    (paging, sort)
}

/// Which sessions are counted or listed. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Sessions started at or after this instant (microseconds).
    pub started_from: Option<i64>,
    /// Sessions started before this instant (microseconds).
    pub started_before: Option<i64>,
    pub department_ids: Vec<String>,
    pub roles: Vec<String>,
    /// Only active (`true`) or only inactive (`false`) sessions.
    pub active: Option<bool>,
}

/// When a session counts as active: not ended, and seen since `seen_since`.
#[derive(Debug, Clone, Copy)]
pub struct Activeness {
    pub seen_since: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

/// The SQL condition and its values for a filter over `sessions s JOIN users u`.
pub(super) fn filter_sql(
    org_id: &str,
    filter: &SessionFilter,
    activeness: Activeness,
) -> (String, Vec<Value>) {
    let mut sql = String::from("s.org_id = ?");
    let mut values: Vec<Value> = vec![org_id.into()];
    if let Some(from) = filter.started_from {
        sql.push_str(" AND s.started_at >= ?");
        values.push(from.into());
    }
    if let Some(before) = filter.started_before {
        sql.push_str(" AND s.started_at < ?");
        values.push(before.into());
    }
    for (column, list) in [
        ("u.department_id", &filter.department_ids),
        ("u.role", &filter.roles),
    ] {
        if !list.is_empty() {
            sql.push_str(&format!(
                " AND {column} IN ({})",
                vec!["?"; list.len()].join(",")
            ));
            values.extend(list.iter().map(|v| Value::from(v.as_str())));
        }
    }
    match filter.active {
        Some(true) => {
            sql.push_str(&format!(" AND {ACTIVE}"));
            values.push(activeness.seen_since.into());
        }
        Some(false) => {
            sql.push_str(&format!(" AND NOT ({ACTIVE})"));
            values.push(activeness.seen_since.into());
        }
        None => {}
    }
    (sql, values)
}

pub(super) const ACTIVE: &str = "s.ended_at IS NULL AND s.last_seen_at >= ?";
