//! The live tail over `graphql-transport-ws`.

use std::collections::VecDeque;

use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, Subscription, ID};
use sea_orm::DatabaseConnection;

use super::activity::{Activity, ActivityEdge, ActivityFilterInput};
use crate::auth::Principal;
use crate::domain::feed::LiveCursor;
use crate::domain::permission::Permission;
use crate::error::{AppError, IntoGql};
use crate::service::live::{self, LiveFeed};

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every event of the org committed from now on (ingested or recorded), in
    /// commit order, narrowed by the filter. Each edge's cursor, passed back as
    /// `after`, resumes the tail right after that event: a client that
    /// reconnects with its last cursor misses nothing. Needs `activity:read`.
    async fn activity_added(
        &self,
        ctx: &Context<'_>,
        org_id: ID,
        filter: Option<ActivityFilterInput>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = ActivityEdge>> {
        let principal = ctx.data::<Principal>()?;
        principal.require(Permission::ActivityRead).gql()?;
        let org = principal.org_id.clone();
        if org_id.as_str() != org {
            return Err(AppError::not_found("org", org_id.to_string()).to_graphql());
        }
        let mut problems = Vec::new();
        let filter = ActivityFilterInput::read(filter, &mut problems);
        let cursor = after.and_then(|text| {
            LiveCursor::decode(&text, &org, &filter)
                .map_err(|e| problems.push(e.to_input(&["after"], &text)))
                .ok()
        });
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems).to_graphql());
        }
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let start = match cursor {
            Some(cursor) => cursor.seq,
            None => live::newest_seq(&db).await.map_err(AppError::from).gql()?,
        };
        let tail = ctx
            .data::<LiveFeed>()?
            .tail(org.clone(), filter.clone(), start);
        Ok(stream::unfold(
            (tail, VecDeque::new()),
            move |(mut tail, mut ready)| {
                let (db, org, filter) = (db.clone(), org.clone(), filter.clone());
                async move {
                    if ready.is_empty() {
                        ready.extend(tail.next_events(&db).await);
                    }
                    let event = ready.pop_front()?;
                    let cursor = LiveCursor { seq: event.seq }.encode(&org, &filter);
                    Some((
                        ActivityEdge {
                            cursor,
                            node: Activity::from(event),
                        },
                        (tail, ready),
                    ))
                }
            },
        ))
    }
}
