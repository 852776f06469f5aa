//! Login and emulation sessions: analytics for a date range, departments and
//! roles, and the paginated history. Both read the same filter the same way,
//! so the history's `total_count` always equals the analytics' `sessions_count`.

mod analytics;
mod filter;
mod search;

pub use analytics::*;
pub use filter::*;
pub use search::*;
