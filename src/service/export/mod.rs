//! The org's activity as a clean, denormalized ZIP: one CSV per record kind
//! (events, sessions, profiles, problems) with names beside ids, and a
//! `manifest.json` with each file's row count and SHA-256.
//!
//! Memory stays flat whatever the size: rows are read in keyset pages inside
//! one snapshot and handed through a small bounded channel to a blocking
//! thread that streams CSV into the ZIP on disk, hashing as it writes. The ZIP
//! is written under a temporary name and renamed when complete, so a failed or
//! abandoned export never leaves a file that looks finished.

mod columns;
mod records;
mod writer;

pub use columns::*;
use records::*;
use std::path::{Path, PathBuf};
pub use writer::*;

pub mod jobs;

/// SQLite's page cache during an export, in KiB.
const EXPORT_CACHE_KIB: u32 = 8 * 1024;
/// Rows read per query.
const PAGE: u64 = 2_000;
/// Pages waiting for the writer: what bounds the memory of an export.
const PAGES_IN_FLIGHT: usize = 2;

/// Where an org's exports live.
fn org_dir(export_dir: &Path, org_id: &str) -> PathBuf {
    export_dir.join(org_id)
}
