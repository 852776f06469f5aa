//! What each command does. `main.rs` parses and dispatches; this is testable.

use std::collections::BTreeSet;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;

use crate::app::{self, AppState, Application};
use crate::config::{ExportArgs, KeyCreateArgs, SeedArgs, ServeArgs};
use crate::db;
use crate::domain::permission::{Permission, Role};
use crate::seed;
use crate::service::{directory, keys};

pub async fn open(url: &str) -> anyhow::Result<DatabaseConnection> {
    let conn = db::connect(url).await?;
    db::migrate(&conn).await?;
    Ok(conn)
}

pub async fn migrate(url: &str) -> anyhow::Result<()> {
    let conn = db::connect(url).await?;
    let pending = db::pending_migrations(&conn).await?;
    db::migrate(&conn).await?;
    println!("applied {pending} migration(s); the schema is up to date");
    Ok(())
}

pub async fn seed(args: &SeedArgs) -> anyhow::Result<()> {
    let conn = open(&args.database.database_url).await?;
    let options = seed::SeedOptions {
        events: args.events,
        days: args.days,
        seed: args.seed,
    };
    let report = run_seed(&conn, &options).await?;
    println!(
        "seeded {} events, {} sessions and {} users in {}",
        report.events,
        report.sessions,
        report.users,
        report.orgs.join(", ")
    );
    Ok(())
}

