//! The batch validated and stored whole.

use super::super::events::{insert_batch, EventRow};
use super::super::live::LiveFeed;
use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::grant::{cap, Grant};
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::{json, Value};
use std::collections::HashMap;

use super::*;

/// Validates and stores a batch for the caller's org. Nothing is stored unless
/// every event is valid; the answer comes after the commit.
#[tracing::instrument(skip(db, live, principal, events), fields(org = %principal.org_id, count = events.len()))]
pub async fn ingest(
    db: &DatabaseConnection,
    live: &LiveFeed,
    principal: Grant<'_, cap::ActivityWrite>,
    mut events: Vec<IngestEvent>,
) -> AppResult<IngestReport> {
    if events.len() > MAX_BATCH {
        return Err(AppError::invalid(
            InvalidInput::new(
                &[],
                "too_long",
                format!("A batch holds at most {MAX_BATCH} events"),
                events.len(),
            )
            .with_ctx(json!({ "max_length": MAX_BATCH })),
        ));
    }
    let org = principal.org_id.as_str();
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        check_fields(i, e, &mut problems);
        if let Some(id) = e.id.as_deref() {
            if let Some(first) = seen.insert(id, i) {
                problems.push(at(
                    i,
                    "id",
                    "value_error",
                    format!("The same id is at index {first} of this batch"),
                    id.to_owned(),
                ));
            }
        }
    }
    let known = known(db, org, &events).await?;
    for (i, e) in events.iter_mut().enumerate() {
        resolve_refs(i, e, &known, &mut problems);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.loc.first().and_then(Value::as_u64).unwrap_or(0));
        return Err(AppError::Invalid(problems));
    }
    let now = now_micros();
    let received = events.len() as u64;
    let ids: Vec<String> = events
        .iter()
        .map(|e| e.id.clone().unwrap_or_else(|| new_id(IdKind::Activity)))
        .collect();
    let rows: Vec<EventRow> = events
        .into_iter()
        .zip(&ids)
        .map(|(e, id)| into_row(org, e, id.clone(), now))
        .collect();
    let stored = super::super::detached({
        let db = db.clone();
        async move {
            let txn = db.begin().await?;
            let stored = insert_batch(&txn, rows, true).await?;
            txn.commit().await?;
            Ok(stored)
        }
    })
    .await?;
    if stored > 0 {
        live.committed();
    }
    Ok(IngestReport {
        received,
        stored,
        duplicates: received - stored,
        ids,
    })
}
