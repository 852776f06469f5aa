//! The deterministic demo data set: the same `--seed` gives the same ids and the
//! same counts; times are laid out relative to now so "the last 24 hours" always
//! has data. Events are generated and written in chunks, so memory stays flat
//! whatever `--events` is.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};
use serde_json::json;

use super::events::{insert_batch, EventRow};
use super::statement;
use crate::domain::api_key;
use crate::domain::time::{now_micros, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE};

#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub events: u64,
    pub days: u32,
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            events: 200_000,
            days: 14,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub orgs: Vec<String>,
    pub events: u64,
    pub sessions: u64,
    pub users: u64,
}

/// The demo orgs and the share of events each gets.
pub const DEMO_ORGS: [(&str, &str, &str, u64); 2] = [
    ("org_acme", "acme", "Acme Corporation", 65),
    ("org_globex", "globex", "Globex Corporation", 35),
];

const WORKSPACES: [&str; 3] = ["production", "staging", "research"];
const APPS: [&str; 3] = ["billing", "search", "assistant"];
const ENDPOINTS: [(&str, &str, &str); 4] = [
    ("list", "GET", "items"),
    ("get", "GET", "items/{id}"),
    ("create", "POST", "items"),
    ("summarize", "POST", "summarize"),
];
const AUGMENTATIONS: [(&str, i32); 2] = [("enrich", 3), ("triage", 5)];
const DEPARTMENTS: [&str; 4] = ["Engineering", "Sales", "Support", "Finance"];
const FIRST_NAMES: [&str; 24] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Dennis",
    "Radia",
    "Linus",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Annie",
    "Bjarne",
    "Joan",
    "Guido",
    "Mary",
    "Niklaus",
    "Shafi",
    "Leslie",
];
const SERVICE_KEYS: [&str; 3] = ["ci-pipeline", "backend", "zapier"];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "python-requests/2.32.3",
    "activity-cli/1.4.0",
];
const MCP_CLIENTS: [&str; 2] = ["claude-desktop", "cursor"];

/// Every table the demo orgs have rows in, children first (for re-seeding).
const ORG_TABLES: [&str; 14] = [
    "activity_rollups_hourly",
    "activity_events",
    "exports",
    "problems",
    "sessions",
    "api_keys",
    "users",
    "departments",
    "endpoints",
    "augmentations",
    "apps",
    "workspaces",
    "rollup_watermarks",
    "orgs",
];

struct OrgShape {
    id: &'static str,
    slug: &'static str,
    users: Vec<(String, String)>,
    admins: Vec<String>,
    keys: Vec<String>,
    workspaces: Vec<String>,
}

impl OrgShape {
    fn new(id: &'static str, slug: &'static str) -> Self {
        let users = (0..FIRST_NAMES.len())
            .map(|i| (format!("usr_{slug}_{:02}", i + 1), role_of(i).to_owned()))
            .collect::<Vec<_>>();
        let admins = users
            .iter()
            .filter(|(_, r)| r == "admin")
            .map(|(u, _)| u.clone())
            .collect();
        Self {
            id,
            slug,
            users,
            admins,
            keys: SERVICE_KEYS
                .iter()
                .map(|k| format!("key_{slug}_{k}"))
                .collect(),
            workspaces: WORKSPACES
                .iter()
                .map(|w| format!("ws_{slug}_{w}"))
                .collect(),
        }
    }
}

fn role_of(index: usize) -> &'static str {
    match index {
        0..=2 => "admin",
        3..=10 => "member",
        _ => "viewer",
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Picks by weight: `[(item, weight)]`.
fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total);
    for (item, w) in items {
        if n < *w {
            return *item;
        }
        n -= w;
    }
    items[items.len() - 1].0
}

fn hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

