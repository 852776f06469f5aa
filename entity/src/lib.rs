//! SeaORM entities of activity-gateway, and nothing else: the API types live in the
//! main crate so that the API does not change when a table does.
//!
//! Every timestamp is an `i64` of microseconds since the Unix epoch (UTC). Integers
//! sort and compare identically on SQLite and PostgreSQL at exactly microsecond
//! precision, which neither backend's text or timestamp types guarantee alike.

pub mod org;
pub mod department;
pub mod workspace;
pub mod app;
pub mod endpoint;
pub mod augmentation;
pub mod user;
pub mod api_key;
pub mod activity_event;
pub mod session;
pub mod problem;
pub mod export;
pub mod activity_rollup;
pub mod rollup_watermark;
