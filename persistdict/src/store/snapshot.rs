//! A read transaction kept open across a whole walk, for `PersistDict::iter_snapshot`.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use heed::{MdbError, WithoutTls};

use super::env::{Reader, Store};
use super::open::FORKS;
use crate::error::Result;

/// A read transaction kept open for a walk of one snapshot; see [`Store::snapshot`].
pub(crate) struct Snapshot {
    txn: ManuallyDrop<heed::RoTxn<'static, WithoutTls>>,
    open: Arc<AtomicUsize>,
    generation: u64,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if FORKS.load(Ordering::Relaxed) == self.generation {
            // SAFETY: `txn` is not used after this.
            drop(unsafe { ManuallyDrop::take(&mut self.txn) });
            // Ended before the count drops: a resize waiting for the count finds no reader.
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        // In a forked child the transaction is the parent's: ending it would clear the
        // parent's reader slot, so it is left alone.
    }
}

impl Store {
    /// A read transaction for a walk of one snapshot, open until the [`Snapshot`] is dropped.
    /// The map can't change size meanwhile (see
    /// [`Error::SnapshotOpen`](crate::Error::SnapshotOpen)).
    pub(crate) fn snapshot(&self) -> Result<Snapshot> {
        loop {
            let held = self.hold(false)?;
            match self.env()?.clone().static_read_txn() {
                Ok(txn) => {
                    // Counted while `resize` is held shared: a resize waits for it, then
                    // sees the count.
                    self.snapshots.fetch_add(1, Ordering::AcqRel);
                    return Ok(Snapshot {
                        txn: ManuallyDrop::new(txn),
                        open: Arc::clone(&self.snapshots),
                        generation: self.generation,
                    });
                }
                Err(heed::Error::Mdb(MdbError::MapResized)) if held.pushed => {
                    drop(held);
                    self.adopt_map_size()?;
                }
                Err(e) => return Err(self.error(e)),
            }
        }
    }

    /// Runs `f` over `snapshot`, which this store made.
    pub(crate) fn read_snapshot<T>(
        &self,
        snapshot: &Snapshot,
        f: impl FnOnce(&Reader<'_>) -> Result<T>,
    ) -> Result<T> {
        self.alive()?;
        f(&Reader {
            store: self,
            txn: &snapshot.txn,
        })
    }
}
