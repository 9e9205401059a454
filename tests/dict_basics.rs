//! The map operations of a single handle, including the Python original's scenarios.

mod common;

use persistdict::{Error, PersistDict};

fn open(dir: &std::path::Path) -> PersistDict<String, i64> {
    PersistDict::open(dir).unwrap()
}

fn keys(d: &PersistDict<String, i64>) -> Vec<String> {
    d.keys().collect::<persistdict::Result<_>>().unwrap()
}

#[test]
fn missing_key_is_none() {
    let dir = common::tempdir();
    let d = open(dir.path());
    assert_eq!(d.get("nope").unwrap(), None);
    assert!(!d.contains_key("nope").unwrap());
    assert!(!d.remove("nope").unwrap());
}

#[test]
fn inserted_value_reads_back_through_a_borrowed_key() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.insert("a".to_string(), 1).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
    assert_eq!(d.get(&"a".to_string()).unwrap(), Some(1));
    assert!(d.contains_key("a").unwrap());
}

#[test]
fn overwrite_keeps_len_and_place_in_order() {
    let dir = common::tempdir();
    let d = open(dir.path());
    for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
        d.insert(k.into(), v).unwrap();
    }
    d.insert("a".into(), 10).unwrap();
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(keys(&d), ["a", "b", "c"]);
    assert_eq!(d.get("a").unwrap(), Some(10));
}

#[test]
fn keys_values_and_items_come_in_insertion_order() {
    let dir = common::tempdir();
    let d = open(dir.path());
    let names = ["zeta", "alpha", "mid", "beta"];
    for (i, k) in names.iter().enumerate() {
        d.insert((*k).into(), i64::try_from(i).unwrap()).unwrap();
    }
    assert_eq!(keys(&d), names);
    let values: Vec<i64> = d.values().map(Result::unwrap).collect();
    assert_eq!(values, [0, 1, 2, 3]);
    let items: Vec<(String, i64)> = d.iter().map(Result::unwrap).collect();
    assert_eq!(items[2], ("mid".to_string(), 2));
}

#[test]
fn delete_then_len_and_keys_forget_the_key() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.insert("a".into(), 1).unwrap();
    d.insert("b".into(), 2).unwrap();
    assert!(d.remove("a").unwrap());
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(keys(&d), ["b"]);
    // A key inserted again after removal goes to the end.
    d.insert("a".into(), 3).unwrap();
    assert_eq!(keys(&d), ["b", "a"]);
}

#[test]
fn take_returns_the_value_and_removes_it() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.insert("a".into(), 5).unwrap();
    assert_eq!(d.take("a").unwrap(), Some(5));
    assert_eq!(d.take("a").unwrap(), None);
    assert!(d.is_empty().unwrap());
}

#[test]
fn clear_empties_the_dict() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.extend((0..10).map(|i| (format!("k{i}"), i))).unwrap();
    assert_eq!(d.len().unwrap(), 10);
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.iter().count(), 0);
}

#[test]
fn iteration_follows_insertion_order_whatever_the_keys_order() {
    let dir = common::tempdir();
    let d: PersistDict<String, i64> = PersistDict::builder()
        .key_size_limit(16)
        .open(dir.path())
        .unwrap();
    // Keys in shuffled order, some long enough to be hashed, some overwritten, some removed:
    // each chunk's keys are scattered across the key space and the two databases. So many
    // that the first chunk's records are looked up one by one, and later chunks' found in a
    // scan.
    let mut ids: Vec<i64> = (0..15_000).collect();
    fastrand::Rng::with_seed(3).shuffle(&mut ids);
    let key = |i: i64| {
        if i % 7 == 0 {
            format!("long key number {i:05}")
        } else {
            format!("k{i:05}")
        }
    };
    d.extend(ids.iter().map(|&i| (key(i), i))).unwrap();
    d.transaction(|tx| {
        for &i in ids.iter().filter(|&&i| i % 5 == 0) {
            tx.remove(&key(i))?;
        }
        for &i in ids.iter().filter(|&&i| i % 3 == 0) {
            tx.insert(key(i), -i)?;
        }
        Ok::<_, persistdict::Error>(())
    })
    .unwrap();
    // Removed keys that were inserted again come last, in the order of their insertion.
    let mut expected: Vec<(String, i64)> = ids
        .iter()
        .filter(|&&i| i % 5 != 0)
        .map(|&i| (key(i), if i % 3 == 0 { -i } else { i }))
        .collect();
    expected.extend(
        ids.iter()
            .filter(|&&i| i % 5 == 0 && i % 3 == 0)
            .map(|&i| (key(i), -i)),
    );
    let found: Vec<(String, i64)> = d.iter().map(Result::unwrap).collect();
    assert_eq!(found, expected);
    let keys: Vec<String> = d.keys().map(Result::unwrap).collect();
    assert_eq!(keys.len(), expected.len());
}