/// Exports an org to a ZIP file with a progress bar (drawn only on a
/// terminal), on the same code as the export route.
pub async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let conn = open(&args.database.database_url).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} exporting [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let idle = args.session_idle_minutes as i64 * crate::domain::time::MICROS_PER_MINUTE;
    let activeness = crate::service::sessions::Activeness {
        seen_since: crate::domain::time::now_micros() - idle,
    };
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let log_key = crate::service::log::checkpoints::log_key(&conn, &args.log.settings())
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    let manifest = crate::service::export::write_zip(
        &conn, &log_key, &args.org, None, &args.out, activeness, &progress,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    bar.finish_and_clear();
    println!(
        "exported {} rows of {} to {}",
        manifest.row_count,
        args.org,
        args.out.display()
    );
    for file in &manifest.files {
        println!(
            "  {}: {} rows, sha256 {}",
            file.name, file.row_count, file.sha256
        );
    }
    Ok(())
}

/// Seeds with a progress bar (drawn only on a terminal).
async fn run_seed(
    conn: &DatabaseConnection,
    options: &seed::SeedOptions,
) -> anyhow::Result<seed::SeedReport> {
    let bar = ProgressBar::new(options.events);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let report = seed::seed(conn, options, |n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    // Summaries are exact either way; folding now makes them fast from the start.
    crate::service::rollups::refresh(conn)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    tracing::info!(
        events = report.events,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "seeded the demo data set"
    );
    Ok(report)
}

pub async fn create_key(args: &KeyCreateArgs) -> anyhow::Result<()> {
    let conn = open(&args.database.database_url).await?;
    let permissions = args
        .permissions
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| Permission::parse(p).ok_or_else(|| anyhow::anyhow!("unknown permission {p:?}")))
        .collect::<anyhow::Result<BTreeSet<_>>>()?;
    let created = keys::create(
        &conn,
        keys::NewKey {
            org_id: args.org.clone(),
            role: args.role.as_deref().and_then(Role::parse),
            permissions,
            user_id: args.user.clone(),
            name: args.name.clone(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!(
        "created key {} ({}…) for {}",
        created.id, created.prefix, args.org
    );
    println!("the secret below is shown once; store it now");
    println!("{}", created.secret);
    Ok(())
}

pub async fn revoke_key(url: &str, key_id: &str) -> anyhow::Result<()> {
    let conn = open(url).await?;
    keys::revoke(&conn, key_id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!("revoked {key_id}");
    Ok(())
}

pub async fn set_retention(args: &crate::config::RetentionSetArgs) -> anyhow::Result<()> {
    let conn = open(&args.database.database_url).await?;
    let days = if args.forever { None } else { args.days };
    let set = crate::service::retention::set(&conn, &args.org, days)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    match set.days {
        Some(days) => println!("{} keeps its raw events {days} days", args.org),
        None => println!("{} keeps its raw events forever", args.org),
    }
    Ok(())
}

pub async fn purge(url: &str) -> anyhow::Result<()> {
    let conn = open(url).await?;
    let purged = crate::service::retention::purge(&conn)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?
        .ok_or_else(|| anyhow::anyhow!("another process is purging; try again later"))?;
    for org in purged {
        println!(
            "{}: purged {} events before {}",
            org.org_id,
            org.events,
            crate::domain::time::format_micros(org.before)
        );
    }
    Ok(())
}

/// The log stream commands, through the same services as GraphQL, as the
/// operator holding `stream:manage` in the org.
pub async fn streams(command: crate::config::StreamsCommand) -> anyhow::Result<()> {
    use crate::config::{StreamFormatArg, StreamShapeArg, StreamStartArg, StreamsCommand};
    use crate::domain::permission::Permission;
    use crate::service::streams;
    let org = match &command {
        StreamsCommand::List(a) => a,
        StreamsCommand::Create(a) => &a.org,
        StreamsCommand::Pause(a)
        | StreamsCommand::Resume(a)
        | StreamsCommand::Delete(a)
        | StreamsCommand::Test(a) => &a.org,
    };
    let conn = open(&org.database.database_url).await?;
    if !directory::org_exists(&conn, &org.org).await? {
        anyhow::bail!("no org {}", org.org);
    }
    let operator = crate::auth::Principal::operator(&org.org, [Permission::StreamManage].into());
    let fail = |e: crate::domain::error::AppError| anyhow::anyhow!("{}", describe(&e));
    let grant = || operator.grant().map_err(fail);
    let print = |s: &streams::Stream| println!("{}", stream_json(s));
    match command {
        StreamsCommand::List(_) => {
            for s in streams::list(&conn, &org.org).await.map_err(fail)? {
                print(&s);
            }
        }
        StreamsCommand::Create(a) => {
            let input = streams::StreamInput {
                name: a.name,
                format: match a.format {
                    StreamFormatArg::Native => streams::Format::Native,
                    StreamFormatArg::Ocsf => streams::Format::Ocsf,
                },
                filter: crate::domain::feed::ActivityFilter {
                    actions: a.actions,
                    ..Default::default()
                },
                start: match a.start_at {
                    StreamStartArg::Now => streams::Start::Now,
                    StreamStartArg::Beginning => streams::Start::Beginning,
                },
                webhook: a.url.map(|url| streams::WebhookInput {
                    url,
                    secret: a.secret.clone().unwrap_or_default(),
                    shape: match a.shape {
                        StreamShapeArg::Standard => streams::WebhookShape::Standard,
                        StreamShapeArg::SplunkHec => streams::WebhookShape::SplunkHec,
                        StreamShapeArg::Datadog => streams::WebhookShape::Datadog,
                    },
                }),
                s3: a.s3_bucket.map(|bucket| streams::S3Input {
                    endpoint: a.s3_endpoint,
                    bucket,
                    prefix: a.s3_prefix,
                    region: a.s3_region,
                    access_key_id: a.s3_access_key_id.unwrap_or_default(),
                    secret_access_key: a.secret.unwrap_or_default(),
                }),
                syslog: a.syslog_host.map(|host| streams::SyslogInput {
                    host,
                    port: a.syslog_port.unwrap_or_default(),
                    tls: a.syslog_tls,
                }),
            };
            let settings = a.streams.settings();
            print(
                &streams::create(&conn, &settings, grant()?, input)
                    .await
                    .map_err(fail)?,
            );
        }
        StreamsCommand::Pause(a) => {
            print(&streams::pause(&conn, grant()?, &a.id).await.map_err(fail)?)
        }
        StreamsCommand::Resume(a) => print(
            &streams::resume(&conn, grant()?, &a.id)
                .await
                .map_err(fail)?,
        ),
        StreamsCommand::Delete(a) => {
            streams::delete(&conn, grant()?, &a.id)
                .await
                .map_err(fail)?;
            println!("deleted {}", a.id);
        }
        StreamsCommand::Test(a) => {
            let outcome = streams::deliver::test(&conn, &a.streams.settings(), grant()?, &a.id)
                .await
                .map_err(fail)?;
            println!(
                "{}",
                serde_json::json!({ "delivered": outcome.delivered, "error": outcome.error })
            );
            if !outcome.delivered {
                anyhow::bail!("the destination did not take the test delivery");
            }
        }
    }
    Ok(())
}

/// A stream as the list prints it: its health, never its secret.
fn stream_json(s: &crate::service::streams::Stream) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "name": s.name,
        "status": s.status.as_str(),
        "format": s.format,
        "destination": s.destination,
        "next_log_index": s.next_index,
        "lag_events": s.lag_events,
        "lag_seconds": s.lag_seconds,
        "delivered_total": s.delivered_total,
        "purged_total": s.purged_total,
        "last_delivered_at": s.last_delivered_at.map(crate::domain::time::format_micros),
        "last_error": s.last_error,
    })
}

/// A service error as one line for the terminal, naming what was not found.
fn describe(e: &crate::domain::error::AppError) -> String {
    match e {
        crate::domain::error::AppError::NotFound {
            resource_type,
            resource_id,
        } => format!("no {resource_type} {resource_id}"),
        crate::domain::error::AppError::Invalid(items) => items
            .iter()
            .map(|i| i.msg.clone())
            .collect::<Vec<_>>()
            .join("; "),
        // The operator runs the command: the cause and the path, in one line.
        crate::domain::error::AppError::Internal(cause, _) => format!("{cause:#}"),
        other => other.to_string(),
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let conn = db::connect_sized(&args.database.database_url, args.http.db_pool_size).await?;
    db::migrate(&conn).await?;
    let state = AppState::new(conn.clone(), args.http.clone());
    // A bad signing key is the operator's to fix now, not a 500 per proof later.
    state
        .log_keys
        .get()
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    crate::service::rollups::spawn_background_refresh(conn.clone(), args.http.rollup_interval());
    crate::service::retention::spawn_purger(
        conn.clone(),
        std::time::Duration::from_secs(args.http.purge_interval_secs.max(1)),
    );
    crate::service::log::checkpoints::spawn_checkpointer(
        conn.clone(),
        state.log_keys.clone(),
        std::time::Duration::from_secs(args.http.checkpoint_interval_secs),
    );
    let application = Application::build(state, args.bind).await?;
    let addr = application.local_addr();
    if args.demo {
        prepare_demo(&conn, &addr.to_string()).await?;
    }
    tracing::info!(%addr, "listening");
    println!("activity-gateway listening on http://{addr}");
    application.run_until(app::shutdown_signal()).await
}

/// Seeds the demo set into an empty database, then prints a fresh admin key for
/// each demo org (secrets are never shown twice, so each start mints new ones).
async fn prepare_demo(conn: &DatabaseConnection, addr: &str) -> anyhow::Result<()> {
    if directory::org_count(conn).await? == 0 {
        println!("seeding the demo data set…");
        run_seed(conn, &seed::SeedOptions::default()).await?;
    }
    for (org_id, _, name, _) in seed::DEMO_ORGS {
        if !directory::org_exists(conn, org_id).await? {
            continue;
        }
        let key = keys::create(
            conn,
            keys::NewKey {
                org_id: org_id.to_owned(),
                role: Some(Role::Admin),
                permissions: BTreeSet::new(),
                user_id: None,
                name: Some("demo admin (serve --demo)".to_owned()),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        println!();
        println!("{name} ({org_id}): admin API key");
        println!("  {}", key.secret);
        println!("  GraphiQL: http://{addr}/graphiql   (put the key in the headers editor)");
        println!(
            "  GraphQL: http://{addr}/graphql   (header X-Api-Key: {})",
            key.secret
        );
        println!("  try: curl -s -H 'X-Api-Key: {}' http://{addr}/graphql -H 'content-type: application/json' -d '{{\"query\":\"{{ viewer {{ principalId permissions org {{ id name }} }} }}\"}}'", key.secret);
    }
    println!();
    Ok(())
}

/// Prints the verifier key of the log's signing key, on one line.
pub async fn log_key(args: &crate::config::LogKeyCommandArgs) -> anyhow::Result<()> {
    use crate::service::log::checkpoints::{generate_signing_key, verifier_key_of};
    if let Some(name) = &args.generate {
        if !signed_note::is_key_name_valid(name) {
            anyhow::bail!("a key name must not be empty, nor hold white space or '+': {name:?}");
        }
        let skey = generate_signing_key(name).map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        let vkey = verifier_key_of(&skey).map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        println!("{skey}\n{vkey}");
        return Ok(());
    }
    let conn = open(&args.database.database_url).await?;
    let key = crate::service::log::checkpoints::log_key(&conn, &args.log.settings())
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!("{}", key.verifier_key());
    Ok(())
}

/// `verify`: an org's log in the database, or an export ZIP offline. Prints
/// what it checked; a log that does not verify is an error naming the
/// first differing log index and event id (exit status 1).
pub async fn verify(args: &crate::config::VerifyArgs) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} verifying [{bar:40}] {pos}/{len} leaves ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = match (&args.zip, &args.org) {
        (Some(zip), _) => {
            let key = args.key.as_deref().ok_or_else(|| {
                anyhow::anyhow!("verifying an export needs the log's verifier key: --key")
            })?;
            crate::service::log::export::verify_zip(zip, key, &progress)?
        }
        (None, Some(org)) => {
            let conn = open(&args.database.database_url).await?;
            let key = crate::service::log::checkpoints::log_key(&conn, &args.log.settings())
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            let against = match &args.against {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                ),
                None => None,
            };
            crate::service::log::verify::verify_org(&conn, &key, org, against.as_deref(), &progress)
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?
        }
        (None, None) => anyhow::bail!("say what to verify: an export ZIP, or --org ORG"),
    };
    bar.finish_and_clear();
    if report.verified() {
        println!("{}", report.summary());
        return Ok(());
    }
    for finding in &report.findings {
        println!("{}", finding.line());
    }
    if report.total_findings > report.findings.len() as u64 {
        println!(
            "... and {} more",
            report.total_findings - report.findings.len() as u64
        );
    }
    let first = report.first().map(|f| f.line()).unwrap_or_default();
    anyhow::bail!(
        "not verified: {} finding(s); the first: {first}",
        report.total_findings
    )
}
