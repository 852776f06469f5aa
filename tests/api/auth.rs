//! Credentials, permissions and tenancy, over real HTTP.

use std::process::Command;

use crate::common::{read, TestApp, TestDb, JWT_SECRET};
use activity_gateway::auth::jwt::{sign, Claims, PermissionClaim};
use activity_gateway::domain::permission::Role;
use activity_gateway::service::keys::NewKey;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

on_both_backends!(
    keys_create_prints_the_secret_once_and_stores_only_its_hash,
    every_bad_credential_answers_401_in_the_envelope,
    roles_and_tokens_grant_exactly_the_contracts_permissions,
    another_orgs_ids_answer_exactly_like_unknown_ids,
    an_mcp_header_makes_the_principal_an_mcp_agent,
    a_key_revoked_through_the_cli_is_refused_by_every_replica_within_a_second,
    a_key_deleted_or_narrowed_with_plain_sql_is_refused_within_a_second,
    a_key_the_gateway_keeps_costs_no_lookup,
);

/// The second request with a key reads neither its row nor (within the
/// epoch's check interval) anything else.
async fn a_key_the_gateway_keeps_costs_no_lookup(db: TestDb) {
    use activity_gateway::service::keys::{authenticate, KeyCache};
    db.seed(10).await;
    let secret = db.key("org_acme", Role::Viewer).await;
    let mut counted = activity_gateway::db::connect(&db.url).await.unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sql_log = log.clone();
    counted.set_metric_callback(move |info| {
        let sql = &info.statement.sql;
        if sql.trim_start().to_uppercase().starts_with("SELECT") {
            sql_log.lock().unwrap().push(sql.clone());
        }
    });
    let cache = KeyCache::default();
    let first = authenticate(&counted, &cache, &secret).await.unwrap();
    let reads = log.lock().unwrap().clone();
    assert_eq!(reads.len(), 2, "the epoch and the key: {reads:?}");
    assert!(
        reads.iter().any(|s| s.contains("credential_epoch")),
        "{reads:?}"
    );
    assert!(reads.iter().any(|s| s.contains("api_keys")), "{reads:?}");
    let again = authenticate(&counted, &cache, &secret).await.unwrap();
    assert_eq!(again.token_id, first.token_id);
    assert_eq!(again.permissions, first.permissions);
    let after: Vec<String> = log.lock().unwrap()[2..].to_vec();
    // At most the epoch again, when the machine was slow; never the key.
    assert!(
        after.iter().all(|s| s.contains("credential_epoch")),
        "{after:?}"
    );
    // Another cache (another gateway) reads the key itself.
    authenticate(&counted, &KeyCache::default(), &secret)
        .await
        .unwrap();
    assert!(log.lock().unwrap()[2..]
        .iter()
        .any(|s| s.contains("api_keys")));

    // At its capacity a cache keeps every key; past it, the least recently
    // used is read again.
    let (second, third) = (
        db.key("org_acme", Role::Viewer).await,
        db.key("org_acme", Role::Viewer).await,
    );
    let full = KeyCache::with_capacity(2);
    let key_reads = || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|s| s.contains("api_keys"))
            .count()
    };
    for key in [&secret, &second] {
        authenticate(&counted, &full, key).await.unwrap();
    }
    let at_capacity = key_reads();
    for key in [&secret, &second] {
        authenticate(&counted, &full, key).await.unwrap();
    }
    assert_eq!(key_reads(), at_capacity, "two keys in a cache of two");
    authenticate(&counted, &full, &third).await.unwrap();
    authenticate(&counted, &full, &second).await.unwrap();
    assert_eq!(key_reads(), at_capacity + 1, "only the third was read");
    authenticate(&counted, &full, &secret).await.unwrap();
    assert_eq!(key_reads(), at_capacity + 2, "the first was pushed out");
}

