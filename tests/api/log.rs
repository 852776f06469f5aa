//! The verifiable log: every event a dense per-org log index, a Merkle tree
//! of their leaves, signed checkpoints, and `verify`. The database is
//! tampered with directly, one way per test, and `verify --org` (the real
//! binary) must name the log index; an untouched one verifies clean, also
//! after a purge and after migrating a database stored before the log.

use std::process::Command;

use crate::common::{TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use activity_gateway::service::events::EventRow;
use activity_gateway::service::log::checkpoints::{self, KeySettings, LogKey};
use activity_gateway::service::log::leaf::leaf_hash;
use serde_json::json;

on_both_backends!(
    every_event_gets_a_dense_log_index_in_commit_order_and_a_repeat_gets_no_leaf,
    an_untouched_log_verifies_also_after_a_purge,
    a_changed_field_is_named_by_its_log_index,
    a_deleted_event_is_named_by_its_log_index,
    a_forged_event_is_named,
    two_swapped_events_are_named_at_the_first,
    an_event_changed_together_with_its_stored_leaf_is_found_in_its_block,
    a_rolled_back_log_is_found_against_a_checkpoint_the_org_kept,
    events_stored_before_the_log_get_their_indexes_in_seq_order_when_migrated,
    a_checkpoint_is_signed_only_over_a_tree_consistent_with_the_last_one,
    a_configured_signing_key_signs_and_a_malformed_one_stops_the_server_at_start,
    seeding_again_replaces_the_demo_orgs_log_which_verifies_and_is_checkpointed,
);

const ORG: &str = "org_acme";

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
}

async fn key_of(db: &TestDb) -> LogKey {
    checkpoints::log_key(&db.db, &KeySettings::default())
        .await
        .expect("the log key")
}

/// Signs a checkpoint of every grown log, as `serve` does every few seconds.
async fn checkpoint(db: &TestDb) -> LogKey {
    let key = key_of(db).await;
    checkpoints::checkpoint_all(&db.db, &key)
        .await
        .expect("checkpoints");
    key
}

/// `verify --org org_acme` on the database: success, and what it printed.
fn verify(db: &TestDb, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["verify", "--org", ORG, "--database-url", &db.url];
    args.extend_from_slice(extra);
    crate::common::cli(&args)
}

async fn tree_size(db: &TestDb) -> i64 {
    tree_size_of(db, ORG).await
}

async fn tree_size_of(db: &TestDb, org: &str) -> i64 {
    db.rows(
        "SELECT tree_size FROM org_logs WHERE org_id = ?",
        vec![org.into()],
    )
    .await[0]
        .try_get_by_index(0)
        .unwrap()
}

async fn id_at(db: &TestDb, index: i64) -> String {
    db.rows(
        "SELECT id FROM activity_events WHERE org_id = ? AND log_index = ?",
        vec![ORG.into(), index.into()],
    )
    .await[0]
        .try_get_by_index(0)
        .unwrap()
}

/// A seeded, checkpointed org whose log verifies; its tree size.
async fn verified(db: &TestDb) -> i64 {
    db.seed(1_500).await;
    checkpoint(db).await;
    let (ok, text) = verify(db, &[]);
    assert!(ok, "{text}");
    let size = tree_size(db).await;
    assert!(size > 600, "{size}");
    size
}

