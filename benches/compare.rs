//! The dict against raw heed doing the same work, in the same run, and `#[memoize]` against
//! `cached`'s disk store. Run with `cargo bench --bench compare`; at the end it prints a table
//! of ratios and absolute figures, the best of alternating rounds for the reads (gets and
//! `contains_key`), iteration, the memoized hit and the durable insert, then the peak-memory
//! and sweep-stall measurements (`PERSISTDICT_BENCH_MILLION_ONLY=1` runs only those, in a
//! fresh process, for memory figures that are the dict's alone;
//! `PERSISTDICT_BENCH_SKIP_MILLION=1` skips them).
//!
//! Workload: keys like `key-000123`, values of about 100 bytes (an id, a name, 8 floats),
//! postcard-encoded on both sides. Raw heed stores the same key bytes; every raw read decodes
//! its value, as the dict does.

// `c`, `g`, `b` as in criterion's documentation; `r` and `d` are the two sides compared.
#![allow(clippy::many_single_char_names)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, WithoutTls};
use persistdict::{Background, Clock, Codec, Durability, PersistDict, Postcard, memoize};
use serde::{Deserialize, Serialize};

const N: u32 = 100_000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    id: u64,
    name: String,
    vector: [f32; 8],
}

fn key(i: u32) -> String {
    format!("key-{i:06}")
}

fn doc(i: u32) -> Doc {
    Doc {
        id: u64::from(i),
        name: format!("document {i:06} with a longer title here"),
        vector: [f32::from((i % 1000) as u16); 8],
    }
}

fn encode(d: &Doc) -> Vec<u8> {
    Postcard.encode(d).unwrap()
}

fn decode(bytes: &[u8]) -> Doc {
    Postcard.decode(bytes).unwrap()
}

type Dict = PersistDict<String, Doc>;

fn dict(dir: &Path, durability: Durability, cache: usize) -> Dict {
    PersistDict::builder()
        .durability(durability)
        .cache_capacity(cache)
        .background(Background::Disabled)
        .open(dir)
        .unwrap()
}

struct Raw {
    env: Env<WithoutTls>,
    db: Database<'static, Bytes, Bytes>,
}

fn raw(dir: &Path, durability: Durability) -> Raw {
    std::fs::create_dir_all(dir).unwrap();
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(1 << 40).max_dbs(2);
    if durability == Durability::Eventual {
        // SAFETY: a plain LMDB flag, with its documented durability trade-off.
        unsafe { options.flags(EnvFlags::NO_SYNC) };
    }
    // SAFETY: opened once in this process, without NO_LOCK.
    let env = unsafe { options.open(dir).unwrap() };
    let wtxn = env.write_txn().unwrap();
    let db = env
        .create_databases_and_commit(wtxn, |o, w| {
            o.create_database::<Bytes, Bytes>(w, Some("bench"))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    Raw { env, db }
}

impl Raw {
    fn fill(&self, n: u32) {
        let mut wtxn = self.env.write_txn().unwrap();
        for i in 0..n {
            self.db
                .put(&mut wtxn, key(i).as_bytes(), &encode(&doc(i)))
                .unwrap();
        }
        wtxn.commit().unwrap();
    }

    fn get(&self, k: &str) -> Option<Doc> {
        let rtxn = self.env.read_txn().unwrap();
        self.db.get(&rtxn, k.as_bytes()).unwrap().map(decode)
    }
}

fn fill(d: &Dict, n: u32) {
    d.extend((0..n).map(|i| (key(i), doc(i)))).unwrap();
}

/// A fixed shuffle of `0..N`, so both sides read the same keys in the same random order.
fn shuffled() -> Vec<String> {
    let mut idx: Vec<u32> = (0..N).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut idx);
    idx.into_iter().map(key).collect()
}

/// Cycles through `keys`.
struct Cycle<'a> {
    keys: &'a [String],
    at: usize,
}