#[test]
fn keys_inserted_in_random_order_and_never_removed_come_back_in_that_order() {
    let dir = common::tempdir();
    let d = open(dir.path());
    // Enough that the later chunks are found in a scan of the entries, none removed or
    // overwritten: the sequence numbers have no gaps.
    let mut ids: Vec<i64> = (0..20_000).collect();
    fastrand::Rng::with_seed(11).shuffle(&mut ids);
    d.extend(ids.iter().map(|&i| (format!("k{i:05}"), i)))
        .unwrap();
    let found: Vec<i64> = d.values().map(Result::unwrap).collect();
    assert_eq!(found, ids);
}

#[test]
fn iteration_streams_across_many_chunks() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.extend((0..2_000).map(|i| (format!("k{i:05}"), i)))
        .unwrap();
    let mut expected = 0;
    for item in &d {
        let (k, v) = item.unwrap();
        assert_eq!((k, v), (format!("k{expected:05}"), expected));
        expected += 1;
    }
    assert_eq!(expected, 2_000);
}

/// A dict of 1,000 keys in key order with 16 KiB values, which walks read about 250 at a
/// time after a small first chunk.
fn walked_in_chunks(dir: &std::path::Path) -> PersistDict<String, Vec<u8>> {
    let d = PersistDict::open(dir).unwrap();
    d.extend((0..1_000).map(|i| (chunked_key(i), vec![0; 16 << 10])))
        .unwrap();
    d
}

/// The key of the `i`th entry of [`walked_in_chunks`].
fn chunked_key(i: usize) -> String {
    format!("k{i:05}")
}

/// The keys a walk of [`walked_in_chunks`] yields when `write` runs after its first 600,
/// partway through the walk: before its later chunks are read.
fn keys_walked_around(write: impl FnOnce(&PersistDict<String, Vec<u8>>)) -> Vec<String> {
    let dir = common::tempdir();
    let d = walked_in_chunks(dir.path());
    let mut walk = d.iter();
    let keys = |walk: &mut dyn Iterator<Item = persistdict::Result<(String, Vec<u8>)>>| {
        walk.map(|item| item.unwrap().0).collect::<Vec<_>>()
    };
    let mut seen = keys(&mut walk.by_ref().take(600));
    write(&d);
    seen.extend(keys(&mut walk));
    seen
}

/// Compares long lists of keys, saying briefly how they differ.
fn assert_keys(seen: &[String], expected: &[String]) {
    assert!(
        seen == expected,
        "{} keys seen, ending {:?}; {} expected",
        seen.len(),
        seen.last(),
        expected.len()
    );
}

#[test]
fn a_walk_goes_on_in_insertion_order_when_keys_stop_arriving_in_key_order() {
    let seen = keys_walked_around(|d| {
        // A key that sorts first, then one that sorts last.
        d.insert("a".into(), vec![1]).unwrap();
        d.insert("z".into(), vec![2]).unwrap();
    });
    let mut expected: Vec<String> = (0..1_000).map(chunked_key).collect();
    expected.extend(["a".into(), "z".into()]);
    assert_keys(&seen, &expected);
}

#[test]
fn a_walk_sees_keys_appended_in_key_order_while_it_runs() {
    let seen = keys_walked_around(|d| {
        d.insert(chunked_key(3), vec![3]).unwrap(); // overwritten in place: not seen again
        d.remove(&chunked_key(900)).unwrap();
        d.extend((1_000..1_100).map(|i| (chunked_key(i), vec![4])))
            .unwrap();
    });
    let expected: Vec<String> = (0..1_100).filter(|&i| i != 900).map(chunked_key).collect();
    assert_keys(&seen, &expected);
}

