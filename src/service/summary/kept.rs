//! Rollup cells kept in memory between requests. The cells of a window
//! change only when the rollups do, and every change moves the rollups'
//! mark (see [`rollups::Mark`]): cells read at a mark stay the cells of
//! that mark, on every replica, so a request that finds them reads only the
//! mark and the raw events the rollups do not hold.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use super::cells::{Cell, Grouping};
use crate::service::rollups;

/// Windows kept: most are a few cells (a total, the breakdowns of a
/// summary, or a chart's hours).
const KEPT_WINDOWS: usize = 1024;
/// Cells kept per window at most: a window with more (an org ingesting
/// thousands of distinct actions, a chart over years) is read from the
/// rollups each time, so the memory stays within about 1,024 x 512 cells
/// (some tens of megabytes) whatever the clients send.
const KEPT_CELLS: usize = 512;

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
    cells_per_window: usize,
}

impl Default for KeptCells {
    fn default() -> Self {
        Self::with_capacity(KEPT_WINDOWS)
    }
}

impl KeptCells {
    /// At most `windows` windows (at least one).
    pub fn with_capacity(windows: usize) -> Self {
        Self::with_limits(windows, KEPT_CELLS)
    }

    /// At most `windows` windows (at least one), of at most
    /// `cells_per_window` cells each.
    pub fn with_limits(windows: usize, cells_per_window: usize) -> Self {
        Self {
            windows: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(windows).unwrap_or(NonZeroUsize::MIN),
            )),
            cells_per_window,
        }
    }

    pub(super) fn get(&self, window: &Window) -> Option<Arc<[Cell]>> {
        crate::service::unpoisoned(&self.windows)
            .get(window)
            .cloned()
    }

    /// The cells, kept for `window` unless there are too many of them.
    pub(super) fn keep(&self, window: Window, cells: Vec<Cell>) -> Arc<[Cell]> {
        let cells: Arc<[Cell]> = cells.into();
        if cells.len() <= self.cells_per_window {
            crate::service::unpoisoned(&self.windows).put(window, cells.clone());
        }
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
