//! Damaged records are reported as typed errors and quarantined, never a panic or a loss.

mod common;

use heed::types::Bytes;
use persistdict::{Background, Error, PersistDict};

fn open(dir: &std::path::Path, mode: Background) -> PersistDict<String, u32> {
    PersistDict::builder().background(mode).open(dir).unwrap()
}

/// Writes raw bytes under raw storage keys of the `entries` database, with heed.
fn write_raw(dir: &std::path::Path, writes: &[(&[u8], &[u8])]) {
    let env = unsafe { heed::EnvOpenOptions::new().max_dbs(8).open(dir).unwrap() };
    let wtxn = env.write_txn().unwrap();
    let entries = env
        .create_databases_and_commit(wtxn, |o, w| {
            o.create_database::<Bytes, Bytes>(w, Some("entries"))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    for (k, v) in writes {
        entries.put(&mut wtxn, k, v).unwrap();
    }
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
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
        err.to_string()
            .contains("corrupt record under key \"\\x02k7\""),
        "{err}"
    );
    let results: Vec<_> = d.iter().collect();
    assert_eq!(results.len(), 100);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
    assert_eq!(d.get("k9").unwrap(), Some(9));
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
