//! Each demo org's directory: departments, hierarchy, users, keys, sessions, problems.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sea_orm::ConnectionTrait;

use crate::domain::api_key;
use crate::domain::time::{MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE};

use super::fixtures::*;
use super::{exec, pick};

/// Org, departments, hierarchy, users, service keys, sessions and problems of one org.
pub(super) async fn seed_directory(
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
pub(super) async fn seed_sessions(
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
pub(super) async fn insert_session(
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

pub(super) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
