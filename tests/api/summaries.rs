//! Summaries are exact: equal to a plain aggregation of the raw events for
//! random scopes and windows, before and after new events and a refresh.

use std::collections::BTreeMap;

use crate::common::TestDb;
use activity_gateway::domain::feed::{ActivityFilter, Scope};
use activity_gateway::domain::time::{now_micros, MICROS_PER_HOUR};
use activity_gateway::service::events::{insert_batch, EventRow};
use activity_gateway::service::summary::{KeptCells, Source};
use activity_gateway::service::{activity, rollups, summary};
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Statement, Value};

on_both_backends!(
    summaries_equal_the_raw_aggregation_for_random_scopes_and_windows,
    percentiles_and_buckets_match_the_raw_events,
    folds_racing_on_several_replicas_while_events_arrive_count_each_event_once,
    kept_rollup_cells_answer_exactly_until_the_rollups_move,
    kept_counts_stay_exact_while_folds_race_with_arriving_events,
    a_total_with_every_event_folded_reads_no_event_row,
    a_page_and_its_total_are_one_statement_when_the_page_has_rows,
    the_unfolded_tail_is_read_by_its_seq_range_not_the_scopes_window
);

/// (requests, successes, duration sum, tokens, by action, by resource): straight from the events.
type Raw = (
    i64,
    i64,
    i64,
    i64,
    BTreeMap<String, i64>,
    BTreeMap<String, i64>,
);

async fn raw(db: &TestDb, column: &str, id: &str, start: i64, end: i64) -> Raw {
    let backend = db.db.get_database_backend();
    let sql = format!(
        "SELECT action, resource_type, success, duration_ms, tokens_total FROM activity_events WHERE {column} = {} AND ts >= {} AND ts < {}",
        if backend == sea_orm::DbBackend::Postgres { "$1" } else { "?" },
        start,
        end
    );
    let rows = db
        .db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(id)],
        ))
        .await
        .unwrap();
    let mut out: Raw = Default::default();
    for r in rows {
        out.0 += 1;
        out.1 += i64::from(r.try_get::<bool>("", "success").unwrap());
        out.2 += r.try_get::<i64>("", "duration_ms").unwrap();
        out.3 += r.try_get::<i64>("", "tokens_total").unwrap();
        *out.4
            .entry(r.try_get::<String>("", "action").unwrap())
            .or_default() += 1;
        let resource = r
            .try_get::<Option<String>>("", "resource_type")
            .unwrap()
            .unwrap_or_else(|| "unknown".into());
        *out.5.entry(resource).or_default() += 1;
    }
    out
}

fn scopes() -> Vec<(Scope, &'static str, &'static str)> {
    vec![
        (Scope::Org, "org_id", "org_acme"),
        (
            Scope::Workspace("ws_acme_staging".into()),
            "workspace_id",
            "ws_acme_staging",
        ),
        (
            Scope::App("app_acme_research_billing".into()),
            "app_id",
            "app_acme_research_billing",
        ),
        (
            Scope::Endpoint("ep_acme_production_search_create".into()),
            "endpoint_id",
            "ep_acme_production_search_create",
        ),
        (
            Scope::Augmentation("aug_acme_staging_triage".into()),
            "augmentation_id",
            "aug_acme_staging_triage",
        ),
        (Scope::User("usr_acme_09".into()), "user_id", "usr_acme_09"),
        (
            Scope::Principal("key_acme_backend".into()),
            "principal_id",
            "key_acme_backend",
        ),
    ]
}

