//! Validated domain values: ids, times, permissions, principals and the
//! capabilities they prove, cursors, key secrets. No axum, no SeaORM here.

pub mod api_key;
pub mod claims;
pub mod cursor;
pub mod error;
pub mod feed;
pub mod grant;
pub mod ids;
pub mod paging;
pub mod permission;
pub mod principal;
pub mod text;
pub mod time;
pub mod viewer;
