//! Retention: an org's period is set by an admin (GraphQL) or the operator
//! (CLI); the purge deletes the org's older raw events in whole hours, and
//! only folded ones, so feeds no longer list them while summaries of whole
//! hours answer exactly as before from the rollups; each purge is recorded
//! as an event of the org; other orgs keep everything.

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::feed::{ActivityFilter, Scope};
use activity_gateway::domain::permission::Role;
use activity_gateway::domain::time::{now_micros, MICROS_PER_HOUR};
use activity_gateway::service::{retention, summary};
use serde_json::json;

on_both_backends!(
    a_period_holds_in_feeds_and_totals_the_moment_it_is_set,
    a_purge_empties_feeds_of_old_events_while_whole_hour_summaries_stay_exact,
    retention_needs_its_permission_and_a_period_within_bounds,
    the_retention_command_sets_a_period_and_purges,
);

const SET: &str = "mutation($days: Int) { setRetention(days: $days) { days purgedBefore } }";

async fn set_retention(
    app: &TestApp,
    key: &str,
    days: serde_json::Value,
) -> (u16, serde_json::Value) {
    app.graphql_with(SET, days, |r| r.header("X-Api-Key", key))
        .await
}

async fn a_period_holds_in_feeds_and_totals_the_moment_it_is_set(db: TestDb) {
    db.seed(3_000).await; // over the last 14 days
    let admin = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // A second gateway on the same database, as another replica.
    let other = TestApp::spawn(&db.db).await;
    let (_, body) = set_retention(&app, &admin, json!({ "days": 10 })).await;
    assert_eq!(body["data"]["setRetention"]["days"], 10, "{body}");
    // No purge ran: the rows are all still there.
    let all = db.count_events("org_id = 'org_acme'").await;
    let edge = now_micros() - 10 * 24 * MICROS_PER_HOUR;
    let kept = db
        .count_events(&format!("org_id = 'org_acme' AND ts >= {edge}"))
        .await;
    assert!(all - kept > 300, "{all} {kept}");
    for gateway in [&app, &other] {
        let (status, page) = gateway
            .get("/v1/orgs/org_acme/activity?limit=200", &admin)
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], kept, "REST's total stops at the edge");
        let body = gateway
            .execute(
                &admin,
                r#"{ org(id: "org_acme") { activity(first: 1) { totalCount } } }"#,
            )
            .await;
        assert_eq!(
            body["data"]["org"]["activity"]["totalCount"], kept,
            "{body}"
        );
    }
    // Walking the whole feed reaches the edge and stops there.
    let mut cursor: Option<String> = None;
    let mut listed = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orgs/org_acme/activity?limit=200&cursor={c}"),
            None => "/v1/orgs/org_acme/activity?limit=200".to_owned(),
        };
        let (_, page) = app.get(&path, &admin).await;
        for e in page["activities"].as_array().unwrap() {
            let ts =
                activity_gateway::domain::time::parse_timestamp(e["timestamp"].as_str().unwrap())
                    .unwrap();
            assert!(ts >= edge, "{e}");
            listed += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed, kept);
    app.stop().await;
    other.stop().await;
}

