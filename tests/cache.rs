//! The in-memory cache: hits take no transaction, and are never stale across processes.

mod common;

use persistdict::{Background, PersistDict};

type D = PersistDict<String, String>;

fn open(dir: &std::path::Path, capacity: usize) -> D {
    PersistDict::builder()
        .cache_capacity(capacity)
        .background(Background::Disabled)
        .open(dir)
        .unwrap()
}

#[test]
fn a_repeated_get_is_a_cache_hit() {
    let dir = common::tempdir();
    let d = open(dir.path(), 16);
    d.insert("k".into(), "v".into()).unwrap();
    for _ in 0..3 {
        assert_eq!(d.get("k").unwrap().as_deref(), Some("v"));
    }
    let stats = d.stats().unwrap();
    assert_eq!((stats.hits, stats.cached), (3, 1), "{stats:?}");
}

#[test]
fn get_performs_no_write_transaction_with_or_without_cache() {
    for capacity in [0, 16] {
        let dir = common::tempdir();
        let clock = persistdict::Clock::manual(std::time::SystemTime::now());
        let d: D = PersistDict::builder()
            .cache_capacity(capacity)
            .clock(clock.clone())
            .background(Background::Disabled)
            .open(dir.path())
            .unwrap();
        d.insert("k".into(), "v".into()).unwrap();
        // The reads below are later than the write, so their access time is news.
        clock.advance(std::time::Duration::from_secs(1));
        let before = d.stats().unwrap().last_txn_id;
        for _ in 0..100 {
            assert!(d.get("k").unwrap().is_some());
            assert!(d.get("missing").unwrap().is_none());
            assert!(d.contains_key("k").unwrap());
        }
        assert_eq!(
            d.stats().unwrap().last_txn_id,
            before,
            "capacity {capacity}"
        );
        // The reads were recorded in memory: flush stores them in one transaction.
        d.flush().unwrap();
        assert_eq!(d.stats().unwrap().last_txn_id, before + 1);
    }
}

#[test]
fn our_own_writes_update_the_cache_and_another_handles_writes_invalidate_it() {
    let dir = common::tempdir();
    let a = open(dir.path(), 16);
    let b = open(dir.path(), 16);
    a.insert("k".into(), "1".into()).unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some("1"));
    a.insert("k".into(), "2".into()).unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some("2"));
    assert_eq!(
        a.stats().unwrap().hits,
        2,
        "the write-through kept the entry cached"
    );
    b.insert("k".into(), "3".into()).unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some("3"));
    b.remove("k").unwrap();
    assert_eq!(a.get("k").unwrap(), None);
}

#[test]
fn a_cache_hit_after_another_processs_write_returns_the_new_value() {
    let dir = common::tempdir();
    let d = open(dir.path(), 16);
    d.insert("k".into(), "parent".into()).unwrap();
    assert_eq!(d.get("k").unwrap().as_deref(), Some("parent"));
    assert_eq!(d.get("k").unwrap().as_deref(), Some("parent"));
    assert_eq!(d.stats().unwrap().hits, 2);
    common::finish_child(common::spawn_child("child_overwrites", dir.path(), &[]));
    assert_eq!(d.get("k").unwrap().as_deref(), Some("child"));
}

#[test]
#[ignore = "child process of a_cache_hit_after_another_processs_write_returns_the_new_value"]
fn child_overwrites() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let d = open(&dir, 16);
    d.insert("k".into(), "child".into()).unwrap();
}

#[test]
fn update_and_transactions_keep_the_cache_right() {
    let dir = common::tempdir();
    let d = open(dir.path(), 16);
    d.insert("n".into(), "0".into()).unwrap();
    d.get("n").unwrap();
    d.update("n", |v| v.map(|v| v + "1")).unwrap();
    assert_eq!(d.get("n").unwrap().as_deref(), Some("01"));
    d.transaction(|tx| {
        tx.insert("n".into(), "tx".into())?;
        Ok::<_, persistdict::Error>(())
    })
    .unwrap();
    assert_eq!(d.get("n").unwrap().as_deref(), Some("tx"));
    d.clear().unwrap();
    assert_eq!(d.get("n").unwrap(), None);
}