#[test]
fn iteration_keeps_insertion_order_through_every_mix_of_writes() {
    let dir = common::tempdir();
    let d: PersistDict<String, i64> = PersistDict::builder()
        .key_size_limit(16)
        .open(dir.path())
        .unwrap();
    let mut model: Vec<String> = Vec::new();
    let check = |d: &PersistDict<String, i64>, model: &[String]| {
        assert_eq!(keys(d), model);
        let values: Vec<i64> = d.values().map(Result::unwrap).collect();
        assert_eq!(values.len(), model.len());
    };
    // In key order, one per transaction and then in one.
    for i in 0..5 {
        d.insert(format!("k{i:03}"), i).unwrap();
        model.push(format!("k{i:03}"));
    }
    d.extend((5..10).map(|i| (format!("k{i:03}"), i))).unwrap();
    model.extend((5..10).map(|i| format!("k{i:03}")));
    check(&d, &model);
    // Overwrites and removals keep it.
    d.insert("k002".into(), 20).unwrap();
    d.remove("k009").unwrap();
    model.retain(|k| k != "k009");
    d.insert("k009".into(), 9).unwrap(); // the last key again, now new
    model.push("k009".into());
    check(&d, &model);
    // A key that sorts lower, inside a transaction of keys that sort higher.
    d.extend([
        ("k100".to_string(), 1),
        ("k050".into(), 2),
        ("k200".into(), 3),
    ])
    .unwrap();
    model.extend(["k100".into(), "k050".into(), "k200".into()]);
    check(&d, &model);
    // After clearing, in key order again; then a key too long to be stored raw.
    d.clear().unwrap();
    model.clear();
    d.extend((0..3).map(|i| (format!("k{i:03}"), i))).unwrap();
    model.extend((0..3).map(|i| format!("k{i:03}")));
    check(&d, &model);
    d.insert("a key longer than the limit".into(), 4).unwrap();
    d.insert("k999".into(), 5).unwrap();
    model.extend(["a key longer than the limit".into(), "k999".into()]);
    check(&d, &model);
}

#[test]
fn a_walk_over_large_values_reads_them_a_few_at_a_time_and_misses_none() {
    let dir = common::tempdir();
    let d: PersistDict<String, Vec<u8>> = PersistDict::open(dir.path()).unwrap();
    let value = |i: usize| vec![i as u8; 256 << 10];
    // In key order, then one key that sorts first: walks of both kinds.
    for ids in [0..30, 30..31] {
        for i in ids {
            let key = if i == 30 {
                "a".to_string()
            } else {
                format!("k{i:02}")
            };
            d.insert(key, value(i)).unwrap();
        }
        let walked: Vec<(String, Vec<u8>)> = d.iter().map(Result::unwrap).collect();
        assert_eq!(walked.len(), d.len().unwrap() as usize);
        for (i, (key, v)) in walked.iter().enumerate() {
            let expected = if i == 30 {
                "a".to_string()
            } else {
                format!("k{i:02}")
            };
            assert_eq!(key, &expected);
            assert!(*v == value(i), "the value of {key}");
        }
    }
}

#[test]
fn update_reads_modifies_and_removes_atomically() {
    let dir = common::tempdir();
    let d = open(dir.path());
    assert_eq!(
        d.update("n", |v| Some(v.unwrap_or(0) + 1)).unwrap(),
        Some(1)
    );
    assert_eq!(d.update("n", |v| v.map(|v| v * 10)).unwrap(), Some(10));
    assert_eq!(d.update("n", |_| None).unwrap(), None);
    assert!(!d.contains_key("n").unwrap());
}

#[test]
fn get_or_insert_with_computes_only_when_missing() {
    let dir = common::tempdir();
    let d = open(dir.path());
    let mut calls = 0;
    assert_eq!(
        d.get_or_insert_with("k".into(), || {
            calls += 1;
            7
        })
        .unwrap(),
        7
    );
    assert_eq!(
        d.get_or_insert_with("k".into(), || {
            calls += 1;
            8
        })
        .unwrap(),
        7
    );
    assert_eq!(calls, 1);
}