async fn exec(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> anyhow::Result<()> {
    db.execute_raw(statement(db, sql, values)).await?;
    Ok(())
}

/// Writes the demo data set, replacing the demo orgs if they exist already.
/// `progress` is told how many events have been written so far.
pub async fn seed(
    db: &DatabaseConnection,
    options: &SeedOptions,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<SeedReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let now = now_micros();
    let window = i64::from(options.days.max(1)) * MICROS_PER_DAY;
    let start = now - window;
    let orgs: Vec<OrgShape> = DEMO_ORGS
        .iter()
        .map(|(id, slug, _, _)| OrgShape::new(id, slug))
        .collect();

    let txn = db.begin().await?;
    for table in ORG_TABLES {
        let column = if table == "rollup_watermarks" {
            "name"
        } else if table == "orgs" {
            "id"
        } else {
            "org_id"
        };
        exec(
            &txn,
            &format!("DELETE FROM {table} WHERE {column} IN (?, ?)"),
            vec![DEMO_ORGS[0].0.into(), DEMO_ORGS[1].0.into()],
        )
        .await?;
    }
    let mut sessions = 0;
    for ((_, _, name, _), org) in DEMO_ORGS.iter().zip(&orgs) {
        sessions += seed_directory(&txn, &mut rng, org, name, now, start).await?;
    }
    txn.commit().await?;

    let per_org: Vec<u64> = {
        let total_weight: u64 = DEMO_ORGS.iter().map(|o| o.3).sum();
        let first = options.events * DEMO_ORGS[0].3 / total_weight;
        vec![first, options.events - first]
    };
    // Each chunk covers its own slice of the window and is written in time
    // order: every feed index is (scope, ts, id), so time-ordered inserts append
    // near the end of each scope's range instead of splitting pages at random.
    let mut written = 0;
    const EVENTS_PER_TRANSACTION: u64 = 10_000;
    for (org, count) in orgs.iter().zip(per_org) {
        let chunks = count.div_ceil(EVENTS_PER_TRANSACTION).max(1);
        let slice = window / chunks as i64;
        let mut left = count;
        for chunk in 0..chunks as i64 {
            let n = left.min(EVENTS_PER_TRANSACTION);
            let (from, to) = (
                chunk * slice,
                if chunk + 1 == chunks as i64 {
                    window
                } else {
                    (chunk + 1) * slice
                },
            );
            let mut offsets: Vec<i64> = (0..n)
                .map(|_| rng.random_range(from..to.max(from + 1)))
                .collect();
            offsets.sort_unstable();
            let rows: Vec<EventRow> = offsets
                .into_iter()
                .map(|offset| demo_event(&mut rng, org, start, offset))
                .collect();
            let txn = db.begin().await?;
            insert_batch(&txn, rows, false).await?;
            txn.commit().await?;
            left -= n;
            written += n;
            progress(written);
        }
    }
    // Fresh planner statistics for the new volume.
    db.execute_unprepared("ANALYZE").await?;
    Ok(SeedReport {
        orgs: DEMO_ORGS.iter().map(|o| o.0.to_owned()).collect(),
        events: written,
        sessions,
        users: (orgs.len() * FIRST_NAMES.len()) as u64,
    })
}

/// Org, departments, hierarchy, users, service keys, sessions and problems of one org.
async fn seed_directory(
    db: &impl ConnectionTrait,
    rng: &mut ChaCha8Rng,
    org: &OrgShape,
    name: &str,
    now: i64,
    start: i64,
) -> anyhow::Result<u64> {
    let created = start - 30 * MICROS_PER_DAY;
    let slug = org.slug;
    exec(
        db,
        "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
        vec![org.id.into(), name.into(), created.into()],
    )
    .await?;
    for dep in DEPARTMENTS {
        exec(
            db,
            "INSERT INTO departments (id, org_id, name) VALUES (?, ?, ?)",
            vec![
                format!("dep_{slug}_{}", dep.to_lowercase()).into(),
                org.id.into(),
                dep.into(),
            ],
        )
        .await?;
    }
    for (w, ws) in WORKSPACES.iter().enumerate() {
        let ws_id = &org.workspaces[w];
        exec(
            db,
            "INSERT INTO workspaces (id, org_id, name, created_at) VALUES (?, ?, ?, ?)",
            vec![
                ws_id.clone().into(),
                org.id.into(),
                capitalise(ws).into(),
                created.into(),
            ],
        )
        .await?;
        for app in APPS {
            let app_id = format!("app_{slug}_{ws}_{app}");
            exec(
                db,
                "INSERT INTO apps (id, org_id, workspace_id, name, created_at) VALUES (?, ?, ?, ?, ?)",
                vec![app_id.clone().into(), org.id.into(), ws_id.clone().into(), capitalise(app).into(), created.into()],
            )
            .await?;
            for (ep, method, path) in ENDPOINTS {
                exec(
                    db,
                    "INSERT INTO endpoints (id, org_id, workspace_id, app_id, name, method, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    vec![
                        format!("ep_{slug}_{ws}_{app}_{ep}").into(),
                        org.id.into(),
                        ws_id.clone().into(),
                        app_id.clone().into(),
                        format!("{} {ep}", capitalise(app)).into(),
                        method.into(),
                        format!("/{app}/{path}").into(),
                        created.into(),
                    ],
                )
                .await?;
            }
        }
        for (aug, stages) in AUGMENTATIONS {
            exec(
                db,
                "INSERT INTO augmentations (id, org_id, workspace_id, name, total_stages, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    format!("aug_{slug}_{ws}_{aug}").into(),
                    org.id.into(),
                    ws_id.clone().into(),
                    capitalise(aug).into(),
                    stages.into(),
                    created.into(),
                ],
            )
            .await?;
        }
    }
    for (i, (user_id, role)) in org.users.iter().enumerate() {
        let first = FIRST_NAMES[i];
        let department = format!(
            "dep_{slug}_{}",
            DEPARTMENTS[i % DEPARTMENTS.len()].to_lowercase()
        );
        exec(
            db,
            "INSERT INTO users (id, org_id, email, name, role, department_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                user_id.clone().into(),
                org.id.into(),
                format!("{}@{slug}.example", first.to_lowercase()).into(),
                format!("{first} {}", capitalise(slug)).into(),
                role.clone().into(),
                department.into(),
                created.into(),
            ],
        )
        .await?;
    }
    // Service keys whose secrets nobody knows: they give events real token ids.
    // The secret comes from the OS's CSPRNG and is never shown: the data seed
    // decides data, never a secret.
    for (key_id, key_name) in org.keys.iter().zip(SERVICE_KEYS) {
        let hash = api_key::hash_secret(&api_key::generate_secret());
        exec(
            db,
            "INSERT INTO api_keys (id, org_id, user_id, name, prefix, secret_hash, role, permissions, created_at, last_used_at, revoked_at) VALUES (?, ?, NULL, ?, ?, ?, 'admin', '', ?, NULL, NULL)",
            vec![key_id.clone().into(), org.id.into(), key_name.into(), "agk_demo".into(), hash.into(), created.into()],
        )
        .await?;
    }
    let sessions = seed_sessions(db, rng, org, now, start).await?;
    for n in 0..8 {
        let resolved = n % 3 == 0;
        let at = start + rng.random_range(0..(now - start));
        let (kind, message) = *pick(
            rng,
            &[
                ("latency", "p95 latency above 2s on the search app"),
                (
                    "error_rate",
                    "Error rate doubled after the last deploy, \"billing\" app",
                ),
                ("quota", "Token usage near the monthly quota, please review"),
                (
                    "access",
                    "Unexpected emulation session, check with security",
                ),
            ],
        );
        exec(
            db,
            "INSERT INTO problems (id, org_id, kind, message, activity_id, session_id, created_by, resolved, resolved_at, resolved_by, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?)",
            vec![
                format!("prb_{slug}_{:02}", n + 1).into(),
                org.id.into(),
                kind.into(),
                message.into(),
                org.admins[0].clone().into(),
                resolved.into(),
                resolved.then_some(at + MICROS_PER_HOUR).into(),
                resolved.then(|| org.admins[1].clone()).into(),
                at.into(),
                (if resolved { at + MICROS_PER_HOUR } else { at }).into(),
            ],
        )
        .await?;
    }
    Ok(sessions)
}