async fn every_event_gets_a_dense_log_index_in_commit_order_and_a_repeat_gets_no_leaf(db: TestDb) {
    db.seed(1_000).await;
    for org in ["org_acme", "org_globex"] {
        let rows = db
            .rows(
                "SELECT log_index FROM activity_events WHERE org_id = ? ORDER BY seq",
                vec![org.into()],
            )
            .await;
        let indexes: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get_by_index(0).unwrap())
            .collect();
        assert_eq!(
            indexes,
            (0..indexes.len() as i64).collect::<Vec<_>>(),
            "{org}: dense, in seq order"
        );
    }
    let size = tree_size(&db).await;
    let writer = db.key(ORG, Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let batch = json!([{ "id": "act_repeat_1", "action": "read" }, { "id": "act_repeat_2", "action": "read" }]);
    let (status, body) = app
        .post_json(&writer, "/v1/orgs/org_acme/activity", &batch)
        .await;
    assert_eq!((status, &body["stored"]), (200, &json!(2)), "{body}");
    assert_eq!(tree_size(&db).await, size + 2);
    let (status, body) = app
        .post_json(&writer, "/v1/orgs/org_acme/activity", &batch)
        .await;
    assert_eq!((status, &body["duplicates"]), (200, &json!(2)), "{body}");
    assert_eq!(
        tree_size(&db).await,
        size + 2,
        "a repeated event gets no second leaf"
    );
    assert_eq!(id_at(&db, size + 1).await, "act_repeat_2");
    // Repeats among new events: the new ones close up, in order.
    let mixed = json!([
        { "id": "act_repeat_1", "action": "read" },
        { "id": "act_new_3", "action": "read" },
        { "id": "act_repeat_2", "action": "read" },
        { "id": "act_new_4", "action": "read" },
    ]);
    let (status, body) = app
        .post_json(&writer, "/v1/orgs/org_acme/activity", &mixed)
        .await;
    assert_eq!(
        (status, &body["stored"], &body["duplicates"]),
        (200, &json!(2), &json!(2)),
        "{body}"
    );
    assert_eq!(tree_size(&db).await, size + 4);
    assert_eq!(id_at(&db, size + 2).await, "act_new_3");
    assert_eq!(id_at(&db, size + 3).await, "act_new_4");
    let key = checkpoint(&db).await;
    assert_eq!(
        checkpoints::latest(&db.db, &key, ORG)
            .await
            .unwrap()
            .unwrap()
            .tree_size as i64,
        size + 4
    );
    let (ok, text) = verify(&db, &[]);
    assert!(ok, "{text}");
    // The event answers its place in GraphQL.
    let body = app
        .execute(
            &writer,
            r#"{ node(id: "act_repeat_2") { ... on Activity { logIndex } } }"#,
        )
        .await;
    assert_eq!(body["data"]["node"]["logIndex"], size + 1, "{body}");
    app.stop().await;
}

async fn an_untouched_log_verifies_also_after_a_purge(db: TestDb) {
    let size = verified(&db).await;
    let (_, text) = verify(&db, &[]);
    assert!(
        text.contains(&format!(
            "verified {size} events, log indexes 0..{}, checkpoint size {size}",
            size - 1
        )),
        "{text}"
    );
    activity_gateway::service::retention::set(&db.db, ORG, Some(7))
        .await
        .unwrap();
    let purged = activity_gateway::service::retention::purge(&db.db)
        .await
        .unwrap()
        .unwrap();
    let gone = purged.iter().find(|p| p.org_id == ORG).unwrap().events;
    assert!(gone > 100, "{purged:?}");
    checkpoint(&db).await;
    let (ok, text) = verify(&db, &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("({gone} purged by retention, their leaves kept)")),
        "{text}"
    );
    // A purge's own event is a leaf too: the log grew by one.
    assert_eq!(tree_size(&db).await, size + 1);
}

fn assert_named(text: &str, index: i64, id: Option<&str>) {
    assert!(
        text.contains(&format!("the first: log index {index}")),
        "names log index {index}: {text}"
    );
    if let Some(id) = id {
        assert!(text.contains(id), "names event {id}: {text}");
    }
}

async fn a_changed_field_is_named_by_its_log_index(db: TestDb) {
    let size = verified(&db).await;
    let at = size / 2;
    let id = id_at(&db, at).await;
    db.run(
        "UPDATE activity_events SET status_code = 500 WHERE org_id = ? AND log_index = ?",
        vec![ORG.into(), at.into()],
    )
    .await;
    let (ok, text) = verify(&db, &[]);
    assert!(!ok, "{text}");
    assert_named(&text, at, Some(&id));
}

