//! Rollup cells kept in memory between requests. The cells of a window
//! change only when the rollups do, and every change moves the rollups'
//! mark (see [`rollups::Mark`]): cells read at a mark stay the cells of
//! that mark, on every replica, so a request that finds them reads only the
//! mark and the raw events the rollups do not hold.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use super::cells::{Cell, Grouping};
use crate::service::rollups;

/// Windows kept: each is a few cells (a total, the breakdowns of a
/// summary, or a chart's hours), so this stays within a few megabytes.
const KEPT_WINDOWS: usize = 1024;

/// Which rollup cells: of which scope, over which whole hours, grouped how,
/// at which mark.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Window {
    pub org_id: String,
    pub kind: &'static str,
    pub scope_id: String,
    pub hours: (i64, i64),
    pub grouping: Grouping,
    pub mark: rollups::Mark,
}

/// The rollup cells this process read, by window; the least recently used
/// go first.
pub struct KeptCells {
    windows: Mutex<lru::LruCache<Window, Arc<[Cell]>>>,
}

impl Default for KeptCells {
    fn default() -> Self {
        Self::with_capacity(KEPT_WINDOWS)
    }
}

impl KeptCells {
    /// At most `windows` windows (at least one).
    pub fn with_capacity(windows: usize) -> Self {
        Self {
            windows: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(windows).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    pub(super) fn get(&self, window: &Window) -> Option<Arc<[Cell]>> {
        crate::service::unpoisoned(&self.windows)
            .get(window)
            .cloned()
    }

    pub(super) fn keep(&self, window: Window, cells: Vec<Cell>) -> Arc<[Cell]> {
        let cells: Arc<[Cell]> = cells.into();
        crate::service::unpoisoned(&self.windows).put(window, cells.clone());
        cells
    }

    /// Windows kept now.
    pub fn len(&self) -> usize {
        crate::service::unpoisoned(&self.windows).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
