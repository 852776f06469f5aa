//! Planned reads answer byte for byte what the general executor answers: a
//! generated set of documents (aliases, fragments, `@skip`/`@include`,
//! relations, `__typename`, variables, cursors) and a set of errors, each
//! sent to a gateway with plans and to one without, over HTTP, on the same
//! database.

use crate::common::{test_settings, TestApp, TestDb};
use activity_gateway::config::HttpArgs;
use activity_gateway::domain::permission::{Permission, Role};
use activity_gateway::service::keys::NewKey;
use serde_json::{json, Value};

on_both_backends!(
    generated_selections_answer_the_same_bytes_planned_or_not,
    errors_and_refusals_answer_the_same_bytes_planned_or_not,
    the_benchmarked_pages_are_planned_once_the_executor_has_run_them,
    a_page_and_its_relations_are_one_statement_with_its_limit_in_the_text,
    a_pages_values_are_read_only_as_what_their_columns_hold,
);

const PLANNED: &str = "activity_gateway_graphql_planned_total";

/// The plain fields of `Activity`.
const EVENT_FIELDS: &[&str] = &[
    "id",
    "timestamp",
    "traceId",
    "userId",
    "workspaceId",
    "appId",
    "endpointId",
    "augmentationId",
    "principalType",
    "principalId",
    "tokenId",
    "tokenType",
    "method",
    "path",
    "resourceType",
    "resourceId",
    "action",
    "statusCode",
    "success",
    "errorCode",
    "durationMs",
    "executionId",
    "stagesCompleted",
    "totalStages",
    "tokenUsage",
    "tokensTotal",
    "metadata",
    "logIndex",
    "__typename",
];

/// Each relation of `Activity` and its plain fields.
const RELATIONS: &[(&str, &[&str])] = &[
    ("user", &["id", "email", "name", "role", "__typename"]),
    ("workspace", &["id", "name", "__typename"]),
    ("app", &["id", "name", "workspaceId", "__typename"]),
    (
        "endpoint",
        &["id", "name", "method", "path", "appId", "__typename"],
    ),
    ("augmentation", &["id", "name", "totalStages", "__typename"]),
];

/// A small deterministic generator (xorshift64*), so a failure names the
/// document that failed and reruns give the same documents.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One generated document and what it declares.
struct Generated {
    fragments: Vec<String>,
    variables: Vec<&'static str>,
    alias: usize,
}

impl Generated {
    fn alias(&mut self) -> String {
        self.alias += 1;
        format!("a{}: ", self.alias)
    }