async fn check_random_windows(
    db: &TestDb,
    rng: &mut rand_chacha::ChaCha8Rng,
    cases: usize,
) -> usize {
    let now = now_micros();
    let all = scopes();
    let mut non_empty = 0;
    for _ in 0..cases {
        let (scope, column, id) = &all[rng.random_range(0..all.len())];
        let start = now - rng.random_range(0..15 * 24 * MICROS_PER_HOUR);
        let end =
            (start + rng.random_range(1..8 * 24 * MICROS_PER_HOUR)).min(now + MICROS_PER_HOUR);
        let s = summary::summarize(
            &db.db,
            "org_acme",
            scope,
            &ActivityFilter::default(),
            start,
            end,
        )
        .await
        .unwrap();
        let r = raw(db, column, id, start, end).await;
        let got = (
            s.totals.requests,
            s.totals.successes,
            s.totals.duration_sum_ms,
            s.totals.tokens,
            s.by_action.clone(),
            s.by_resource.clone(),
        );
        assert_eq!(got, r, "{scope:?} over [{start}, {end})");
        // The feed's exact total reads the same rollups.
        let window = ActivityFilter {
            start_time: Some(start),
            end_time: Some(end),
            ..Default::default()
        };
        assert_eq!(
            activity::count(&db.db, "org_acme", scope, &window)
                .await
                .unwrap() as i64,
            r.0,
            "count of {scope:?} over [{start}, {end})"
        );
        non_empty += usize::from(r.0 > 0);
    }
    non_empty
}

fn late_event(n: usize, ts: i64, user: &str) -> EventRow {
    EventRow {
        id: format!("act_late{n:024}"),
        org_id: "org_acme".into(),
        ts,
        user_id: Some(user.into()),
        workspace_id: Some("ws_acme_staging".into()),
        app_id: Some("app_acme_staging_billing".into()),
        action: if n.is_multiple_of(2) {
            "execute".into()
        } else {
            "export".into()
        },
        resource_type: if n.is_multiple_of(3) {
            None
        } else {
            Some("endpoint".into())
        },
        status_code: if n.is_multiple_of(4) { 500 } else { 200 },
        success: !n.is_multiple_of(4),
        duration_ms: 10 + n as i64,
        tokens_total: 7,
        token_usage: r#"{"prompt_tokens":7}"#.into(),
        metadata: "{}".into(),
        ..Default::default()
    }
}

async fn summaries_equal_the_raw_aggregation_for_random_scopes_and_windows(db: TestDb) {
    db.seed(8_000).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    // Nothing folded yet: everything is beyond the watermark.
    assert!(check_random_windows(&db, &mut rng, 15).await > 5);
    let report = rollups::refresh(&db.db).await.unwrap();
    assert_eq!(report.folded_events, 8_000);
    assert_eq!(report.views, ["activity_rollups_hourly"]);
    assert!(
        check_random_windows(&db, &mut rng, 40).await > 20,
        "most windows have events"
    );

    // Late events, old and new timestamps, some in hours the rollups already cover.
    let now = now_micros();
    let late: Vec<EventRow> = (0..300)
        .map(|n| {
            late_event(
                n,
                now - (n as i64 % 200) * MICROS_PER_HOUR - 17,
                "usr_acme_09",
            )
        })
        .collect();
    insert_batch(&db.db, late, false).await.unwrap();
    assert!(
        check_random_windows(&db, &mut rng, 30).await > 15,
        "after new events, before a refresh"
    );
    let again = rollups::refresh(&db.db).await.unwrap();
    assert_eq!(again.folded_events, 300);
    assert!(
        check_random_windows(&db, &mut rng, 30).await > 15,
        "after the refresh"
    );
    assert_eq!(
        rollups::refresh(&db.db).await.unwrap().folded_events,
        0,
        "a refresh with nothing new folds nothing"
    );
    // Unbounded totals too (every event of the scope, whatever its time).
    for (scope, column, id) in scopes() {
        let all = raw(&db, column, id, i64::MIN / 2, i64::MAX / 2).await.0;
        assert_eq!(
            activity::count(&db.db, "org_acme", &scope, &ActivityFilter::default())
                .await
                .unwrap() as i64,
            all,
            "{scope:?}"
        );
    }

    // Whole-hour windows read the rollups for all of their hours.
    let hour = now.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
    let s = summary::summarize(
        &db.db,
        "org_acme",
        &Scope::Org,
        &ActivityFilter::default(),
        hour - 100 * MICROS_PER_HOUR,
        hour,
    )
    .await
    .unwrap();
    assert_eq!(
        s.totals.requests,
        raw(
            &db,
            "org_id",
            "org_acme",
            hour - 100 * MICROS_PER_HOUR,
            hour
        )
        .await
        .0
    );
    let hourly = summary::hourly(
        &db.db,
        "org_acme",
        &Scope::Org,
        &ActivityFilter::default(),
        hour - 100 * MICROS_PER_HOUR,
        hour,
    )
    .await
    .unwrap();
    assert_eq!(hourly.len(), 100, "every hour has events");
    assert_eq!(
        hourly.values().map(|t| t.requests).sum::<i64>(),
        s.totals.requests
    );
}

