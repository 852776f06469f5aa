//! The verifiable log: each org's events, in commit order, as the leaves of a
//! Merkle tree (RFC 9162), with signed checkpoints of it (C2SP
//! tlog-checkpoint in a signed note) and proofs against them.
//!
//! Writers number an org's events under that org's lock (its `org_logs`
//! row, locked by an upsert until the transaction ends): one org's writers
//! take turns, so its log order is its commit order, while other orgs'
//! writers commit in parallel.

pub mod checkpoints;
pub mod export;
pub mod leaf;
pub mod proofs;
pub mod tiles;
pub mod verify;

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::events::EventRow;
use super::statement;

/// Locks `org`'s log until the transaction ends and reads its size.
pub async fn lock(txn: &impl ConnectionTrait, org: &str) -> Result<u64, DbErr> {
    let row = txn
        .query_one_raw(statement(
            txn,
            "INSERT INTO org_logs (org_id, tree_size) VALUES (?, 0) \
             ON CONFLICT (org_id) DO UPDATE SET tree_size = org_logs.tree_size \
             RETURNING tree_size",
            vec![org.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("log of {org}")))?;
    Ok(row.try_get_by_index::<i64>(0)? as u64)
}

/// Adds `leaves` (of `org`'s events just stored at log indexes `size`,
/// `size + 1`, ...) to the org's tree, whose log the caller has locked at
/// `size`, and moves its size on.
pub async fn extend(
    txn: &impl ConnectionTrait,
    org: &str,
    size: u64,
    leaves: impl IntoIterator<Item = tlog_tiles::Hash>,
) -> Result<(), DbErr> {
    let mut edge = tiles::Edge::load(txn, org, size).await?;
    for leaf in leaves {
        edge.push(leaf);
    }
    if edge.size() == size {
        return Ok(());
    }
    let new_size = edge.size() as i64;
    edge.store(txn, org).await?;
    txn.execute_raw(statement(
        txn,
        "UPDATE org_logs SET tree_size = ? WHERE org_id = ?",
        vec![new_size.into(), org.into()],
    ))
    .await?;
    Ok(())
}

/// Gives the events stored before the log existed their indexes, in `seq`
/// order after whatever the org's log holds, and their leaves. The
/// migration that made the log noted how far those events go; this runs
/// once, at the first start after it, and forgets the mark when done, so an
/// event slipped in later without an index stays without one (and
/// verifying reports it).
pub async fn index_unindexed(db: &sea_orm::DatabaseConnection) -> Result<u64, DbErr> {
    use sea_orm::TransactionTrait;
    const MARK: &str = "log_backfill_through";
    let Some(mark) = db
        .query_one_raw(statement(
            db,
            "SELECT value FROM server_secrets WHERE name = ?",
            vec![MARK.into()],
        ))
        .await?
    else {
        return Ok(0);
    };
    let through: i64 = mark.try_get_by_index::<String>(0)?.parse().unwrap_or(0);
    let txn = db.begin().await?;
    let orgs: Vec<String> = txn
        .query_all_raw(statement(
            &txn,
            "SELECT DISTINCT org_id FROM activity_events WHERE log_index IS NULL AND seq <= ? ORDER BY org_id",
            vec![through.into()],
        ))
        .await?
        .into_iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    let mut indexed = 0;
    for org in orgs {
        let size = lock(&txn, &org).await?;
        txn.execute_raw(statement(
            &txn,
            "UPDATE activity_events SET log_index = numbered.n FROM \
               (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) - 1 + ? AS n FROM activity_events \
                  WHERE org_id = ? AND log_index IS NULL AND seq <= ?) AS numbered \
             WHERE activity_events.seq = numbered.seq",
            vec![(size as i64).into(), org.as_str().into(), through.into()],
        ))
        .await?;
        let mut edge = tiles::Edge::load(&txn, &org, size).await?;
        let mut after = size as i64 - 1;
        loop {
            let page = events_from(&txn, &org, after + 1, 5_000).await?;
            let Some(last) = page.last() else { break };
            after = last.log_index.unwrap_or(after);
            for e in page {
                edge.push(leaf::leaf_hash(&EventRow::from(e)));
            }
        }
        let added = edge.size() - size;
        indexed += added;
        let new_size = edge.size() as i64;
        edge.store(&txn, &org).await?;
        txn.execute_raw(statement(
            &txn,
            "UPDATE org_logs SET tree_size = ? WHERE org_id = ?",
            vec![new_size.into(), org.as_str().into()],
        ))
        .await?;
        tracing::info!(org = %org, events = added, "gave events stored before the log their log indexes");
    }
    txn.execute_raw(statement(
        &txn,
        "DELETE FROM server_secrets WHERE name = ?",
        vec![MARK.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(indexed)
}

/// Up to `limit` of `org`'s stored events from log index `from` on, in log order.
pub async fn events_from(
    db: &impl ConnectionTrait,
    org: &str,
    from: i64,
    limit: u64,
) -> Result<Vec<entity::activity_event::Model>, DbErr> {
    use entity::activity_event::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    Entity::find()
        .filter(Column::OrgId.eq(org))
        .filter(Column::LogIndex.gte(from))
        .order_by_asc(Column::LogIndex)
        .limit(limit)
        .all(db)
        .await
}

/// The org's tree size: how many events its log has ever held.
pub async fn tree_size(db: &impl ConnectionTrait, org: &str) -> Result<u64, DbErr> {
    let row = db
        .query_one_raw(statement(
            db,
            "SELECT tree_size FROM org_logs WHERE org_id = ?",
            vec![org.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0) as u64)
}

/// Notes that retention purged the events at `indexes` (their leaves stay):
/// as ranges of consecutive indexes, one row each.
pub async fn record_purged(
    txn: &impl ConnectionTrait,
    org: &str,
    indexes: &[i64],
    before: i64,
) -> Result<(), DbErr> {
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for i in sorted {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => ranges.push((i, i)),
        }
    }
    for chunk in ranges.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO log_purges (org_id, first_index, last_index, before_ts) VALUES ",
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (n, (first, last)) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?, ?, ?)");
            values.extend([org.into(), (*first).into(), (*last).into(), before.into()]);
        }
        txn.execute_raw(statement(txn, &sql, values)).await?;
    }
    Ok(())
}