impl Cycle<'_> {
    fn next(&mut self) -> &str {
        self.at = (self.at + 1) % self.keys.len();
        &self.keys[self.at]
    }
}

/// The sides the reads compare, each holding the same `N` entries: raw heed, a dict without
/// a cache, the same with the default worker (whose ticks let threads keep their read
/// transaction between reads), a dict whose cache holds every entry, and a dict without a
/// cache whose keys were inserted in random order.
struct ReadSides {
    raw: Raw,
    cold: Dict,
    kept: Dict,
    warm: Dict,
    shuffled: Dict,
    _dir: tempfile::TempDir,
}

fn read_sides(keys: &[String]) -> ReadSides {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw(&dir.path().join("raw"), Durability::Eventual);
    raw.fill(N);
    let cold = dict(&dir.path().join("dict"), Durability::Eventual, 0);
    fill(&cold, N);
    let kept: Dict = PersistDict::builder()
        .durability(Durability::Eventual)
        .cache_capacity(0)
        .open(dir.path().join("kept"))
        .unwrap();
    fill(&kept, N);
    let warm = dict(&dir.path().join("warm"), Durability::Eventual, N as usize);
    fill(&warm, N);
    for k in keys {
        warm.get(k).unwrap();
    }
    // Its walks go through the insertion order: its keys did not arrive in key order.
    let shuffled = dict(&dir.path().join("shuffled"), Durability::Eventual, 0);
    shuffled
        .extend(
            keys.iter()
                .map(|k| (k.clone(), doc(k[4..].parse().unwrap()))),
        )
        .unwrap();
    ReadSides {
        raw,
        cold,
        kept,
        warm,
        shuffled,
        _dir: dir,
    }
}

fn reads(c: &mut Criterion) {
    let keys = shuffled();
    let sides = read_sides(&keys);
    let (r, cold, warm) = (&sides.raw, &sides.cold, &sides.warm);

    let mut g = c.benchmark_group("get");
    let mut at = Cycle { keys: &keys, at: 0 };
    g.bench_function("raw heed", |b| b.iter(|| black_box(r.get(at.next()))));
    g.bench_function("dict, cache off", |b| {
        b.iter(|| black_box(cold.get(at.next()).unwrap()));
    });
    g.bench_function("dict, cache off, worker", |b| {
        b.iter(|| black_box(sides.kept.get(at.next()).unwrap()));
    });
    g.bench_function("dict, cache hit", |b| {
        b.iter(|| black_box(warm.get(at.next()).unwrap()));
    });
    g.finish();

    let mut g = c.benchmark_group("contains_key missing");
    let missing = missing();
    let mut at = Cycle {
        keys: &missing,
        at: 0,
    };
    g.bench_function("raw heed", |b| b.iter(|| black_box(r.get(at.next()))));
    g.bench_function("dict", |b| {
        b.iter(|| black_box(cold.contains_key(at.next()).unwrap()));
    });
    g.finish();

    let mut g = c.benchmark_group("iteration");
    g.sample_size(10);
    g.bench_function("raw heed", |b| b.iter(|| raw_walk(r)));
    g.bench_function("dict", |b| b.iter(|| dict_walk(cold)));
    g.bench_function("dict, keys inserted shuffled", |b| {
        b.iter(|| dict_walk(&sides.shuffled));
    });
    g.finish();

    let mut g = c.benchmark_group("len");
    g.bench_function("raw heed", |b| {
        b.iter(|| {
            let rtxn = r.env.read_txn().unwrap();
            black_box(r.db.len(&rtxn).unwrap())
        });
    });
    g.bench_function("dict", |b| b.iter(|| black_box(cold.len().unwrap())));
    g.finish();
}

/// Keys that neither side holds.
fn missing() -> Vec<String> {
    (0..1000).map(|i| format!("absent-{i:06}")).collect()
}