async fn percentiles_and_buckets_match_the_raw_events(db: TestDb) {
    db.seed(2_000).await;
    rollups::refresh(&db.db).await.unwrap();
    let now = now_micros();
    let (start, end) = (now - 72 * MICROS_PER_HOUR, now);
    let scope = Scope::Workspace("ws_acme_research".into());
    let filter = summary::window(&ActivityFilter::default(), start, end);
    let s = summary::summarize(
        &db.db,
        "org_acme",
        &scope,
        &ActivityFilter::default(),
        start,
        end,
    )
    .await
    .unwrap();
    let rows = db
        .rows(
            "SELECT duration_ms, ts FROM activity_events WHERE workspace_id = 'ws_acme_research' AND ts >= ? AND ts < ? ORDER BY duration_ms",
            vec![start.into(), end.into()],
        )
        .await;
    let durations: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "duration_ms").unwrap())
        .collect();
    assert_eq!(durations.len() as i64, s.totals.requests);
    let p = summary::duration_percentiles(
        &db.db,
        "org_acme",
        &scope,
        &filter,
        s.totals.requests,
        &[0.5, 0.95, 0.99, 1.0],
    )
    .await
    .unwrap();
    let rank = |q: f64| {
        Some(
            durations[((q * durations.len() as f64).ceil() as usize).clamp(1, durations.len()) - 1],
        )
    };
    assert_eq!(
        p,
        vec![rank(0.5), rank(0.95), rank(0.99), durations.last().copied()]
    );

    let per_hour = summary::hourly(
        &db.db,
        "org_acme",
        &scope,
        &ActivityFilter::default(),
        start,
        end,
    )
    .await
    .unwrap();
    let hourly = summary::buckets(start, end, summary::BUCKET_HOUR, &per_hour);
    assert_eq!(
        hourly.len(),
        73,
        "every hour of the window, empty ones included"
    );
    assert_eq!(
        hourly.iter().map(|(_, t)| t.requests).sum::<i64>(),
        s.totals.requests
    );
    let daily = summary::buckets(start, end, summary::BUCKET_DAY, &per_hour);
    assert!(daily.len() == 3 || daily.len() == 4);
    for (day, totals) in &daily {
        let in_day = rows
            .iter()
            .filter(|r| {
                r.try_get::<i64>("", "ts")
                    .unwrap()
                    .div_euclid(summary::BUCKET_DAY)
                    * summary::BUCKET_DAY
                    == *day
            })
            .count();
        assert_eq!(totals.requests, in_day as i64);
    }
    // An empty window: zeros and no percentiles, never a division by zero.
    let empty = summary::summarize(
        &db.db,
        "org_acme",
        &scope,
        &ActivityFilter::default(),
        start - 1_000,
        start - 1,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            empty.totals.requests,
            empty.totals.avg_duration_ms(),
            empty.totals.error_rate()
        ),
        (0, 0.0, 0.0)
    );
    assert_eq!(
        summary::duration_percentiles(&db.db, "org_acme", &scope, &filter, 0, &[0.5])
            .await
            .unwrap(),
        vec![None]
    );
}

/// Requests counted by the org rollups, and events stored: equal when every
/// event was folded exactly once.
async fn folded_and_stored(db: &sea_orm::DatabaseConnection) -> (i64, i64) {
    let one = |sql: &'static str| async move {
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
    };
    (
        one("SELECT CAST(COALESCE(SUM(request_count), 0) AS BIGINT) FROM activity_rollups_hourly WHERE scope_kind = 'org'").await,
        one("SELECT COUNT(*) FROM activity_events").await,
    )
}

