//! Damaged records are reported as typed errors and quarantined, never a panic or a loss.

mod common;

use heed::types::Bytes;
use persistdict::{Background, Error, PersistDict};

fn open(dir: &std::path::Path, mode: Background) -> PersistDict<String, u32> {
    PersistDict::builder().background(mode).open(dir).unwrap()
}

/// Writes raw bytes under raw storage keys of the `entries` database, with heed.
fn write_raw(dir: &std::path::Path, writes: &[(&[u8], &[u8])]) {
    edit_raw(dir, "entries", |db, wtxn| {
        for (k, v) in writes {
            db.put(wtxn, k, v).unwrap();
        }
    });
}

/// Runs `edit` on database `name` of the dict in `dir`, with heed, and commits.
fn edit_raw(
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(heed::Database<Bytes, Bytes>, &mut heed::RwTxn<'_>),
) {
    // SAFETY: no other handle of this process has the environment open.
    let env = unsafe { heed::EnvOpenOptions::new().max_dbs(8).open(dir).unwrap() };
    let wtxn = env.write_txn().unwrap();
    let db = env
        .create_databases_and_commit(wtxn, |o, w| {
            o.create_database::<Bytes, Bytes>(w, Some(name))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    edit(db, &mut wtxn);
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
}

/// The storage key of `k` (postcard: its length, then its bytes).
fn storage_key(k: &str) -> Vec<u8> {
    let mut out = vec![k.len() as u8];
    out.extend_from_slice(k.as_bytes());
    out
}

fn damaged_dict(dir: &std::path::Path) {
    let d = open(dir, Background::Disabled);
    d.extend((0..100).map(|i| (format!("k{i}"), i))).unwrap();
    drop(d);
    // "k7" (postcard: 02 'k' '7') gets a garbage header; a key nobody wrote gets garbage;
    // "k8" is truncated mid-header.
    write_raw(
        dir,
        &[
            (b"\x02k7", b"\xff\xfe garbage"),
            (b"\x05nokey", b"junk"),
            (b"\x02k8", b"\x01\x00\x00"),
        ],
    );
}

#[test]
fn a_damaged_record_is_a_typed_error_naming_its_key_and_iteration_goes_on() {
    let dir = common::tempdir();
    damaged_dict(dir.path());
    let d = open(dir.path(), Background::Disabled);
    let err = d.get("k7").unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { key, .. } if key.as_bytes() == b"\x02k7"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("corrupt record under key \"k7\""),
        "{err}"
    );
    let results: Vec<_> = d.iter().collect();
    assert_eq!(results.len(), 100);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
    assert_eq!(d.get("k9").unwrap(), Some(9));
}

#[test]
fn a_damaged_record_among_keys_in_key_order_is_an_error_and_the_keys_still_walk() {
    let dir = common::tempdir();
    let key = |i: u32| format!("k{i:03}");
    let d = open(dir.path(), Background::Disabled);
    d.extend((0..100).map(|i| (key(i), i))).unwrap();
    drop(d);
    write_raw(dir.path(), &[(&storage_key(&key(7)), b"\xff\xfe garbage")]);
    let d = open(dir.path(), Background::Disabled);
    let items: Vec<_> = d.iter().collect();
    assert_eq!(items.len(), 100);
    assert!(
        matches!(&items[7], Err(Error::Corrupt { key, .. }) if key.as_bytes() == storage_key("k007")),
        "{:?}",
        items[7]
    );
    assert_eq!(items.iter().filter(|r| r.is_err()).count(), 1);
    // Walking the keys reads no record, whichever way the walk goes.
    let keys: Vec<String> = d.keys().map(Result::unwrap).collect();
    assert_eq!(keys, (0..100).map(key).collect::<Vec<_>>());
}

#[test]
fn a_record_with_a_garbage_header_is_quarantined_and_every_other_entry_is_untouched() {
    let dir = common::tempdir();
    damaged_dict(dir.path());
    let d = open(dir.path(), Background::Disabled);
    let report = d.check_integrity().unwrap();
    println!("{report:?}");
    assert_eq!(report.quarantined, 3, "{report:?}");
    assert!(report.undecodable.is_empty());
    assert_eq!(d.stats().unwrap().quarantined, 3);
    assert_eq!(
        d.len().unwrap(),
        98,
        "the two damaged entries left the insertion order"
    );
    for i in (0..100).filter(|i| ![7, 8].contains(i)) {
        assert_eq!(d.get(&format!("k{i}")).unwrap(), Some(i));
    }
    assert_eq!(d.get("k7").unwrap(), None);
    // A second check finds nothing more.
    let again = d.check_integrity().unwrap();
    assert_eq!(
        (again.quarantined, again.repaired, again.checked),
        (0, 0, 98)
    );
}

#[test]
fn the_worker_quarantines_at_open_in_foreground_mode() {
    let dir = common::tempdir();
    damaged_dict(dir.path());
    let d = open(dir.path(), Background::Foreground);
    assert_eq!(d.stats().unwrap().quarantined, 3);
    assert_eq!(d.iter().filter(Result::is_err).count(), 0);
}

#[test]
fn values_of_a_changed_type_are_reported_not_removed() {
    let dir = common::tempdir();
    {
        let d: PersistDict<String, String> = PersistDict::open(dir.path()).unwrap();
        d.insert("text".into(), "not a number".into()).unwrap();
    }
    let d: PersistDict<String, [u64; 4]> = PersistDict::builder()
        .background(Background::Disabled)
        .open(dir.path())
        .unwrap();
    let report = d.check_integrity().unwrap();
    assert_eq!(report.undecodable.len(), 1, "{report:?}");
    assert_eq!(report.quarantined, 0);
    assert!(d.contains_key("text").unwrap());
}

#[test]
fn garbage_under_random_keys_is_reported_then_quarantined_and_the_rest_reads_back() {
    let dir = common::tempdir();
    let d = open(dir.path(), Background::Disabled);
    d.extend((0..500).map(|i| (format!("k{i}"), i))).unwrap();
    drop(d);
    let mut r = fastrand::Rng::with_seed(20_261_126);
    let mut damaged = std::collections::BTreeSet::new();
    while damaged.len() < 40 {
        damaged.insert(r.u32(0..500));
    }
    let strangers: Vec<Vec<u8>> = (0..20)
        .map(|_| (0..r.usize(1..40)).map(|_| r.u8(..)).collect())
        .collect();
    edit_raw(dir.path(), "entries", |db, wtxn| {
        for (n, i) in damaged.iter().enumerate() {
            let key = storage_key(&format!("k{i}"));
            let bytes = if n % 2 == 0 {
                // Random garbage.
                (0..r.usize(0..64)).map(|_| r.u8(..)).collect()
            } else {
                // The record cut short inside its 32-byte header.
                let record = db.get(wtxn, &key).unwrap().unwrap().to_vec();
                record[..r.usize(1..32)].to_vec()
            };
            db.put(wtxn, &key, &bytes).unwrap();
        }
        for key in &strangers {
            let garbage: Vec<u8> = (0..r.usize(0..64)).map(|_| r.u8(..)).collect();
            db.put(wtxn, key, &garbage).unwrap();
        }
    });

    let d = open(dir.path(), Background::Disabled);
    for i in 0..500 {
        let got = d.get(&format!("k{i}"));
        if damaged.contains(&i) {
            let err = got.unwrap_err();
            assert!(
                matches!(&err, Error::Corrupt { key, .. } if key.as_bytes() == storage_key(&format!("k{i}"))),
                "k{i}: {err:?}"
            );
        } else {
            assert_eq!(got.unwrap(), Some(i));
        }
    }
    let items: Vec<_> = d.iter().collect();
    assert_eq!(items.len(), 500, "strangers are not in the insertion order");
    assert_eq!(items.iter().filter(|r| r.is_err()).count(), 40);

    let report = d.check_integrity().unwrap();
    assert_eq!(report.quarantined, 60, "{report:?}");
    assert_eq!(d.len().unwrap(), 460);
    for i in (0..500).filter(|i| !damaged.contains(i)) {
        assert_eq!(d.get(&format!("k{i}")).unwrap(), Some(i));
    }
    assert!(d.iter().all(|r| r.is_ok()));
    println!("500 entries, 20 garbage and 20 truncated records, 20 garbage strangers: {report:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever bytes sit in the entries and in the buckets of hashed keys, reading,
    /// iterating and checking return values or typed errors, never panic, and the check
    /// leaves a dict in which everything reads.
    #[test]
    fn arbitrary_stored_bytes_never_panic(
        records in proptest::collection::vec(
            (proptest::collection::vec(proptest::prelude::any::<u8>(), 1..24),
             proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)),
            1..12,
        ),
        buckets in proptest::collection::vec(
            (proptest::collection::vec(proptest::prelude::any::<u8>(), 1..5),
             proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)),
            0..6,
        ),
    ) {
        let dir = common::tempdir();
        drop(open(dir.path(), Background::Disabled));
        edit_raw(dir.path(), "entries", |db, wtxn| {
            for (k, v) in &records {
                db.put(wtxn, k, v).unwrap();
            }
        });
        edit_raw(dir.path(), "hashed", |db, wtxn| {
            for (k, v) in &buckets {
                db.put(wtxn, k, v).unwrap();
            }
        });
        let d = open(dir.path(), Background::Disabled);
        for (k, _) in &records {
            if let Ok(key) = std::str::from_utf8(k.get(1..).unwrap_or_default()) {
                let _ = d.get(key);
            }
        }
        let _ = d.iter().count();
        d.check_integrity().unwrap();
        proptest::prop_assert!(d.iter().all(|r| r.is_ok()));
    }
}

#[test]
fn an_insertion_order_at_its_last_number_is_an_error_until_the_check_repairs_it() {
    let dir = common::tempdir();
    let d = open(dir.path(), Background::Disabled);
    d.insert("a".into(), 1).unwrap();
    drop(d);
    edit_raw(dir.path(), "order", |db, wtxn| {
        db.put(wtxn, &u64::MAX.to_be_bytes(), &storage_key("ghost"))
            .unwrap();
    });
    let d = open(dir.path(), Background::Disabled);
    for key in ["a", "b"] {
        let err = d.insert(key.into(), 2).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{key}: {err:?}");
    }
    assert_eq!(d.get("a").unwrap(), Some(1), "nothing lost");
    let report = d.check_integrity().unwrap();
    assert!(report.repaired > 0, "{report:?}");
    d.insert("b".into(), 2).unwrap();
    d.insert("a".into(), 3).unwrap();
    let items: Vec<_> = d.iter().map(Result::unwrap).collect();
    assert_eq!(items, [("a".to_string(), 3), ("b".to_string(), 2)]);
}
