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
//! A hit writes nothing that other readers read or write: the values are in a concurrent map
//! whose lookups take no lock (`papaya`, with epoch-based reclamation whose guards are kept
//! per thread), `known` is one atomic load, the hit counters are striped (`stripe.rs`), and
//! the per-entry state a hit may set (the eviction's visited bit, the time of the last
//! reported access) is written only when it changes: once per eviction pass and once per
//! [`TOUCH_INTERVAL_MS`]. Everything else (fills, our commits, emptying, eviction) holds one
//! lock, in this order: the map first, then `known` with release ordering; a hit loads
//! `known` with acquire ordering before it reads the map. A hit that finds `known` behind
//! the last commit takes the lock to account for the commits in between, so it never reads
//! a map that is emptied after `known` has moved on.
//!
//! Eviction is CLOCK (second chance): keys sit in a ring in the order they arrived; a hit
//! sets its entry's visited bit, and a full cache evicts the first key at or after the hand
//! whose bit is clear, clearing the bits it passes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::commits::QuietCommits;
use crate::key::KeyBuf;
use crate::stripe::Counter;

/// What a commit did to one key.
pub(crate) enum Change<V> {
    /// The key now holds this value.
    Put(V),
    /// The key's value is unknown here (removed, or written without its decoded value).
    Forget,
}

/// A hit reports an access to the store at most this often per key (ms): recording an access
/// writes to the reading thread's log of pending access times, and the flush stores one time
/// per key. Access times of cached keys are therefore exact to within a second.
pub(crate) const TOUCH_INTERVAL_MS: u64 = 1_000;

/// The cache of one handle (see the module docs).
pub(crate) struct Cache<V> {
    /// `None` when caching is off.
    on: Option<On<V>>,
    quiet: Arc<QuietCommits>,
    /// See [`Cache::new`].
    max_idle: Option<u64>,
    hits: Counter,
    misses: Counter,
}

type Map<V> = papaya::HashMap<KeyBuf, Slot<V>, hashbrown::DefaultHashBuilder>;

/// A cache that caches.
struct On<V> {
    map: Map<V>,
    /// The transaction id as of which every value in `map` is the stored one.
    known: AtomicU64,
    /// Held by everything that changes `map` or `known`.
    ring: Mutex<Ring>,
}

/// One cached value.
struct Slot<V> {
    value: V,
    /// When this cache last reported an access to the key (ms); 0 after our own write.
    touched: AtomicU64,
    /// Set by a hit, cleared by the eviction hand passing over the entry.
    visited: AtomicBool,
    /// The entry's place in the ring.
    place: usize,
}

impl<V> Slot<V> {
    fn new(value: V, touched: u64, place: usize) -> Self {
        Slot {
            value,
            touched: AtomicU64::new(touched),
            visited: AtomicBool::new(false),
            place,
        }
    }
}

/// The cached keys in the order eviction considers them. Invariant: `keys[p]` is `Some(k)`
/// exactly when the map holds `k` with place `p`; every `None` place is in `free`.
struct Ring {
    keys: Vec<Option<KeyBuf>>,
    free: Vec<usize>,
    hand: usize,
    capacity: usize,
}

/// The lock of a cache that caches, with the map it guards.
struct Locked<'c, V> {
    ring: MutexGuard<'c, Ring>,
    on: &'c On<V>,
    guard: papaya::LocalGuard<'c>,
}

impl<V> On<V> {
    fn lock(&self) -> Locked<'_, V> {
        Locked {
            ring: self.ring.lock().unwrap_or_else(PoisonError::into_inner),
            on: self,
            guard: self.map.guard(),
        }
    }
}