async fn folds_racing_on_several_replicas_while_events_arrive_count_each_event_once(db: TestDb) {
    db.seed(200).await;
    // Three pools on one database stand for three gateway processes.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(activity_gateway::db::connect(&db.url).await.unwrap());
    }
    let writer = {
        let db = replicas[0].clone();
        tokio::spawn(async move {
            for batch in 0..40 {
                let rows: Vec<EventRow> = (0..25)
                    .map(|n| {
                        let mut row = late_event(batch * 25 + n, now_micros() - 17, "usr_acme_09");
                        row.id = format!("act_race{:022}", batch * 25 + n);
                        row
                    })
                    .collect();
                insert_batch(&db, rows, false).await.unwrap();
            }
        })
    };
    for _ in 0..15 {
        let folds = replicas.iter().map(|replica| {
            let replica = replica.clone();
            tokio::spawn(async move { rollups::refresh(&replica).await.unwrap() })
        });
        for fold in folds.collect::<Vec<_>>() {
            fold.await.unwrap();
        }
    }
    writer.await.unwrap();
    rollups::refresh(&replicas[1]).await.unwrap();
    let (folded, stored) = folded_and_stored(&db.db).await;
    assert_eq!(stored, 200 + 1_000);
    assert_eq!(folded, stored, "every event folded exactly once");
}

/// Summaries, counts and hourly totals read with kept cells, twice each
/// (the second from memory), against the raw events, over the same windows
/// every time it is called (`now` moves by microseconds between calls: the
/// windows keep their whole hours, so their kept cells are found again).
async fn check_kept_windows(db: &TestDb, kept: &KeptCells, what: &str) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let now = now_micros();
    let all = scopes();
    let source = Source::kept(&db.db, kept);
    for _ in 0..12 {
        let (scope, column, id) = &all[rng.random_range(0..all.len())];
        let start = now - rng.random_range(0..15 * 24 * MICROS_PER_HOUR);
        let end =
            (start + rng.random_range(1..8 * 24 * MICROS_PER_HOUR)).min(now + MICROS_PER_HOUR);
        let r = raw(db, column, id, start, end).await;
        let window = ActivityFilter {
            start_time: Some(start),
            end_time: Some(end),
            ..Default::default()
        };
        for _ in 0..2 {
            let f = ActivityFilter::default();
            let s = summary::summarize(source, "org_acme", scope, &f, start, end)
                .await
                .unwrap();
            assert_eq!(
                (
                    s.totals.requests,
                    s.totals.tokens,
                    &s.by_action,
                    &s.by_resource
                ),
                (r.0, r.3, &r.4, &r.5),
                "{what}: summary of {scope:?} over [{start}, {end})"
            );
            let count = activity::count(source, "org_acme", scope, &window)
                .await
                .unwrap();
            assert_eq!(count as i64, r.0, "{what}: count of {scope:?}");
            let hourly = summary::hourly(source, "org_acme", scope, &f, start, end)
                .await
                .unwrap();
            let hourly_total: i64 = hourly.values().map(|t| t.requests).sum();
            assert_eq!(hourly_total, r.0, "{what}: hours of {scope:?}");
        }
    }
    for (scope, column, id) in all {
        let every = raw(db, column, id, i64::MIN / 2, i64::MAX / 2).await.0;
        let count = activity::count(source, "org_acme", &scope, &ActivityFilter::default())
            .await
            .unwrap();
        assert_eq!(count as i64, every, "{what}: unbounded count of {scope:?}");
    }
}

async fn execute(db: &TestDb, sql: &str) -> u64 {
    db.db
        .execute_raw(Statement::from_string(db.db.get_database_backend(), sql))
        .await
        .unwrap()
        .rows_affected()
}

