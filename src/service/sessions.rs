//! Login and emulation sessions: analytics for a date range, departments and
//! roles, and the paginated history. Both read the same filter the same way,
//! so the history's `total_count` always equals the analytics' `sessions_count`.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, FromQueryResult, Value};

use serde_json::json;

use crate::domain::error::{AppResult, InvalidInput};
use crate::domain::paging::SessionPaging;
use crate::domain::time::{parse_timestamp, MICROS_PER_DAY};

/// How each API spells the fields, for the locations of its errors.
pub struct FieldNames {
    pub date_from: &'static str,
    pub date_to: &'static str,
    pub roles: &'static str,
    pub page: &'static str,
    pub page_size: &'static str,
    pub sort_order: &'static str,
}

pub const SNAKE_CASE: FieldNames = FieldNames {
    date_from: "date_from",
    date_to: "date_to",
    roles: "roles",
    page: "page",
    page_size: "page_size",
    sort_order: "sort_order",
};

pub const CAMEL_CASE: FieldNames = FieldNames {
    date_from: "dateFrom",
    date_to: "dateTo",
    roles: "roles",
    page: "page",
    page_size: "pageSize",
    sort_order: "sortOrder",
};

fn at<'a>(prefix: &[&'a str], field: &'a str) -> Vec<&'a str> {
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
) -> (u64, u64, SortOrder) {
    let paging = SessionPaging::parse(page, page_size, (names.page, names.page_size))
        .unwrap_or_else(|refused| {
            problems.extend(refused);
            SessionPaging {
                page: 1,
                page_size: SessionPaging::DEFAULT_PAGE_SIZE,
            }
        });
    let (page, page_size) = (paging.page, paging.page_size);
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
    (page, page_size, sort)
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
fn filter_sql(
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

const ACTIVE: &str = "s.ended_at IS NULL AND s.last_seen_at >= ?";

/// One cell of the analytics: a user's sessions of one kind started on one day.
#[derive(Debug, FromQueryResult)]
struct Cell {
    user_id: String,
    kind: String,
    day: i64,
    sessions: i64,
    session_micros: i64,
    last_seen: i64,
    active: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub sessions: i64,
    pub logins: i64,
    pub emulations: i64,
}

impl Counts {
    fn add(&mut self, kind: &str, n: i64) {
        self.sessions += n;
        if kind == "emulation" {
            self.emulations += n;
        } else {
            self.logins += n;
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProfileSummary {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub role: String,
    pub counts: Counts,
    pub total_session_micros: i64,
    pub last_active: i64,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct Facet {
    /// A department id (`None`: users in no department), a role, or a day (`YYYY-MM-DD`).
    pub key: Option<String>,
    /// The department's name, for departments.
    pub name: Option<String>,
    pub counts: Counts,
}

/// What one can filter on, with the number of sessions in the date range each
/// would keep (whatever the department and role filters are).
#[derive(Debug, Clone)]
pub struct FilterOption {
    pub id: String,
    pub name: String,
    pub sessions: i64,
}

#[derive(Debug, Clone)]
pub struct SessionAnalytics {
    pub counts: Counts,
    pub active_profiles: i64,
    pub profiles: Vec<ProfileSummary>,
    pub departments: Vec<FilterOption>,
    pub roles: Vec<FilterOption>,
    pub by_department: Vec<Facet>,
    pub by_role: Vec<Facet>,
    pub by_day: Vec<Facet>,
}

pub const ROLES: [&str; 3] = ["admin", "member", "viewer"];

/// Every figure of the analytics, from one grouped read of the sessions.
pub async fn analytics(
    db: &impl ConnectionTrait,
    org_id: &str,
    filter: &SessionFilter,
    activeness: Activeness,
) -> AppResult<SessionAnalytics> {
    let cells = cells(db, org_id, filter, activeness).await?;
    let users = users(db, org_id).await?;
    let departments = departments(db, org_id).await?;

    let mut counts = Counts::default();
    let mut profiles: BTreeMap<&str, ProfileSummary> = BTreeMap::new();
    let mut by_department: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    let mut by_role: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_day: BTreeMap<i64, Counts> = BTreeMap::new();
    for cell in &cells {
        let Some(user) = users.get(cell.user_id.as_str()) else {
            continue;
        };
        counts.add(&cell.kind, cell.sessions);
        by_department
            .entry(user.department_id.clone())
            .or_default()
            .add(&cell.kind, cell.sessions);
        by_role
            .entry(user.role.clone())
            .or_default()
            .add(&cell.kind, cell.sessions);
        by_day
            .entry(cell.day)
            .or_default()
            .add(&cell.kind, cell.sessions);
        let profile = profiles
            .entry(&cell.user_id)
            .or_insert_with(|| ProfileSummary {
                user_id: user.id.clone(),
                name: user.name.clone(),
                email: user.email.clone(),
                department_id: user.department_id.clone(),
                department_name: user
                    .department_id
                    .as_ref()
                    .and_then(|d| departments.get(d))
                    .cloned(),
                role: user.role.clone(),
                counts: Counts::default(),
                total_session_micros: 0,
                last_active: 0,
                active: false,
            });
        profile.counts.add(&cell.kind, cell.sessions);
        profile.total_session_micros += cell.session_micros;
        profile.last_active = profile.last_active.max(cell.last_seen);
        profile.active |= cell.active > 0;
    }
    let mut profiles: Vec<ProfileSummary> = profiles.into_values().collect();
    profiles.sort_by(|a, b| {
        b.last_active
            .cmp(&a.last_active)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    let active_profiles = profiles.iter().filter(|p| p.active).count() as i64;

    // The filter options count the date range only, so every option shows what choosing it would keep.
    let range_only = SessionFilter {
        department_ids: vec![],
        roles: vec![],
        ..filter.clone()
    };
    let range_cells = if range_only == *filter {
        cells
    } else {
        self::cells(db, org_id, &range_only, activeness).await?
    };
    let mut per_department: HashMap<&str, i64> = HashMap::new();
    let mut per_role: HashMap<&str, i64> = HashMap::new();
    for cell in &range_cells {
        let Some(user) = users.get(cell.user_id.as_str()) else {
            continue;
        };
        if let Some(d) = &user.department_id {
            *per_department.entry(d.as_str()).or_default() += cell.sessions;
        }
        *per_role.entry(user.role.as_str()).or_default() += cell.sessions;
    }
    let mut department_options: Vec<FilterOption> = departments
        .iter()
        .map(|(id, name)| FilterOption {
            id: id.clone(),
            name: name.clone(),
            sessions: per_department.get(id.as_str()).copied().unwrap_or(0),
        })
        .collect();
    department_options.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let role_options = ROLES
        .iter()
        .map(|r| FilterOption {
            id: (*r).to_owned(),
            name: (*r).to_owned(),
            sessions: per_role.get(r).copied().unwrap_or(0),
        })
        .collect();

    Ok(SessionAnalytics {
        counts,
        active_profiles,
        profiles,
        departments: department_options,
        roles: role_options,
        by_department: by_department
            .into_iter()
            .map(|(key, counts)| Facet {
                name: key.as_ref().and_then(|d| departments.get(d)).cloned(),
                key,
                counts,
            })
            .collect(),
        by_role: by_role
            .into_iter()
            .map(|(key, counts)| Facet {
                key: Some(key),
                name: None,
                counts,
            })
            .collect(),
        by_day: by_day
            .into_iter()
            .map(|(day, counts)| Facet {
                key: Some(day_label(day)),
                name: None,
                counts,
            })
            .collect(),
    })
}

fn day_label(day: i64) -> String {
    crate::domain::time::format_micros(day * MICROS_PER_DAY)[..10].to_owned()
}

async fn cells(
    db: &impl ConnectionTrait,
    org_id: &str,
    filter: &SessionFilter,
    activeness: Activeness,
) -> AppResult<Vec<Cell>> {
    let (condition, mut values) = filter_sql(org_id, filter, activeness);
    // The activeness bound comes first: it is the first placeholder in the select list.
    values.insert(0, activeness.seen_since.into());
    let sql = format!(
        "SELECT s.user_id AS user_id, s.kind AS kind, s.started_at / {MICROS_PER_DAY} AS day, \
         COUNT(*) AS sessions, \
         CAST(SUM(COALESCE(s.ended_at, s.last_seen_at) - s.started_at) AS BIGINT) AS session_micros, \
         MAX(s.last_seen_at) AS last_seen, \
         CAST(SUM(CASE WHEN {ACTIVE} THEN 1 ELSE 0 END) AS BIGINT) AS active \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE {condition} \
         GROUP BY s.user_id, s.kind, s.started_at / {MICROS_PER_DAY}"
    );
    Ok(Cell::find_by_statement(super::statement(db, &sql, values))
        .all(db)
        .await?)
}

#[derive(Debug, FromQueryResult)]
struct UserRow {
    id: String,
    name: String,
    email: String,
    role: String,
    department_id: Option<String>,
}

async fn users(db: &impl ConnectionTrait, org_id: &str) -> AppResult<HashMap<String, UserRow>> {
    let sql = "SELECT id, name, email, role, department_id FROM users WHERE org_id = ?";
    let rows = UserRow::find_by_statement(super::statement(db, sql, vec![org_id.into()]))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.id.clone(), u)).collect())
}

/// The org's departments, id to name.
async fn departments(
    db: &impl ConnectionTrait,
    org_id: &str,
) -> AppResult<BTreeMap<String, String>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        name: String,
    }
    let rows = Row::find_by_statement(super::statement(
        db,
        "SELECT id, name FROM departments WHERE org_id = ?",
        vec![org_id.into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(|d| (d.id, d.name)).collect())
}

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
    page: u64,
    page_size: u64,
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
    let total = Total::find_by_statement(super::statement(db, &count_sql, values.clone()))
        .one(db)
        .await?
        .map_or(0, |t| t.total);
    let direction = if sort == SortOrder::Asc {
        "ASC"
    } else {
        "DESC"
    };
    values.push((page_size as i64).into());
    values.push((page.saturating_sub(1).saturating_mul(page_size) as i64).into());
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
async fn items(
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
        SessionItem::find_by_statement(super::statement(db, &sql, all))
            .all(db)
            .await?,
    )
}
