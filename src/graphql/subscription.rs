//! The live tail over `graphql-transport-ws`.

use super::error::ToGraphql;
use std::collections::VecDeque;

use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, Subscription, ID};
use sea_orm::DatabaseConnection;

use super::activity::{Activity, ActivityEdge, ActivityFilterInput};
use crate::auth::Principal;
use crate::domain::feed::{CursorError, LiveCursor};
use crate::service::secrets::CursorKeys;

use super::error::IntoGql;
use super::guard::Gate;
use crate::domain::error::AppError;
use crate::service::live::{self, LiveFeed};

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every event of the org committed from now on (ingested or recorded), in
    /// commit order, narrowed by the filter. Each edge's cursor, passed back as
    /// `after`, resumes the tail right after that event: a client that
    /// reconnects with its last cursor misses nothing. Needs `activity:read`.
    #[graphql(guard = "Gate(\"activityAdded\")")]
    async fn activity_added(
        &self,
        ctx: &Context<'_>,
        org_id: ID,
        filter: Option<ActivityFilterInput>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = ActivityEdge>> {
        let principal = ctx.data::<Principal>()?;
        let org = principal.org_id.clone();
        if org_id.as_str() != org {
            return Err(AppError::not_found("org", org_id.to_string()).to_graphql());
        }
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let key = ctx.data::<CursorKeys>()?.get().await.gql()?.clone();
        let mut problems = Vec::new();
        let filter = principal.confine(ActivityFilterInput::read(filter, &mut problems));
        let cursor = after.map(|text| {
            let decoded = LiveCursor::decode(&text, &key, &org, &filter);
            (text, decoded)
        });
        let start = match cursor {
            None => live::newest_seq(&db).await.map_err(AppError::from).gql()?,
            Some((text, decoded)) => {
                let seq = match decoded {
                    Ok(c) => live::seq_of(&db, &org, &c.event_id)
                        .await
                        .map_err(AppError::from)
                        .gql()?,
                    Err(_) => None,
                };
                seq.unwrap_or_else(|| {
                    problems.push(CursorError.to_input(&["after"], &text));
                    0
                })
            }
        };
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems).to_graphql());
        }
        let tail = ctx
            .data::<LiveFeed>()?
            .tail(org.clone(), filter.clone(), start);
        Ok(stream::unfold(
            (tail, VecDeque::new()),
            move |(mut tail, mut ready)| {
                let (db, org, filter, key) = (db.clone(), org.clone(), filter.clone(), key.clone());
                async move {
                    if ready.is_empty() {
                        ready.extend(tail.next_events(&db).await);
                    }
                    let event = ready.pop_front()?;
                    let cursor = LiveCursor {
                        event_id: event.id.clone(),
                    }
                    .encode(&key, &org, &filter);
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
