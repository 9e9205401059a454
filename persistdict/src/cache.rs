//! The in-memory tier: decoded values of recently used keys, coherent across processes.
//!
//! Invariant: every cached value equals the stored value as of LMDB transaction id `known`,
//! and every commit up to `known` is accounted for: it is one of ours whose writes were
//! applied here, or the cache was emptied after it. The id of the last commit by anyone
//! (`env.info().last_txn_id`, 3 ns) is compared with `known` on every lookup; if it moved
//! and we did not account for the move, another process (or another handle) committed, and
//! the cache is emptied before use. LMDB numbers write transactions consecutively, so our own
//! commit `X` can be applied exactly when `X == known + 1`.
//!
//! A value read from a snapshot is only cached if that snapshot is `known`: a reader that
//! raced with a newer commit can't put an older value back.
//!
//! Some commits of this process change no value: the worker's flushes of access times. They
//! are listed in [`QuietCommits`] (`commits.rs`), and a cache counts them as accounted for, so
//! a flush every `flush_interval` does not empty every cache of the store.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use crate::commits::QuietCommits;
use crate::key::KeyBuf;

/// What a commit did to one key.
pub(crate) enum Change<V> {
    /// The key now holds this value.
    Put(V),
    /// The key's value is unknown here (removed, or written without its decoded value).
    Forget,
}

/// The cache of one handle (see the module docs).
pub(crate) struct Cache<V> {
    state: Option<Mutex<State<V>>>,
    quiet: Arc<QuietCommits>,
    /// See [`Cache::new`].
    max_idle: Option<u64>,
    /// Lookups while caching is off (counted in the state otherwise, under its lock).
    uncached: AtomicU64,
}

struct State<V> {
    /// Values, with the time (ms) this cache last reported an access to the key.
    lru: LruCache<KeyBuf, (V, u64)>,
    known: u64,
    hits: u64,
    misses: u64,
}

/// A hit reports an access to the store at most this often per key (ms): recording an access
/// takes the store's lock and, in batches, a lookup in its map of pending access times.
/// Access times of cached keys are therefore exact to within a second.
pub(crate) const TOUCH_INTERVAL_MS: u64 = 1_000;

impl<V: Clone> State<V> {
    /// See [`Cache::get`].
    fn lookup(
        &mut self,
        key: &[u8],
        last_txn_id: u64,
        now: u64,
        quiet: &QuietCommits,
        max_idle: Option<u64>,
    ) -> Option<(V, bool)> {
        if self.known != last_txn_id {
            let quiet = quiet.cover(self.known, last_txn_id);
            self.known = last_txn_id;
            if !quiet {
                self.lru.clear();
                return None;
            }
        }
        let (value, touched) = self.lru.get_mut(key)?;
        // Not used through this cache for longer than the expiry (or not read since our own
        // write, which stamps 0): maybe past its expiry, which the store decides.
        if max_idle.is_some_and(|idle| *touched == 0 || now.saturating_sub(*touched) > idle) {
            return None;
        }
        let touch = now >= touched.saturating_add(TOUCH_INTERVAL_MS) || now < *touched;
        if touch {
            *touched = now;
        }
        Some((value.clone(), touch))
    }
}