async fn a_deleted_event_is_named_by_its_log_index(db: TestDb) {
    let size = verified(&db).await;
    let at = size - 3;
    db.run(
        "DELETE FROM activity_events WHERE org_id = ? AND log_index = ?",
        vec![ORG.into(), at.into()],
    )
    .await;
    let (ok, text) = verify(&db, &[]);
    assert!(!ok, "{text}");
    assert_named(&text, at, None);
    assert!(text.contains("deleted"), "{text}");
}

async fn a_forged_event_is_named(db: TestDb) {
    verified(&db).await;
    // A copy of a real event under a new id, written straight into the table.
    db.run(
        "INSERT INTO activity_events (id, org_id, ts, action, status_code, success, duration_ms, token_usage, tokens_total, metadata) \
         SELECT 'act_forged', org_id, ts, action, status_code, success, duration_ms, token_usage, tokens_total, metadata \
         FROM activity_events WHERE org_id = ? AND log_index = 5",
        vec![ORG.into()],
    )
    .await;
    let (ok, text) = verify(&db, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("act_forged"), "{text}");
    assert!(text.contains("not stored through the log"), "{text}");
    // Nor does a restart absorb it: migrating again gives it no index.
    activity_gateway::db::migrate(&db.db).await.unwrap();
    let (ok, text) = verify(&db, &[]);
    assert!(!ok && text.contains("act_forged"), "{text}");
}

async fn two_swapped_events_are_named_at_the_first(db: TestDb) {
    let size = verified(&db).await;
    let (a, b) = (size / 3, size / 3 + 40);
    for (from, to) in [(a, -1), (b, a), (-1, b)] {
        db.run(
            "UPDATE activity_events SET log_index = ? WHERE org_id = ? AND log_index = ?",
            vec![to.into(), ORG.into(), from.into()],
        )
        .await;
    }
    let (ok, text) = verify(&db, &[]);
    assert!(!ok, "{text}");
    assert_named(&text, a, None);
    assert!(
        text.contains(&format!("log index {b}")),
        "both are named: {text}"
    );
}

async fn an_event_changed_together_with_its_stored_leaf_is_found_in_its_block(db: TestDb) {
    let size = verified(&db).await;
    let at = 300; // in the second block of 256 leaves
    assert!(size > 512);
    db.run(
        "UPDATE activity_events SET action = 'delete' WHERE org_id = ? AND log_index = ?",
        vec![ORG.into(), at.into()],
    )
    .await;
    // The forger recomputes the changed event's leaf and writes it into its tile.
    use sea_orm::EntityTrait as _;
    let changed = entity::activity_event::Entity::find()
        .all(&db.db)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.org_id == ORG && e.log_index == Some(at))
        .unwrap();
    let leaf = leaf_hash(&EventRow::from(changed));
    let tile = &db
        .rows(
            "SELECT hashes FROM log_tiles WHERE org_id = ? AND level = 0 AND idx = 1",
            vec![ORG.into()],
        )
        .await[0];
    let mut hashes: Vec<u8> = tile.try_get_by_index(0).unwrap();
    let offset = (at as usize - 256) * 32;
    hashes[offset..offset + 32].copy_from_slice(&leaf.0);
    db.run(
        "UPDATE log_tiles SET hashes = ? WHERE org_id = ? AND level = 0 AND idx = 1",
        vec![hashes.into(), ORG.into()],
    )
    .await;
    let (ok, text) = verify(&db, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("between log indexes 256 and 511"),
        "names the block of the rewritten leaf: {text}"
    );
}