impl<V> Locked<'_, V> {
    fn known(&self) -> u64 {
        // Only holders of the lock store it.
        self.on.known.load(Ordering::Relaxed)
    }

    /// Makes `id` known; the map must be right as of `id` already.
    fn publish(&self, id: u64) {
        self.on.known.store(id, Ordering::Release);
    }

    /// Accounts for every commit up to `last`: emptying the cache unless they were all quiet
    /// ones. Returns whether the values may still be served.
    fn catch_up(&mut self, last: u64, quiet: &QuietCommits) -> bool {
        let known = self.known();
        if known == last {
            return true;
        }
        let kept = quiet.cover(known, last);
        if !kept {
            self.clear();
        }
        self.publish(last);
        kept
    }

    /// Caches `value` under `key`, reported as accessed at `touched`; at capacity, the first
    /// entry at or after the hand not visited since the hand last passed makes room.
    fn insert(&mut self, key: &[u8], value: V, touched: u64) {
        let map = &self.on.map;
        let place = match map.get(key, &self.guard) {
            Some(slot) => slot.place,
            None => match self.ring.free.pop() {
                Some(place) => place,
                None if self.ring.keys.len() < self.ring.capacity => {
                    self.ring.keys.push(None);
                    self.ring.keys.len() - 1
                }
                None => self.evict(),
            },
        };
        let key = KeyBuf::from_slice(key);
        self.ring.keys[place] = Some(key.clone());
        map.insert(key, Slot::new(value, touched, place), &self.guard);
    }

    /// Removes the entry at the hand's next unvisited place; returns that place, now empty.
    fn evict(&mut self) -> usize {
        let ring = &mut *self.ring;
        let len = ring.keys.len();
        // After one turn every bit the hand passed is clear; hits may set some again
        // meanwhile, so the second turn ends with the entry under the hand whatever its bit.
        for turn in 0..2 * len {
            let place = ring.hand;
            ring.hand = (ring.hand + 1) % len;
            let Some(key) = &ring.keys[place] else {
                return place;
            };
            let visited = self
                .on
                .map
                .get(key, &self.guard)
                .is_some_and(|slot| slot.visited.swap(false, Ordering::Relaxed));
            if !visited || turn + 1 == 2 * len {
                self.on.map.remove(key, &self.guard);
                ring.keys[place] = None;
                return place;
            }
        }
        unreachable!("the loop returns on its last turn")
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(slot) = self.on.map.remove(key, &self.guard) {
            self.ring.keys[slot.place] = None;
            self.ring.free.push(slot.place);
        }
    }

    fn clear(&mut self) {
        self.on.map.clear(&self.guard);
        self.ring.keys.clear();
        self.ring.free.clear();
        self.ring.hand = 0;
    }
}