    /// A directive for a field or fragment, sometimes.
    fn directive(&mut self, dice: &mut Dice) -> &'static str {
        match dice.below(10) {
            0 => " @include(if: true)",
            1 => " @skip(if: false)",
            2 => " @skip(if: true)",
            3 => {
                self.declare("$flag: Boolean!");
                " @include(if: $flag)"
            }
            4 => {
                self.declare("$flag: Boolean!");
                " @skip(if: $flag)"
            }
            _ => "",
        }
    }

    fn declare(&mut self, variable: &'static str) {
        if !self.variables.contains(&variable) {
            self.variables.push(variable);
        }
    }

    /// Fields of `Activity`, some aliased, some under directives, some in
    /// inline or named fragments.
    fn event(&mut self, dice: &mut Dice) -> String {
        let mut parts = Vec::new();
        for _ in 0..1 + dice.below(8) {
            // A field's name, then its directive, then what it selects.
            let (name, selection) = if dice.chance(25) {
                let (relation, fields) = dice.pick(RELATIONS);
                let mut inner: Vec<String> = (0..1 + dice.below(3))
                    .map(|_| dice.pick(fields).to_string())
                    .collect();
                inner.dedup();
                (relation.to_string(), format!(" {{ {} }}", inner.join(" ")))
            } else {
                (dice.pick(EVENT_FIELDS).to_string(), String::new())
            };
            // A key may be selected once unaliased; repeats get an alias.
            let aliased = dice.chance(30);
            let directive = self.directive(dice);
            let text = if aliased {
                format!("{}{name}{directive}{selection}", self.alias())
            } else {
                format!("{name}{directive}{selection}")
            };
            parts.push(match dice.below(8) {
                0 => format!("... on Activity {{ {text} }}"),
                1 => format!("... on Node {{ id }} {text}"),
                2 => {
                    let name = format!("F{}", self.fragments.len());
                    self.fragments
                        .push(format!("fragment {name} on Activity {{ {text} }}"));
                    let directive = self.directive(dice);
                    format!("...{name}{directive}")
                }
                _ => text,
            });
        }
        // The same unaliased field twice merges (as fragments often do).
        if dice.chance(20) {
            parts.push("id".into());
            parts.push("... on Activity { id }".into());
        }
        parts.join(" ")
    }

    fn connection(&mut self, dice: &mut Dice) -> String {
        let mut arguments = Vec::new();
        match dice.below(4) {
            0 => {}
            1 => arguments.push(format!("first: {}", 1 + dice.below(6))),
            _ => {
                self.declare("$first: Int");
                arguments.push("first: $first".into());
            }
        }
        if dice.chance(30) {
            self.declare("$after: String");
            arguments.push("after: $after".into());
        }
        match dice.below(5) {
            0 => arguments.push("filter: { status: ERROR }".into()),
            1 => {
                self.declare("$filter: ActivityFilterInput");
                arguments.push("filter: $filter".into());
            }
            _ => {}
        }
        let mut parts = Vec::new();
        for _ in 0..1 + dice.below(4) {
            let directive = self.directive(dice);
            let part = match dice.below(6) {
                0 => format!("totalCount{directive}"),
                1 => format!("__typename{directive}"),
                2 => {
                    let fields = [
                        "hasNextPage",
                        "hasPreviousPage",
                        "startCursor",
                        "endCursor",
                        "__typename",
                    ];
                    let picked: Vec<&str> = (0..1 + dice.below(4))
                        .map(|_| *dice.pick(&fields))
                        .collect();
                    let mut unique = picked.clone();
                    unique.sort();
                    unique.dedup();
                    format!("pageInfo{directive} {{ {} }}", unique.join(" "))
                }
                3 => {
                    let cursor = if dice.chance(60) { "cursor " } else { "" };
                    let node = self.event(dice);
                    format!("edges{directive} {{ {cursor}__typename node {{ {node} }} }}")
                }
                _ => format!("nodes{directive} {{ {} }}", self.event(dice)),
            };
            parts.push(format!("{}{part}", self.alias()));
        }
        let arguments = if arguments.is_empty() {
            String::new()
        } else {
            format!("({})", arguments.join(", "))
        };
        format!("activity{arguments} {{ {} }}", parts.join(" "))
    }

    fn document(dice: &mut Dice) -> (String, Vec<&'static str>) {
        let mut g = Generated {
            fragments: Vec::new(),
            variables: Vec::new(),
            alias: 0,
        };
        let id = if dice.chance(40) {
            g.declare("$org: ID!");
            "$org"
        } else {
            "\"org_acme\""
        };
        let mut org = Vec::new();
        if dice.chance(30) {
            org.push("id".to_string());
        }
        if dice.chance(20) {
            org.push("name __typename".to_string());
        }
        for _ in 0..1 + dice.below(2) {
            let connection = g.connection(dice);
            org.push(format!("{}{connection}", g.alias()));
        }
        let root = if dice.chance(30) { "__typename " } else { "" };
        let org_alias = if dice.chance(30) { "mine: " } else { "" };
        let declared = if g.variables.is_empty() {
            String::new()
        } else {
            format!("({})", g.variables.join(", "))
        };
        let text = format!(
            "query Generated{declared} {{ {root}{org_alias}org(id: {id}) {{ {} }} }} {}",
            org.join(" "),
            g.fragments.join(" ")
        );
        (text, g.variables)
    }
}