async fn a_rolled_back_log_is_found_against_a_checkpoint_the_org_kept(db: TestDb) {
    let size = verified(&db).await;
    // The org kept its latest checkpoint.
    let key = key_of(&db).await;
    let kept = checkpoints::latest(&db.db, &key, ORG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.tree_size as i64, size);
    let saved = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(saved.path(), &kept.note).unwrap();
    // Someone restores the log as it was at 512 leaves, checkpoints and all.
    db.run(
        "DELETE FROM activity_events WHERE org_id = ? AND log_index >= 512",
        vec![ORG.into()],
    )
    .await;
    db.run(
        "DELETE FROM log_tiles WHERE org_id = ? AND level = 0 AND idx >= 2",
        vec![ORG.into()],
    )
    .await;
    let upper = &db
        .rows(
            "SELECT hashes FROM log_tiles WHERE org_id = ? AND level = 1 AND idx = 0",
            vec![ORG.into()],
        )
        .await[0];
    let mut hashes: Vec<u8> = upper.try_get_by_index(0).unwrap();
    hashes.truncate(64);
    db.run(
        "UPDATE log_tiles SET hashes = ?, width = 2 WHERE org_id = ? AND level = 1 AND idx = 0",
        vec![hashes.into(), ORG.into()],
    )
    .await;
    db.run(
        "UPDATE org_logs SET tree_size = 512 WHERE org_id = ?",
        vec![ORG.into()],
    )
    .await;
    db.run(
        "DELETE FROM log_checkpoints WHERE org_id = ? AND tree_size > 512",
        vec![ORG.into()],
    )
    .await;
    // Alone, the database is consistent with itself...
    checkpoint(&db).await;
    let (ok, text) = verify(&db, &[]);
    assert!(
        ok,
        "a consistent rollback is invisible without a kept checkpoint: {text}"
    );
    // ...but not with the checkpoint the org kept.
    let (ok, text) = verify(&db, &["--against", saved.path().to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert_named(&text, 512, None);
    assert!(text.contains("rolled back"), "{text}");
}

async fn events_stored_before_the_log_get_their_indexes_in_seq_order_when_migrated(db: TestDb) {
    // A database as the previous version left it: three migrations, events
    // with no log index.
    let old = TestDb::empty(db.backend).await.unwrap();
    use migration::MigratorTrait as _;
    migration::Migrator::up(&old.db, Some(3)).await.unwrap();
    old.run(
        "INSERT INTO orgs (id, name, created_at) VALUES ('org_acme', 'Acme', 0), ('org_globex', 'Globex', 0)",
        vec![],
    )
    .await;
    for n in 0..40i64 {
        let org = if n % 3 == 0 { "org_globex" } else { ORG };
        old.run(
            "INSERT INTO activity_events (id, org_id, ts, action, status_code, success, duration_ms, token_usage, tokens_total, metadata) \
             VALUES (?, ?, ?, 'read', 200, ?, 5, '{}', 0, '{\"n\": 1}')",
            vec![format!("act_old_{n:02}").into(), org.into(), (1_700_000_000_000_000 - n * 1_000_000).into(), true.into()],
        )
        .await;
    }
    // The new version starts: migrates and indexes.
    activity_gateway::db::migrate(&old.db).await.unwrap();
    for org in [ORG, "org_globex"] {
        let rows = old
            .rows(
                "SELECT id, log_index FROM activity_events WHERE org_id = ? ORDER BY seq",
                vec![org.into()],
            )
            .await;
        let indexes: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get_by_index(1).unwrap())
            .collect();
        assert_eq!(
            indexes,
            (0..indexes.len() as i64).collect::<Vec<_>>(),
            "{org}"
        );
    }
    checkpoint(&old).await;
    let (ok, text) = verify(&old, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("verified 26 events"), "{text}");
    // The next event follows them.
    let writer = old.key(ORG, Role::Admin).await;
    let app = TestApp::spawn(&old.db).await;
    let (status, _) = app
        .post_json(
            &writer,
            "/v1/orgs/org_acme/activity",
            &json!([{ "id": "act_new", "action": "read" }]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(id_at(&old, 26).await, "act_new");
    app.stop().await;
    drop(db);
}

async fn a_checkpoint_is_signed_only_over_a_tree_consistent_with_the_last_one(db: TestDb) {
    let size = verified(&db).await;
    // The stored tree's first nodes above the leaves rewritten, then more
    // events: the grown tree is not an extension of the signed one, and no
    // checkpoint is signed over it.
    let width = (size / 256) as usize;
    db.run(
        "UPDATE log_tiles SET hashes = ? WHERE org_id = ? AND level = 1 AND idx = 0",
        vec![vec![7u8; width * 32].into(), ORG.into()],
    )
    .await;
    let writer = db.key(ORG, Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (status, _) = app
        .post_json(
            &writer,
            "/v1/orgs/org_acme/activity",
            &json!([{ "action": "read" }]),
        )
        .await;
    assert_eq!(status, 200);
    let key = checkpoint(&db).await;
    let latest = checkpoints::latest(&db.db, &key, ORG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.tree_size as i64, size,
        "no checkpoint over the rewritten tree"
    );
    app.stop().await;
}

async fn a_configured_signing_key_signs_and_a_malformed_one_stops_the_server_at_start(db: TestDb) {
    db.seed(300).await;
    let generated = binary()
        .args(["log-key", "--generate", "audit.example/activity"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&generated.stdout).into_owned();
    let (skey, vkey) = text.trim().split_once('\n').expect("two lines");
    assert!(
        skey.starts_with("PRIVATE+KEY+audit.example/activity+"),
        "{text}"
    );
    let settings = KeySettings {
        signing_key: Some(skey.to_owned()),
        origin_prefix: Some("audit.example/activity".to_owned()),
    };
    let key = checkpoints::log_key(&db.db, &settings).await.unwrap();
    assert_eq!(key.verifier_key(), vkey);
    assert_eq!(key.origin(ORG), "audit.example/activity/org_acme");
    let signed = checkpoints::checkpoint_org(&db.db, &key, ORG)
        .await
        .unwrap()
        .unwrap();
    assert!(
        signed.note.starts_with("audit.example/activity/org_acme\n"),
        "{}",
        signed.note
    );
    checkpoints::open_note(&signed.note, vkey).expect("verifies with the printed verifier key");
    // `log-key` prints the configured key's verifier key, not the stored one.
    let printed = binary()
        .args([
            "log-key",
            "--database-url",
            &db.url,
            "--log-signing-key",
            skey,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim(), vkey);
    // An org the database does not hold is an error, not an empty log.
    let out = binary()
        .args(["verify", "--org", "org_nosuch", "--database-url", &db.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: no org org_nosuch"
    );
    // A key that is not a signed-note Ed25519 key: serve refuses to start,
    // saying why, without echoing the key.
    for bad in ["not-a-key", "PRIVATE+KEY+name+00000000+AAAA"] {
        let out = binary()
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db.url])
            .env("ACTIVITY_GATEWAY_LOG_SIGNING_KEY", bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("the log signing key"), "{stderr}");
        assert!(!stderr.contains(bad), "the key is not echoed: {stderr}");
    }
}

/// `seed` replaces the demo orgs: their log, checkpoints, purges and
/// retention go with their events, so the new data set's log starts at 0,
/// verifies, and is signed afresh (a checkpoint of the old tree would not
/// be consistent with the new one).
async fn seeding_again_replaces_the_demo_orgs_log_which_verifies_and_is_checkpointed(db: TestDb) {
    verified(&db).await;
    activity_gateway::service::retention::set(&db.db, ORG, Some(3650))
        .await
        .unwrap();
    db.seed(1_200).await;
    for org in ["org_acme", "org_globex"] {
        let indexes = db.log_indexes(org).await;
        assert!(indexes.len() > 100, "{org}: {}", indexes.len());
        assert_eq!(
            indexes,
            (0..indexes.len() as i64).collect::<Vec<_>>(),
            "{org}: the new log starts at 0, dense"
        );
        let size = tree_size_of(&db, org).await;
        assert_eq!(
            size,
            indexes.len() as i64,
            "{org}: the tree holds the new events only"
        );
    }
    let (ok, text) = verify(&db, &[]);
    assert!(ok, "{text}");
    checkpoint(&db).await;
    let signed: i64 = db
        .rows(
            "SELECT MAX(tree_size) FROM log_checkpoints WHERE org_id = ?",
            vec![ORG.into()],
        )
        .await[0]
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(signed, tree_size(&db).await, "the new tree is signed");
    let (ok, text) = verify(&db, &[]);
    assert!(ok, "{text}");
}