impl<V: Clone> Cache<V> {
    /// A cache of at most `capacity` entries (0 turns caching off), in front of the store whose
    /// value-neutral commits `quiet` lists. An entry this cache has not seen used for
    /// `max_idle` ms (the dict's expiry) is a miss.
    pub(crate) fn new(capacity: usize, quiet: Arc<QuietCommits>, max_idle: Option<u64>) -> Self {
        let state = NonZeroUsize::new(capacity).map(|cap| {
            Mutex::new(State {
                lru: LruCache::new(cap),
                known: 0,
                hits: 0,
                misses: 0,
            })
        });
        Cache {
            state,
            quiet,
            max_idle,
            uncached: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, State<V>>> {
        self.state
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The cached value of `key`, if it is still the stored one, and whether the access at
    /// `now` should be reported to the store (see [`TOUCH_INTERVAL_MS`]). `last_txn_id` gives
    /// the id of the last commit by anyone (read only if caching is on).
    pub(crate) fn get(
        &self,
        key: &[u8],
        last_txn_id: impl FnOnce() -> u64,
        now: u64,
    ) -> Option<(V, bool)> {
        let Some(mut state) = self.lock() else {
            self.uncached.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let found = state.lookup(key, last_txn_id(), now, &self.quiet, self.max_idle);
        if found.is_some() {
            state.hits += 1;
        } else {
            state.misses += 1;
        }
        found
    }

    /// Caches `value`, read in a snapshot at transaction id `snapshot` and reported as
    /// accessed at `now`.
    pub(crate) fn put_read(&self, key: &[u8], value: V, snapshot: u64, now: u64) {
        if let Some(mut state) = self.lock()
            && state.known == snapshot
        {
            state.lru.put(KeyBuf::from_slice(key), (value, now));
        }
    }

    /// Accounts for our own commit `txn_id` and what it did to keys.
    pub(crate) fn committed<B: AsRef<[u8]>>(
        &self,
        txn_id: u64,
        changes: impl IntoIterator<Item = (B, Change<V>)>,
    ) {
        let Some(mut state) = self.lock() else { return };
        if txn_id > state.known
            && (txn_id == state.known + 1 || self.quiet.cover(state.known, txn_id - 1))
        {
            for (key, change) in changes {
                match change {
                    Change::Put(value) => {
                        // A write stores its own access time; the next hit reports again.
                        state.lru.put(KeyBuf::from_slice(key.as_ref()), (value, 0));
                    }
                    Change::Forget => {
                        state.lru.pop(key.as_ref());
                    }
                }
            }
            state.known = txn_id;
        } else if txn_id > state.known {
            // Commits we did not see came first.
            state.lru.clear();
            state.known = txn_id;
        } else {
            // A later commit was accounted for already (and emptied the cache, since this one
            // was not applied); values cached since are from snapshots newer than ours.
            for (key, _) in changes {
                state.lru.pop(key.as_ref());
            }
        }
    }

    /// Accounts for our own commit `txn_id` that changed keys we don't list (clear, expiry).
    pub(crate) fn committed_unknown(&self, txn_id: u64) {
        if let Some(mut state) = self.lock() {
            state.lru.clear();
            state.known = state.known.max(txn_id);
        }
    }

    pub(crate) fn hits(&self) -> u64 {
        self.lock().map_or(0, |s| s.hits)
    }

    pub(crate) fn misses(&self) -> u64 {
        self.uncached.load(Ordering::Relaxed) + self.lock().map_or(0, |s| s.misses)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map_or(0, |s| s.lru.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commits::QUIET_KEPT;

    fn get(cache: &Cache<i32>, key: &[u8], last_txn_id: u64) -> Option<i32> {
        cache.get(key, || last_txn_id, 0).map(|(value, _)| value)
    }

    #[test]
    fn a_hit_asks_to_record_the_access_once_per_interval() {
        let cache = Cache::new(4, Arc::default(), None);
        cache.get(b"k", || 5, 0);
        cache.put_read(b"k", 1, 5, 10_000);
        assert_eq!(cache.get(b"k", || 5, 10_500), Some((1, false)));
        assert_eq!(cache.get(b"k", || 5, 11_000), Some((1, true)));
        assert_eq!(cache.get(b"k", || 5, 11_999), Some((1, false)));
        assert_eq!(
            cache.get(b"k", || 5, 9_000),
            Some((1, true)),
            "the clock went back"
        );
    }

    #[test]
    fn a_value_is_served_until_someone_else_commits() {
        let cache = Cache::new(4, Arc::default(), None);
        assert_eq!(get(&cache, b"k", 5), None); // first sight of id 5
        cache.put_read(b"k", 1, 5, 0);
        assert_eq!(get(&cache, b"k", 5), Some(1));
        assert_eq!(
            get(&cache, b"k", 6),
            None,
            "a foreign commit empties the cache"
        );
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn our_next_commit_is_applied_and_a_gap_empties_the_cache() {
        let cache = Cache::new(4, Arc::default(), None);
        get(&cache, b"k", 5);
        cache.put_read(b"a", 1, 5, 0);
        cache.committed(6, [(b"k".to_vec(), Change::Put(2))]);
        assert_eq!(get(&cache, b"k", 6), Some(2));
        assert_eq!(get(&cache, b"a", 6), Some(1));
        cache.committed(8, [(b"k".to_vec(), Change::Put(3))]);
        assert_eq!(
            get(&cache, b"k", 8),
            None,
            "commit 7 was not ours: nothing is trusted"
        );
    }

    #[test]
    fn commits_that_changed_no_value_keep_the_cache() {
        let quiet = Arc::new(QuietCommits::default());
        let cache = Cache::new(4, Arc::clone(&quiet), None);
        get(&cache, b"k", 5);
        cache.put_read(b"a", 1, 5, 0);
        quiet.record(6);
        assert_eq!(get(&cache, b"a", 6), Some(1));
        quiet.record(7);
        cache.committed(8, [(b"k".to_vec(), Change::Put(2))]);
        assert_eq!(get(&cache, b"k", 8), Some(2));
        assert_eq!(get(&cache, b"a", 8), Some(1));
        assert_eq!(get(&cache, b"a", 10), None, "commit 9 or 10 was not quiet");
    }

    #[test]
    fn a_cache_too_far_behind_the_quiet_commits_is_emptied() {
        let quiet = Arc::new(QuietCommits::default());
        let cache = Cache::new(4, Arc::clone(&quiet), None);
        get(&cache, b"k", 5);
        cache.put_read(b"a", 1, 5, 0);
        for id in 6..=(6 + QUIET_KEPT as u64) {
            quiet.record(id);
        }
        assert_eq!(get(&cache, b"a", 5 + QUIET_KEPT as u64 + 1), None);
    }

    #[test]
    fn a_read_from_an_older_snapshot_is_not_cached() {
        let cache = Cache::new(4, Arc::default(), None);
        get(&cache, b"k", 5);
        cache.committed(6, [(b"k".to_vec(), Change::Put(2))]);
        cache.put_read(b"k", 1, 5, 0);
        assert_eq!(get(&cache, b"k", 6), Some(2));
    }

    #[test]
    fn commits_applied_out_of_order_forget_their_keys() {
        let cache = Cache::new(4, Arc::default(), None);
        get(&cache, b"k", 5);
        cache.committed(7, [(b"b".to_vec(), Change::Put(7))]);
        cache.committed(6, [(b"k".to_vec(), Change::Put(6))]);
        assert_eq!(get(&cache, b"k", 7), None);
    }

    #[test]
    fn an_entry_unused_for_longer_than_the_expiry_is_a_miss() {
        let cache = Cache::new(4, Arc::default(), Some(1_000));
        get(&cache, b"k", 5);
        cache.put_read(b"k", 1, 5, 10_000);
        assert_eq!(cache.get(b"k", || 5, 10_900).map(|(v, _)| v), Some(1));
        assert_eq!(cache.get(b"k", || 5, 12_500), None, "idle for 1.6 s");
        cache.committed(6, [(b"w".to_vec(), Change::Put(2))]);
        assert_eq!(
            cache.get(b"w", || 6, 12_600),
            None,
            "the store decides after a write"
        );
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = Cache::new(0, Arc::default(), None);
        cache.put_read(b"k", 1, 0, 0);
        assert_eq!(get(&cache, b"k", 0), None);
        assert_eq!((cache.hits(), cache.misses()), (0, 1));
    }
}
