//! Validated domain values: ids, times, permissions. No axum, no SeaORM here.

pub mod cursor;
pub mod feed;
pub mod ids;
pub mod permission;
pub mod text;
pub mod time;
