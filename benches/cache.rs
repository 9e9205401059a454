//! The cache structure, chosen by measurement: hits from 1, 2 and 4 threads on the candidates
//! behind one interface. `lru` behind one mutex (a hash map of pointers into a linked list,
//! relinked on every hit), the same split into 16 shards with a mutex each, `quick_cache`'s
//! concurrent S3-FIFO cache (a hit takes its shard's read lock and bumps a counter), and the
//! dict's own: a `papaya` map, whose lookups take no lock, with a CLOCK bit and an access
//! stamp per entry that a hit writes only when they change. Keys and values as in `compare`:
//! encoded keys of 11 bytes held inline, values of about 100 bytes, cloned out by every hit.
//! Run with `cargo bench --bench cache`.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use smallvec::SmallVec;

type Key = SmallVec<[u8; 32]>;
type Hasher = hashbrown::DefaultHashBuilder;

// Only cloned: the fields are there for their size and the cost of cloning them.
#[derive(Clone)]
#[expect(dead_code)]
struct Doc {
    id: u64,
    name: String,
    vector: [f32; 8],
}

fn key(i: u32) -> Key {
    let text = format!("key-{i:06}");
    let mut key = Key::new();
    key.push(text.len() as u8);
    key.extend_from_slice(text.as_bytes());
    key
}

fn doc(i: u32) -> Doc {
    Doc {
        id: u64::from(i),
        name: format!("document {i:06} with a longer title here"),
        vector: [f32::from((i % 1000) as u16); 8],
    }
}

/// What the dict does with its cache, from any number of threads.
trait Structure: Sync {
    fn with_capacity(capacity: usize) -> Self;
    /// A hit: the value's clone, with the entry's access stamp kept up to date.
    fn hit(&self, key: &[u8], now: u64) -> Option<Doc>;
    fn put(&self, key: Key, doc: Doc);
}

type Lru = lru::LruCache<Key, (Doc, u64), Hasher>;

fn lru(capacity: usize) -> Lru {
    Lru::with_hasher(capacity.try_into().unwrap(), Hasher::default())
}

fn lru_hit(cache: &Mutex<Lru>, key: &[u8], now: u64) -> Option<Doc> {
    let mut cache = cache.lock().unwrap();
    let (doc, stamp) = cache.get_mut(key)?;
    *stamp = now;
    Some(doc.clone())
}

struct OneLock(Mutex<Lru>);

impl Structure for OneLock {
    fn with_capacity(capacity: usize) -> Self {
        OneLock(Mutex::new(lru(capacity)))
    }

    fn hit(&self, key: &[u8], now: u64) -> Option<Doc> {
        lru_hit(&self.0, key, now)
    }

    fn put(&self, key: Key, doc: Doc) {
        self.0.lock().unwrap().put(key, (doc, 0));
    }
}

const SHARDS: usize = 16;

struct Sharded(Vec<Mutex<Lru>>, Hasher);

impl Sharded {
    fn shard(&self, key: &[u8]) -> &Mutex<Lru> {
        &self.0[self.1.hash_one(key) as usize % SHARDS]
    }
}

impl Structure for Sharded {
    fn with_capacity(capacity: usize) -> Self {
        // Each shard may hold them all: keys don't spread evenly, and only hits are measured.
        let shards = (0..SHARDS).map(|_| Mutex::new(lru(capacity))).collect();
        Sharded(shards, Hasher::default())
    }

    fn hit(&self, key: &[u8], now: u64) -> Option<Doc> {
        lru_hit(self.shard(key), key, now)
    }

    fn put(&self, key: Key, doc: Doc) {
        self.shard(&key).lock().unwrap().put(key, (doc, 0));
    }
}

/// The stamp is left out: `quick_cache` hands out clones only, so keeping it would mean a
/// shared counter per entry. That can only flatter it.
struct Quick(quick_cache::sync::Cache<Key, Doc, quick_cache::UnitWeighter, Hasher>);

impl Structure for Quick {
    fn with_capacity(capacity: usize) -> Self {
        // Twice the room: its shards, like the ones above, fill unevenly.
        Quick(quick_cache::sync::Cache::with(
            2 * capacity,
            2 * capacity as u64,
            quick_cache::UnitWeighter,
            Hasher::default(),
            quick_cache::sync::DefaultLifecycle::default(),
        ))
    }

    fn hit(&self, key: &[u8], _now: u64) -> Option<Doc> {
        self.0.get(key)
    }

    fn put(&self, key: Key, doc: Doc) {
        self.0.insert(key, doc);
    }
}

/// The dict's structure (`persistdict/src/cache.rs`), its hit path alone: the eviction ring
/// that fills maintain under a lock is left out, since hits never touch it.
struct Clock(papaya::HashMap<Key, Slot, Hasher>);

struct Slot {
    doc: Doc,
    touched: AtomicU64,
    visited: AtomicBool,
}

impl Structure for Clock {
    fn with_capacity(capacity: usize) -> Self {
        Clock(
            papaya::HashMap::builder()
                .capacity(capacity)
                .hasher(Hasher::default())
                .build(),
        )
    }

    fn hit(&self, key: &[u8], now: u64) -> Option<Doc> {
        let guard = self.0.guard();
        let slot = self.0.get(key, &guard)?;
        // As in the dict: each is written only when it changes (the stamp once a second).
        if now >= slot.touched.load(Ordering::Relaxed) + 1_000 {
            slot.touched.store(now, Ordering::Relaxed);
        }
        if !slot.visited.load(Ordering::Relaxed) {
            slot.visited.store(true, Ordering::Relaxed);
        }
        Some(slot.doc.clone())
    }

    fn put(&self, key: Key, doc: Doc) {
        let slot = Slot {
            doc,
            touched: AtomicU64::new(0),
            visited: AtomicBool::new(false),
        };
        self.0.pin().insert(key, slot);
    }
}

/// A fixed shuffle of `0..n`.
fn shuffled(n: u32) -> Vec<Key> {
    let mut idx: Vec<u32> = (0..n).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut idx);
    idx.into_iter().map(key).collect()
}

/// Hits on random keys of a cache holding all `n`, from 1, 2 and 4 threads; throughput is
/// hits per second over all threads. `now` is a coarse clock's reading, as in the dict: it
/// stays put for the many hits of one millisecond.
fn hits<S: Structure>(c: &mut Criterion, name: &str) {
    for n in [128_u32, 100_000] {
        let keys = shuffled(n);
        let cache = S::with_capacity(n as usize);
        for i in 0..n {
            cache.put(key(i), doc(i));
        }
        let held = keys.iter().filter(|k| cache.hit(k, 0).is_some()).count();
        assert_eq!(held, n as usize, "{name} holds every key");
        let mut g = c.benchmark_group(format!("cache hits, {n} entries"));
        for threads in [1_usize, 2, 4] {
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (keys, cache) = (&keys, &cache);
                            s.spawn(move || {
                                let mut at = t * keys.len() / threads;
                                for _ in 0..iters {
                                    at = (at + 1) % keys.len();
                                    black_box(cache.hit(&keys[at], 5_000));
                                }
                            });
                        }
                    });
                    start.elapsed()
                });
            });
        }
        g.finish();
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .configure_from_args();
    hits::<OneLock>(&mut c, "lru, one lock");
    hits::<Sharded>(&mut c, "lru, 16 shards");
    hits::<Quick>(&mut c, "quick_cache sync");
    hits::<Clock>(&mut c, "papaya + CLOCK");
    c.final_summary();
}