/// (status, content type, body bytes) of a POST to `/graphql`.
async fn post(app: &TestApp, key: &str, body: &Value) -> (u16, String, Vec<u8>) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("X-Api-Key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        media,
        response.bytes().await.expect("body").to_vec(),
    )
}

/// Sends `body` to the general gateway once and to the planned one twice
/// (the first run lets the plan be used), and asserts all three answers
/// are the same bytes. Answers the general one.
async fn same_answers(general: &TestApp, planned: &TestApp, key: &str, body: &Value) -> Value {
    let expected = post(general, key, body).await;
    for run in 1..=2 {
        let got = post(planned, key, body).await;
        assert_eq!(
            (got.0, &got.1),
            (expected.0, &expected.1),
            "run {run} of {body}"
        );
        assert!(
            got.2 == expected.2,
            "run {run} of {body}:\nplanned: {}\ngeneral: {}",
            String::from_utf8_lossy(&got.2),
            String::from_utf8_lossy(&expected.2)
        );
    }
    serde_json::from_slice(&expected.2).expect("a JSON answer")
}

/// A gateway with plans, and one answering everything through the general
/// executor, on one database of 400 demo events.
async fn gateways(db: &TestDb) -> (TestApp, TestApp) {
    db.seed(400).await;
    let planned = TestApp::spawn(&db.db).await;
    let general = TestApp::spawn_with(
        &db.db,
        HttpArgs {
            planned_reads: false,
            ..test_settings()
        },
    )
    .await;
    (general, planned)
}