async fn a_purge_empties_feeds_of_old_events_while_whole_hour_summaries_stay_exact(db: TestDb) {
    db.seed(3_000).await; // over the last 14 days
    let admin = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, body) = set_retention(&app, &admin, json!({ "days": 7 })).await;
    assert_eq!(
        body["data"]["setRetention"],
        json!({ "days": 7, "purgedBefore": null }),
        "{body}"
    );
    let hour = now_micros().div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
    let (start, end) = (hour - 20 * 24 * MICROS_PER_HOUR, hour);
    let whole_hours = || async {
        summary::summarize(
            &db.db,
            "org_acme",
            &Scope::Org,
            &ActivityFilter::default(),
            start,
            end,
        )
        .await
        .unwrap()
    };
    let before = whole_hours().await;
    let globex_before = db.count_events("org_id = 'org_globex'").await;
    let old = db
        .count_events(&format!(
            "org_id = 'org_acme' AND ts < {}",
            hour - 7 * 24 * MICROS_PER_HOUR
        ))
        .await;
    assert!(old > 500, "the seed spans 14 days: {old}");

    let purged = retention::purge(&db.db).await.unwrap().unwrap();
    assert_eq!(purged.len(), 1, "{purged:?}");
    let cutoff = purged[0].before;
    assert_eq!(cutoff % MICROS_PER_HOUR, 0, "whole hours only");
    assert!(cutoff <= now_micros() - 7 * 24 * MICROS_PER_HOUR);
    assert_eq!(
        db.count_events(&format!("org_id = 'org_acme' AND ts < {cutoff}"))
            .await,
        0
    );
    assert!(purged[0].events as i64 >= old - 200, "{purged:?}");
    assert_eq!(
        db.count_events("org_id = 'org_globex'").await,
        globex_before,
        "another org keeps everything"
    );

    // Summaries of whole hours read the rollups: unchanged.
    let after = whole_hours().await;
    assert_eq!(after.totals.requests, before.totals.requests);
    assert_eq!(after.totals.successes, before.totals.successes);
    assert_eq!(after.by_action, before.by_action);
    assert_eq!(after.by_resource, before.by_resource);

    // Feeds list nothing older than the period (the purge kept the rest of
    // its last hour), and the org says from when rows were purged.
    let edge = now_micros() - 7 * 24 * MICROS_PER_HOUR;
    let body = app
        .execute(
            &admin,
            r#"{ org(id: "org_acme") { retention { days purgedBefore } activity(first: 1, filter: { endTime: "2099-01-01T00:00:00Z" }) { totalCount } } }"#,
        )
        .await;
    let org = &body["data"]["org"];
    assert_eq!(org["retention"]["days"], 7, "{body}");
    assert_eq!(
        org["retention"]["purgedBefore"],
        activity_gateway::domain::time::format_micros(cutoff)
    );
    assert_eq!(
        org["activity"]["totalCount"],
        db.count_events(&format!("org_id = 'org_acme' AND ts >= {edge}"))
            .await,
        "{body}"
    );

    // The purge is itself an event of the org.
    assert_eq!(
        db.count_events(
            "org_id = 'org_acme' AND action = 'purge' AND resource_type = 'retention' AND principal_type = 'system'"
        )
        .await,
        1
    );
    // A second purge finds nothing more to delete, and records nothing.
    let again = retention::purge(&db.db).await.unwrap().unwrap();
    assert_eq!(again[0].events, 0);
    assert_eq!(
        db.count_events("org_id = 'org_acme' AND action = 'purge'")
            .await,
        1
    );
    // Back to forever: nothing is purged any more.
    let (_, body) = set_retention(&app, &admin, json!({ "days": null })).await;
    assert_eq!(body["data"]["setRetention"]["days"], json!(null), "{body}");
    assert!(retention::purge(&db.db).await.unwrap().unwrap().is_empty());
    app.stop().await;
}

async fn retention_needs_its_permission_and_a_period_within_bounds(db: TestDb) {
    db.seed(20).await;
    let admin = db.key("org_acme", Role::Admin).await;
    let member = db.key("org_acme", Role::Member).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, body) = set_retention(&app, &member, json!({ "days": 7 })).await;
    let error = &body["errors"][0]["extensions"];
    assert_eq!(
        (&error["code"], &error["details"]["required_permission"]),
        (&json!("FORBIDDEN"), &json!("activity:retention")),
        "{body}"
    );
    for (days, kind) in [
        (0, "greater_than_equal"),
        (-1, "greater_than_equal"),
        (36_501, "less_than_equal"),
    ] {
        let (_, body) = set_retention(&app, &admin, json!({ "days": days })).await;
        let error = &body["errors"][0]["extensions"];
        assert_eq!(error["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(error["details"]["detail"][0]["type"], kind, "{body}");
        assert_eq!(
            error["details"]["detail"][0]["loc"],
            json!(["days"]),
            "{body}"
        );
    }
    for days in [1, 36_500] {
        let (_, body) = set_retention(&app, &admin, json!({ "days": days })).await;
        assert_eq!(body["data"]["setRetention"]["days"], days, "{body}");
    }
    app.stop().await;
}

async fn the_retention_command_sets_a_period_and_purges(db: TestDb) {
    db.seed(500).await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
            .args(args)
            .args(["--database-url", &db.url])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["retention", "set", "--org", "org_globex", "--days", "3"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "org_globex keeps its raw events 3 days");
    let (ok, _, err) = run(&["retention", "set", "--org", "org_nope", "--days", "3"]);
    assert!(!ok);
    assert!(err.contains("no org org_nope"), "{err}");
    let (ok, _, err) = run(&["retention", "set", "--org", "org_globex", "--days", "0"]);
    assert!(!ok);
    assert!(err.contains("greater than or equal to 1"), "{err}");
    let (ok, out, err) = run(&["retention", "purge"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("org_globex: purged "), "{out}");
    let cutoff =
        (now_micros() - 3 * 24 * MICROS_PER_HOUR).div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
    assert_eq!(
        db.count_events(&format!(
            "org_id = 'org_globex' AND action <> 'purge' AND ts < {cutoff}"
        ))
        .await,
        0
    );
    assert!(db.count_events("org_id = 'org_acme'").await > 200);
    let (ok, out, _) = run(&["retention", "set", "--org", "org_globex", "--forever"]);
    assert!(ok);
    assert_eq!(out.trim(), "org_globex keeps its raw events forever");
}