/// The revocation window the README promises.
const REVOCATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks `base` with `key` until it answers 401, at most the revocation
/// window after `since`; then asks again for another half second, and
/// every answer must stay 401. How long it took to be refused.
async fn refused_within_the_window(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    since: std::time::Instant,
) -> std::time::Duration {
    let status = |client: &reqwest::Client| {
        let request = client
            .get(format!("{base}/v1/orgs/org_acme/log/checkpoint"))
            .header("X-Api-Key", key)
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    let refused_after = loop {
        let answer = status(client).await;
        let elapsed = since.elapsed();
        if answer == 401 {
            break elapsed;
        }
        assert_eq!(answer, 200);
        assert!(
            elapsed < REVOCATION_WINDOW,
            "{base} still took the key {elapsed:?} after it was revoked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < until {
        assert_eq!(status(client).await, 401, "{base} took the key again");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    refused_after
}

/// Three gateways on one database each serve a key (and so keep it), the
/// CLI revokes it: every gateway refuses it within the window, never after.
async fn a_key_revoked_through_the_cli_is_refused_by_every_replica_within_a_second(db: TestDb) {
    db.seed(10).await;
    let key = db.key("org_acme", Role::Admin).await;
    let key_id = db
        .rows(
            "SELECT id FROM api_keys WHERE secret_hash = ?",
            vec![activity_gateway::auth::api_key::hash_secret(&key).into()],
        )
        .await[0]
        .try_get::<String>("", "id")
        .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            crate::common::Served::start(&db.url, &[], &[], std::process::Stdio::null()).await,
        );
    }
    let client = reqwest::Client::new();
    for replica in &replicas {
        // Served twice: the second answer comes from the gateway's cache.
        for _ in 0..2 {
            let res = client
                .get(format!("{}/v1/orgs/org_acme/log/checkpoint", replica.base))
                .header("X-Api-Key", &key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
    let (ok, text) = crate::common::cli(&["keys", "revoke", &key_id, "--database-url", &db.url]);
    assert!(ok, "{text}");
    let revoked = std::time::Instant::now();
    for replica in &replicas {
        refused_within_the_window(&client, &replica.base, &key, revoked).await;
    }
    for mut replica in replicas {
        crate::common::terminate(&mut replica.child);
    }
}

/// A change behind the gateway's back counts as much as a revocation
/// through it: a key deleted, or its role changed, with plain SQL is
/// refused (or narrowed) within the window; recording a key's use does not
/// move the credential epoch.
async fn a_key_deleted_or_narrowed_with_plain_sql_is_refused_within_a_second(db: TestDb) {
    db.seed(10).await;
    let app = TestApp::spawn(&db.db).await;
    let epoch = || async {
        db.rows("SELECT epoch FROM credential_epoch WHERE id = 1", vec![])
            .await[0]
            .try_get_by_index::<i64>(0)
            .unwrap()
    };
    let deleted = db.key("org_acme", Role::Admin).await;
    let narrowed = db.key("org_acme", Role::Admin).await;
    let before = epoch().await;
    assert_eq!(
        permissions_of(&app, ("X-Api-Key", narrowed.clone())).await,
        ADMIN
    );
    let (status, _) = app.get("/v1/orgs/org_acme/log/checkpoint", &deleted).await;
    assert_eq!(status, 200);
    db.run(
        "UPDATE api_keys SET last_used_at = 1 WHERE secret_hash = ?",
        vec![activity_gateway::auth::api_key::hash_secret(&deleted).into()],
    )
    .await;
    assert_eq!(
        epoch().await,
        before,
        "recording a key's use keeps the epoch"
    );

    db.run(
        "DELETE FROM api_keys WHERE secret_hash = ?",
        vec![activity_gateway::auth::api_key::hash_secret(&deleted).into()],
    )
    .await;
    let since = std::time::Instant::now();
    assert!(epoch().await > before);
    let client = reqwest::Client::new();
    refused_within_the_window(&client, &app.url(""), &deleted, since).await;

    db.run(
        "UPDATE api_keys SET role = 'viewer' WHERE secret_hash = ?",
        vec![activity_gateway::auth::api_key::hash_secret(&narrowed).into()],
    )
    .await;
    let since = std::time::Instant::now();
    loop {
        let now = permissions_of(&app, ("X-Api-Key", narrowed.clone())).await;
        if now == VIEWER {
            break;
        }
        assert_eq!(now, ADMIN);
        assert!(since.elapsed() < REVOCATION_WINDOW, "still an admin");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.stop().await;
}

const VIEWER: [&str; 3] = ["activity:read", "session:read", "docs:read"];
const MEMBER: [&str; 6] = [
    "activity:read",
    "activity:export",
    "session:read",
    "problem:create",
    "problem:resolve",
    "docs:read",
];
const ADMIN: [&str; 11] = [
    "activity:read",
    "activity:write",
    "activity:export",
    "activity:refresh",
    "session:read",
    "problem:create",
    "problem:resolve",
    "docs:read",
    "activity:retention",
    "stream:manage",
    "viewer:create",
];

const VIEWER_QUERY: &str = "{ viewer { principalId principalType tokenType permissions org { id name } user { id email } } }";

fn jwt(
    sub: &str,
    org: &str,
    exp_in_secs: i64,
    role: Option<&str>,
    permissions: Option<Vec<&str>>,
) -> String {
    let claims = Claims {
        sub: sub.into(),
        org: org.into(),
        exp: chrono::Utc::now().timestamp() + exp_in_secs,
        role: role.map(Into::into),
        permissions: permissions
            .map(|p| PermissionClaim::List(p.into_iter().map(Into::into).collect())),
        jti: None,
    };
    sign(&claims, JWT_SECRET.as_bytes())
}

async fn permissions_of(app: &TestApp, header: (&str, String)) -> Vec<String> {
    let (status, body) = app
        .graphql_with(VIEWER_QUERY, json!({}), |r| r.header(header.0, header.1))
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body["data"]["viewer"]["permissions"].clone()).unwrap()
}

async fn keys_create_prints_the_secret_once_and_stores_only_its_hash(db: TestDb) {
    db.seed(10).await;
    let out = Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args([
            "keys",
            "create",
            "--org",
            "org_acme",
            "--role",
            "member",
            "--name",
            "ci",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.lines().last().unwrap().to_owned();
    assert!(
        secret.starts_with("agk_") && secret.len() >= 40,
        "last line is the secret alone: {secret:?}"
    );
    assert_eq!(
        stdout.matches(&secret).count(),
        1,
        "the secret is printed once"
    );
    let key_id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned();

    // Nothing stored holds the secret in clear; the hash is its SHA-256.
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            db.db.get_database_backend(),
            "SELECT id, org_id, name, prefix, secret_hash, permissions FROM api_keys",
        ))
        .await
        .unwrap();
    let dump: String = rows
        .iter()
        .flat_map(|r| {
            [
                "id",
                "org_id",
                "name",
                "prefix",
                "secret_hash",
                "permissions",
            ]
            .map(|c| r.try_get::<String>("", c).unwrap())
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!dump.contains(&secret));
    assert!(dump.contains(&activity_gateway::auth::api_key::hash_secret(&secret)));

    let app = TestApp::spawn(&db.db).await;
    assert_eq!(
        permissions_of(&app, ("X-Api-Key", secret.clone())).await,
        MEMBER
    );

    let revoke = Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args(["keys", "revoke", &key_id, "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(revoke.status.success());
    // Refused within the revocation window (the gateway kept the key).
    let revoked = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = app.graphql(&secret, VIEWER_QUERY).await;
        if status != 200 || revoked.elapsed() > REVOCATION_WINDOW {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(status, 401);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "AUTHENTICATION_FAILED"
    );

    // Unknown org or user: a clear error, no key.
    let bad = Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .args([
            "keys",
            "create",
            "--org",
            "org_nope",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no org org_nope"));
}

async fn every_bad_credential_answers_401_in_the_envelope(db: TestDb) {
    db.seed(10).await;
    let app = TestApp::spawn(&db.db).await;
    let good = db.key("org_acme", Role::Admin).await;
    let revoked = db.key("org_acme", Role::Admin).await;
    let revoked_id = {
        let hash = activity_gateway::auth::api_key::hash_secret(&revoked);
        let rows = db
            .rows(
                "SELECT id FROM api_keys WHERE secret_hash = ?",
                vec![hash.into()],
            )
            .await;
        rows[0].try_get::<String>("", "id").unwrap()
    };
    activity_gateway::service::keys::revoke(&db.db, &revoked_id)
        .await
        .unwrap();

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credential", vec![]),
        (
            "unknown key",
            vec![(
                "X-Api-Key",
                "agk_not_a_real_key_at_all_000000000000000000".into(),
            )],
        ),
        ("revoked key", vec![("X-Api-Key", revoked.clone())]),
        (
            "expired JWT",
            vec![(
                "Authorization",
                format!(
                    "Bearer {}",
                    jwt("usr_acme_01", "org_acme", -5, Some("admin"), None)
                ),
            )],
        ),
        (
            "JWT with a wrong signature",
            vec![(
                "Authorization",
                format!("Bearer {}", {
                    let claims = Claims {
                        sub: "usr_acme_01".into(),
                        org: "org_acme".into(),
                        exp: chrono::Utc::now().timestamp() + 60,
                        role: Some("admin".into()),
                        permissions: None,
                        jti: None,
                    };
                    sign(&claims, b"another secret")
                }),
            )],
        ),
        (
            "JWT of an unknown user",
            vec![(
                "Authorization",
                format!(
                    "Bearer {}",
                    jwt("usr_nobody", "org_acme", 60, Some("admin"), None)
                ),
            )],
        ),
        (
            "JWT whose user is of another org",
            vec![(
                "Authorization",
                format!(
                    "Bearer {}",
                    jwt("usr_globex_01", "org_acme", 60, Some("admin"), None)
                ),
            )],
        ),
        (
            "two credentials that disagree",
            vec![
                ("X-Api-Key", good.clone()),
                (
                    "Authorization",
                    format!("Bearer {}", db.key("org_acme", Role::Admin).await),
                ),
            ],
        ),
        (
            "a non-bearer scheme",
            vec![("Authorization", format!("Basic {good}"))],
        ),
    ];
    for (what, headers) in cases {
        let mut rest = app.client.get(app.url("/v1/orgs/org_acme/activity"));
        let mut gql = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": VIEWER_QUERY }));
        for (name, value) in &headers {
            rest = rest.header(*name, value);
            gql = gql.header(*name, value);
        }
        let (status, body) = read(rest.send().await.unwrap()).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "AUTHENTICATION_FAILED", "{what}");
        assert_eq!(body["message"], "Authentication required");
        assert_eq!(body["status_code"], 401);
        assert_eq!(body["details"], json!({}));
        let (status, body) = read(gql.send().await.unwrap()).await;
        assert_eq!(status, 401, "{what} over GraphQL: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "AUTHENTICATION_FAILED"
        );
        assert_eq!(body["errors"][0]["extensions"]["status_code"], 401);
    }
    // The same key in both headers is one credential, not two.
    let (status, _) = read(
        app.client
            .post(app.url("/graphql"))
            .json(&json!({ "query": VIEWER_QUERY }))
            .header("X-Api-Key", &good)
            .header("Authorization", format!("Bearer {good}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}

async fn roles_and_tokens_grant_exactly_the_contracts_permissions(db: TestDb) {
    db.seed(10).await;
    let app = TestApp::spawn(&db.db).await;
    for (role, expected) in [
        (Role::Viewer, &VIEWER[..]),
        (Role::Member, &MEMBER[..]),
        (Role::Admin, &ADMIN[..]),
    ] {
        let key = db.key("org_acme", role).await;
        assert_eq!(
            permissions_of(&app, ("X-Api-Key", key.clone())).await,
            expected,
            "{role:?} key"
        );
        assert_eq!(
            permissions_of(&app, ("Authorization", format!("Bearer {key}"))).await,
            expected,
            "{role:?} key as bearer"
        );
        let token = jwt("usr_acme_05", "org_acme", 60, Some(role.as_str()), None);
        assert_eq!(
            permissions_of(&app, ("Authorization", format!("Bearer {token}"))).await,
            expected,
            "{role:?} JWT"
        );
    }
    // Explicit permissions replace the role's, for keys and tokens alike.
    let key = db
        .key_with(NewKey {
            org_id: "org_acme".into(),
            role: Some(Role::Admin),
            permissions: [
                activity_gateway::domain::permission::Permission::DocsRead,
                activity_gateway::domain::permission::Permission::ActivityRead,
            ]
            .into(),
            user_id: Some("usr_acme_02".into()),
            name: None,
        })
        .await;
    let (_, body) = app.graphql(&key, VIEWER_QUERY).await;
    assert_eq!(
        body["data"]["viewer"]["permissions"],
        json!(["activity:read", "docs:read"])
    );
    assert_eq!(body["data"]["viewer"]["principalId"], "usr_acme_02");
    assert_eq!(body["data"]["viewer"]["principalType"], "user");
    assert_eq!(
        body["data"]["viewer"]["user"]["email"],
        "grace@acme.example"
    );
    let token = jwt(
        "usr_acme_03",
        "org_acme",
        60,
        None,
        Some(vec!["session:read", "activity:read"]),
    );
    let (_, body) = app
        .graphql_with(VIEWER_QUERY, json!({}), |r| r.bearer_auth(token))
        .await;
    assert_eq!(
        body["data"]["viewer"]["permissions"],
        json!(["activity:read", "session:read"])
    );
    assert_eq!(body["data"]["viewer"]["tokenType"], "jwt");
    assert_eq!(
        body["data"]["viewer"]["org"],
        json!({ "id": "org_acme", "name": "Acme Corporation" })
    );
}

/// Drops what legitimately differs between two 404s: the time and the id asked for.
fn comparable(mut body: Value, id: &str) -> String {
    if let Some(o) = body.as_object_mut() {
        o.remove("timestamp");
    }
    body.to_string().replace(id, "<id>")
}

async fn another_orgs_ids_answer_exactly_like_unknown_ids(db: TestDb) {
    db.seed(10).await;
    let app = TestApp::spawn(&db.db).await;
    let globex = db.key("org_globex", Role::Admin).await;

    let q = |id: &str| format!("{{ org(id: \"{id}\") {{ id name }} }}");
    let (s1, theirs) = app.graphql(&globex, &q("org_acme")).await;
    let (s2, unknown) = app.graphql(&globex, &q("org_nope")).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        theirs["errors"][0]["extensions"]["code"],
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        theirs["errors"][0]["extensions"]["details"],
        json!({ "resource_type": "org", "resource_id": "org_acme" })
    );
    assert_eq!(theirs["data"], Value::Null);
    assert_eq!(
        comparable(theirs, "org_acme"),
        comparable(unknown, "org_nope")
    );
    let (_, own) = app.graphql(&globex, &q("org_globex")).await;
    assert_eq!(own["data"]["org"]["name"], "Globex Corporation");

    for path in [
        "/activity",
        "/activity/summary",
        "/workspaces/ws_acme_production/activity",
        "/users/usr_acme_01/activity",
        "/anything/else",
    ] {
        let (s1, theirs) = app.get(&format!("/v1/orgs/org_acme{path}"), &globex).await;
        let (s2, unknown) = app.get(&format!("/v1/orgs/org_nope{path}"), &globex).await;
        assert_eq!((s1, s2), (404, 404), "{path}");
        assert_eq!(theirs["error"], "RESOURCE_NOT_FOUND");
        assert_eq!(
            theirs["details"],
            json!({ "resource_type": "org", "resource_id": "org_acme" }),
            "{path}"
        );
        assert_eq!(
            comparable(theirs, "org_acme"),
            comparable(unknown, "org_nope"),
            "{path}"
        );
    }
}

async fn an_mcp_header_makes_the_principal_an_mcp_agent(db: TestDb) {
    db.seed(10).await;
    let app = TestApp::spawn(&db.db).await;
    let key = db.key("org_acme", Role::Viewer).await;
    let (_, body) = app
        .graphql_with(VIEWER_QUERY, json!({}), |r| {
            r.header("X-Api-Key", &key)
                .header("X-MCP", "claude-desktop")
        })
        .await;
    assert_eq!(body["data"]["viewer"]["principalType"], "mcp_agent");
    let (_, body) = app.graphql(&key, VIEWER_QUERY).await;
    assert_eq!(body["data"]["viewer"]["principalType"], "api_key");
}
