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
//!
//! The cache is split into shards by a hash of the key, each behind its own lock, so that
//! hits from several threads rarely wait for each other. Each shard keeps the invariant above
//! on its own, with its own `known`: a shard is a small cache of the keys that hash to it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// Empty when caching is off; else a power of two of shards.
    shards: Box<[Mutex<State<V>>]>,
    room: Room,
    hasher: hashbrown::DefaultHashBuilder,
    quiet: Arc<QuietCommits>,
    /// See [`Cache::new`].
    max_idle: Option<u64>,
    /// Lookups while caching is off (counted in the state otherwise, under its lock).
    uncached: AtomicU64,
}

struct State<V> {
    /// Values, with the time (ms) this cache last reported an access to the key. Unbounded:
    /// the cache's [`Room`] bounds all shards together, so that keys that happen to hash to
    /// one shard more than to others don't evict each other while the cache has room.
    lru: LruCache<KeyBuf, (V, u64)>,
    known: u64,
    hits: u64,
    misses: u64,
}

/// A hit reports an access to the store at most this often per key (ms): recording an access
/// takes the store's lock and, in batches, a lookup in its map of pending access times.
/// Access times of cached keys are therefore exact to within a second.
pub(crate) const TOUCH_INTERVAL_MS: u64 = 1_000;

/// How many entries the shards hold together, and may.
struct Room {
    capacity: usize,
    entries: AtomicUsize,
}