/// A caller's own error type for transactions.
#[derive(Debug)]
struct Abort;

impl From<Error> for Abort {
    fn from(_: Error) -> Self {
        Abort
    }
}

#[test]
fn transaction_commits_all_or_nothing() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.insert("a".into(), 1).unwrap();
    d.transaction(|tx| {
        tx.insert("b".into(), 2)?;
        assert_eq!(tx.get("b")?, Some(2), "a transaction reads its own writes");
        tx.remove("a")?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(keys(&d), ["b"]);
    let result = d.transaction(|tx| {
        tx.insert("c".into(), 3)?;
        tx.clear()?;
        Err::<(), _>(Abort)
    });
    assert!(result.is_err());
    assert_eq!(
        keys(&d),
        ["b"],
        "an aborted transaction leaves nothing behind"
    );
}

#[test]
fn writing_through_the_dict_inside_its_transaction_is_an_error_not_a_deadlock() {
    let dir = common::tempdir();
    let d = open(dir.path());
    let other = open(dir.path());
    let result = d.transaction(|_tx| other.insert("x".into(), 1));
    assert!(
        matches!(result, Err(Error::NestedTransaction)),
        "{result:?}"
    );
    // Reads through another handle inside the transaction work.
    d.transaction(|_tx| other.get("x")).unwrap();
}

#[test]
fn init_once_twice_fails_and_works_again_after_clear() {
    let dir = common::tempdir();
    let d = open(dir.path());
    d.init_once([("a".to_string(), 1), ("b".to_string(), 2)])
        .unwrap();
    assert_eq!(keys(&d), ["a", "b"]);
    let again = d.init_once([("c".to_string(), 3)]);
    assert!(matches!(again, Err(Error::AlreadyInitialized)), "{again:?}");
    assert_eq!(keys(&d), ["a", "b"], "a refused init_once changes nothing");
    d.clear().unwrap();
    d.init_once([("c".to_string(), 3)]).unwrap();
    assert_eq!(keys(&d), ["c"]);
}

#[test]
fn init_once_is_remembered_across_reopen() {
    let dir = common::tempdir();
    open(dir.path()).init_once([("a".to_string(), 1)]).unwrap();
    let again = open(dir.path()).init_once([("a".to_string(), 1)]);
    assert!(matches!(again, Err(Error::AlreadyInitialized)));
}

#[test]
fn values_survive_closing_and_reopening() {
    let dir = common::tempdir();
    {
        let d = open(dir.path());
        d.insert("kept".into(), 42).unwrap();
    }
    assert_eq!(open(dir.path()).get("kept").unwrap(), Some(42));
}

#[test]
fn missing_parent_directories_are_created() {
    let dir = common::tempdir();
    let nested = dir.path().join("a/b/c");
    let d = open(&nested);
    d.insert("x".into(), 1).unwrap();
    assert!(nested.join("data.mdb").exists());
}

#[test]
fn handles_are_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<PersistDict<String, Vec<u8>>>();
    let dir = common::tempdir();
    let d = open(dir.path());
    let e = d.clone();
    e.insert("via clone".into(), 1).unwrap();
    assert_eq!(d.get("via clone").unwrap(), Some(1));
}

#[test]
fn a_snapshot_walk_yields_the_dict_as_it_was_when_the_walk_began() {
    let dir = common::tempdir();
    let d: PersistDict<u32, u32> = PersistDict::open(dir.path()).unwrap();
    // Enough entries for a chunked walk to read many chunks.
    d.extend((0..20_000).map(|i| (i, i))).unwrap();
    let mut walk = d.iter_snapshot();
    let first: Vec<_> = walk.by_ref().take(10).map(Result::unwrap).collect();
    // Meanwhile another writer removes everything, adds new keys and changes values.
    d.transaction(|tx| {
        tx.clear()?;
        for i in 0..100 {
            tx.insert(1_000_000 + i, 0)?;
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    let rest: Vec<_> = walk.map(Result::unwrap).collect();
    let all: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(all, (0..20_000).map(|i| (i, i)).collect::<Vec<_>>());
    assert_eq!(d.len().unwrap(), 100);
}
