//! The activity summary in GraphQL: counts, buckets and percentiles of a
//! node's events, and the resolver every node's `activitySummary` shares.

use async_graphql::{Context, Enum, Object, SimpleObject};
use sea_orm::DatabaseConnection;

use super::ActivityFilterInput;
use crate::auth::Principal;
use crate::domain::error::AppError;
use crate::domain::feed::{ActivityFilter, Scope};
use crate::domain::paging::Hours;
use crate::domain::time::{format_micros, now_micros};
use crate::graphql::error::{GqlResult, IntoGql, ToGraphql};
use crate::service::summary;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum BucketInterval {
    Hour,
    Day,
}

#[derive(SimpleObject)]
pub struct CountByKey {
    pub key: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct SummaryBucket {
    /// The bucket's start (RFC 3339, UTC).
    pub start: String,
    pub total_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub avg_duration_ms: f64,
    pub total_tokens_used: i64,
}

/// Exact duration percentiles (nearest rank), in milliseconds.
#[derive(SimpleObject)]
pub struct DurationPercentiles {
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

pub struct ActivitySummary {
    summary: summary::Summary,
    feed: (String, Scope, ActivityFilter),
}

#[Object]
impl ActivitySummary {
    async fn total_requests(&self) -> i64 {
        self.summary.totals.requests
    }
    async fn successful_requests(&self) -> i64 {
        self.summary.totals.successes
    }
    async fn failed_requests(&self) -> i64 {
        self.summary.totals.failures()
    }
    async fn avg_duration_ms(&self) -> f64 {
        self.summary.totals.avg_duration_ms()
    }
    async fn total_tokens_used(&self) -> i64 {
        self.summary.totals.tokens
    }
    /// Failed over total requests, 0 when there were none.
    async fn error_rate(&self) -> f64 {
        self.summary.totals.error_rate()
    }
    async fn by_action(&self) -> Vec<CountByKey> {
        self.summary
            .by_action
            .iter()
            .map(|(k, v)| CountByKey {
                key: k.clone(),
                count: *v,
            })
            .collect()
    }
    async fn by_resource(&self) -> Vec<CountByKey> {
        self.summary
            .by_resource
            .iter()
            .map(|(k, v)| CountByKey {
                key: k.clone(),
                count: *v,
            })
            .collect()
    }
    async fn start_time(&self) -> String {
        format_micros(self.summary.start)
    }
    async fn end_time(&self) -> String {
        format_micros(self.summary.end)
    }
    /// Exact, computed only when asked for.
    async fn duration_percentiles(&self, ctx: &Context<'_>) -> GqlResult<DurationPercentiles> {
        let (org, scope, filter) = &self.feed;
        let db = ctx.data::<DatabaseConnection>()?;
        let v = summary::duration_percentiles(
            db,
            org,
            scope,
            filter,
            self.summary.totals.requests,
            &[0.5, 0.95, 0.99],
        )
        .await
        .gql()?;
        Ok(DurationPercentiles {
            p50: v[0],
            p95: v[1],
            p99: v[2],
        })
    }
    /// The window in buckets for charts, empty buckets included; computed only when asked for.
    async fn buckets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "BucketInterval::Hour")] interval: BucketInterval,
    ) -> GqlResult<Vec<SummaryBucket>> {
        let width = if interval == BucketInterval::Hour {
            summary::BUCKET_HOUR
        } else {
            summary::BUCKET_DAY
        };
        let (org, scope, filter) = &self.feed;
        let (start, end) = (self.summary.start, self.summary.end);
        let hourly = summary::hourly(super::summaries(ctx)?, org, scope, filter, start, end)
            .await
            .gql()?;
        Ok(summary::buckets(start, end, width, &hourly)
            .into_iter()
            .map(|(start, t)| SummaryBucket {
                start: format_micros(start),
                total_requests: t.requests,
                successful_requests: t.successes,
                failed_requests: t.failures(),
                avg_duration_ms: t.avg_duration_ms(),
                total_tokens_used: t.tokens,
            })
            .collect())
    }
}

/// The `activitySummary` field of every node: the last `hours` hours, narrowed by the filter.
pub async fn activity_summary(
    ctx: &Context<'_>,
    scope: Scope,
    hours: Option<i32>,
    filter: Option<ActivityFilterInput>,
) -> GqlResult<ActivitySummary> {
    let principal = ctx.data::<Principal>()?;
    let mut problems = Vec::new();
    let hours = Hours::parse(hours.map(i64::from)).unwrap_or_else(|refused| {
        problems.push(refused.under(vec!["hours".into()]));
        Hours::default()
    });
    let filter = principal.confine(ActivityFilterInput::read(filter, &mut problems));
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).to_graphql());
    }
    let (start, end) = hours.ending_at(now_micros());
    let s = summary::summarize(
        super::summaries(ctx)?,
        &principal.org_id,
        &scope,
        &filter,
        start,
        end,
    )
    .await
    .gql()?;
    let window = summary::window(&filter, s.start, s.end);
    Ok(ActivitySummary {
        summary: s,
        feed: (principal.org_id.clone(), scope, window),
    })
}
