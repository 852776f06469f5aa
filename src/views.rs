//! The answers the artifacts operations give, shared by both transports: REST
//! serialises them as the reference spells them, GraphQL exposes them as
//! objects (camelCase). Built from the service's values, never from the
//! database.

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::paging::SessionPaging;
use crate::domain::time::format_micros;
use crate::service::export::jobs;
use crate::service::rollups;
use crate::service::sessions;

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct ProfileSummaryItem {
    pub profile_id: String,
    pub name: String,
    pub email: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub role: String,
    pub sessions_count: i64,
    pub logins_count: i64,
    pub emulations_count: i64,
    pub total_session_seconds: i64,
    pub last_active_at: String,
    pub active: bool,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct ResourceOption {
    pub id: String,
    pub name: String,
    /// Sessions in the date range this option keeps.
    pub sessions_count: i64,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct ActivityResources {
    pub departments: Vec<ResourceOption>,
    pub roles: Vec<ResourceOption>,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct FacetItem {
    /// A department id (null: no department), a role, or a day (`YYYY-MM-DD`).
    pub key: Option<String>,
    pub name: Option<String>,
    pub sessions_count: i64,
    pub logins_count: i64,
    pub emulations_count: i64,
}

#[derive(Serialize, ToSchema, SimpleObject)]
pub struct AnalyticsFacets {
    pub by_department: Vec<FacetItem>,
    pub by_role: Vec<FacetItem>,
    pub by_day: Vec<FacetItem>,
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "SessionAnalytics")]
pub struct SessionAnalyticsOut {
    pub sessions_count: i64,
    pub active_profiles_count: i64,
    pub logins_count: i64,
    pub emulations_count: i64,
    pub profile_summary: Vec<ProfileSummaryItem>,
    pub resources: ActivityResources,
    pub analytics: Option<AnalyticsFacets>,
}

fn facets(list: Vec<sessions::Facet>) -> Vec<FacetItem> {
    list.into_iter()
        .map(|f| FacetItem {
            key: f.key,
            name: f.name,
            sessions_count: f.counts.sessions,
            logins_count: f.counts.logins,
            emulations_count: f.counts.emulations,
        })
        .collect()
}

fn options(list: Vec<sessions::FilterOption>) -> Vec<ResourceOption> {
    list.into_iter()
        .map(|o| ResourceOption {
            id: o.id,
            name: o.name,
            sessions_count: o.sessions,
        })
        .collect()
}

impl From<sessions::SessionAnalytics> for SessionAnalyticsOut {
    fn from(a: sessions::SessionAnalytics) -> Self {
        Self {
            sessions_count: a.counts.sessions,
            active_profiles_count: a.active_profiles,
            logins_count: a.counts.logins,
            emulations_count: a.counts.emulations,
            profile_summary: a
                .profiles
                .into_iter()
                .map(|p| ProfileSummaryItem {
                    profile_id: p.user_id,
                    name: p.name,
                    email: p.email,
                    department_id: p.department_id,
                    department_name: p.department_name,
                    role: p.role,
                    sessions_count: p.counts.sessions,
                    logins_count: p.counts.logins,
                    emulations_count: p.counts.emulations,
                    total_session_seconds: p.total_session_micros / 1_000_000,
                    last_active_at: format_micros(p.last_active),
                    active: p.active,
                })
                .collect(),
            resources: ActivityResources {
                departments: options(a.departments),
                roles: options(a.roles),
            },
            analytics: Some(AnalyticsFacets {
                by_department: facets(a.by_department),
                by_role: facets(a.by_role),
                by_day: facets(a.by_day),
            }),
        }
    }
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "Session")]
pub struct SessionListItem {
    /// `session_id` in REST, `id` in GraphQL.
    #[serde(rename = "session_id")]
    #[schema(value_type = String)]
    #[graphql(owned)]
    pub id: async_graphql::ID,
    pub profile_id: String,
    pub profile_name: String,
    pub profile_email: String,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub role: String,
    /// `login` or `emulation`.
    pub kind: String,
    /// The admin acting as the profile, for emulations.
    pub emulated_by: Option<String>,
    pub emulated_by_name: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub last_seen_at: String,
    pub duration_seconds: i64,
    pub active: bool,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl From<sessions::SessionItem> for SessionListItem {
    fn from(s: sessions::SessionItem) -> Self {
        Self {
            duration_seconds: s.duration_micros() / 1_000_000,
            id: async_graphql::ID(s.id),
            profile_id: s.user_id,
            profile_name: s.user_name,
            profile_email: s.user_email,
            department_id: s.department_id,
            department_name: s.department_name,
            role: s.role,
            kind: s.kind,
            emulated_by: s.emulated_by,
            emulated_by_name: s.emulated_by_name,
            started_at: format_micros(s.started_at),
            ended_at: s.ended_at.map(format_micros),
            last_seen_at: format_micros(s.last_seen_at),
            active: s.active,
            ip_address: s.ip,
            user_agent: s.user_agent,
        }
    }
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "SessionPage")]
pub struct SessionSearchOut {
    pub data: Vec<SessionListItem>,
    pub total_count: u64,
    pub page: u64,
    pub page_size: u64,
    pub total_pages: u64,
}

impl SessionSearchOut {
    /// One page of the history, as both transports answer it.
    pub fn of(found: sessions::SessionPage, paging: SessionPaging) -> Self {
        Self {
            total_pages: found.total.div_ceil(paging.page_size),
            total_count: found.total,
            page: paging.page,
            page_size: paging.page_size,
            data: found.items.into_iter().map(SessionListItem::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProblemCreatedOut {
    pub problem_id: String,
    pub success: bool,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResolveOut {
    pub problem_id: String,
    pub resolved: bool,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "RefreshResult")]
pub struct RefreshOut {
    pub success: bool,
    pub refreshed_views: Vec<String>,
    pub invalidated_tags: Vec<String>,
}

#[derive(Serialize, ToSchema, SimpleObject)]
#[graphql(name = "ExportResult")]
pub struct ExportOut {
    pub upload_id: String,
    pub file_name: String,
    /// The data rows of all its CSV files; 0 until done.
    pub row_count: u64,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
}

impl From<rollups::RefreshAnswer> for RefreshOut {
    fn from(done: rollups::RefreshAnswer) -> Self {
        Self {
            success: true,
            refreshed_views: done.views.iter().map(|v| (*v).to_owned()).collect(),
            invalidated_tags: done.tags,
        }
    }
}

impl From<&entity::export::Model> for ExportOut {
    fn from(job: &entity::export::Model) -> Self {
        Self {
            upload_id: job.id.clone(),
            file_name: job.file_name.clone(),
            row_count: job.row_count.max(0) as u64,
            status: jobs::JobStatus::of(job).as_str().to_owned(),
        }
    }
}

/// An export that is not done yet, as the download route answers it (202).
#[derive(Serialize, ToSchema)]
pub struct ExportState {
    pub upload_id: String,
    pub file_name: String,
    /// `pending` or `running`.
    pub status: String,
    /// 0 until done.
    pub row_count: u64,
    /// Rows written so far, and the rows the export will hold (known once running).
    pub rows_written: u64,
    pub rows_expected: u64,
    /// `rows_written / rows_expected`, from 0 to 1.
    pub progress: f64,
    pub created_at: String,
    pub expires_at: Option<String>,
}

impl From<&entity::export::Model> for ExportState {
    fn from(job: &entity::export::Model) -> Self {
        Self {
            upload_id: job.id.clone(),
            file_name: job.file_name.clone(),
            status: jobs::JobStatus::of(job).as_str().to_owned(),
            row_count: job.row_count.max(0) as u64,
            rows_written: job.rows_written.max(0) as u64,
            rows_expected: job.rows_expected.max(0) as u64,
            progress: jobs::progress(job),
            created_at: format_micros(job.created_at),
            expires_at: job.expires_at.map(format_micros),
        }
    }
}

pub use crate::domain::text::stored_json;
