//! The session history: pages in start order, and sessions by id.

use crate::domain::error::AppResult;
use sea_orm::{ConnectionTrait, FromQueryResult, Value};

use super::*;
use crate::domain::paging::SessionPaging;

/// One session of the history, with its profile's names beside the ids.
#[derive(Debug, Clone, FromQueryResult)]
pub struct SessionItem {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_email: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub role: String,
    pub kind: String,
    pub emulated_by: Option<String>,
    pub emulated_by_name: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub active: bool,
}

impl SessionItem {
    /// From start to end, or to the last time it was seen while still open.
    pub fn duration_micros(&self) -> i64 {
        self.ended_at.unwrap_or(self.last_seen_at) - self.started_at
    }
}

#[derive(Debug, Clone)]
pub struct SessionPage {
    pub items: Vec<SessionItem>,
    pub total: u64,
}

/// A page (1-based) of the history, by start time then id, with the total.
#[allow(clippy::too_many_arguments)]
pub async fn search(
    db: &impl ConnectionTrait,
    org_id: &str,
    user_id: Option<&str>,
    filter: &SessionFilter,
    activeness: Activeness,
    sort: SortOrder,
    paging: SessionPaging,
) -> AppResult<SessionPage> {
    let (mut condition, mut values) = filter_sql(org_id, filter, activeness);
    if let Some(user_id) = user_id {
        condition.push_str(" AND s.user_id = ?");
        values.push(user_id.into());
    }
    #[derive(FromQueryResult)]
    struct Total {
        total: i64,
    }
    let count_sql = format!("SELECT COUNT(*) AS total FROM sessions s JOIN users u ON u.id = s.user_id WHERE {condition}");
    let total = Total::find_by_statement(super::super::statement(db, &count_sql, values.clone()))
        .one(db)
        .await?
        .map_or(0, |t| t.total);
    let direction = if sort == SortOrder::Asc {
        "ASC"
    } else {
        "DESC"
    };
    values.push((paging.page_size as i64).into());
    values.push((paging.offset() as i64).into());
    let order = format!("ORDER BY s.started_at {direction}, s.id {direction} LIMIT ? OFFSET ?");
    let items = items(db, &condition, &order, values, activeness).await?;
    Ok(SessionPage {
        items,
        total: total as u64,
    })
}

/// Every session of the org in start order, `limit` at a time after the
/// `(started_at, id)` of the last one seen: how an export walks them all,
/// without the OFFSET rescans and per-page count of [`search`].
pub async fn in_start_order(
    db: &impl ConnectionTrait,
    org_id: &str,
    after: Option<(i64, &str)>,
    limit: u64,
    activeness: Activeness,
) -> AppResult<Vec<SessionItem>> {
    let mut condition = String::from("s.org_id = ?");
    let mut values: Vec<Value> = vec![org_id.into()];
    if let Some((started_at, id)) = after {
        condition.push_str(" AND (s.started_at, s.id) > (?, ?)");
        values.extend([Value::from(started_at), Value::from(id)]);
    }
    values.push((limit as i64).into());
    items(
        db,
        &condition,
        "ORDER BY s.started_at, s.id LIMIT ?",
        values,
        activeness,
    )
    .await
}

/// Sessions of the org by id, in no particular order; unknown ids are left out.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    org_id: &str,
    ids: &[String],
    activeness: Activeness,
) -> AppResult<Vec<SessionItem>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let condition = format!(
        "s.org_id = ? AND s.id IN ({})",
        vec!["?"; ids.len()].join(",")
    );
    let mut values: Vec<Value> = vec![org_id.into()];
    values.extend(ids.iter().map(|id| Value::from(id.as_str())));
    items(db, &condition, "", values, activeness).await
}

/// History items with names beside ids; `values` bind `condition`, then `tail`.
pub(super) async fn items(
    db: &impl ConnectionTrait,
    condition: &str,
    tail: &str,
    values: Vec<Value>,
    activeness: Activeness,
) -> AppResult<Vec<SessionItem>> {
    // The activeness bound is the first placeholder, in the select list.
    let mut all: Vec<Value> = vec![activeness.seen_since.into()];
    all.extend(values);
    let sql = format!(
        "SELECT s.id AS id, s.user_id AS user_id, u.name AS user_name, u.email AS user_email, \
         u.department_id AS department_id, d.name AS department_name, u.role AS role, s.kind AS kind, \
         s.emulated_by AS emulated_by, e.name AS emulated_by_name, s.started_at AS started_at, \
         s.ended_at AS ended_at, s.last_seen_at AS last_seen_at, s.ip AS ip, s.user_agent AS user_agent, \
         CASE WHEN {ACTIVE} THEN 1 = 1 ELSE 1 = 0 END AS active \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN departments d ON d.id = u.department_id \
         LEFT JOIN users e ON e.id = s.emulated_by \
         WHERE {condition} {tail}"
    );
    Ok(
        SessionItem::find_by_statement(super::super::statement(db, &sql, all))
            .all(db)
            .await?,
    )
}