#[test]
fn a_write_that_changes_nothing_does_not_hide_the_next_commit_of_another_handle() {
    let dir = common::tempdir();
    let a = open(dir.path(), 16);
    let b = open(dir.path(), 16);
    a.insert("k".into(), "1".into()).unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some("1"));
    // Nothing to remove: LMDB gives such a transaction no id of its own, so the next commit,
    // by `b`, gets the id `a` would have counted as its own.
    assert!(!a.remove("missing").unwrap());
    b.insert("k".into(), "2".into()).unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some("2"));
}

#[test]
fn a_cache_hit_records_an_access_at_most_once_a_second() {
    let dir = common::tempdir();
    let start = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let clock = persistdict::Clock::manual(start);
    let d: D = PersistDict::builder()
        .clock(clock.clone())
        .background(Background::Disabled)
        .open(dir.path())
        .unwrap();
    d.insert("k".into(), "v".into()).unwrap();
    let accessed = |d: &D| d.metadata("k").unwrap().unwrap().accessed;
    let ms = std::time::Duration::from_millis;
    d.get("k").unwrap(); // a hit at `start`: the write's own time is replaced
    clock.advance(ms(600));
    d.get("k").unwrap();
    assert_eq!(accessed(&d), start, "within the second: not recorded");
    clock.advance(ms(600));
    d.get("k").unwrap();
    assert_eq!(accessed(&d), start + ms(1_200));
}

#[test]
fn storing_access_times_keeps_the_cache_but_a_later_foreign_write_still_empties_it() {
    let dir = common::tempdir();
    let clock = persistdict::Clock::manual(std::time::SystemTime::now());
    let a: D = PersistDict::builder()
        .cache_capacity(16)
        .clock(clock.clone())
        .background(Background::Disabled)
        .open(dir.path())
        .unwrap();
    let b = open(dir.path(), 16);
    a.insert("k".into(), "1".into()).unwrap();
    clock.advance(std::time::Duration::from_secs(1));
    a.get("k").unwrap(); // a hit, whose access is pending
    let before = a.stats().unwrap().last_txn_id;
    a.flush().unwrap();
    assert_eq!(
        a.stats().unwrap().last_txn_id,
        before + 1,
        "the flush committed"
    );
    assert_eq!(a.get("k").unwrap().as_deref(), Some("1"));
    let stats = a.stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (2, 0), "{stats:?}");

    b.insert("k".into(), "2".into()).unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some("2"));
    assert_eq!(a.stats().unwrap().misses, 1);
}

#[test]
fn arc_values_are_handed_out_without_copying_the_value() {
    let dir = common::tempdir();
    let d: PersistDict<String, std::sync::Arc<Vec<u8>>> = PersistDict::open(dir.path()).unwrap();
    d.insert("big".into(), std::sync::Arc::new(vec![7; 1 << 20]))
        .unwrap();
    let first = d.get("big").unwrap().unwrap();
    let second = d.get("big").unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &second), "one value, shared");
    assert_eq!(first.len(), 1 << 20);
    // Stored as a `Vec<u8>` is: the same bytes, and the same shape.
    drop(d);
    let plain: PersistDict<String, Vec<u8>> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(plain.get("big").unwrap().map(|v| v.len()), Some(1 << 20));
}

/// A value that counts how often the calling thread copied one.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Counted(Vec<u8>);

thread_local! {
    static COPIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        COPIES.set(COPIES.get() + 1);
        Counted(self.0.clone())
    }
}

#[test]
fn get_with_hands_the_value_to_a_closure_without_copying_it_on_a_hit_or_a_miss() {
    let dir = common::tempdir();
    let writer: PersistDict<String, Counted> = PersistDict::open(dir.path()).unwrap();
    writer.insert("v".into(), Counted(vec![1, 2, 3])).unwrap();
    // Its own cache: the first read is a miss that decodes and caches the value.
    let reader: PersistDict<String, Counted> = PersistDict::open(dir.path()).unwrap();
    let before = COPIES.get();
    assert_eq!(reader.get_with("v", |v| v.0.len()).unwrap(), Some(3));
    assert_eq!(reader.get_with("v", |v| v.0[2]).unwrap(), Some(3));
    assert_eq!(reader.get_with("none", |v| v.0.len()).unwrap(), None);
    assert_eq!(writer.get_with("v", |v| v.0[0]).unwrap(), Some(1));
    assert_eq!(COPIES.get(), before, "no value was copied");
    let stats = reader.stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (1, 2), "{stats:?}");
    // `get` hands out a copy of the cached value.
    assert_eq!(reader.get("v").unwrap(), Some(Counted(vec![1, 2, 3])));
    assert_eq!(COPIES.get(), before + 1);
}