/// Login sessions for every user most days, a few emulations by admins, and a
/// handful still active now.
async fn seed_sessions(
    db: &impl ConnectionTrait,
    rng: &mut ChaCha8Rng,
    org: &OrgShape,
    now: i64,
    start: i64,
) -> anyhow::Result<u64> {
    let mut count = 0;
    let days = (now - start) / MICROS_PER_DAY;
    for (u, (user_id, _)) in org.users.iter().enumerate() {
        for day in 0..days {
            if rng.random_range(0..10) < 3 {
                continue;
            }
            let day_start = start + day * MICROS_PER_DAY;
            let started = day_start + rng.random_range(7 * MICROS_PER_HOUR..11 * MICROS_PER_HOUR);
            let length = rng.random_range(10 * MICROS_PER_MINUTE..8 * MICROS_PER_HOUR);
            let emulation = !org.admins.contains(user_id) && rng.random_range(0..12) == 0;
            insert_session(
                db,
                rng,
                org,
                &mut count,
                user_id,
                emulation,
                started,
                (started + length).min(now),
                true,
            )
            .await?;
        }
        // The last few users are online right now (one of them emulated).
        if u >= org.users.len() - 4 {
            let started = now - rng.random_range(5 * MICROS_PER_MINUTE..3 * MICROS_PER_HOUR);
            let last_seen = now - rng.random_range(0..10 * MICROS_PER_MINUTE);
            let emulation = u == org.users.len() - 1;
            insert_session(
                db, rng, org, &mut count, user_id, emulation, started, last_seen, false,
            )
            .await?;
        }
    }
    Ok(count)
}