/// Walks every entry of raw heed, decoding each key and value: the dict's output.
fn raw_walk(r: &Raw) {
    let rtxn = r.env.read_txn().unwrap();
    let mut n = 0;
    for item in r.db.iter(&rtxn).unwrap() {
        let (k, v) = item.unwrap();
        black_box((String::from_utf8(k.to_vec()).unwrap(), decode(v)));
        n += 1;
    }
    assert_eq!(n, N);
}

/// Walks every entry of the dict.
fn dict_walk(d: &Dict) {
    let mut n = 0;
    for item in d {
        black_box(item.unwrap());
        n += 1;
    }
    assert_eq!(n, N);
}

fn writes(c: &mut Criterion) {
    for (durability, name) in [
        (Durability::Immediate, "insert, Immediate"),
        (Durability::Eventual, "insert, Eventual"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let r = raw(&tmp.path().join("raw"), durability);
        let d = dict(&tmp.path().join("dict"), durability, 128);
        let next = AtomicU64::new(0);
        let mut g = c.benchmark_group(name);
        if durability == Durability::Immediate {
            g.sample_size(20);
        }
        g.bench_function("raw heed", |b| {
            b.iter(|| {
                let i = next.fetch_add(1, Ordering::Relaxed) as u32;
                let mut wtxn = r.env.write_txn().unwrap();
                r.db.put(&mut wtxn, key(i).as_bytes(), &encode(&doc(i)))
                    .unwrap();
                wtxn.commit().unwrap();
            });
        });
        g.bench_function("dict", |b| {
            b.iter(|| {
                let i = next.fetch_add(1, Ordering::Relaxed) as u32;
                d.insert(key(i), doc(i)).unwrap();
            });
        });
        g.finish();
    }
}

/// What returning the old value costs (`HashMap::insert`'s shape): `replace` reads and decodes
/// it in the write transaction, `insert` does neither.
fn overwrites(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let d = dict(&tmp.path().join("dict"), Durability::Eventual, 128);
    fill(&d, N);
    let keys = shuffled();
    let mut g = c.benchmark_group("overwrite, Eventual");
    let mut at = Cycle { keys: &keys, at: 0 };
    g.bench_function("dict insert", |b| {
        b.iter(|| d.insert(at.next().to_owned(), doc(1)).unwrap());
    });
    let mut at = Cycle { keys: &keys, at: 0 };
    g.bench_function("dict replace", |b| {
        b.iter(|| black_box(d.replace(at.next().to_owned(), doc(1)).unwrap()));
    });
    g.finish();
}

fn rewrites(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let r = raw(&tmp.path().join("raw"), Durability::Eventual);
    r.fill(N);
    let d = dict(&tmp.path().join("dict"), Durability::Eventual, 128);
    fill(&d, N);
    let keys = shuffled();

    let mut g = c.benchmark_group("update, Eventual");
    let mut at = Cycle { keys: &keys, at: 0 };
    g.bench_function("raw heed", |b| {
        b.iter(|| {
            let k = at.next();
            let mut wtxn = r.env.write_txn().unwrap();
            let mut v = decode(r.db.get(&wtxn, k.as_bytes()).unwrap().unwrap());
            v.id += 1;
            r.db.put(&mut wtxn, k.as_bytes(), &encode(&v)).unwrap();
            wtxn.commit().unwrap();
        });
    });
    g.bench_function("dict", |b| {
        b.iter(|| {
            d.update(at.next(), |v| {
                v.map(|mut v| {
                    v.id += 1;
                    v
                })
            })
            .unwrap();
        });
    });
    g.finish();

    let mut g = c.benchmark_group("remove, Eventual");
    let mut at = Cycle { keys: &keys, at: 0 };
    g.bench_function("raw heed", |b| {
        b.iter_batched(
            || {
                let k = at.next().to_owned();
                let mut wtxn = r.env.write_txn().unwrap();
                r.db.put(&mut wtxn, k.as_bytes(), &encode(&doc(1))).unwrap();
                wtxn.commit().unwrap();
                k
            },
            |k| {
                let mut wtxn = r.env.write_txn().unwrap();
                assert!(r.db.delete(&mut wtxn, k.as_bytes()).unwrap());
                wtxn.commit().unwrap();
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("dict", |b| {
        b.iter_batched(
            || {
                let k = at.next().to_owned();
                d.insert(k.clone(), doc(1)).unwrap();
                k
            },
            |k| assert!(d.remove(&k).unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("extend 100k, one transaction");
    g.sample_size(10);
    let items: Vec<(String, Doc)> = (0..N).map(|i| (key(i), doc(i))).collect();
    g.bench_function("raw heed", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let r = raw(dir.path(), Durability::Eventual);
                let mut wtxn = r.env.write_txn().unwrap();
                for (k, v) in &items {
                    r.db.put(&mut wtxn, k.as_bytes(), &encode(v)).unwrap();
                }
                wtxn.commit().unwrap();
                (dir, r)
            },
            BatchSize::PerIteration,
        );
    });
    g.bench_function("dict", |b| {
        b.iter_batched(
            // `extend` takes owned pairs; making them is the caller's work, not timed.
            || (tempfile::tempdir().unwrap(), items.clone()),
            |(dir, items)| {
                let d = dict(dir.path(), Durability::Eventual, 128);
                d.extend(items).unwrap();
                (dir, d)
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

#[memoize(path = "target/bench-memo/persistdict")]
fn memo_embed(text: String) -> Result<Vec<f32>, String> {
    Ok(text.bytes().map(f32::from).collect())
}

// The disk store of `cached` requires a `Result`.
#[allow(clippy::unnecessary_wraps)]
#[cached::macros::concurrent_cached(
    disk = true,
    disk_dir = "target/bench-memo/cached",
    map_error = |e| format!("{e:?}")
)]
fn cached_embed(text: String) -> Result<Vec<f32>, String> {
    Ok(text.bytes().map(f32::from).collect())
}

/// The arguments of the memoized calls that hit.
fn texts() -> Vec<String> {
    (0..100)
        .map(|i| format!("some text to embed {i}"))
        .collect()
}

fn memoization(c: &mut Criterion) {
    // Both stores start empty, so that every "miss" below is one. `cached`'s store opens at
    // its first call, which comes after this.
    let _ = memo_embed_memo().clear();
    let _ = std::fs::remove_dir_all("target/bench-memo/cached");
    let texts = texts();
    for t in &texts {
        memo_embed(t.clone()).unwrap();
        cached_embed(t.clone()).unwrap();
    }
    let mut g = c.benchmark_group("memoized call, hit");
    let mut at = Cycle {
        keys: &texts,
        at: 0,
    };
    g.bench_function("cached 4 disk store", |b| {
        b.iter(|| black_box(cached_embed(at.next().to_owned()).unwrap()));
    });
    g.bench_function("persistdict memoize", |b| {
        b.iter(|| black_box(memo_embed(at.next().to_owned()).unwrap()));
    });
    g.finish();

    let next = AtomicU64::new(0);
    let mut g = c.benchmark_group("memoized call, miss");
    g.bench_function("cached 4 disk store", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            black_box(cached_embed(format!("miss {i}")).unwrap())
        });
    });
    g.bench_function("persistdict memoize", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            black_box(memo_embed(format!("miss {i}")).unwrap())
        });
    });
    g.finish();
}

/// Rounds per side in [`alternating`].
const ROUNDS: usize = 15;

/// Times each memoized call repeats in a round of [`alternating`].
const MEMO_REPEATS: u32 = 100;

/// How often a round of `contains_key` goes through the missing keys.
const MISSING_REPEATS: u32 = 20;

/// Durable inserts per round of [`alternating`]: each is a commit with an fsync.
const DURABLE_INSERTS: u32 = 50;

/// The best round of each side, in nanoseconds per operation (`ops` per round), of
/// [`ROUNDS`] rounds that alternate between the sides.
fn best_rounds<const S: usize>(ops: u32, sides: [&dyn Fn(); S]) -> [f64; S] {
    let mut best = [f64::MAX; S];
    for _ in 0..ROUNDS {
        for (best, side) in best.iter_mut().zip(sides) {
            let start = Instant::now();
            side();
            *best = best.min(start.elapsed().as_secs_f64() * 1e9 / f64::from(ops));
        }
    }
    best
}

/// The reads (gets and `contains_key`), iteration and the memoized hit again, in rounds that
/// alternate between the sides; the best round of each side is the
/// figure least disturbed by the rest of the machine. On a noisy virtual machine the medians of the criterion groups, measured one after
/// the other, drift apart by tens of percent between runs; these ratios drift much less.
fn alternating() {
    let keys = shuffled();
    let sides = read_sides(&keys);
    let (r, cold, warm) = (&sides.raw, &sides.cold, &sides.warm);
    println!("\nbest of {ROUNDS} alternating rounds; ratio = ours / the first side");
    let gets = |get: &dyn Fn(&str)| {
        for k in &keys {
            get(k);
        }
    };
    let [raw_ns, off, kept, hit] = best_rounds(
        N,
        [
            &|| gets(&|k| drop(black_box(r.get(k)))),
            &|| gets(&|k| drop(black_box(cold.get(k).unwrap()))),
            &|| gets(&|k| drop(black_box(sides.kept.get(k).unwrap()))),
            &|| gets(&|k| drop(black_box(warm.get(k).unwrap()))),
        ],
    );
    println!(
        "get of {N} random keys: raw heed {}, dict cache off {} (ratio {:.2}), cache off with \
         the worker {} (ratio {:.2}), cache hit {} (ratio {:.2})",
        show(raw_ns),
        show(off),
        off / raw_ns,
        show(kept),
        kept / raw_ns,
        show(hit),
        hit / raw_ns,
    );
    let missing = missing();
    let lookups = |look: &dyn Fn(&str)| {
        for _ in 0..MISSING_REPEATS {
            for k in &missing {
                look(k);
            }
        }
    };
    let [raw_ns, dict_ns] = best_rounds(
        MISSING_REPEATS * missing.len() as u32,
        [&|| lookups(&|k| drop(black_box(r.get(k)))), &|| {
            lookups(&|k| _ = black_box(cold.contains_key(k).unwrap()));
        }],
    );
    println!(
        "contains_key of a missing key: raw heed get {}, dict {} (ratio {:.2})",
        show(raw_ns),
        show(dict_ns),
        dict_ns / raw_ns,
    );
    let [raw_ns, dict_ns, shuffled_ns] = best_rounds(
        1,
        [&|| raw_walk(r), &|| dict_walk(cold), &|| {
            dict_walk(&sides.shuffled);
        }],
    );
    println!(
        "iteration of {N}: raw heed {}, dict {} (ratio {:.2}), dict with keys inserted \
         shuffled {} (ratio {:.2})",
        show(raw_ns),
        show(dict_ns),
        dict_ns / raw_ns,
        show(shuffled_ns),
        shuffled_ns / raw_ns,
    );
    // Both stores hold these calls' results from the memoization groups.
    let texts = texts();
    let calls = |call: &dyn Fn(String)| {
        for _ in 0..MEMO_REPEATS {
            for t in &texts {
                call(t.clone());
            }
        }
    };
    let [theirs, ours] = best_rounds(
        MEMO_REPEATS * texts.len() as u32,
        [
            &|| calls(&|t| drop(black_box(cached_embed(t).unwrap()))),
            &|| calls(&|t| drop(black_box(memo_embed(t).unwrap()))),
        ],
    );
    println!(
        "memoized call, hit: cached 4 disk store {}, persistdict {} (ratio {:.2})",
        show(theirs),
        show(ours),
        ours / theirs,
    );
}

/// Durable inserts in rounds that alternate between raw heed and the dict; each insert is a
/// new key and a commit with an fsync, whose time moves with the disk from round to round.
fn alternating_inserts() {
    let tmp = tempfile::tempdir().unwrap();
    let r = raw(&tmp.path().join("raw"), Durability::Immediate);
    let d = dict(&tmp.path().join("dict"), Durability::Immediate, 128);
    let next = AtomicU64::new(0);
    let fresh = || next.fetch_add(1, Ordering::Relaxed) as u32;
    let [raw_ns, dict_ns] = best_rounds(
        DURABLE_INSERTS,
        [
            &|| {
                for _ in 0..DURABLE_INSERTS {
                    let i = fresh();
                    let mut wtxn = r.env.write_txn().unwrap();
                    r.db.put(&mut wtxn, key(i).as_bytes(), &encode(&doc(i)))
                        .unwrap();
                    wtxn.commit().unwrap();
                }
            },
            &|| {
                for _ in 0..DURABLE_INSERTS {
                    let i = fresh();
                    d.insert(key(i), doc(i)).unwrap();
                }
            },
        ],
    );
    println!(
        "insert, Immediate: raw heed {}, dict {} (ratio {:.2})",
        show(raw_ns),
        show(dict_ns),
        dict_ns / raw_ns,
    );
}

/// Where criterion writes its reports. `cargo bench` runs a bench from its package's directory
/// while criterion writes under the workspace's target directory, so a relative path would find
/// nothing.
fn criterion_dir() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

/// The median of a benchmark, in nanoseconds, from criterion's report.
fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn show(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints the results as a markdown table: each row compares one side with its baseline.
// One row per line of the table: splitting it would only scatter the rows.
#[allow(clippy::too_many_lines)]
fn table() {
    let rows = [
        (
            "get, cache hit",
            "get",
            "dict, cache hit",
            "raw heed",
            "≥ 5× faster, ≤ 120 ns",
        ),
        (
            "get, cache off",
            "get",
            "dict, cache off",
            "raw heed",
            "≤ 1.5×",
        ),
        (
            "get, cache off, with the worker",
            "get",
            "dict, cache off, worker",
            "raw heed",
            "≤ 1.5×",
        ),
        (
            "insert, Immediate",
            "insert, Immediate",
            "dict",
            "raw heed",
            "≤ 1.1×",
        ),
        (
            "insert, Eventual",
            "insert, Eventual",
            "dict",
            "raw heed",
            "≤ 2×",
        ),
        (
            "extend 100k, one transaction",
            "extend 100k, one transaction",
            "dict",
            "raw heed",
            "≤ 1.5×",
        ),
        ("iteration (100k)", "iteration", "dict", "raw heed", "≤ 2×"),
        (
            "iteration, keys inserted shuffled",
            "iteration",
            "dict, keys inserted shuffled",
            "raw heed",
            "≤ 3×",
        ),
        (
            "contains_key, missing",
            "contains_key missing",
            "dict",
            "raw heed",
            "≤ 1.5×",
        ),
        ("len", "len", "dict", "raw heed", "-"),
        (
            "update, Eventual",
            "update, Eventual",
            "dict",
            "raw heed",
            "-",
        ),
        (
            "replace, overwriting (returns the old value)",
            "overwrite, Eventual",
            "dict replace",
            "dict insert",
            "-",
        ),
        (
            "remove, Eventual",
            "remove, Eventual",
            "dict",
            "raw heed",
            "-",
        ),
        (
            "memoize hit",
            "memoized call, hit",
            "persistdict memoize",
            "cached 4 disk store",
            "≥ 15× faster, ≤ 90 ns",
        ),
        (
            "memoize miss",
            "memoized call, miss",
            "persistdict memoize",
            "cached 4 disk store",
            "-",
        ),
    ];
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("\n{cores} cores; medians; ratio = ours / baseline (below 1: we are faster)\n");
    println!("| operation | persistdict | baseline | ratio | target |");
    println!("|---|---:|---:|---:|---|");
    for (label, group, ours, base, target) in rows {
        match (median_ns(group, ours), median_ns(group, base)) {
            (Some(a), Some(b)) => println!(
                "| {label} | {} | {} ({base}) | {:.2} | {target} |",
                show(a),
                show(b),
                a / b
            ),
            // A row that was filtered out or not yet run says so rather than vanishing.
            _ => println!(
                "| {label} | no estimate in {} | | | {target} |",
                criterion_dir().display()
            ),
        }
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory while holding 1,000,000 entries with the default cache, and the longest time a
/// writer waits while an expiry sweep removes them all.
fn million() {
    const MILLION: u32 = 1_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let clock = Clock::manual(std::time::SystemTime::now());
    let anon_before = status_kib("RssAnon:");
    let d: Dict = PersistDict::builder()
        .durability(Durability::Eventual)
        .background(Background::Disabled)
        .clock(clock.clone())
        .expire_days(1)
        .open(tmp.path())
        .unwrap();
    for chunk in 0..MILLION / N {
        d.extend((chunk * N..(chunk + 1) * N).map(|i| (key(i), doc(i))))
            .unwrap();
    }
    for i in (0..MILLION).step_by(97) {
        d.get(&key(i)).unwrap();
    }
    println!(
        "\n1,000,000 entries, default cache: process RSS {} MiB, peak {} MiB (heap {} MiB, of \
         which {} MiB since before the dict; mapped file pages {} MiB); data file {} MiB",
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024,
        status_kib("RssAnon:") / 1024,
        status_kib("RssAnon:").saturating_sub(anon_before) / 1024,
        status_kib("RssFile:") / 1024,
        d.stats().unwrap().disk_bytes >> 20,
    );

    clock.advance(Duration::from_secs(2 * 86_400));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (d, done) = (d.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut waits = Vec::new();
            let mut i = 0_u32;
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                d.insert(format!("writer-{i}"), doc(i)).unwrap();
                waits.push(start.elapsed());
                i += 1;
            }
            waits
        })
    };
    let start = Instant::now();
    let removed = d.expire_now().unwrap();
    let sweep = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut waits = writer.join().unwrap();
    waits.sort();
    let p99 = waits
        .get(waits.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    println!(
        "expiry sweep of {removed} entries: {sweep:.2?}; a writer alongside made {} inserts, \
         longest wait {:.2?}, p99 {p99:.2?}",
        waits.len(),
        waits.last().copied().unwrap_or_default(),
    );
}

/// Random gets from 1, 2 and 4 threads at once, each thread through its own part of the
/// shuffled keys; throughput is gets per second over all threads, so scaling is the ratio
/// of a row to its 1-thread row. "raw heed" begins a read transaction per get, as the dict
/// does; in heed's `WithoutTls` mode each begin takes LMDB's reader-table mutex. "raw heed,
/// one transaction" keeps one read transaction per thread for all its gets: the ceiling of
/// LMDB's lock-free readers.
fn threads(c: &mut Criterion) {
    let keys = shuffled();
    let sides = read_sides(&keys);
    let mut g = c.benchmark_group("random gets by threads");
    for threads in [1_usize, 2, 4] {
        g.throughput(Throughput::Elements(threads as u64));
        let run = |b: &mut criterion::Bencher<'_>, get: &(dyn Fn(&str) + Sync)| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let keys = &keys;
                        s.spawn(move || {
                            let mut at = Cycle {
                                keys,
                                at: t * keys.len() / threads,
                            };
                            for _ in 0..iters {
                                get(at.next());
                            }
                        });
                    }
                });
                start.elapsed()
            });
        };
        g.bench_function(BenchmarkId::new("raw heed", threads), |b| {
            run(b, &|k| drop(black_box(sides.raw.get(k))));
        });
        g.bench_function(
            BenchmarkId::new("raw heed, one transaction", threads),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (keys, raw) = (&keys, &sides.raw);
                            s.spawn(move || {
                                let rtxn = raw.env.read_txn().unwrap();
                                let mut at = Cycle {
                                    keys,
                                    at: t * keys.len() / threads,
                                };
                                for _ in 0..iters {
                                    let k = at.next();
                                    black_box(raw.db.get(&rtxn, k.as_bytes()).unwrap().map(decode));
                                }
                            });
                        }
                    });
                    start.elapsed()
                });
            },
        );
        g.bench_function(BenchmarkId::new("dict, cache off", threads), |b| {
            run(b, &|k| drop(black_box(sides.cold.get(k).unwrap())));
        });
        g.bench_function(BenchmarkId::new("dict, cache off, worker", threads), |b| {
            run(b, &|k| drop(black_box(sides.kept.get(k).unwrap())));
        });
        g.bench_function(BenchmarkId::new("dict, cache hit", threads), |b| {
            run(b, &|k| drop(black_box(sides.warm.get(k).unwrap())));
        });
    }
    g.finish();
}

