//! `activityAdded`: the live tail over graphql-transport-ws.

use std::time::Duration;

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    subscribers_receive_exactly_their_orgs_matching_events_in_order,
    a_resumed_subscription_misses_nothing,
    recorded_requests_arrive_live,
    bad_credentials_orgs_and_cursors_are_refused,
    a_tail_far_behind_catches_up_in_order,
    a_revoked_key_ends_its_open_subscription_with_4403,
    an_expired_jwt_ends_its_open_subscription_with_4403,
    live_cursors_carry_no_global_commit_sequence,
    each_protocol_violation_closes_with_its_graphql_transport_ws_code,
    an_event_ingested_through_one_replica_reaches_a_subscriber_of_another,
);

pub(crate) const SUBSCRIPTION: &str = "subscription($org: ID!, $filter: ActivityFilterInput, $after: String) {
  activityAdded(orgId: $org, filter: $filter, after: $after) { cursor node { id action workspace { id } } }
}";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One graphql-transport-ws connection with one subscription (id "1").
pub(crate) struct Subscriber {
    socket: Socket,
}

impl Subscriber {
    /// Connects with `headers` on the upgrade and `init` as the connection_init payload.
    pub(crate) async fn connect(
        app: &TestApp,
        headers: &[(&str, &str)],
        init: Value,
    ) -> Result<Subscriber, Value> {
        let mut subscriber = Subscriber::open(app, headers).await?;
        subscriber
            .send(json!({ "type": "connection_init", "payload": init }))
            .await;
        match subscriber.message().await {
            Some(m) if m["type"] == "connection_ack" => Ok(subscriber),
            other => Err(other.unwrap_or(Value::Null)),
        }
    }