#[allow(clippy::too_many_arguments)]
async fn insert_session(
    db: &impl ConnectionTrait,
    rng: &mut ChaCha8Rng,
    org: &OrgShape,
    count: &mut u64,
    user_id: &str,
    emulation: bool,
    started: i64,
    last_seen: i64,
    ended: bool,
) -> anyhow::Result<()> {
    *count += 1;
    let emulated_by = emulation.then(|| pick(rng, &org.admins).clone());
    exec(
        db,
        "INSERT INTO sessions (id, org_id, user_id, kind, emulated_by, started_at, last_seen_at, ended_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            format!("ses_{}_{:05}", org.slug, *count).into(),
            org.id.into(),
            user_id.into(),
            (if emulation { "emulation" } else { "login" }).into(),
            emulated_by.into(),
            started.into(),
            last_seen.into(),
            ended.then_some(last_seen).into(),
            format!("10.{}.{}.{}", rng.random_range(0..255), rng.random_range(0..255), rng.random_range(1..255)).into(),
            (*pick(rng, &USER_AGENTS)).into(),
        ],
    )
    .await?;
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One realistic event. Its id is a UUIDv7 whose time part is the event's offset
/// into the window from a fixed anchor: ids sort like the events' times, and the
/// same seed gives the same ids whatever the day it runs.
fn demo_event(rng: &mut ChaCha8Rng, org: &OrgShape, start: i64, offset: i64) -> EventRow {
    const ID_ANCHOR_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let ts = start + offset;
    let mut random = [0u8; 10];
    rng.fill(&mut random);
    let uuid =
        uuid::Builder::from_unix_timestamp_millis(ID_ANCHOR_MS + (offset / 1000) as u64, &random)
            .into_uuid();
    let slug = org.slug;
    let ws_name = *pick(rng, &WORKSPACES);
    let ws = format!("ws_{slug}_{ws_name}");

    enum Target {
        Endpoint,
        Augmentation,
        App,
        Workspace,
    }
    let target = weighted(rng, &[(0u8, 70), (1, 15), (2, 10), (3, 5)]);
    let target = [
        Target::Endpoint,
        Target::Augmentation,
        Target::App,
        Target::Workspace,
    ]
    .into_iter()
    .nth(target as usize)
    .unwrap_or(Target::Endpoint);
    let mut row = EventRow {
        org_id: org.id.to_owned(),
        ts,
        workspace_id: Some(ws.clone()),
        ..Default::default()
    };
    let base = format!("/v1/orgs/{}/workspaces/{ws}", org.id);
    let (action, path, resource_type, resource_id) = match target {
        Target::Endpoint => {
            let app = *pick(rng, &APPS);
            let (ep, _, _) = *pick(rng, &ENDPOINTS);
            let app_id = format!("app_{slug}_{ws_name}_{app}");
            let ep_id = format!("ep_{slug}_{ws_name}_{app}_{ep}");
            let action = weighted(
                rng,
                &[
                    ("read", 55),
                    ("create", 15),
                    ("update", 10),
                    ("delete", 5),
                    ("execute", 15),
                ],
            );
            row.app_id = Some(app_id.clone());
            row.endpoint_id = Some(ep_id.clone());
            (
                action,
                format!("{base}/apps/{app_id}/endpoints/{ep_id}"),
                "endpoint",
                ep_id,
            )
        }
        Target::Augmentation => {
            let (aug, stages) = *pick(rng, &AUGMENTATIONS);
            let aug_id = format!("aug_{slug}_{ws_name}_{aug}");
            let action = weighted(rng, &[("execute", 70), ("trigger", 20), ("read", 10)]);
            row.augmentation_id = Some(aug_id.clone());
            if action != "read" {
                row.execution_id = Some(format!("exec_{}", hex(rng, 12)));
                row.total_stages = Some(stages);
            }
            (
                action,
                format!("{base}/augmentations/{aug_id}"),
                "augmentation",
                aug_id,
            )
        }
        Target::App => {
            let app = *pick(rng, &APPS);
            let app_id = format!("app_{slug}_{ws_name}_{app}");
            let action = weighted(
                rng,
                &[("read", 60), ("update", 25), ("create", 10), ("delete", 5)],
            );
            row.app_id = Some(app_id.clone());
            (action, format!("{base}/apps/{app_id}"), "app", app_id)
        }
        Target::Workspace => {
            let action = weighted(rng, &[("read", 70), ("update", 30)]);
            (action, base.clone(), "workspace", ws.clone())
        }
    };
    row.id = crate::domain::ids::with_uuid(crate::domain::ids::IdKind::Activity, uuid);
    row.trace_id = Some(hex(rng, 16));
    row.method = Some(
        match action {
            "read" => "GET",
            "update" => "PATCH",
            "delete" => "DELETE",
            _ => "POST",
        }
        .to_owned(),
    );
    row.path = Some(path);
    row.resource_type = Some(resource_type.to_owned());
    row.resource_id = Some(resource_id);
    row.action = action.to_owned();

    let principal = weighted(rng, &[("user", 85), ("api_key", 10), ("mcp_agent", 5)]);
    let mut metadata = json!({ "user_agent": pick(rng, &USER_AGENTS), "ip": format!("203.0.113.{}", rng.random_range(1..255)) });
    if principal == "api_key" {
        let key = pick(rng, &org.keys).clone();
        row.principal_id = Some(key.clone());
        row.token_id = Some(key);
        row.token_type = Some("api_key".to_owned());
    } else {
        let (user, _) = pick(rng, &org.users).clone();
        row.user_id = Some(user.clone());
        row.principal_id = Some(user);
        let jwt = rng.random_bool(0.6);
        row.token_type = Some(if jwt { "jwt" } else { "api_key" }.to_owned());
        row.token_id = Some(if jwt {
            format!("jti_{}", hex(rng, 8))
        } else {
            pick(rng, &org.keys).clone()
        });
        if principal == "mcp_agent" {
            metadata["mcp_client"] = json!(pick(rng, &MCP_CLIENTS));
        }
    }
    row.principal_type = Some(principal.to_owned());

    let ok_status = match action {
        "create" => 201,
        "delete" => 204,
        "trigger" => 202,
        _ => 200,
    };
    let (status, error) = weighted(
        rng,
        &[
            ((ok_status, None), 920),
            ((400, Some("VALIDATION_ERROR")), 20),
            ((401, Some("AUTHENTICATION_FAILED")), 8),
            ((403, Some("FORBIDDEN")), 10),
            ((404, Some("RESOURCE_NOT_FOUND")), 15),
            ((409, Some("CONFLICT")), 5),
            ((429, Some("RATE_LIMITED")), 10),
            ((500, Some("INTERNAL_SERVER_ERROR")), 7),
            ((504, Some("UPSTREAM_TIMEOUT")), 5),
        ],
    );
    row.status_code = status;
    row.success = status < 400;
    row.error_code = error.map(str::to_owned);
    if let Some(total) = row.total_stages {
        row.stages_completed = Some(if row.success {
            total
        } else {
            rng.random_range(0..total)
        });
    }

    // Durations: a long tail, heavier for executions.
    let base_ms: f64 = if action == "execute" || action == "trigger" {
        400.0
    } else {
        40.0
    };
    let tail: f64 = rng.random::<f64>().powi(3) * 20.0 + 0.2;
    row.duration_ms = (base_ms * tail) as i64 + rng.random_range(1..20);

    if action == "execute" && row.success {
        let prompt = rng.random_range(50..4_000);
        let completion = rng.random_range(10..1_500);
        row.token_usage =
            json!({ "prompt_tokens": prompt, "completion_tokens": completion }).to_string();
        row.tokens_total = prompt + completion;
    } else {
        row.token_usage = "{}".to_owned();
    }
    row.metadata = metadata.to_string();
    row
}