impl<V> Cache<V> {
    /// A cache of at most `capacity` entries (0 turns caching off), in front of the store whose
    /// value-neutral commits `quiet` lists. An entry this cache has not seen used for
    /// `max_idle` ms (the dict's expiry) is a miss.
    pub(crate) fn new(capacity: usize, quiet: Arc<QuietCommits>, max_idle: Option<u64>) -> Self {
        let on = (capacity > 0).then(|| On {
            map: papaya::HashMap::builder()
                .hasher(hashbrown::DefaultHashBuilder::default())
                .build(),
            known: AtomicU64::new(0),
            ring: Mutex::new(Ring {
                keys: Vec::new(),
                free: Vec::new(),
                hand: 0,
                capacity,
            }),
        });
        Cache {
            on,
            quiet,
            max_idle,
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    /// `f` of the cached value of `key`, if it is still the stored one, and whether the
    /// access at `now` should be reported to the store (see [`TOUCH_INTERVAL_MS`]).
    /// `last_txn_id` gives the id of the last commit by anyone (read only if caching is on).
    pub(crate) fn with<T>(
        &self,
        key: &[u8],
        last_txn_id: impl FnOnce() -> u64,
        now: u64,
        f: impl FnOnce(&V) -> T,
    ) -> Option<(T, bool)> {
        let found = self.on.as_ref().and_then(|on| {
            let last = last_txn_id();
            if on.known.load(Ordering::Acquire) != last && !on.lock().catch_up(last, &self.quiet) {
                return None;
            }
            let guard = on.map.guard();
            let slot = on.map.get(key, &guard)?;
            let touched = slot.touched.load(Ordering::Relaxed);
            // Not used through this cache for longer than the expiry (or not read since our
            // own write, which stamps 0): maybe past its expiry, which the store decides.
            if self
                .max_idle
                .is_some_and(|idle| touched == 0 || now.saturating_sub(touched) > idle)
            {
                return None;
            }
            let touch = now >= touched.saturating_add(TOUCH_INTERVAL_MS) || now < touched;
            if touch {
                // Two threads may both report the access: the store keeps the later time.
                slot.touched.store(now, Ordering::Relaxed);
            }
            if !slot.visited.load(Ordering::Relaxed) {
                slot.visited.store(true, Ordering::Relaxed);
            }
            Some((f(&slot.value), touch))
        });
        if found.is_some() {
            self.hits.add_one();
        } else {
            self.misses.add_one();
        }
        found
    }

    /// Caches `value`, read in a snapshot at transaction id `snapshot` and reported as
    /// accessed at `now`.
    pub(crate) fn put_read(&self, key: &[u8], value: V, snapshot: u64, now: u64) {
        if let Some(on) = &self.on {
            let mut locked = on.lock();
            if locked.known() == snapshot {
                locked.insert(key, value, now);
            }
        }
    }

    /// Accounts for our own commit `txn_id` and what it did to keys.
    pub(crate) fn committed<B: AsRef<[u8]>>(
        &self,
        txn_id: u64,
        changes: impl IntoIterator<Item = (B, Change<V>)>,
    ) {
        let Some(on) = &self.on else {
            return;
        };
        let mut locked = on.lock();
        let known = locked.known();
        if txn_id > known && (txn_id == known + 1 || self.quiet.cover(known, txn_id - 1)) {
            for (key, change) in changes {
                match change {
                    // A write stores its own access time; the next hit reports again.
                    Change::Put(value) => locked.insert(key.as_ref(), value, 0),
                    Change::Forget => locked.remove(key.as_ref()),
                }
            }
            locked.publish(txn_id);
        } else if txn_id > known {
            // Commits we did not see came first.
            locked.clear();
            locked.publish(txn_id);
        } else {
            // A later commit was accounted for already (and emptied the cache, since this
            // one was not applied); values cached since are from snapshots newer than ours.
            for (key, _) in changes {
                locked.remove(key.as_ref());
            }
        }
    }

    /// Accounts for our own commit `txn_id` that changed keys we don't list (clear, expiry).
    pub(crate) fn committed_unknown(&self, txn_id: u64) {
        if let Some(on) = &self.on {
            let mut locked = on.lock();
            locked.clear();
            locked.publish(locked.known().max(txn_id));
        }
    }

    pub(crate) fn hits(&self) -> u64 {
        self.hits.sum()
    }

    pub(crate) fn misses(&self) -> u64 {
        self.misses.sum()
    }

    pub(crate) fn len(&self) -> usize {
        self.on.as_ref().map_or(0, |on| on.map.len())
    }
}

#[cfg(test)]
impl<V: Clone> Cache<V> {
    /// The cached value of `key`; see [`with`](Self::with).
    pub(crate) fn get(
        &self,
        key: &[u8],
        last_txn_id: impl FnOnce() -> u64,
        now: u64,
    ) -> Option<(V, bool)> {
        self.with(key, last_txn_id, now, V::clone)
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
    fn a_large_cache_notices_a_foreign_commit_and_applies_ours() {
        let cache = Cache::new(1_024, Arc::default(), None);
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
    fn a_full_cache_holds_its_capacity_and_keeps_a_cycle_that_fits() {
        let cache = Cache::new(100, Arc::default(), None);
        get(&cache, b"k", 5);
        for i in 0..1_000_u32 {
            get(&cache, &i.to_le_bytes(), 5);
            cache.put_read(&i.to_le_bytes(), 1, 5, 0);
        }
        assert_eq!(cache.len(), 100);
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
    fn eviction_spares_the_keys_read_since_the_hand_last_passed() {
        let cache = Cache::new(4, Arc::default(), None);
        get(&cache, b"k", 5);
        for key in [b"a", b"b", b"c", b"d"] {
            cache.put_read(key, 1, 5, 0);
        }
        // `a` and `c` are read; `e` and `f` take the places of `b` and `d`.
        assert_eq!(get(&cache, b"a", 5), Some(1));
        assert_eq!(get(&cache, b"c", 5), Some(1));
        cache.put_read(b"e", 2, 5, 0);
        cache.put_read(b"f", 2, 5, 0);
        let cached = |k: &[u8]| get(&cache, k, 5).is_some();
        assert_eq!(
            [b"a", b"b", b"c", b"d", b"e", b"f"].map(|k| cached(k)),
            [true, false, true, false, true, true]
        );
        // A removed key's place is reused before anything is evicted.
        cache.committed(6, [(b"a".to_vec(), Change::Forget)]);
        cache.put_read(b"g", 3, 6, 0);
        assert_eq!(cache.len(), 4);
        assert!(
            [b"c", b"e", b"f", b"g"]
                .iter()
                .all(|k| get(&cache, *k, 6).is_some())
        );
    }

    #[test]
    fn hits_from_other_threads_never_see_a_value_older_than_the_last_commit() {
        // One writer commits increasing values of one key; readers check that what they
        // are served is never older than what was committed before their lookup began.
        let cache = Cache::new(64, Arc::default(), None);
        let committed = AtomicU64::new(1);
        cache.get(b"k", || 1, 0);
        cache.committed(2, [(b"k".to_vec(), Change::Put(2_u64))]);
        committed.store(2, Ordering::SeqCst);
        std::thread::scope(|s| {
            s.spawn(|| {
                for id in 3..20_000_u64 {
                    committed.store(id, Ordering::SeqCst);
                    cache.committed(id, [(b"k".to_vec(), Change::Put(id))]);
                }
            });
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..100_000 {
                        // The writer stores the id before applying it: as the commit id
                        // LMDB shows readers moves before our cache accounts for it.
                        let last = committed.load(Ordering::SeqCst);
                        if let Some((value, _)) = cache.get(b"k", || last, 0) {
                            assert!(value >= last, "served {value} after commit {last}");
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = Cache::new(0, Arc::default(), None);
        cache.put_read(b"k", 1, 0, 0);
        assert_eq!(get(&cache, b"k", 0), None);
        assert_eq!((cache.hits(), cache.misses()), (0, 1));
    }
}
