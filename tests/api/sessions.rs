//! Session analytics and history (`/get`, `/search`, `Org.sessionAnalytics`,
//! `Org.sessions`, `User.sessions`) against a hand-counted fixture and the
//! demo set, on both backends.

use std::collections::HashSet;

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::permission::{Permission, Role};
use activity_gateway::domain::time::{now_micros, parse_timestamp, MICROS_PER_MINUTE};
use activity_gateway::service::keys::NewKey;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{json, Value};

on_both_backends!(
    the_fixtures_counts_facets_and_filter_options_are_as_counted_by_hand,
    a_profiles_summary_counts_its_sessions_and_only_open_recent_sessions_are_active,
    date_from_is_inclusive_and_a_bare_date_to_includes_its_day,
    department_and_role_filters_narrow_the_counts_and_another_orgs_ids_match_nothing,
    the_fixtures_analytics_answer_is_as_recorded,
    hand_counted_fixture_history_filters_and_pages,
    demo_totals_agree_and_every_page_walk_sees_each_session_once,
    graphql_twins_answer_what_rest_answers,
    each_bad_search_field_answers_422_at_its_location_with_its_type,
    every_bad_field_of_a_search_is_reported_at_once,
    the_session_page_size_is_served_at_its_edges,
    malformed_json_answers_422_and_an_empty_body_counts_every_session,
    graphql_reports_bad_session_inputs_at_its_own_names,
    the_session_routes_need_session_read_and_a_credential,
    the_export_walk_sees_every_session_once_in_start_order,
);

const ROUTE: &str = "/api/v5/artifacts/activity";

fn at(text: &str) -> i64 {
    parse_timestamp(text).unwrap()
}

/// org_fix: departments Alpha and Beta, four users, seven sessions over
/// 2026-03-01..03, two of them active now (s5, s7) and one open but idle (s6).
async fn fixture(db: &TestDb) -> String {
    let now = now_micros();
    entity::org::ActiveModel {
        id: Set("org_fix".into()),
        name: Set("Fixture".into()),
        created_at: Set(0),
    }
    .insert(&db.db)
    .await
    .unwrap();
    for (id, name) in [("dep_fix_a", "Alpha"), ("dep_fix_b", "Beta")] {
        entity::department::ActiveModel {
            id: Set(id.into()),
            org_id: Set("org_fix".into()),
            name: Set(name.into()),
        }
        .insert(&db.db)
        .await
        .unwrap();
    }
    for (id, name, role, department) in [
        ("usr_fix_1", "Ada", "admin", Some("dep_fix_a")),
        ("usr_fix_2", "Bo", "member", Some("dep_fix_a")),
        ("usr_fix_3", "Cy", "viewer", Some("dep_fix_b")),
        ("usr_fix_4", "Di", "viewer", None),
    ] {
        entity::user::ActiveModel {
            id: Set(id.into()),
            org_id: Set("org_fix".into()),
            email: Set(format!("{}@fix.example", name.to_lowercase())),
            name: Set(name.into()),
            role: Set(role.into()),
            department_id: Set(department.map(Into::into)),
            created_at: Set(0),
        }
        .insert(&db.db)
        .await
        .unwrap();
    }
    let minutes_ago = |m: i64| now - m * MICROS_PER_MINUTE;
    let sessions: [(&str, &str, &str, Option<&str>, i64, i64, Option<i64>); 7] = [
        (
            "ses_fix_1",
            "usr_fix_1",
            "login",
            None,
            at("2026-03-01T09:00:00Z"),
            at("2026-03-01T10:00:00Z"),
            Some(at("2026-03-01T10:00:00Z")),
        ),
        (
            "ses_fix_2",
            "usr_fix_2",
            "login",
            None,
            at("2026-03-01T11:00:00Z"),
            at("2026-03-01T12:30:00Z"),
            Some(at("2026-03-01T12:30:00Z")),
        ),
        (
            "ses_fix_3",
            "usr_fix_2",
            "emulation",
            Some("usr_fix_1"),
            at("2026-03-02T09:00:00Z"),
            at("2026-03-02T09:30:00Z"),
            Some(at("2026-03-02T09:30:00Z")),
        ),
        (
            "ses_fix_4",
            "usr_fix_3",
            "login",
            None,
            at("2026-03-02T10:00:00Z"),
            at("2026-03-02T12:00:00Z"),
            Some(at("2026-03-02T12:00:00Z")),
        ),
        (
            "ses_fix_5",
            "usr_fix_3",
            "login",
            None,
            at("2026-03-03T08:00:00Z"),
            minutes_ago(5),
            None,
        ),
        (
            "ses_fix_6",
            "usr_fix_4",
            "emulation",
            Some("usr_fix_1"),
            at("2026-03-03T09:00:00Z"),
            minutes_ago(120),
            None,
        ),
        (
            "ses_fix_7",
            "usr_fix_1",
            "login",
            None,
            at("2026-03-03T10:00:00Z"),
            minutes_ago(1),
            None,
        ),
    ];
    for (id, user, kind, by, started, seen, ended) in sessions {
        entity::session::ActiveModel {
            id: Set(id.into()),
            org_id: Set("org_fix".into()),
            user_id: Set(user.into()),
            kind: Set(kind.into()),
            emulated_by: Set(by.map(Into::into)),
            started_at: Set(started),
            last_seen_at: Set(seen),
            ended_at: Set(ended),
            ip: Set(Some("10.0.0.1".into())),
            user_agent: Set(Some("Mozilla/5.0 (X11; \"quoted\", with commas)".into())),
        }
        .insert(&db.db)
        .await
        .unwrap();
    }
    db.key("org_fix", Role::Viewer).await
}

