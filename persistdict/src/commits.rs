//! The commits of a store, by this process, that changed no value (the worker's flushes of
//! access times): the store records them, and the caches in front of it count them as
//! accounted for, so that such a flush does not empty every cache.

use std::sync::{Mutex, PoisonError};

/// How many of the latest quiet commits are remembered. A cache that falls further behind
/// than that empties itself, as it would after a foreign commit.
pub(crate) const QUIET_KEPT: usize = 16;

/// The ids of the latest commits of a store, by this process, that changed no value.
#[derive(Default)]
pub(crate) struct QuietCommits {
    /// A ring of ids, and where the next one goes; 0 is never a commit's id.
    ids: Mutex<([u64; QUIET_KEPT], usize)>,
}

impl QuietCommits {
    /// Records that commit `id` changed no value.
    pub(crate) fn record(&self, id: u64) {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        let (ring, next) = &mut *ids;
        ring[*next] = id;
        *next = (*next + 1) % QUIET_KEPT;
    }

    /// Whether every commit after `after`, up to and including `upto`, changed no value.
    pub(crate) fn cover(&self, after: u64, upto: u64) -> bool {
        if upto <= after || upto - after > QUIET_KEPT as u64 {
            return false;
        }
        let ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        (after + 1..=upto).all(|id| ids.0.contains(&id))
    }
}