async fn kept_rollup_cells_answer_exactly_until_the_rollups_move(db: TestDb) {
    db.seed(6_000).await;
    let kept = KeptCells::default();
    check_kept_windows(&db, &kept, "nothing folded").await;
    rollups::refresh(&db.db).await.unwrap();
    check_kept_windows(&db, &kept, "folded").await;
    assert!(!kept.is_empty());

    // Late events into hours already folded: the kept cells still hold,
    // the raw remainder past the watermark adds them.
    let now = now_micros();
    let late: Vec<EventRow> = (0..200)
        .map(|n| {
            late_event(
                n,
                now - (n as i64 % 150) * MICROS_PER_HOUR - 17,
                "usr_acme_09",
            )
        })
        .collect();
    insert_batch(&db.db, late, false).await.unwrap();
    check_kept_windows(&db, &kept, "late events, not folded").await;
    assert_eq!(rollups::refresh(&db.db).await.unwrap().folded_events, 200);
    check_kept_windows(&db, &kept, "late events folded").await;

    // The answers come from memory while the mark stands: rollup cells
    // changed behind the rollups' back (only the demo seed does that, and it
    // moves the mark) are not read...
    let source = Source::kept(&db.db, &kept);
    let all = ActivityFilter::default();
    let (week_start, week_end) = (now - 7 * 24 * MICROS_PER_HOUR, now);
    let truth = summary::summarize(&db.db, "org_acme", &Scope::Org, &all, week_start, week_end)
        .await
        .unwrap()
        .totals
        .requests;
    let from_kept = || async {
        summary::summarize(source, "org_acme", &Scope::Org, &all, week_start, week_end)
            .await
            .unwrap()
            .totals
            .requests
    };
    assert_eq!(from_kept().await, truth);
    let doubled = "UPDATE activity_rollups_hourly SET request_count = request_count * 2 WHERE scope_kind = 'org'";
    assert!(execute(&db, doubled).await > 0);
    let bare = summary::summarize(&db.db, "org_acme", &Scope::Org, &all, week_start, week_end)
        .await
        .unwrap()
        .totals
        .requests;
    assert!(
        bare > truth,
        "the bare read sees the doubled cells: {bare} <= {truth}"
    );
    assert_eq!(
        from_kept().await,
        truth,
        "kept cells answer while the mark stands"
    );
    // ... and once the mark moves, what the rollups hold is read again.
    rollups::moved(&db.db).await.unwrap();
    assert_eq!(
        from_kept().await,
        bare,
        "a moved mark reads the rollups again"
    );
    let halved = "UPDATE activity_rollups_hourly SET request_count = request_count / 2 WHERE scope_kind = 'org'";
    execute(&db, halved).await;
    rollups::moved(&db.db).await.unwrap();
    assert_eq!(from_kept().await, truth);

    // Re-seeding replaces the demo orgs' rollup cells, and moves the mark.
    db.seed(3_000).await;
    check_kept_windows(&db, &kept, "re-seeded, not folded").await;
    rollups::refresh(&db.db).await.unwrap();
    check_kept_windows(&db, &kept, "re-seeded and folded").await;

    // A small cache stays small and exact.
    let small = KeptCells::with_capacity(2);
    check_kept_windows(&db, &small, "two windows kept").await;
    assert_eq!(small.len(), 2);
    let one = KeptCells::with_capacity(0);
    check_kept_windows(&db, &one, "one window kept").await;
    assert_eq!(one.len(), 1);

    // A window of more cells than a window may keep is read each time, and
    // stays exact; at the limit it is kept.
    let now = now_micros();
    let (start, end) = (now - 48 * MICROS_PER_HOUR, now);
    let all = ActivityFilter::default();
    let hours = summary::hourly(&db.db, "org_acme", &Scope::Org, &all, start, end)
        .await
        .unwrap();
    // The kept part: the whole hours' cells, one per hour with events.
    let (first_hour, last_hour) = (
        (start / MICROS_PER_HOUR + 1) * MICROS_PER_HOUR,
        end / MICROS_PER_HOUR * MICROS_PER_HOUR,
    );
    let whole = hours
        .keys()
        .filter(|&&hour| hour >= first_hour && hour < last_hour)
        .count();
    assert!(whole > 20, "{whole} of {}", hours.len());
    for (limit, kept_windows) in [(whole - 1, 0), (whole, 1)] {
        let kept = KeptCells::with_limits(8, limit);
        for _ in 0..2 {
            let answer = summary::hourly(
                Source::kept(&db.db, &kept),
                "org_acme",
                &Scope::Org,
                &all,
                start,
                end,
            )
            .await
            .unwrap();
            assert_eq!(answer, hours, "{limit} cells a window");
        }
        assert_eq!(
            kept.len(),
            kept_windows,
            "{limit} cells a window, {whole} cells"
        );
    }
}