    /// An open socket that has said nothing yet.
    pub(crate) async fn open(app: &TestApp, headers: &[(&str, &str)]) -> Result<Subscriber, Value> {
        let mut request = format!("ws://{}/graphql", app.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let (socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                return Err(json!({ "http_status": response.status().as_u16() }))
            }
            Err(e) => panic!("connect: {e}"),
        };
        Ok(Subscriber { socket })
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    pub(crate) async fn send_text(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    pub(crate) async fn subscribe(&mut self, variables: Value) {
        let message = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": variables } });
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next protocol message; a close frame is `{"close": code}`; `None` after 10 s of silence.
    pub(crate) async fn message(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
                Message::Close(frame) => {
                    return Some(
                        json!({ "close": frame.as_ref().map(|f| u16::from(f.code)), "reason": frame.map(|f| f.reason.to_string()) }),
                    )
                }
                _ => continue,
            }
        }
    }

    /// The next delivered edge (`cursor`, `node`), failing on anything else.
    pub(crate) async fn edge(&mut self) -> Value {
        let message = self.message().await.expect("an event within 10 s");
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"]["errors"].is_null(), "{message}");
        message["payload"]["data"]["activityAdded"].clone()
    }

    pub(crate) async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Waits until the server holds `n` open subscriptions, so that what is
/// ingested next is after every subscriber's starting point.
pub(crate) async fn wait_for_subscriptions(app: &TestApp, key: &str, n: u64) {
    for _ in 0..500 {
        if app.metric(key, "activity_gateway_live_subscriptions").await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {n} subscriptions");
}

pub(crate) async fn ingest(app: &TestApp, key: &str, org: &str, events: Value) -> Vec<String> {
    let (status, body) = read(
        app.client
            .post(app.url(&format!("/v1/orgs/{org}/activity")))
            .header("X-Api-Key", key)
            .json(&events)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

fn actions(list: &[&str]) -> Value {
    Value::Array(
        list.iter()
            .map(|a| json!({ "action": a, "workspace_id": "ws_acme_staging" }))
            .collect(),
    )
}

async fn subscribers_receive_exactly_their_orgs_matching_events_in_order(db: TestDb) {
    db.seed(20).await;
    let acme = db.key("org_acme", Role::Admin).await;
    let globex = db.key("org_globex", Role::Viewer).await;
    let globex_writer = db.key("org_globex", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // Credential in connection_init for one, in the upgrade headers for the other.
    let mut creates = Subscriber::connect(&app, &[], json!({ "X-Api-Key": acme }))
        .await
        .unwrap();
    creates
        .subscribe(json!({ "org": "org_acme", "filter": { "actions": ["create", "delete"] } }))
        .await;
    let mut theirs = Subscriber::connect(&app, &[("x-api-key", &globex)], json!({}))
        .await
        .unwrap();
    theirs.subscribe(json!({ "org": "org_globex" })).await;
    wait_for_subscriptions(&app, &acme, 2).await;

    let ids = ingest(
        &app,
        &acme,
        "org_acme",
        actions(&[
            "create", "read", "delete", "read", "create", "update", "create",
        ]),
    )
    .await;
    // Separate batches, separate commits: order across commits too.
    let later = ingest(&app, &acme, "org_acme", actions(&["read", "delete"])).await;
    let expected = [&ids[0], &ids[2], &ids[4], &ids[6], &later[1]].map(String::clone);
    let mut seen = Vec::new();
    for _ in &expected {
        let edge = creates.edge().await;
        assert!(
            ["create", "delete"].contains(&edge["node"]["action"].as_str().unwrap()),
            "{edge}"
        );
        assert_eq!(
            edge["node"]["workspace"]["id"], "ws_acme_staging",
            "relations resolve over the socket"
        );
        seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen, expected,
        "exactly the matching events, in commit order"
    );

    // The other org's subscriber saw none of that: its first event is its own.
    let own = ingest(
        &app,
        &globex_writer,
        "org_globex",
        json!([{ "action": "read" }, { "action": "create" }]),
    )
    .await;
    for id in &own {
        assert_eq!(&theirs.edge().await["node"]["id"], id.as_str());
    }
    // And nothing came to the filtered subscriber in between: its next event is the next match.
    let next = ingest(&app, &acme, "org_acme", actions(&["create"])).await;
    assert_eq!(creates.edge().await["node"]["id"], next[0].as_str());
    creates.close().await;
    theirs.close().await;
    app.stop().await;
}

async fn a_resumed_subscription_misses_nothing(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let mut first = Subscriber::connect(&app, &[], json!({ "X-Api-Key": key }))
        .await
        .unwrap();
    first
        .subscribe(json!({ "org": "org_acme", "filter": { "actions": ["create"] } }))
        .await;
    wait_for_subscriptions(&app, &key, 1).await;
    let batch = ingest(
        &app,
        &key,
        "org_acme",
        actions(&["create", "create", "read", "create"]),
    )
    .await;
    let edge = first.edge().await;
    assert_eq!(edge["node"]["id"], batch[0].as_str());
    let cursor = edge["cursor"].as_str().unwrap().to_owned();
    // Gone after the first event; events keep coming while it is away.
    first.close().await;
    wait_for_subscriptions(&app, &key, 0).await;
    let meanwhile = ingest(
        &app,
        &key,
        "org_acme",
        actions(&["create", "read", "create"]),
    )
    .await;

    let mut again = Subscriber::connect(
        &app,
        &[("authorization", &format!("Bearer {key}"))],
        json!({}),
    )
    .await
    .unwrap();
    again
        .subscribe(
            json!({ "org": "org_acme", "filter": { "actions": ["create"] }, "after": cursor }),
        )
        .await;
    for id in [&batch[1], &batch[3], &meanwhile[0], &meanwhile[2]] {
        assert_eq!(&again.edge().await["node"]["id"], id.as_str());
    }
    // Live again after catching up.
    let after = ingest(&app, &key, "org_acme", actions(&["create"])).await;
    assert_eq!(again.edge().await["node"]["id"], after[0].as_str());
    again.close().await;
    app.stop().await;
}

async fn recorded_requests_arrive_live(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn_with(&db.db, crate::common::recording(1_000)).await;
    let mut subscriber = Subscriber::connect(&app, &[], json!({ "X-Api-Key": key }))
        .await
        .unwrap();
    subscriber
        .subscribe(json!({ "org": "org_acme", "filter": { "resourceTypes": ["workspace"] } }))
        .await;
    wait_for_subscriptions(&app, &key, 1).await;
    let (status, _) = app
        .get(
            "/v1/orgs/org_acme/workspaces/ws_acme_research/activity?limit=1",
            &key,
        )
        .await;
    assert_eq!(status, 200);
    let edge = subscriber.edge().await;
    assert_eq!(edge["node"]["action"], "read");
    // A recorded read names what it read but joins no hierarchy feed.
    assert_eq!(edge["node"]["workspace"], Value::Null);
    subscriber.close().await;
    app.stop().await;
}

async fn bad_credentials_orgs_and_cursors_are_refused(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    // (Who may read /metrics: tests/metrics.rs.)
    // A bad credential in the upgrade headers: 401 before any upgrade.
    let refused = Subscriber::connect(&app, &[("x-api-key", "agk_not_a_key")], json!({}))
        .await
        .err()
        .unwrap();
    assert_eq!(refused["http_status"], 401);
    // A bad or missing one in connection_init: the connection is closed
    // with graphql-transport-ws's 4403 Forbidden.
    for init in [json!({ "X-Api-Key": "agk_not_a_key" }), json!({})] {
        let refused = Subscriber::connect(&app, &[], init).await.err().unwrap();
        assert_eq!(refused["close"], 4403, "{refused}");
        assert!(
            refused["reason"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("auth"),
            "{refused}"
        );
    }
    let mut subscriber = Subscriber::connect(&app, &[], json!({ "X-Api-Key": key }))
        .await
        .unwrap();
    // Another org, an unknown one, a malformed cursor, a cursor of another filter, a bad filter.
    let other_filter = {
        let mut s = Subscriber::connect(&app, &[], json!({ "X-Api-Key": key }))
            .await
            .unwrap();
        s.subscribe(json!({ "org": "org_acme", "filter": { "actions": ["create"] } }))
            .await;
        wait_for_subscriptions(&app, &key, 1).await;
        let writer = db.key("org_acme", Role::Admin).await;
        ingest(&app, &writer, "org_acme", actions(&["create"])).await;
        let cursor = s.edge().await["cursor"].as_str().unwrap().to_owned();
        s.close().await;
        cursor
    };
    let cases = [
        (
            json!({ "org": "org_globex" }),
            "RESOURCE_NOT_FOUND",
            Value::Null,
        ),
        (
            json!({ "org": "org_nope" }),
            "RESOURCE_NOT_FOUND",
            Value::Null,
        ),
        (
            json!({ "org": "org_acme", "after": "garbage" }),
            "BAD_USER_INPUT",
            json!(["after"]),
        ),
        (
            json!({ "org": "org_acme", "after": other_filter }),
            "BAD_USER_INPUT",
            json!(["after"]),
        ),
        (
            json!({ "org": "org_acme", "filter": { "startTime": "yesterday" } }),
            "BAD_USER_INPUT",
            json!(["filter", "startTime"]),
        ),
    ];
    for (variables, code, loc) in cases {
        subscriber.subscribe(variables.clone()).await;
        // The error comes as the subscription's only result, then it completes.
        let message = subscriber.message().await.unwrap();
        assert_eq!(message["type"], "next", "{variables}: {message}");
        assert_eq!(subscriber.message().await.unwrap()["type"], "complete");
        let error = &message["payload"]["errors"][0];
        assert_eq!(error["extensions"]["code"], code, "{variables}: {message}");
        if !loc.is_null() {
            assert_eq!(
                error["extensions"]["details"]["detail"][0]["loc"], loc,
                "{message}"
            );
        }
    }
    subscriber.close().await;
    app.stop().await;
}

/// A subscriber resuming far behind reads the backlog in several steps (500
/// events per read) and gets all of it, in order, then the live events.
async fn a_tail_far_behind_catches_up_in_order(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let mut first = Subscriber::connect(&app, &[], json!({ "X-Api-Key": key }))
        .await
        .unwrap();
    first.subscribe(json!({ "org": "org_acme" })).await;
    wait_for_subscriptions(&app, &key, 1).await;
    let marker = ingest(&app, &key, "org_acme", actions(&["read"])).await;
    let edge = first.edge().await;
    assert_eq!(edge["node"]["id"], marker[0].as_str());
    let cursor = edge["cursor"].as_str().unwrap().to_owned();
    first.close().await;
    let backlog = ingest(&app, &key, "org_acme", actions(&["create"; 1_201])).await;

    let mut again = Subscriber::connect(&app, &[], json!({ "X-Api-Key": key }))
        .await
        .unwrap();
    again
        .subscribe(json!({ "org": "org_acme", "after": cursor }))
        .await;
    for id in &backlog {
        assert_eq!(&again.edge().await["node"]["id"], id.as_str());
    }
    let live = ingest(&app, &key, "org_acme", actions(&["delete"])).await;
    assert_eq!(again.edge().await["node"]["id"], live[0].as_str());
    again.close().await;
    app.stop().await;
}

/// Reads until the socket closes; answers the close code and how long it took.
async fn closed_within(subscriber: &mut Subscriber, limit: Duration) -> (Value, Duration) {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        match subscriber.message().await {
            Some(m) if m.get("close").is_some() => return (m["close"].clone(), started.elapsed()),
            Some(_) => continue,
            None => break,
        }
    }
    (Value::Null, started.elapsed())
}

async fn a_revoked_key_ends_its_open_subscription_with_4403(db: TestDb) {
    db.seed(20).await;
    let created = activity_gateway::service::keys::create(
        &db.db,
        activity_gateway::service::keys::NewKey {
            org_id: "org_acme".into(),
            role: Some(Role::Viewer),
            permissions: Default::default(),
            user_id: None,
            name: None,
        },
    )
    .await
    .unwrap();
    let watcher = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let mut subscriber = Subscriber::connect(&app, &[], json!({ "X-Api-Key": created.secret }))
        .await
        .unwrap();
    subscriber.subscribe(json!({ "org": "org_acme" })).await;
    wait_for_subscriptions(&app, &watcher, 1).await;
    activity_gateway::service::keys::revoke(&db.db, &created.id)
        .await
        .unwrap();
    let (code, took) = closed_within(&mut subscriber, Duration::from_secs(8)).await;
    assert_eq!(code, 4403, "closed after {took:?}");
    assert!(took <= Duration::from_secs(5), "closed after {took:?}");
}

async fn an_expired_jwt_ends_its_open_subscription_with_4403(db: TestDb) {
    use activity_gateway::auth::jwt::{sign, Claims};
    db.seed(20).await;
    let watcher = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let claims = Claims {
        sub: "usr_acme_01".into(),
        org: "org_acme".into(),
        exp: chrono::Utc::now().timestamp() + 2,
        role: Some("viewer".into()),
        permissions: None,
        jti: None,
    };
    let token = sign(&claims, crate::common::JWT_SECRET.as_bytes());
    let bearer = format!("Bearer {token}");
    let mut subscriber = Subscriber::connect(&app, &[], json!({ "Authorization": bearer }))
        .await
        .unwrap();
    subscriber.subscribe(json!({ "org": "org_acme" })).await;
    wait_for_subscriptions(&app, &watcher, 1).await;
    let (code, took) = closed_within(&mut subscriber, Duration::from_secs(10)).await;
    assert_eq!(code, 4403, "closed after {took:?}");
    assert!(
        took <= Duration::from_secs(7),
        "expiry in 2 s, closed after {took:?}"
    );
}

async fn live_cursors_carry_no_global_commit_sequence(db: TestDb) {
    use base64::Engine as _;
    db.seed(20).await;
    let acme = db.key("org_acme", Role::Admin).await;
    let globex = db.key("org_globex", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    // Another org writes a lot first, so the global sequence is a long number.
    let many: Vec<Value> = (0..1_500).map(|_| json!({ "action": "noise" })).collect();
    ingest(&app, &globex, "org_globex", json!(many)).await;
    let mut subscriber = Subscriber::connect(&app, &[], json!({ "X-Api-Key": acme }))
        .await
        .unwrap();
    subscriber.subscribe(json!({ "org": "org_acme" })).await;
    wait_for_subscriptions(&app, &acme, 1).await;
    let ids = ingest(&app, &acme, "org_acme", json!([{ "action": "mine" }])).await;
    let edge = subscriber.edge().await;
    assert_eq!(edge["node"]["id"], ids[0].as_str());
    let cursor = edge["cursor"].as_str().unwrap();
    let rows = db
        .rows(
            "SELECT seq FROM activity_events WHERE id = ?",
            vec![ids[0].as_str().into()],
        )
        .await;
    let seq: i64 = rows[0].try_get("", "seq").unwrap();
    assert!(seq > 1_500, "{seq}");
    let readable: String = cursor
        .split('.')
        .map(|part| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| part.to_owned())
        })
        .collect();
    assert!(
        !readable.contains(&seq.to_string()),
        "the cursor shows the global sequence {seq}: {readable}"
    );
    subscriber.close().await;
}

/// graphql-transport-ws's close codes, each from a real WebSocket client:
/// 4400 for a message that is not the protocol's, 4401 for a subscription
/// before `connection_ack`, 4408 when no `connection_init` comes, 4409 for
/// an id already running, 4429 for a second `connection_init` (4403 for
/// refused credentials is tested above); and `ping` gets `pong`.
async fn each_protocol_violation_closes_with_its_graphql_transport_ws_code(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let app = TestApp::spawn(&db.db).await;
    let init = json!({ "X-Api-Key": key });
    let subscribe = |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "org": "org_acme" } } });
    let close_code =
        |message: Option<Value>| message.map(|m| m["close"].clone()).unwrap_or(Value::Null);

    // 4400: not JSON; an unknown type; a subscribe without an id.
    for bad in [
        "not json".to_owned(),
        json!({ "type": "shout" }).to_string(),
        json!({ "type": "subscribe", "payload": { "query": "{ __typename }" } }).to_string(),
    ] {
        let mut socket = Subscriber::connect(&app, &[], init.clone()).await.unwrap();
        socket.send_text(bad.clone()).await;
        assert_eq!(close_code(socket.message().await), 4400, "{bad}");
    }
    // 4401: a subscription before the acknowledgement.
    let mut socket = Subscriber::open(&app, &[]).await.unwrap();
    socket.send(subscribe("1")).await;
    assert_eq!(close_code(socket.message().await), 4401);
    // 4409: the same id twice while the first runs.
    let mut socket = Subscriber::connect(&app, &[], init.clone()).await.unwrap();
    socket.send(subscribe("1")).await;
    socket.send(subscribe("1")).await;
    let closed = socket.message().await.unwrap();
    assert_eq!(closed["close"], 4409, "{closed}");
    assert!(
        closed["reason"]
            .as_str()
            .unwrap()
            .contains("Subscriber for 1 already exists"),
        "{closed}"
    );
    // An id may be used again once its subscription completed.
    let mut socket = Subscriber::connect(&app, &[], init.clone()).await.unwrap();
    socket.send(subscribe("1")).await;
    socket.send(json!({ "id": "1", "type": "complete" })).await;
    socket.send(subscribe("1")).await;
    socket
        .send(json!({ "type": "ping", "payload": { "n": 1 } }))
        .await;
    let pong = socket.message().await.unwrap();
    assert_eq!(pong["type"], "pong", "{pong}");
    // 4429: a second connection_init.
    socket
        .send(json!({ "type": "connection_init", "payload": init }))
        .await;
    assert_eq!(close_code(socket.message().await), 4429);
    // 4408: nothing said within the initialisation timeout.
    // Timed from before the connection opens: the server's timer starts
    // once it is open, which a loaded machine may take a while to report.
    let started = std::time::Instant::now();
    let mut socket = Subscriber::open(&app, &[]).await.unwrap();
    assert_eq!(close_code(socket.message().await), 4408);
    let waited = started.elapsed();
    assert!(
        waited >= activity_gateway::graphql::http::INIT_TIMEOUT,
        "{waited:?}"
    );
    assert!(
        waited < activity_gateway::graphql::http::INIT_TIMEOUT + Duration::from_secs(3),
        "{waited:?}"
    );
}

async fn an_event_ingested_through_one_replica_reaches_a_subscriber_of_another(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    // Two gateways, each with its own pool, on one database.
    let other_pool = activity_gateway::db::connect(&db.url).await.unwrap();
    let writer = TestApp::spawn(&db.db).await;
    let reader = TestApp::spawn(&other_pool).await;
    // On PostgreSQL every commit of events is announced to every process.
    let mut announcements = match db.backend {
        crate::common::Backend::Postgres => {
            let mut listener = sea_orm::sqlx::postgres::PgListener::connect(&db.url)
                .await
                .unwrap();
            listener.listen("activity_gateway_events").await.unwrap();
            Some(listener)
        }
        crate::common::Backend::Sqlite => None,
    };
    let mut subscriber = Subscriber::connect(&reader, &[], json!({ "X-Api-Key": key }))
        .await
        .unwrap();
    subscriber.subscribe(json!({ "org": "org_acme" })).await;
    wait_for_subscriptions(&reader, &key, 1).await;
    let ids = ingest(&writer, &key, "org_acme", actions(&["create", "delete"])).await;
    for id in &ids {
        assert_eq!(&subscriber.edge().await["node"]["id"], id);
    }
    if let Some(listener) = announcements.as_mut() {
        let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .expect("announced within 5 s")
            .unwrap();
        assert_eq!(note.channel(), "activity_gateway_events");
    }
    subscriber.close().await;
    writer.stop().await;
    reader.stop().await;
}