/// A dict of `V` values at `path`, `Eventual`, without a worker.
fn eventual<V>(path: &Path) -> PersistDict<String, V>
where
    V: Serialize + serde::de::DeserializeOwned + Clone,
{
    PersistDict::builder()
        .durability(Durability::Eventual)
        .background(Background::Disabled)
        .open(path)
        .unwrap()
}

/// A cache hit on a 64 KiB value: a `Vec<u8>` is copied out of the cache, an `Arc<Vec<u8>>`
/// value is shared (a reference count), `get_with` lends it; raw heed copies the bytes out of
/// the map.
fn large_values(c: &mut Criterion) {
    const SIZE: usize = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let copied: PersistDict<String, Vec<u8>> = eventual(&dir.path().join("copied"));
    let shared: PersistDict<String, Arc<Vec<u8>>> = eventual(&dir.path().join("shared"));
    copied.insert("big".into(), vec![7; SIZE]).unwrap();
    shared
        .insert("big".into(), Arc::new(vec![7; SIZE]))
        .unwrap();
    let raw = raw(&dir.path().join("raw"), Durability::Eventual);
    {
        let mut wtxn = raw.env.write_txn().unwrap();
        raw.db.put(&mut wtxn, b"big", &vec![7; SIZE]).unwrap();
        wtxn.commit().unwrap();
    }
    let mut g = c.benchmark_group("get, 64 KiB value");
    g.bench_function("raw heed, bytes copied out", |b| {
        b.iter(|| {
            let rtxn = raw.env.read_txn().unwrap();
            black_box(raw.db.get(&rtxn, b"big").unwrap().map(<[u8]>::to_vec))
        });
    });
    g.bench_function("dict Vec<u8>, cache hit", |b| {
        b.iter(|| black_box(copied.get("big").unwrap()));
    });
    g.bench_function("dict Arc<Vec<u8>>, cache hit", |b| {
        b.iter(|| black_box(shared.get("big").unwrap()));
    });
    g.bench_function("dict Vec<u8>, get_with, cache hit", |b| {
        b.iter(|| black_box(copied.get_with("big", Vec::len).unwrap()));
    });
    g.finish();
}

fn main() {
    // Alone in a fresh process, the memory figures are the dict's own.
    if std::env::var_os("PERSISTDICT_BENCH_MILLION_ONLY").is_some() {
        million();
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    reads(&mut c);
    threads(&mut c);
    large_values(&mut c);
    writes(&mut c);
    rewrites(&mut c);
    overwrites(&mut c);
    memoization(&mut c);
    c.final_summary();
    table();
    alternating();
    alternating_inserts();
    if std::env::var_os("PERSISTDICT_BENCH_SKIP_MILLION").is_none() {
        million();
    }
}