fn counts(v: &Value) -> (i64, i64, i64, i64) {
    let n = |f: &str| v[f].as_i64().unwrap_or_else(|| panic!("{f} in {v}"));
    (
        n("sessions_count"),
        n("logins_count"),
        n("emulations_count"),
        n("active_profiles_count"),
    )
}

fn facet(list: &Value, key: &str) -> i64 {
    list.as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .map_or(0, |f| f["sessions_count"].as_i64().unwrap())
}

/// The whole `/get` answer of the fixture, as an `insta` snapshot
/// (`tests/api/snapshots/`), with what moves with the clock (the open
/// sessions' last activity and length so far) redacted; those of a closed
/// session are checked by hand below.
async fn the_fixtures_analytics_answer_is_as_recorded(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, answer) = app.post_artifact(&key, "get", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    insta::assert_json_snapshot!("fixture_analytics", answer, {
        ".profile_summary[].last_active_at" => "[moves with the clock]",
        ".profile_summary[].total_session_seconds" => "[moves with the clock]",
    });
    app.stop().await;
}

/// `/get` of the whole fixture: its counts, facets by day, role and department, and the filter options.
async fn the_fixtures_counts_facets_and_filter_options_are_as_counted_by_hand(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, all) = app.post_artifact(&key, "get", json!({})).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(counts(&all), (7, 5, 2, 2));
    let by_day = &all["analytics"]["by_day"];
    assert_eq!(
        (
            facet(by_day, "2026-03-01"),
            facet(by_day, "2026-03-02"),
            facet(by_day, "2026-03-03")
        ),
        (2, 2, 3)
    );
    assert_eq!(
        (
            facet(&all["analytics"]["by_role"], "admin"),
            facet(&all["analytics"]["by_role"], "member"),
            facet(&all["analytics"]["by_role"], "viewer")
        ),
        (2, 2, 3)
    );
    assert_eq!(
        (
            facet(&all["analytics"]["by_department"], "dep_fix_a"),
            facet(&all["analytics"]["by_department"], "dep_fix_b")
        ),
        (4, 2)
    );
    let departments = &all["resources"]["departments"];
    assert_eq!(
        departments,
        &json!([
            { "id": "dep_fix_a", "name": "Alpha", "sessions_count": 4 },
            { "id": "dep_fix_b", "name": "Beta", "sessions_count": 2 },
        ])
    );
    let roles: Vec<(String, i64)> = all["resources"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().into(),
                r["sessions_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("admin".into(), 2),
            ("member".into(), 2),
            ("viewer".into(), 3)
        ]
    );
    app.stop().await;
}

