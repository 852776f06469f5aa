//! SeaORM entities of activity-gateway, and nothing else: the API types live in the
//! main crate so that the API does not change when a table does.
//!
//! Every timestamp is an `i64` of microseconds since the Unix epoch (UTC). Integers
//! sort and compare identically on SQLite and PostgreSQL at exactly microsecond
//! precision, which neither backend's text or timestamp types guarantee alike.

pub mod activity_event;
pub mod activity_rollup;
pub mod api_key;
pub mod app;
pub mod augmentation;
pub mod department;
pub mod endpoint;
pub mod export;
pub mod org;
pub mod problem;
pub mod rollup_watermark;
pub mod session;
pub mod user;
pub mod workspace;