#[test]
fn get_with_may_use_the_dict_inside_its_closure() {
    let dir = common::tempdir();
    let d = open(dir.path(), 16);
    d.insert("a".into(), "b".into()).unwrap();
    d.insert("b".into(), "c".into()).unwrap();
    let hops = d
        .get_with("a", |next| {
            d.insert("seen".into(), next.clone()).unwrap();
            d.get(next.as_str()).unwrap()
        })
        .unwrap();
    assert_eq!(hops, Some(Some("c".into())));
    assert_eq!(d.get("seen").unwrap().as_deref(), Some("b"));
}

/// Values the writer child inserts, one commit each, publishing each after `insert` returned.
const PUBLISHED_WRITES: u64 = 20_000;

/// The last value the writer child published (0 before the first).
fn published(file: &std::fs::File) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut bytes = [0; 8];
    match file.read_exact_at(&mut bytes, 0) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    }
}

#[test]
fn cache_hits_from_several_threads_never_lag_behind_a_write_another_process_finished() {
    let dir = common::tempdir();
    let side = common::tempdir();
    let signal = side.path().join("published");
    std::fs::write(&signal, 0_u64.to_le_bytes()).unwrap();
    // The default worker: readers keep their read transactions between reads, too.
    let d: PersistDict<String, u64> = PersistDict::open(dir.path()).unwrap();
    d.insert("counter".into(), 0).unwrap();
    let file = std::fs::File::open(&signal).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (reads, stale) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|t| {
                let (d, file, done) = (&d, &file, &done);
                s.spawn(move || {
                    let (mut reads, mut stale) = (0_u64, Vec::new());
                    while !done.load(std::sync::atomic::Ordering::Acquire)
                        && std::time::Instant::now() < deadline
                    {
                        let before = published(file);
                        let seen = match t {
                            0 => d.get("counter").unwrap(),
                            1 => d.get_with("counter", |v| *v).unwrap(),
                            _ => {
                                d.get(&format!("k{}", before % 50)).unwrap();
                                d.get("counter").unwrap()
                            }
                        }
                        .unwrap_or(0);
                        reads += 1;
                        if seen < before {
                            stale.push((seen, before));
                        }
                    }
                    (reads, stale)
                })
            })
            .collect();
        let child = common::spawn_child(
            "child_writes_and_publishes",
            dir.path(),
            &[("PERSISTDICT_TEST_SIGNAL", signal.display().to_string())],
        );
        common::finish_child(child);
        done.store(true, std::sync::atomic::Ordering::Release);
        readers.into_iter().map(|r| r.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut all), (reads, stale)| {
                all.extend(stale);
                (n + reads, all)
            },
        )
    });
    assert!(
        reads > 1_000,
        "the readers ran alongside the writer: {reads}"
    );
    assert!(
        stale.is_empty(),
        "stale reads (seen, published before): {stale:?}"
    );
    assert_eq!(d.get("counter").unwrap(), Some(PUBLISHED_WRITES));
    assert!(
        d.stats().unwrap().hits > 0,
        "reads were served by the cache"
    );
}

#[test]
#[ignore = "child process of cache_hits_from_several_threads_never_lag_behind_a_write_another_process_finished"]
fn child_writes_and_publishes() {
    use std::os::unix::fs::FileExt;
    let Some(dir) = common::child_dir() else {
        return;
    };
    let signal = std::env::var_os("PERSISTDICT_TEST_SIGNAL").unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(signal)
        .unwrap();
    let d: PersistDict<String, u64> = PersistDict::builder()
        .durability(persistdict::Durability::Eventual)
        .open(&dir)
        .unwrap();
    for i in 1..=PUBLISHED_WRITES {
        d.insert("counter".into(), i).unwrap();
        d.insert(format!("k{}", i % 50), i).unwrap();
        file.write_all_at(&i.to_le_bytes(), 0).unwrap();
    }
}