/// The profile summary: Bo's two closed sessions summed by hand; only Ada and Cy,
/// with open sessions seen lately, are active.
async fn a_profiles_summary_counts_its_sessions_and_only_open_recent_sessions_are_active(
    db: TestDb,
) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, all) = app.post_artifact(&key, "get", json!({})).await;
    assert_eq!(status, 200, "{all}");
    let profiles = all["profile_summary"].as_array().unwrap();
    assert_eq!(profiles.len(), 4);
    let bo = profiles
        .iter()
        .find(|p| p["profile_id"] == "usr_fix_2")
        .unwrap();
    assert_eq!(
        (
            &bo["sessions_count"],
            &bo["logins_count"],
            &bo["emulations_count"],
            &bo["total_session_seconds"],
            &bo["active"]
        ),
        (
            &json!(2),
            &json!(1),
            &json!(1),
            &json!(5400 + 1800),
            &json!(false)
        )
    );
    assert_eq!(bo["last_active_at"], "2026-03-02T09:30:00.000000Z");
    assert_eq!(
        (&bo["department_name"], &bo["role"]),
        (&json!("Alpha"), &json!("member"))
    );
    let active: HashSet<&str> = profiles
        .iter()
        .filter(|p| p["active"] == true)
        .map(|p| p["profile_id"].as_str().unwrap())
        .collect();
    assert_eq!(active, HashSet::from(["usr_fix_1", "usr_fix_3"]));
    app.stop().await;
}

/// `date_from` is inclusive; a bare `date_to` includes that day, a datetime
/// `date_to` excludes itself; the filter options count the date range
/// whatever department is chosen.
async fn date_from_is_inclusive_and_a_bare_date_to_includes_its_day(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, day2) = app
        .post_artifact(
            &key,
            "get",
            json!({ "date_from": "2026-03-02", "date_to": "2026-03-02" }),
        )
        .await;
    assert_eq!(counts(&day2), (2, 1, 1, 0));
    // The filter options count the date range, whatever department or role is chosen.
    let (_, day2_beta) = app.post_artifact(&key, "get", json!({ "date_from": "2026-03-02", "date_to": "2026-03-02", "department_ids": ["dep_fix_b"] })).await;
    assert_eq!(counts(&day2_beta), (1, 1, 0, 0));
    assert_eq!(
        day2_beta["resources"]["departments"][0]["sessions_count"],
        1
    );
    assert_eq!(
        day2_beta["resources"]["departments"][1]["sessions_count"],
        1
    );
    let (_, before) = app
        .post_artifact(&key, "get", json!({ "date_to": "2026-03-02T00:00:00Z" }))
        .await;
    assert_eq!(counts(&before).0, 2);
    let (_, from) = app
        .post_artifact(&key, "get", json!({ "date_from": "2026-03-02T00:00:00" }))
        .await;
    assert_eq!(counts(&from), (5, 3, 2, 2));
    app.stop().await;
}

