//! What every request handler may reach: the database, the settings, and the
//! processes that run beside requests (recorder, live feed, export runner).
//! Transports read it; it knows no transport.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::admission::Admission;
use crate::config::HttpArgs;
use crate::service;
use crate::service::export::jobs::ExportRunner;
use crate::service::live::LiveFeed;
use crate::service::log::checkpoints::LogKeys;
use crate::service::recorder::Recorder;
use crate::service::secrets::CursorKeys;
use crate::service::streams::deliver::StreamRunner;

/// Everything a request handler may need; cheap to clone: one reference
/// count (every extractor of every request clones it, and a clone of each
/// handle was a dozen counts up and down).
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Handles {
    pub db: DatabaseConnection,
    pub settings: Arc<HttpArgs>,
    pub recorder: Recorder,
    /// Rung after every commit of events; wakes live subscriptions.
    pub live: LiveFeed,
    /// The key that seals cursors.
    pub cursors: CursorKeys,
    /// The key that signs the verifiable log's checkpoints.
    pub log_keys: LogKeys,
    /// Places for requests, per credential and per org.
    pub admission: Arc<Admission>,
    /// What `/metrics` reports.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// This replica's export runner.
    pub exports: ExportRunner,
    /// The API keys this replica resolved (see the credential epoch).
    pub keys: Arc<service::keys::KeyCache>,
    /// The rollup cells this replica read (see exact totals).
    pub kept: Arc<service::summary::KeptCells>,
    /// This replica's log stream deliverers.
    pub streams: StreamRunner,
}

impl AppState {
    /// Needs a Tokio runtime: the request recorder's writer starts here.
    pub fn new(db: DatabaseConnection, settings: HttpArgs) -> Self {
        let live = LiveFeed::default();
        service::live::spawn_listener(&db, live.clone());
        let settings = Arc::new(settings);
        let exports = ExportRunner::start(db.clone(), settings.export_jobs());
        let streams = StreamRunner::start(db.clone(), live.clone(), settings.streams.settings());
        let recorder = if settings.record_requests {
            Recorder::start(db.clone(), live.clone(), settings.recorder_capacity)
        } else {
            Recorder::disabled()
        };
        let per_org = match settings.max_in_flight_per_org {
            0 => (crate::db::pool_max(&db) as usize * 3 / 4).max(1),
            n => n,
        };
        Self(Arc::new(Handles {
            admission: Arc::new(Admission::new(
                settings.max_in_flight_per_credential,
                per_org,
                Admission::contended_share(),
            )),
            cursors: CursorKeys::new(db.clone(), settings.cursor_secret.clone()),
            log_keys: LogKeys::new(db.clone(), settings.log.settings()),
            db,
            settings,
            recorder,
            live,
            telemetry: Arc::default(),
            exports,
            keys: Arc::default(),
            kept: Arc::default(),
            streams,
        }))
    }

    /// Where summaries and totals read.
    pub fn summaries(&self) -> service::summary::Source<'_> {
        service::summary::Source::kept(&self.db, &self.kept)
    }

    pub fn jwt_secret(&self) -> Option<&[u8]> {
        self.settings
            .jwt_secret
            .as_deref()
            .map(str::as_bytes)
            .filter(|s| !s.is_empty())
    }
}