/// A real cursor of the org's feed under `filter`, from the general gateway.
async fn cursor(general: &TestApp, key: &str, filter: &Value) -> String {
    let body = json!({
        "query": "query($f: ActivityFilterInput) { org(id: \"org_acme\") { activity(first: 3, filter: $f) { pageInfo { endCursor } } } }",
        "variables": { "f": filter },
    });
    let (_, _, bytes) = post(general, key, &body).await;
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    answer["data"]["org"]["activity"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned()
}

async fn generated_selections_answer_the_same_bytes_planned_or_not(db: TestDb) {
    let (general, planned) = gateways(&db).await;
    let key = db.key("org_acme", Role::Admin).await;
    let filters = [
        json!(null),
        json!({ "status": "ERROR" }),
        json!({ "actions": ["read", "create"] }),
        // Free text reads columns that joined relations have too (`path`).
        json!({ "search": "e" }),
    ];
    let mut dice = Dice(0x5eed_cafe_f00d_0001);
    let before = planned.metric(&key, PLANNED).await;
    let mut with_data = 0;
    const DOCUMENTS: usize = 300;
    for _ in 0..DOCUMENTS {
        let (query, declared) = Generated::document(&mut dice);
        let filter = dice.pick(&filters).clone();
        let mut variables = serde_json::Map::new();
        for declared in &declared {
            let (name, value) = match *declared {
                "$org: ID!" => ("org", json!("org_acme")),
                "$first" | "$first: Int" => ("first", json!(1 + dice.below(5))),
                "$after: String" => {
                    // A cursor of the filter the document uses when it reads
                    // one from a variable; else of no filter (and then a
                    // literal filter refuses it, the same on both paths).
                    let of = if query.contains("filter: $filter") {
                        &filter
                    } else {
                        &filters[0]
                    };
                    ("after", json!(cursor(&general, &key, of).await))
                }
                "$filter: ActivityFilterInput" => ("filter", filter.clone()),
                "$flag: Boolean!" => ("flag", json!(dice.chance(50))),
                other => panic!("undeclared generator variable {other}"),
            };
            variables.insert(name.into(), value);
        }
        let body = json!({ "query": query, "variables": variables });
        let answer = same_answers(&general, &planned, &key, &body).await;
        if answer.get("errors").is_none() {
            with_data += 1;
        } else if std::env::var("PLANNED_DEBUG").is_ok() {
            eprintln!("{body}\n  {}", answer["errors"][0]["message"]);
        }
    }
    let planned_runs = planned.metric(&key, PLANNED).await - before;
    // Most generated documents are valid and plannable; each planned one
    // answers its second run by plan.
    assert!(
        with_data >= DOCUMENTS * 2 / 3,
        "{with_data} of {DOCUMENTS} answered without errors"
    );
    assert!(
        planned_runs as usize >= with_data * 2 / 3,
        "{planned_runs} planned answers for {with_data} error-free documents"
    );
    general.stop().await;
    planned.stop().await;
}

async fn errors_and_refusals_answer_the_same_bytes_planned_or_not(db: TestDb) {
    let (general, planned) = gateways(&db).await;
    let admin = db.key("org_acme", Role::Admin).await;
    let docs_only = db
        .key_with(NewKey {
            org_id: "org_acme".into(),
            role: None,
            permissions: [Permission::DocsRead].into(),
            user_id: None,
            name: None,
        })
        .await;
    let error_cursor = cursor(&general, &admin, &json!({ "status": "ERROR" })).await;
    let page = "{ nodes { id action user { email } } pageInfo { endCursor } }";
    let cases: Vec<(&str, Value)> = vec![
        // Arguments out of range, refused by the resolver.
        (
            &admin,
            json!({ "query": format!("{{ org(id: \"org_acme\") {{ activity(first: 0) {page} }} }}") }),
        ),
        (
            &admin,
            json!({ "query": format!("{{ org(id: \"org_acme\") {{ activity(first: 201) {page} }} }}") }),
        ),
        (
            &admin,
            json!({ "query": format!("query($n: Int) {{ org(id: \"org_acme\") {{ activity(first: $n) {page} }} }}"), "variables": { "n": 500 } }),
        ),
        (
            &admin,
            json!({ "query": format!("query($n: Int) {{ org(id: \"org_acme\") {{ activity(first: $n) {page} }} }}"), "variables": { "n": "ten" } }),
        ),
        (
            &admin,
            json!({ "query": format!("{{ org(id: \"org_acme\") {{ activity(after: \"garbage\") {page} }} }}") }),
        ),
        // A cursor of another filter.
        (
            &admin,
            json!({ "query": format!("query($c: String) {{ org(id: \"org_acme\") {{ activity(after: $c) {page} }} }}"), "variables": { "c": error_cursor } }),
        ),
        (
            &admin,
            json!({ "query": format!("{{ org(id: \"org_acme\") {{ activity(filter: {{ startTime: \"soon\" }}) {page} }} }}") }),
        ),
        // Another org, an org that does not exist.
        (
            &admin,
            json!({ "query": format!("{{ org(id: \"org_globex\") {{ activity {page} }} }}") }),
        ),
        (
            &admin,
            json!({ "query": format!("query($o: ID!) {{ org(id: $o) {{ activity {page} }} }}"), "variables": { "o": "nope" } }),
        ),
        // Variables missing or of the wrong type.
        (
            &admin,
            json!({ "query": format!("query($o: ID!) {{ org(id: $o) {{ activity {page} }} }}") }),
        ),
        (
            &admin,
            json!({ "query": format!("query($f: Boolean!) {{ org(id: \"org_acme\") {{ activity {{ nodes {{ id @skip(if: $f) }} }} }} }}") }),
        ),
        (
            &admin,
            json!({ "query": format!("query($f: ActivityFilterInput) {{ org(id: \"org_acme\") {{ activity(filter: $f) {page} }} }}"), "variables": { "f": { "status": "MAYBE" } } }),
        ),
        // Invalid documents.
        (
            &admin,
            json!({ "query": "{ org(id: \"org_acme\") { activity { nodes { nope } } } }" }),
        ),
        (
            &admin,
            json!({ "query": "{ org(id: \"org_acme\") { activity { nodes { ... on User { email } } } } }" }),
        ),
        (
            &admin,
            json!({ "query": "query($unused: Int) { org(id: \"org_acme\") { activity { nodes { id } } } }" }),
        ),
        // A permission the key lacks.
        (
            &docs_only,
            json!({ "query": format!("{{ org(id: \"org_acme\") {{ activity {page} }} }}") }),
        ),
        // Operation names.
        (
            &admin,
            json!({ "query": format!("query A {{ org(id: \"org_acme\") {{ activity {page} }} }}"), "operationName": "B" }),
        ),
        (
            &admin,
            json!({ "query": format!("query A {{ org(id: \"org_acme\") {{ activity {page} }} }}"), "operationName": "A" }),
        ),
    ];
    for (key, body) in &cases {
        same_answers(&general, &planned, key, body).await;
    }
    // The last case is valid: the same answer, now through a plan.
    let before = planned.metric(&admin, PLANNED).await;
    let (key, body) = cases.last().unwrap();
    let answer = same_answers(&general, &planned, key, body).await;
    assert_eq!(
        answer["data"]["org"]["activity"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    assert_eq!(planned.metric(&admin, PLANNED).await - before, 2);
    general.stop().await;
    planned.stop().await;
}

async fn the_benchmarked_pages_are_planned_once_the_executor_has_run_them(db: TestDb) {
    let (general, planned) = gateways(&db).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let scalars = EVENT_FIELDS[..27].join(" ");
    let pages = [
        format!("{{ org(id: \"org_acme\") {{ activity(first: 50) {{ nodes {{ {scalars} }} }} }} }}"),
        format!("{{ org(id: \"org_acme\") {{ activity(first: 50) {{ totalCount nodes {{ {scalars} }} }} }} }}"),
        format!("{{ org(id: \"org_acme\") {{ activity(first: 50) {{ nodes {{ {scalars} user {{ email }} workspace {{ name }} endpoint {{ name }} }} }} }} }}"),
    ];
    for page in &pages {
        let before = planned.metric(&key, PLANNED).await;
        let body = json!({ "query": page });
        let answer = same_answers(&general, &planned, &key, &body).await;
        let nodes = answer["data"]["org"]["activity"]["nodes"]
            .as_array()
            .unwrap();
        assert_eq!(nodes.len(), 50);
        assert!(nodes.iter().all(|n| n["action"].is_string()), "{answer}");
        // The first run went through the executor, the second by plan.
        assert_eq!(planned.metric(&key, PLANNED).await - before, 1, "{page}");
    }
    general.stop().await;
    planned.stop().await;
}

/// A page reads its relations in its own statement, one statement whatever
/// it relates, and its size is in the statement's text, not bound: with a
/// bound limit PostgreSQL planned the page afresh at every execution, which
/// cost more than executing it (`scripts/bench-peers.sh` prints the plans
/// per request; on this small table either plan is cheap, so PostgreSQL's
/// choice is not asserted here).
async fn a_page_and_its_relations_are_one_statement_with_its_limit_in_the_text(db: TestDb) {
    use activity_gateway::domain::feed::{ActivityFilter, Scope};
    use activity_gateway::service::activity::{self, Related};
    use entity::activity_event::Column;
    db.seed(400).await;
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sql_log = log.clone();
    counted.set_metric_callback(move |info| {
        sql_log.lock().unwrap().push(info.statement.sql.clone());
    });
    let related = [Related::User, Related::Workspace, Related::Endpoint];
    let page = || async {
        let query = activity::PageQuery {
            org_id: "org_acme",
            scope: &Scope::Org,
            filter: &ActivityFilter::default(),
            limit: 50,
            cursor: None,
            columns: &[Column::Action, Column::UserId],
            related: &related,
        };
        activity::page_rows(&counted, &query).await.unwrap()
    };
    let (rows, has_more) = page().await;
    assert_eq!((rows.len(), has_more), (50, true));
    let read: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(read.len(), 1, "one statement: {read:?}");
    assert!(read[0].ends_with(" LIMIT 51"), "{}", read[0]);
    assert_eq!(read[0].matches("LEFT JOIN").count(), 3, "{}", read[0]);
    // The joined rows are the loaders' rows: each event's user, by id, in the org.
    let users = db
        .rows(
            "SELECT id, email FROM users WHERE org_id = 'org_acme'",
            vec![],
        )
        .await;
    let email_of: std::collections::HashMap<String, String> = users
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect();
    let mut related_users = 0;
    for row in &rows {
        let user_id: Option<String> = row.try_get_by_index(3).unwrap();
        let (joined_id, email): (Option<String>, Option<String>) = (
            row.try_get_by_index(4).unwrap(),
            row.try_get_by_index(5).unwrap(),
        );
        assert_eq!(
            joined_id,
            user_id.clone().filter(|id| email_of.contains_key(id))
        );
        assert_eq!(email, user_id.and_then(|id| email_of.get(&id).cloned()));
        related_users += usize::from(joined_id.is_some());
    }
    assert!(related_users > 0, "the page relates some users");
}

/// A page's writers read each column as the type it holds: the value, or
/// NULL, as stored; a column read as another type is `None` (the planned
/// path then falls back to the general executor), never a panic or a value
/// made of another type's bytes.
async fn a_pages_values_are_read_only_as_what_their_columns_hold(db: TestDb) {
    use activity_gateway::domain::feed::{ActivityFilter, Scope};
    use activity_gateway::service::activity::{self, text_at, value_at};
    use entity::activity_event::Column;
    db.seed(50).await;
    let query = activity::PageQuery {
        org_id: "org_acme",
        scope: &Scope::Org,
        filter: &ActivityFilter::default(),
        limit: 20,
        cursor: None,
        columns: &[
            Column::Action,
            Column::DurationMs,
            Column::StatusCode,
            Column::Success,
            Column::AugmentationId,
        ],
        related: &[],
    };
    let (rows, _) = activity::page_rows(&db.db, &query).await.unwrap();
    let stored = db
        .rows(
            "SELECT action, duration_ms, status_code, success, augmentation_id FROM activity_events \
             WHERE org_id = 'org_acme' ORDER BY ts DESC, id DESC LIMIT 20",
            vec![],
        )
        .await;
    assert_eq!(rows.len(), stored.len());
    let mut nulls = 0;
    for (row, stored) in rows.iter().zip(&stored) {
        let action: String = stored.try_get_by_index(0).unwrap();
        let duration: i64 = stored.try_get_by_index(1).unwrap();
        let status: i32 = stored.try_get_by_index(2).unwrap();
        let success: bool = stored.try_get_by_index(3).unwrap();
        let augmentation: Option<String> = stored.try_get_by_index(4).unwrap();
        assert_eq!(text_at(row, 2), Some(Some(action.as_str())));
        assert_eq!(value_at::<i64>(row, 3), Some(Some(duration)));
        assert_eq!(value_at::<i32>(row, 4), Some(Some(status)));
        assert_eq!(value_at::<bool>(row, 5), Some(Some(success)));
        assert_eq!(text_at(row, 6), Some(augmentation.as_deref()));
        nulls += usize::from(augmentation.is_none());
        // Another type's column, or no column at all.
        assert_eq!(value_at::<i64>(row, 2), None, "text as an integer");
        assert_eq!(text_at(row, 3), None, "an integer as text");
        assert_eq!(value_at::<bool>(row, 2), None, "text as a flag");
        assert_eq!(text_at(row, 5), None, "a flag as text");
        assert_eq!(text_at(row, 7), None, "past the row's columns");
    }
    assert!(
        nulls > 0 && nulls < rows.len(),
        "both an augmentation and none: {nulls}"
    );
}
