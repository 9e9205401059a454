//! Access times recorded by reads and not yet stored, and their flush.
//!
//! Each thread records in its own stripe (`stripe.rs`), so that readers don't wait for each
//! other or move a lock's cache line between cores; a flush takes every stripe. A read
//! appends its access to a short log; the log is merged into a map (encoded key -> latest
//! access, ms) when it fills up and before the map is read. Appending writes to memory that
//! was just written. A map insert is a lookup in a table as large as the set of keys
//! read since the last flush: with 100,000 such keys it costs two cache misses, a fifth of an
//! uncached read. Merging a whole log at once lets the processor overlap those misses.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hashbrown::HashMap;

use super::env::{Store, WriteTxn};
use super::record;
use super::repair::FUTURE_TOLERANCE_MS;
use crate::error::Result;
use crate::key::KeyBuf;
use crate::options::Durability;

/// Accesses logged before a merge.
const LOG_LEN: usize = 1024;

/// The latest access time of each key read since the last flush.
#[derive(Default)]
pub(crate) struct Pending {
    map: HashMap<KeyBuf, u64>,
    log: Vec<(KeyBuf, u64)>,
}

impl Pending {
    /// Records an access to `key` at `now`.
    pub(crate) fn touch(&mut self, key: &[u8], now: u64) {
        if self.log.len() >= LOG_LEN {
            self.merge();
        }
        self.log.push((KeyBuf::from_slice(key), now));
    }

    /// The latest recorded access to `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<u64> {
        let logged = self
            .log
            .iter()
            .filter(|(k, _)| k[..] == *key)
            .map(|(_, t)| *t);
        self.map.get(key).copied().into_iter().chain(logged).max()
    }

    /// Takes every recorded access, one per key.
    pub(crate) fn take(&mut self) -> HashMap<KeyBuf, u64> {
        self.merge();
        std::mem::take(&mut self.map)
    }

    /// Puts back accesses taken but not stored, keeping the later time of each key.
    pub(crate) fn restore(&mut self, taken: HashMap<KeyBuf, u64>) {
        self.log.extend(taken);
        self.merge();
    }

    fn merge(&mut self) {
        Self::merge_into(&mut self.map, self.log.drain(..));
    }

    /// Adds `times` to `map`, keeping the later time of each key.
    fn merge_into(map: &mut HashMap<KeyBuf, u64>, times: impl IntoIterator<Item = (KeyBuf, u64)>) {
        for (key, t) in times {
            let latest = map.entry(key).or_insert(t);
            *latest = (*latest).max(t);
        }
    }
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Records an access to `key` at `now`; stored by the next [`flush_atimes`](Self::flush_atimes).
    pub(crate) fn touch(&self, key: &[u8], now: u64) {
        // A read-only store stores nothing; in a forked child the lock may be a parent
        // thread's, held forever.
        if !self.read_only() && self.alive().is_ok() {
            lock(self.atimes.mine()).touch(key, now);
        }
    }

    /// Whether the entry of `key`, whose stored access time is `accessed`, is past its expiry:
    /// neither that time nor one recorded in memory is at or after `cutoff` (ms).
    pub(crate) fn expired(&self, key: &[u8], accessed: u64, cutoff: u64) -> bool {
        // The lock is taken only for an entry whose stored time is old.
        accessed < cutoff && self.pending_atime(key).is_none_or(|t| t < cutoff)
    }

    /// The access time of `key` recorded in memory and not yet stored.
    pub(crate) fn pending_atime(&self, key: &[u8]) -> Option<u64> {
        self.atimes.all().filter_map(|p| lock(p).get(key)).max()
    }

    /// Stores the access times recorded in memory, in one write transaction, as of `now` (ms):
    /// none is stored later than `now`, and a stored one far later than `now` (from a clock
    /// that ran ahead) is brought back. Returns how many were stored.
    pub(crate) fn flush_atimes(&self, now: u64) -> Result<usize> {
        if self.read_only() {
            return Ok(0);
        }
        self.alive()?;
        let mut stripes = self.atimes.all().map(|p| lock(p).take());
        let mut pending = stripes.next().unwrap_or_default();
        for more in stripes {
            Pending::merge_into(&mut pending, more);
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let result = self.write_as(Durability::Eventual, |w| {
            for (key, t) in &pending {
                w.set_accessed(key, *t, now)?;
            }
            Ok(pending.len())
        });
        match result {
            Ok((_, 0)) => {}
            Ok((_, id)) => self.quiet_commits().record(id),
            Err(_) => {
                // Keep them for the next attempt.
                lock(self.atimes.mine()).restore(pending);
            }
        }
        result.map(|(stored, _)| stored)
    }
}

impl WriteTxn<'_> {
    /// Raises the stored access time of `key` to `t`, or brings it back to `t` if it is
    /// more than [`FUTURE_TOLERANCE_MS`] later than `now`; `t` is taken no later than `now`.
    pub(super) fn set_accessed(&mut self, key: &[u8], t: u64, now: u64) -> Result<()> {
        let Some(stored) = self.store.get(&self.txn, key)?.map(|r| r.header.accessed) else {
            return Ok(());
        };
        let t = t.min(now);
        if t > stored || stored > now.saturating_add(FUTURE_TOLERANCE_MS) {
            self.rewrite(key, |rec| record::set_accessed(rec, t))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_access_of_each_key_is_kept_across_merges() {
        let mut pending = Pending::default();
        for i in 0..3 * LOG_LEN as u64 {
            let key = [(i % 7) as u8];
            // Times go back and forth: the latest, not the last, counts.
            pending.touch(&key, if i % 2 == 0 { i } else { i / 2 });
        }
        pending.touch(b"x", 5);
        assert_eq!(pending.get(b"x"), Some(5), "found in the log");
        assert_eq!(pending.get(b"y"), None);
        let expected = |k: u64| {
            (0..3 * LOG_LEN as u64)
                .filter(|i| i % 7 == k)
                .map(|i| if i % 2 == 0 { i } else { i / 2 })
                .max()
        };
        for k in 0..7 {
            assert_eq!(pending.get(&[k as u8]), expected(k), "{k}");
        }
        let taken = pending.take();
        assert_eq!(taken.len(), 8);
        assert_eq!(pending.get(b"x"), None);
        pending.touch(b"x", 9);
        let mut older = HashMap::new();
        older.insert(KeyBuf::from_slice(b"x"), 7);
        older.insert(KeyBuf::from_slice(b"z"), 1);
        pending.restore(older);
        assert_eq!((pending.get(b"x"), pending.get(b"z")), (Some(9), Some(1)));
    }
}
