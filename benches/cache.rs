//! The cache structure, chosen by measurement: `lru` (a hash map of pointers into a linked
//! list, relinked on every hit) against `quick_cache`'s unsynchronized S3-FIFO cache (a hash
//! table of indices into a slab; a hit bumps a counter). Both sit behind the dict's mutex, so
//! neither's own locking is measured. Keys and values as in `compare`: encoded keys of 11
//! bytes held inline, values of about 100 bytes, each with the access stamp the dict keeps.
//! Run with `cargo bench --bench cache`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion};
use smallvec::SmallVec;

type Key = SmallVec<[u8; 32]>;

// Only cloned: the fields are there for their size and the cost of cloning them.
#[derive(Clone)]
#[expect(dead_code)]
struct Doc {
    id: u64,
    name: String,
    vector: [f32; 8],
}

type Entry = (Doc, u64);

fn key(i: u32) -> Key {
    let text = format!("key-{i:06}");
    let mut key = Key::new();
    key.push(text.len() as u8);
    key.extend_from_slice(text.as_bytes());
    key
}

fn entry(i: u32) -> Entry {
    let doc = Doc {
        id: u64::from(i),
        name: format!("document {i:06} with a longer title here"),
        vector: [f32::from((i % 1000) as u16); 8],
    };
    (doc, 0)
}

/// What the dict does with its cache.
trait Structure {
    fn with_capacity(capacity: usize) -> Self;
    /// A hit: the value's clone, and the access stamp updated.
    fn hit(&mut self, key: &[u8], now: u64) -> Option<Doc>;
    fn put(&mut self, key: Key, entry: Entry);
}

struct Lru(lru::LruCache<Key, Entry>);

impl Structure for Lru {
    fn with_capacity(capacity: usize) -> Self {
        Lru(lru::LruCache::new(capacity.try_into().unwrap()))
    }

    fn hit(&mut self, key: &[u8], now: u64) -> Option<Doc> {
        let (doc, stamp) = self.0.get_mut(key)?;
        *stamp = now;
        Some(doc.clone())
    }

    fn put(&mut self, key: Key, entry: Entry) {
        self.0.put(key, entry);
    }
}

struct Quick(
    quick_cache::unsync::Cache<
        Key,
        Entry,
        quick_cache::UnitWeighter,
        hashbrown::DefaultHashBuilder,
    >,
);

impl Structure for Quick {
    fn with_capacity(capacity: usize) -> Self {
        Quick(quick_cache::unsync::Cache::with(
            capacity,
            capacity as u64,
            quick_cache::UnitWeighter,
            hashbrown::DefaultHashBuilder::default(),
            quick_cache::unsync::DefaultLifecycle::default(),
        ))
    }

    fn hit(&mut self, key: &[u8], now: u64) -> Option<Doc> {
        let mut entry = self.0.get_mut(key)?;
        entry.1 = now;
        Some(entry.0.clone())
    }

    fn put(&mut self, key: Key, entry: Entry) {
        self.0.insert(key, entry);
    }
}

/// A fixed shuffle of `0..n`.
fn shuffled(n: u32) -> Vec<Key> {
    let mut idx: Vec<u32> = (0..n).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut idx);
    idx.into_iter().map(key).collect()
}

fn hits<S: Structure>(c: &mut Criterion, name: &str) {
    for n in [128_u32, 100_000] {
        let keys = shuffled(n);
        let mut cache = S::with_capacity(n as usize);
        for i in 0..n {
            cache.put(key(i), entry(i));
        }
        let held = keys.iter().filter(|k| cache.hit(k, 0).is_some()).count();
        assert_eq!(held, n as usize, "{name} holds every key");
        let mut at = 0;
        c.benchmark_group(format!("cache hit, {n} entries"))
            .bench_function(name, |b| {
                b.iter(|| {
                    at = (at + 1) % keys.len();
                    black_box(cache.hit(&keys[at], at as u64))
                });
            });
    }
}

/// Inserts of 100,000 keys in random order into a cache of 10,000: each evicts.
fn churn<S: Structure>(c: &mut Criterion, name: &str) {
    let keys = shuffled(100_000);
    let entries: Vec<Entry> = (0..100_000).map(entry).collect();
    c.benchmark_group("cache insert with eviction, 100k into 10k")
        .sample_size(10)
        .bench_function(name, |b| {
            b.iter_batched(
                || S::with_capacity(10_000),
                |mut cache| {
                    for (k, e) in keys.iter().zip(&entries) {
                        cache.put(k.clone(), e.clone());
                    }
                    cache
                },
                BatchSize::PerIteration,
            );
        });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    hits::<Lru>(&mut c, "lru");
    hits::<Quick>(&mut c, "quick_cache");
    churn::<Lru>(&mut c, "lru");
    churn::<Quick>(&mut c, "quick_cache");
    c.final_summary();
}
