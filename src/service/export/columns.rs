//! The columns of each CSV file, the manifest, and cells made safe for spreadsheets.

use serde::Serialize;

pub const EVENT_COLUMNS: [&str; 39] = [
    "id",
    "timestamp",
    "org_id",
    "org_name",
    "workspace_id",
    "workspace_name",
    "app_id",
    "app_name",
    "endpoint_id",
    "endpoint_name",
    "augmentation_id",
    "augmentation_name",
    "user_id",
    "user_name",
    "user_email",
    "department_id",
    "department_name",
    "principal_type",
    "principal_id",
    "token_id",
    "token_type",
    "method",
    "path",
    "resource_type",
    "resource_id",
    "action",
    "status_code",
    "success",
    "error_code",
    "duration_ms",
    "trace_id",
    "execution_id",
    "stages_completed",
    "total_stages",
    "tokens_total",
    "token_usage",
    "metadata",
    "seq",
    "log_index",
];
pub const SESSION_COLUMNS: [&str; 18] = [
    "id",
    "org_id",
    "org_name",
    "user_id",
    "user_name",
    "user_email",
    "department_id",
    "department_name",
    "role",
    "kind",
    "emulated_by",
    "emulated_by_name",
    "started_at",
    "ended_at",
    "last_seen_at",
    "duration_seconds",
    "ip",
    "user_agent",
];
pub const PROFILE_COLUMNS: [&str; 14] = [
    "user_id",
    "org_id",
    "org_name",
    "name",
    "email",
    "department_id",
    "department_name",
    "role",
    "sessions",
    "logins",
    "emulations",
    "total_session_seconds",
    "last_active",
    "active",
];
pub const PROBLEM_COLUMNS: [&str; 15] = [
    "id",
    "org_id",
    "org_name",
    "type",
    "message",
    "activity_id",
    "session_id",
    "created_by",
    "created_by_name",
    "resolved",
    "resolved_at",
    "resolved_by",
    "resolved_by_name",
    "created_at",
    "updated_at",
];

#[derive(Debug, Clone, Serialize)]
pub struct ManifestFile {
    pub name: String,
    pub row_count: u64,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub org_id: String,
    pub org_name: String,
    pub created_at: String,
    pub files: Vec<ManifestFile>,
    /// The data rows of all the CSV files together.
    pub row_count: u64,
    /// `log.jsonl` (its `row_count`: the leaves, one line each) and
    /// `checkpoint.txt`: what `activity-gateway verify` checks offline.
    pub verifiable_log: Vec<ManifestFile>,
    /// How cells a spreadsheet would run as a formula were written.
    pub formula_cells: &'static str,
}

/// What the manifest says of [`neutralised`] cells.
pub const FORMULA_CELLS: &str = "A cell that begins with =, +, -, @, a tab or a carriage return is written with a leading ' (OWASP's advice against CSV injection), so spreadsheets show it as text";

/// A cell as a spreadsheet may safely open it: text that it would read as a
/// formula gets a leading `'` (OWASP). Exported numbers never start so.
pub(crate) fn neutralised(cell: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match cell.first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => {
            let mut safe = Vec::with_capacity(cell.len() + 1);
            safe.push(b'\'');
            safe.extend_from_slice(cell);
            std::borrow::Cow::Owned(safe)
        }
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod formula_tests {
    use super::neutralised;

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_leading_quote() {
        for (cell, safe) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutralised(cell.as_bytes()).as_ref(), safe.as_bytes());
        }
    }
}