impl<V> State<V> {
    /// Caches `entry` under `key`; at capacity, this shard's least recently used entry makes
    /// room.
    fn insert(&mut self, key: &[u8], entry: (V, u64), room: &Room) {
        if self.lru.put(KeyBuf::from_slice(key), entry).is_some() {
            return;
        }
        if room.entries.load(Ordering::Relaxed) >= room.capacity && self.lru.len() > 1 {
            self.lru.pop_lru();
        } else {
            room.entries.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&mut self, key: &[u8], room: &Room) {
        if self.lru.pop(key).is_some() {
            room.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn clear(&mut self, room: &Room) {
        room.entries.fetch_sub(self.lru.len(), Ordering::Relaxed);
        self.lru.clear();
    }
}

impl<V: Clone> State<V> {
    /// See [`Cache::get`].
    fn lookup(
        &mut self,
        key: &[u8],
        last_txn_id: u64,
        now: u64,
        quiet: &QuietCommits,
        max_idle: Option<u64>,
        room: &Room,
    ) -> Option<(V, bool)> {
        if self.known != last_txn_id {
            let quiet = quiet.cover(self.known, last_txn_id);
            self.known = last_txn_id;
            if !quiet {
                self.clear(room);
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
        // At least 8 entries a shard, so that a small cache stays close to an LRU of its size.
        let count = (capacity / 8)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two()
            .min(MAX_SHARDS);
        let shards = if capacity == 0 {
            Box::default()
        } else {
            (0..count)
                .map(|_| {
                    Mutex::new(State {
                        lru: LruCache::unbounded(),
                        known: 0,
                        hits: 0,
                        misses: 0,
                    })
                })
                .collect()
        };
        Cache {
            shards,
            room: Room {
                capacity,
                entries: AtomicUsize::new(0),
            },
            hasher: hashbrown::DefaultHashBuilder::default(),
            quiet,
            max_idle,
            uncached: AtomicU64::new(0),
        }
    }

    /// The index of `key`'s shard.
    fn shard_of(&self, key: &[u8]) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        // The top bits: each shard's map indexes its buckets with the low ones.
        let hash = self.hasher.hash_one(key);
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    /// The shard of `key`, locked; `None` when caching is off.
    fn lock(&self, key: &[u8]) -> Option<MutexGuard<'_, State<V>>> {
        if self.shards.is_empty() {
            return None;
        }
        Some(lock(&self.shards[self.shard_of(key)]))
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
        let Some(mut state) = self.lock(key) else {
            self.uncached.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let found = state.lookup(
            key,
            last_txn_id(),
            now,
            &self.quiet,
            self.max_idle,
            &self.room,
        );
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
        if let Some(mut state) = self.lock(key)
            && state.known == snapshot
        {
            state.insert(key, (value, now), &self.room);
        }
    }

    /// Accounts for our own commit `txn_id` and what it did to keys, in every shard.
    pub(crate) fn committed<B: AsRef<[u8]>>(
        &self,
        txn_id: u64,
        changes: impl IntoIterator<Item = (B, Change<V>)>,
    ) {
        if self.shards.is_empty() {
            return;
        }
        let mut changes: Vec<(usize, B, Option<Change<V>>)> = changes
            .into_iter()
            .map(|(key, change)| (self.shard_of(key.as_ref()), key, Some(change)))
            .collect();
        for (index, shard) in self.shards.iter().enumerate() {
            let mut state = lock(shard);
            let mine = changes.iter_mut().filter(|(s, _, _)| *s == index);
            if txn_id > state.known
                && (txn_id == state.known + 1 || self.quiet.cover(state.known, txn_id - 1))
            {
                for (_, key, change) in mine {
                    match change.take() {
                        Some(Change::Put(value)) => {
                            // A write stores its own access time; the next hit reports again.
                            state.insert(key.as_ref(), (value, 0), &self.room);
                        }
                        Some(Change::Forget) | None => state.remove(key.as_ref(), &self.room),
                    }
                }
                state.known = txn_id;
            } else if txn_id > state.known {
                // Commits we did not see came first.
                state.clear(&self.room);
                state.known = txn_id;
            } else {
                // A later commit was accounted for already (and emptied the shard, since this
                // one was not applied); values cached since are from snapshots newer than ours.
                for (_, key, _) in mine {
                    state.remove(key.as_ref(), &self.room);
                }
            }
        }
    }

    /// Accounts for our own commit `txn_id` that changed keys we don't list (clear, expiry).
    pub(crate) fn committed_unknown(&self, txn_id: u64) {
        for shard in &self.shards {
            let mut state = lock(shard);
            state.clear(&self.room);
            state.known = state.known.max(txn_id);
        }
    }

    /// `f` of each shard's state, summed.
    fn sum(&self, f: impl Fn(&State<V>) -> u64) -> u64 {
        self.shards.iter().map(|shard| f(&lock(shard))).sum()
    }

    pub(crate) fn hits(&self) -> u64 {
        self.sum(|s| s.hits)
    }

    pub(crate) fn misses(&self) -> u64 {
        self.uncached.load(Ordering::Relaxed) + self.sum(|s| s.misses)
    }

    pub(crate) fn len(&self) -> usize {
        self.sum(|s| s.lru.len() as u64) as usize
    }
}

/// The most shards a cache is split into.
const MAX_SHARDS: usize = 16;

fn lock<V>(shard: &Mutex<State<V>>) -> MutexGuard<'_, State<V>> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
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
    fn every_shard_of_a_large_cache_notices_a_foreign_commit_and_applies_ours() {
        let cache = Cache::new(1_024, Arc::default(), None);
        assert_eq!(cache.shards.len(), MAX_SHARDS);
        let keys: Vec<Vec<u8>> = (0..200_u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for key in &keys {
            get(&cache, key, 5);
            cache.put_read(key, 1, 5, 0);
        }
        assert_eq!(cache.len(), keys.len());
        assert!(keys.iter().all(|k| get(&cache, k, 5) == Some(1)));
        cache.committed(6, keys.iter().map(|k| (k.clone(), Change::Put(2))));
        assert!(keys.iter().all(|k| get(&cache, k, 6) == Some(2)));
        assert!(
            keys.iter().all(|k| get(&cache, k, 7).is_none()),
            "commit 7 was not ours"
        );
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.hits(), 400);
    }

    #[test]
    fn the_shards_together_hold_about_the_capacity_and_keep_a_cycle_that_fits() {
        let cache = Cache::new(100, Arc::default(), None);
        get(&cache, b"k", 5);
        for i in 0..1_000_u32 {
            get(&cache, &i.to_le_bytes(), 5);
            cache.put_read(&i.to_le_bytes(), 1, 5, 0);
        }
        assert!(
            (100..100 + MAX_SHARDS).contains(&cache.len()),
            "{}",
            cache.len()
        );
        // Keys that fit are all kept, however they fall into shards.
        let cache = Cache::new(1_000, Arc::default(), None);
        get(&cache, b"k", 5);
        for round in 0..3 {
            for i in 0..1_000_u32 {
                let key = i.to_le_bytes();
                if get(&cache, &key, 5).is_none() {
                    assert_eq!(round, 0, "key {i} was evicted");
                    cache.put_read(&key, 1, 5, 0);
                }
            }
        }
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = Cache::new(0, Arc::default(), None);
        cache.put_read(b"k", 1, 0, 0);
        assert_eq!(get(&cache, b"k", 0), None);
        assert_eq!((cache.hits(), cache.misses()), (0, 1));
    }
}