/// Departments and roles narrow the counts, together too; another org's
/// department matches no user of this org.
async fn department_and_role_filters_narrow_the_counts_and_another_orgs_ids_match_nothing(
    db: TestDb,
) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, alpha) = app
        .post_artifact(&key, "get", json!({ "department_ids": ["dep_fix_a"] }))
        .await;
    assert_eq!(counts(&alpha), (4, 3, 1, 1));
    let (_, viewers) = app
        .post_artifact(&key, "get", json!({ "roles": ["viewer"] }))
        .await;
    assert_eq!(counts(&viewers), (3, 2, 1, 1));
    let (_, members_of_alpha) = app
        .post_artifact(
            &key,
            "get",
            json!({ "roles": ["member"], "department_ids": ["dep_fix_a"] }),
        )
        .await;
    assert_eq!(counts(&members_of_alpha), (2, 1, 1, 0));
    // Another org's department filters nothing in: it matches no user of this org.
    let (_, foreign) = app
        .post_artifact(&key, "get", json!({ "department_ids": ["dep_acme_sales"] }))
        .await;
    assert_eq!(counts(&foreign), (0, 0, 0, 0));
    app.stop().await;
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn hand_counted_fixture_history_filters_and_pages(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let mut walked = Vec::new();
    for page in 1..=4 {
        let (status, body) = app
            .post_artifact(&key, "search", json!({ "page": page, "page_size": 3 }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (
                &body["total_count"],
                &body["total_pages"],
                &body["page"],
                &body["page_size"]
            ),
            (&json!(7), &json!(3), &json!(page), &json!(3))
        );
        walked.extend(ids(&body));
    }
    assert_eq!(
        walked,
        [
            "ses_fix_7",
            "ses_fix_6",
            "ses_fix_5",
            "ses_fix_4",
            "ses_fix_3",
            "ses_fix_2",
            "ses_fix_1"
        ],
        "newest first by default; page 4 is empty"
    );
    let (_, asc) = app
        .post_artifact(
            &key,
            "search",
            json!({ "sort_order": "asc", "page_size": 200 }),
        )
        .await;
    assert_eq!(
        ids(&asc),
        [
            "ses_fix_1",
            "ses_fix_2",
            "ses_fix_3",
            "ses_fix_4",
            "ses_fix_5",
            "ses_fix_6",
            "ses_fix_7"
        ]
    );
    let (_, active) = app
        .post_artifact(&key, "search", json!({ "active": true }))
        .await;
    assert_eq!(ids(&active), ["ses_fix_7", "ses_fix_5"]);
    let (_, inactive) = app
        .post_artifact(&key, "search", json!({ "active": false }))
        .await;
    assert_eq!(inactive["total_count"], 5);
    let (_, alpha_day2) = app.post_artifact(&key, "search", json!({ "department_ids": ["dep_fix_a"], "date_from": "2026-03-02", "date_to": "2026-03-02" })).await;
    assert_eq!(ids(&alpha_day2), ["ses_fix_3"]);
    let emulation = &alpha_day2["data"][0];
    assert_eq!(
        (
            &emulation["kind"],
            &emulation["profile_name"],
            &emulation["emulated_by"],
            &emulation["emulated_by_name"]
        ),
        (
            &json!("emulation"),
            &json!("Bo"),
            &json!("usr_fix_1"),
            &json!("Ada")
        )
    );
    assert_eq!(
        (
            &emulation["duration_seconds"],
            &emulation["active"],
            &emulation["ended_at"]
        ),
        (
            &json!(1800),
            &json!(false),
            &json!("2026-03-02T09:30:00.000000Z")
        )
    );
    assert_eq!(
        (
            &emulation["department_name"],
            &emulation["role"],
            &emulation["ip_address"]
        ),
        (&json!("Alpha"), &json!("member"), &json!("10.0.0.1"))
    );
    let open = &active["data"][0];
    assert_eq!(
        (&open["ended_at"], &open["active"]),
        (&Value::Null, &json!(true))
    );
    app.stop().await;
}

async fn demo_totals_agree_and_every_page_walk_sees_each_session_once(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let filters = [
        json!({}),
        json!({ "roles": ["viewer", "member"] }),
        json!({ "department_ids": ["dep_acme_engineering", "dep_acme_sales"], "date_from": "2020-01-01" }),
        json!({ "date_to": "2099-01-01T00:00:00Z", "roles": ["admin"] }),
    ];
    for filter in filters {
        let (_, analytics) = app.post_artifact(&key, "get", filter.clone()).await;
        let (sessions, logins, emulations, _) = counts(&analytics);
        assert!(sessions > 0, "{filter}");
        assert_eq!(logins + emulations, sessions, "{filter}");
        let profile_sum: i64 = analytics["profile_summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sessions_count"].as_i64().unwrap())
            .sum();
        assert_eq!(profile_sum, sessions);
        let day_sum: i64 = analytics["analytics"]["by_day"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sessions_count"].as_i64().unwrap())
            .sum();
        assert_eq!(day_sum, sessions);
        for order in ["asc", "desc"] {
            let mut seen = Vec::new();
            let mut page = 1;
            loop {
                let mut body = filter.clone();
                body["page"] = json!(page);
                body["page_size"] = json!(17);
                body["sort_order"] = json!(order);
                let (status, found) = app.post_artifact(&key, "search", body).await;
                assert_eq!(status, 200, "{found}");
                assert_eq!(
                    found["total_count"], sessions,
                    "search and analytics agree for {filter}"
                );
                let items = found["data"].as_array().unwrap().clone();
                if items.is_empty() {
                    assert_eq!(page, found["total_pages"].as_i64().unwrap() + 1);
                    break;
                }
                seen.extend(items.into_iter().map(|s| {
                    (
                        s["started_at"].as_str().unwrap().to_owned(),
                        s["session_id"].as_str().unwrap().to_owned(),
                    )
                }));
                page += 1;
            }
            assert_eq!(seen.len() as i64, sessions);
            assert_eq!(
                seen.iter().map(|s| &s.1).collect::<HashSet<_>>().len() as i64,
                sessions,
                "each session once"
            );
            let mut sorted = seen.clone();
            sorted.sort();
            if order == "desc" {
                sorted.reverse();
            }
            assert_eq!(seen, sorted, "{order} by start");
        }
    }
    app.stop().await;
}

async fn graphql_twins_answer_what_rest_answers(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, rest) = app
        .post_artifact(&key, "get", json!({ "roles": ["admin", "member"] }))
        .await;
    let query = r#"{ org(id: "org_fix") {
        sessionAnalytics(filter: { roles: ["admin", "member"] }) {
          sessionsCount loginsCount emulationsCount activeProfilesCount
          profileSummary { profileId sessionsCount totalSessionSeconds active }
          resources { departments { id sessionsCount } roles { id sessionsCount } }
          analytics { byDay { key sessionsCount } }
        }
        sessions(filter: { active: true }, pageSize: 1, sortOrder: ASC) { totalCount totalPages data { id kind active } }
      }
      node(id: "usr_fix_2") { ... on User { sessions(sortOrder: ASC) { totalCount data { id emulatedBy emulatedByName durationSeconds } } } }
    }"#;
    let (status, body) = app.graphql(&key, query).await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{body}");
    let analytics = &body["data"]["org"]["sessionAnalytics"];
    assert_eq!(analytics["sessionsCount"], rest["sessions_count"]);
    assert_eq!(analytics["loginsCount"], rest["logins_count"]);
    assert_eq!(analytics["emulationsCount"], rest["emulations_count"]);
    assert_eq!(
        analytics["activeProfilesCount"],
        rest["active_profiles_count"]
    );
    assert_eq!(
        analytics["profileSummary"].as_array().unwrap().len(),
        rest["profile_summary"].as_array().unwrap().len()
    );
    assert_eq!(
        analytics["resources"]["departments"][0]["sessionsCount"],
        rest["resources"]["departments"][0]["sessions_count"]
    );
    assert_eq!(
        analytics["analytics"]["byDay"].as_array().unwrap().len(),
        rest["analytics"]["by_day"].as_array().unwrap().len()
    );
    let sessions = &body["data"]["org"]["sessions"];
    assert_eq!(
        (&sessions["totalCount"], &sessions["totalPages"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(
        sessions["data"],
        json!([{ "id": "ses_fix_5", "kind": "login", "active": true }])
    );
    let bo = &body["data"]["node"]["sessions"];
    assert_eq!(bo["totalCount"], 2);
    assert_eq!(
        bo["data"][1],
        json!({ "id": "ses_fix_3", "emulatedBy": "usr_fix_1", "emulatedByName": "Ada", "durationSeconds": 1800 })
    );
    // Departments are nodes; API keys are not (credentials, not data).
    let body = app
        .execute(
            &key,
            r#"{ node(id: "dep_fix_a") { id ... on Department { name } } }"#,
        )
        .await;
    assert_eq!(
        body["data"]["node"],
        json!({ "id": "dep_fix_a", "name": "Alpha" })
    );
    let keys = app.execute(&key, r#"{ viewer { principalId } }"#).await;
    let own_key = keys["data"]["viewer"]["principalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .execute(&key, &format!(r#"{{ node(id: "{own_key}") {{ id }} }}"#))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
        "{body}"
    );
    // A session is a node too; another org's session id reads like an unknown one.
    let body = app.execute(&key, r#"{ node(id: "ses_fix_3") { id ... on Session { kind profileName emulatedByName } } }"#).await;
    assert_eq!(
        body["data"]["node"],
        json!({ "id": "ses_fix_3", "kind": "emulation", "profileName": "Bo", "emulatedByName": "Ada" })
    );
    db.seed(10).await;
    for unknown in ["ses_acme_00001", "ses_nope"] {
        let body = app
            .execute(&key, &format!(r#"{{ node(id: "{unknown}") {{ id }} }}"#))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "RESOURCE_NOT_FOUND",
            "{body}"
        );
    }
    app.stop().await;
}

/// A bad value of each field of `/search`: 422 naming where and what.
async fn each_bad_search_field_answers_422_at_its_location_with_its_type(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    for (body, loc, kind) in [
        (
            json!({ "page_size": 0 }),
            json!(["body", "page_size"]),
            "greater_than_equal",
        ),
        (
            json!({ "page_size": 201 }),
            json!(["body", "page_size"]),
            "less_than_equal",
        ),
        (
            json!({ "page_size": "ten" }),
            json!(["body", "page_size"]),
            "int_type",
        ),
        (
            json!({ "page": 0 }),
            json!(["body", "page"]),
            "greater_than_equal",
        ),
        (
            json!({ "sort_order": "sideways" }),
            json!(["body", "sort_order"]),
            "literal_error",
        ),
        (
            json!({ "roles": ["owner"] }),
            json!(["body", "roles", 0]),
            "literal_error",
        ),
        (
            json!({ "roles": "admin" }),
            json!(["body", "roles"]),
            "list_type",
        ),
        (
            json!({ "date_from": "last week" }),
            json!(["body", "date_from"]),
            "datetime_parsing",
        ),
        (
            json!({ "date_from": "2026-03-03", "date_to": "2026-03-01" }),
            json!(["body", "date_to"]),
            "value_error",
        ),
        (
            json!({ "active": "yes" }),
            json!(["body", "active"]),
            "bool_type",
        ),
        (json!([1, 2]), json!(["body"]), "model_attributes_type"),
    ] {
        let (status, answer) = app.post_artifact(&key, "search", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["type"], kind, "{body}: {answer}");
    }
    app.stop().await;
}

/// Several bad fields: one 422 lists them all.
async fn every_bad_field_of_a_search_is_reported_at_once(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let (_, answer) = app
        .post_artifact(
            &key,
            "search",
            json!({ "page": 0, "page_size": 500, "sort_order": "x" }),
        )
        .await;
    assert_eq!(answer["detail"].as_array().unwrap().len(), 3);
    app.stop().await;
}

/// `page_size` 1 and 200 pass (the fixture has 7 sessions).
async fn the_session_page_size_is_served_at_its_edges(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    for size in [1, 200] {
        let (status, answer) = app
            .post_artifact(&key, "search", json!({ "page_size": size }))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            answer["data"].as_array().unwrap().len(),
            7.min(size) as usize
        );
    }
    app.stop().await;
}

/// Malformed JSON is `json_invalid`; no body at all is an empty filter.
async fn malformed_json_answers_422_and_an_empty_body_counts_every_session(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    // Malformed JSON, and an empty body (every field optional).
    let res = app
        .client
        .post(app.url(&format!("{ROUTE}/get")))
        .header("X-Api-Key", &key)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let (status, answer) = read(res).await;
    assert_eq!(
        (status, &answer["detail"][0]["type"]),
        (422, &json!("json_invalid"))
    );
    let (status, answer) = read(
        app.client
            .post(app.url(&format!("{ROUTE}/get")))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &answer["sessions_count"]), (200, &json!(7)));
    app.stop().await;
}

/// GraphQL locates the same problems in its own spelling.
async fn graphql_reports_bad_session_inputs_at_its_own_names(db: TestDb) {
    let key = fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let body = app.execute(&key, r#"{ org(id: "org_fix") { sessions(pageSize: 201, filter: { dateFrom: "nope" }) { totalCount } } }"#).await;
    let locs: Vec<Value> = body["errors"][0]["extensions"]["details"]["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(locs, [json!(["filter", "dateFrom"]), json!(["pageSize"])]);
    app.stop().await;
}

/// Without `session:read`: 403 naming it, on both transports; without a credential: 401.
async fn the_session_routes_need_session_read_and_a_credential(db: TestDb) {
    fixture(&db).await;
    let app = TestApp::spawn(&db.db).await;
    let no_sessions = db
        .key_with(NewKey {
            org_id: "org_fix".into(),
            role: None,
            permissions: [Permission::ActivityRead].into(),
            user_id: None,
            name: None,
        })
        .await;
    for route in ["get", "search"] {
        let (status, answer) = app.post_artifact(&no_sessions, route, json!({})).await;
        assert_eq!(status, 403);
        assert_eq!(answer["details"]["required_permission"], "session:read");
        let (status, answer) = read(
            app.client
                .post(app.url(&format!("{ROUTE}/{route}")))
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, &answer["error"]),
            (401, &json!("AUTHENTICATION_FAILED"))
        );
    }
    let (_, body) = app
        .graphql(
            &no_sessions,
            r#"{ org(id: "org_fix") { sessionAnalytics { sessionsCount } } }"#,
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["required_permission"],
        "session:read"
    );
    app.stop().await;
}

/// The keyset walk the export uses gives the same sessions, in the same
/// order, as the history sorted by start, for page sizes below, at and past
/// the total.
async fn the_export_walk_sees_every_session_once_in_start_order(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let mut history = Vec::new();
    for page in 1.. {
        let (_, body) = app
            .post_artifact(
                &key,
                "search",
                json!({ "sort_order": "asc", "page_size": 200, "page": page }),
            )
            .await;
        let found = ids(&body);
        if found.is_empty() {
            break;
        }
        history.extend(found);
    }
    assert!(history.len() > 17, "the demo has sessions to walk");
    let idle = activity_gateway::service::sessions::Activeness {
        seen_since: now_micros() - 30 * MICROS_PER_MINUTE,
    };
    for limit in [17, history.len() as u64, history.len() as u64 + 1] {
        let mut walked: Vec<String> = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = activity_gateway::service::sessions::in_start_order(
                &db.db,
                "org_acme",
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
                limit,
                idle,
            )
            .await
            .unwrap();
            assert!(page.len() as u64 <= limit);
            let Some(last) = page.last() else { break };
            after = Some((last.started_at, last.id.clone()));
            walked.extend(page.into_iter().map(|s| s.id));
        }
        assert_eq!(walked, history, "limit {limit}");
    }
    app.stop().await;
}
