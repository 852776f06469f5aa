//! Session analytics: counts by user, department, role and day for one filter.

use crate::domain::error::AppResult;
use crate::domain::time::MICROS_PER_DAY;
use sea_orm::{ConnectionTrait, FromQueryResult};
use std::collections::{BTreeMap, HashMap};

use super::*;

/// One cell of the analytics: a user's sessions of one kind started on one day.
#[derive(Debug, FromQueryResult)]
pub(super) struct Cell {
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

pub(super) fn day_label(day: i64) -> String {
    crate::domain::time::format_micros(day * MICROS_PER_DAY)[..10].to_owned()
}

pub(super) async fn cells(
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
    Ok(
        Cell::find_by_statement(super::super::statement(db, &sql, values))
            .all(db)
            .await?,
    )
}

#[derive(Debug, FromQueryResult)]
pub(super) struct UserRow {
    id: String,
    name: String,
    email: String,
    role: String,
    department_id: Option<String>,
}

pub(super) async fn users(
    db: &impl ConnectionTrait,
    org_id: &str,
) -> AppResult<HashMap<String, UserRow>> {
    let sql = "SELECT id, name, email, role, department_id FROM users WHERE org_id = ?";
    let rows = UserRow::find_by_statement(super::super::statement(db, sql, vec![org_id.into()]))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.id.clone(), u)).collect())
}

/// The org's departments, id to name.
pub(super) async fn departments(
    db: &impl ConnectionTrait,
    org_id: &str,
) -> AppResult<BTreeMap<String, String>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        name: String,
    }
    let rows = Row::find_by_statement(super::super::statement(
        db,
        "SELECT id, name FROM departments WHERE org_id = ?",
        vec![org_id.into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(|d| (d.id, d.name)).collect())
}