async fn kept_counts_stay_exact_while_folds_race_with_arriving_events(db: TestDb) {
    db.seed(300).await;
    rollups::refresh(&db.db).await.unwrap();
    let kept = KeptCells::default();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Another replica folds all the time.
    let folder = {
        let replica = activity_gateway::db::connect(&db.url).await.unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut folds = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                rollups::refresh(&replica).await.unwrap();
                folds += 1;
            }
            folds
        })
    };
    let now = now_micros();
    for batch in 0..30 {
        let rows: Vec<EventRow> = (0..20)
            .map(|n| {
                let n = batch * 20 + n;
                let mut row = late_event(
                    n,
                    now - (n as i64 % 40) * MICROS_PER_HOUR - 17,
                    "usr_acme_09",
                );
                row.id = format!("act_kept{n:023}");
                row
            })
            .collect();
        insert_batch(&db.db, rows, false).await.unwrap();
        // No event arrives while these read: each is exact, whichever fold
        // commits meanwhile.
        for _ in 0..3 {
            let count = activity::count(
                Source::kept(&db.db, &kept),
                "org_acme",
                &Scope::Org,
                &ActivityFilter::default(),
            )
            .await
            .unwrap();
            let org_events = raw(&db, "org_id", "org_acme", i64::MIN / 2, i64::MAX / 2)
                .await
                .0;
            assert_eq!(count as i64, org_events, "after batch {batch}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let folds = folder.await.unwrap();
    assert!(folds > 1, "the folds ran meanwhile: {folds}");
    assert!(!kept.is_empty());
}

/// 3,000 seeded events, all folded; a connection of its own to the same
/// database, and the texts of the statements it runs.
async fn seeded_and_folded_with_a_statement_log(
    db: &TestDb,
) -> (
    sea_orm::DatabaseConnection,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    db.seed(3_000).await;
    rollups::refresh(&db.db).await.unwrap();
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sql_log = log.clone();
    counted.set_metric_callback(move |info| {
        sql_log.lock().unwrap().push(info.statement.sql.clone());
    });
    (counted, log)
}

/// A feed's total with kept cells and nothing of its org past the watermark
/// reads the org's retention and the mark in one statement, and no event:
/// the open end is an hour's boundary and the unfolded tail is known to be
/// empty. Another org's event past the watermark changes nothing; one of
/// its own brings the tail back, and the total stays exact.
async fn a_total_with_every_event_folded_reads_no_event_row(db: TestDb) {
    let (counted, log) = seeded_and_folded_with_a_statement_log(&db).await;
    let kept = KeptCells::default();
    let all = ActivityFilter::default();
    let count = || async {
        activity::count(Source::kept(&counted, &kept), "org_acme", &Scope::Org, &all)
            .await
            .unwrap()
    };
    let raw = || async {
        let rows = db
            .rows(
                "SELECT COUNT(*) FROM activity_events WHERE org_id = 'org_acme'",
                vec![],
            )
            .await;
        rows[0].try_get_by_index::<i64>(0).unwrap() as u64
    };
    assert_eq!(count().await, raw().await);
    log.lock().unwrap().clear();
    assert_eq!(count().await, raw().await);
    let read: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(
        read.len(),
        1,
        "the retention and the mark, at once: {read:?}"
    );
    assert!(read[0].contains("org_retention"), "{read:?}");
    assert!(read[0].contains("rollup_watermarks"), "{read:?}");

    // Another org's event past the watermark is not this org's to read.
    let mut theirs = late_event(2, now_micros() - 3 * MICROS_PER_HOUR, "usr_globex_01");
    (theirs.org_id, theirs.workspace_id, theirs.app_id) = ("org_globex".into(), None, None);
    insert_batch(&db.db, vec![theirs], false).await.unwrap();
    assert_eq!(count().await, raw().await);
    let read: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(read.len(), 1, "another org's arrival: {read:?}");

    one_event_past_the_watermark(&db).await;
    assert_eq!(count().await, raw().await, "the unfolded event counts");
    let read: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(
        read.len(),
        2,
        "retention and mark, then the unfolded tail: {read:?}"
    );
    assert!(read[1].contains("\"seq\" >"), "{read:?}");
}

/// A feed's page and its exact total, with kept cells and nothing of the
/// org past the watermark, are one statement: the page's rows carry the
/// total's mark and retention. The total is the one counted alone (by a
/// bare connection, which reads the retention by itself), for the org and
/// a user, with a retention period set (then the window's partial first
/// hour is a second statement), with an event past the watermark (then the
/// tail is), and for an empty page (which has no row to carry them: the
/// total reads them itself).
async fn a_page_and_its_total_are_one_statement_when_the_page_has_rows(db: TestDb) {
    use activity_gateway::domain::feed::Cursor;
    use activity_gateway::service::retention;
    let (counted, log) = seeded_and_folded_with_a_statement_log(&db).await;
    let kept = KeptCells::default();
    let all = ActivityFilter::default();
    let oldest = Cursor {
        ts: i64::MIN / 2,
        id: String::new(),
    };
    let org = Scope::Org;
    let user = Scope::User("usr_acme_02".into());
    let read = |scope, cursor| page_and_total(&db, &counted, &kept, &log, scope, cursor);
    let full = activity::count(&db.db, "org_acme", &org, &all)
        .await
        .unwrap();
    for scope in [&org, &user] {
        read(scope, None).await; // keeps the cells
        let (rows, total, alone, statements) = read(scope, None).await;
        assert_eq!((rows, total), (20, alone), "{scope:?}");
        assert_eq!(statements.len(), 1, "{scope:?}: {statements:?}");
        assert!(
            statements[0].contains("rollup_watermarks"),
            "{statements:?}"
        );
        assert!(statements[0].contains("org_retention"), "{statements:?}");
    }

    // A period starts the window within an hour: that hour's events are
    // read beside the page (the mark is not read again).
    retention::set(&db.db, "org_acme", Some(1)).await.unwrap();
    read(&org, None).await; // keeps the cells of the new window
    let (rows, total, alone, statements) = read(&org, None).await;
    assert_eq!((rows, total), (20, alone));
    assert!(
        total < full,
        "a day's events of the seeded days: {total} of {full}"
    );
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert!(
        !statements[1].contains("rollup_watermarks"),
        "{statements:?}"
    );
    retention::set(&db.db, "org_acme", None).await.unwrap();

    let (rows, total, alone, statements) = read(&org, Some(&oldest)).await;
    assert_eq!((rows, total, alone), (0, full, full), "past the last page");
    assert_eq!(
        statements.len(),
        2,
        "the page, then the mark: {statements:?}"
    );

    one_event_past_the_watermark(&db).await;
    let (rows, total, alone, statements) = read(&org, None).await;
    assert_eq!((rows, total, alone), (20, full + 1, full + 1));
    assert_eq!(statements.len(), 2, "then the tail: {statements:?}");
    assert!(statements[1].contains("\"seq\" >"), "{statements:?}");
}

/// The page of 20 of `scope` after `cursor` and its total, read through
/// `counted` and `kept`; the statements they took; and the total counted
/// alone, which the total without kept cells equals too. The page's rows
/// are the ones read without the total.
async fn page_and_total(
    db: &TestDb,
    counted: &sea_orm::DatabaseConnection,
    kept: &KeptCells,
    log: &std::sync::Mutex<Vec<String>>,
    scope: &Scope,
    cursor: Option<&activity_gateway::domain::feed::Cursor>,
) -> (usize, u64, u64, Vec<String>) {
    let query = activity::PageQuery {
        org_id: "org_acme",
        scope,
        filter: &ActivityFilter::default(),
        limit: 20,
        cursor,
        columns: &[entity::activity_event::Column::Action],
        related: &[],
    };
    log.lock().unwrap().clear();
    let (rows, has_more, total) =
        activity::page_rows_and_count(Source::kept(counted, kept), &query)
            .await
            .unwrap();
    let statements: Vec<String> = log.lock().unwrap().drain(..).collect();
    let alone = activity::count(&db.db, "org_acme", scope, query.filter)
        .await
        .unwrap();
    // Without kept cells the page's mark serves only its retention.
    let (_, _, uncached) = activity::page_rows_and_count((&db.db).into(), &query)
        .await
        .unwrap();
    assert_eq!(uncached, alone, "without kept cells");
    let (page, more) = activity::page_rows(&db.db, &query).await.unwrap();
    let actions = |rows: &[sea_orm::QueryResult]| -> Vec<String> {
        rows.iter()
            .map(|r| r.try_get_by_index(2).unwrap())
            .collect()
    };
    assert_eq!(actions(&rows), actions(&page), "the page's rows");
    assert_eq!(has_more, more);
    (rows.len(), total, alone, statements)
}

/// The events past the watermark are read by their `seq` range, whatever
/// the scope's own index offers: SQLite's planner, left to itself, walked
/// the org's whole window through `ix_activity_events_org_ts` for them (the
/// plan is SQLite's to show; PostgreSQL plans the range from the value).
async fn the_unfolded_tail_is_read_by_its_seq_range_not_the_scopes_window(db: TestDb) {
    db.seed(3_000).await;
    rollups::refresh(&db.db).await.unwrap();
    one_event_past_the_watermark(&db).await;
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Statement>::new()));
    let statements = log.clone();
    counted.set_metric_callback(move |info| {
        statements.lock().unwrap().push(info.statement.clone());
    });
    let kept = KeptCells::default();
    for scope in [Scope::Org, Scope::User("usr_acme_02".into())] {
        let count = activity::count(
            Source::kept(&counted, &kept),
            "org_acme",
            &scope,
            &ActivityFilter::default(),
        )
        .await
        .unwrap();
        let column = if scope == Scope::Org {
            "org_id"
        } else {
            "user_id"
        };
        let id = if scope == Scope::Org {
            "org_acme"
        } else {
            "usr_acme_02"
        };
        let rows = db
            .rows(
                &format!("SELECT COUNT(*) FROM activity_events WHERE {column} = ?"),
                vec![id.into()],
            )
            .await;
        assert_eq!(count as i64, rows[0].try_get_by_index::<i64>(0).unwrap());
    }
    let tails: Vec<Statement> = log
        .lock()
        .unwrap()
        .drain(..)
        .filter(|s| s.sql.contains("\"seq\" >"))
        .collect();
    assert_eq!(tails.len(), 2, "one tail read per scope");
    if db.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    for tail in tails {
        let plan = db
            .db
            .query_all_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", tail.sql),
                tail.values.clone().unwrap().0,
            ))
            .await
            .unwrap();
        let steps: Vec<String> = plan
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect();
        assert!(
            steps
                .iter()
                .any(|s| s.contains("INTEGER PRIMARY KEY (rowid>?)")),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s.contains("USING INDEX") || s.contains("COVERING INDEX")),
            "{steps:?}"
        );
    }
}

/// One event of usr_acme_02, three hours old, not folded yet.
async fn one_event_past_the_watermark(db: &TestDb) {
    let event = late_event(1, now_micros() - 3 * MICROS_PER_HOUR, "usr_acme_02");
    insert_batch(&db.db, vec![event], false).await.unwrap();
}
