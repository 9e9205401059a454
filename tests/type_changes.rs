//! A value type that changed under stored data: by default every read of such a value is a
//! typed error; with `undecodable_as_missing` (and the attributes' `undecodable = "missing"`)
//! it reads as missing and is overwritten.

mod common;

use std::collections::HashMap;

use persistdict::{Error, PersistDict, persistent};
use serde::{Deserialize, Serialize};

/// A dict at `dir` whose entry "old" holds bytes that don't decode as `bool` (postcard:
/// a length 3, then 7, 7, 7), beside "new" = `true` written as a `bool`.
fn dict_with_an_outdated_value(dir: &std::path::Path) {
    let old: PersistDict<String, Vec<u8>> = PersistDict::open(dir).unwrap();
    old.insert("old".into(), vec![7; 3]).unwrap();
    drop(old);
    let new: PersistDict<String, bool> = PersistDict::open(dir).unwrap();
    new.insert("new".into(), true).unwrap();
}

fn reopened(dir: &std::path::Path, missing: bool) -> PersistDict<String, bool> {
    PersistDict::builder()
        .undecodable_as_missing(missing)
        .open(dir)
        .unwrap()
}

#[test]
fn a_value_of_a_changed_type_is_a_decode_error_by_default() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let d = reopened(dir.path(), false);
    assert!(matches!(d.get("old"), Err(Error::Decode { .. })));
    assert!(d.contains_key("old").unwrap());
    let items: Vec<_> = d.iter().collect();
    assert_eq!(items.len(), 2);
    assert!(matches!(items[0], Err(Error::Decode { .. })));
    assert!(matches!(
        d.get_or_insert_with("old".into(), || false),
        Err(Error::Decode { .. })
    ));
}

#[test]
fn with_undecodable_as_missing_a_value_of_a_changed_type_reads_as_missing() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let d = reopened(dir.path(), true);
    assert_eq!(d.get("old").unwrap(), None);
    assert!(!d.contains_key("old").unwrap());
    assert_eq!(d.get("new").unwrap(), Some(true));
    let items: Vec<_> = d.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(items, [("new".to_string(), true)]);
    let values: Vec<_> = d.values().collect::<Result<_, _>>().unwrap();
    assert_eq!(values, [true]);
    assert_eq!(d.take("old").unwrap(), None);
    // `len` and `keys` don't decode values: the outdated entry counts until overwritten.
    assert_eq!(d.len().unwrap(), 2);
    assert_eq!(d.retain(|_, _| true).unwrap(), 0);
    d.transaction(|tx| {
        assert_eq!(tx.get("old")?, None);
        assert_eq!(tx.iter().count(), 1);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn with_undecodable_as_missing_a_changed_value_is_computed_again_and_overwritten() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let d = reopened(dir.path(), true);
    assert!(!d.get_or_insert_with("old".into(), || false).unwrap());
    assert_eq!(d.get("old").unwrap(), Some(false));
    // Written now as a `bool`: a handle that treats such values as errors reads it too.
    assert_eq!(reopened(dir.path(), false).get("old").unwrap(), Some(false));
}

#[test]
fn with_undecodable_as_missing_update_starts_from_nothing() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let d = reopened(dir.path(), true);
    let mut seen = Vec::new();
    let updated = d
        .update("old", |v| {
            seen.push(v);
            Some(true)
        })
        .unwrap();
    assert_eq!((seen, updated), (vec![None], Some(true)));
    assert_eq!(d.get("old").unwrap(), Some(true));
}

#[persistent(path = "persistdict-tests/type-changes-map", undecodable = "missing")]
type Flags = HashMap<String, bool>;

#[test]
fn a_persistent_map_with_undecodable_missing_reads_a_changed_value_as_missing() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let flags = Flags::open_at(dir.path()).unwrap();
    assert_eq!(flags.get("old").unwrap(), None);
    flags.insert("old".into(), true).unwrap();
    assert_eq!(flags.get("old").unwrap(), Some(true));
}

#[persistent(
    path = "persistdict-tests/type-changes-struct",
    undecodable = "missing"
)]
#[derive(Serialize, Deserialize, Default)]
struct Settings {
    #[persistent(default = true)]
    old: bool,
}

#[test]
fn a_persistent_struct_with_undecodable_missing_reads_a_changed_field_as_its_default() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let s = Settings::open_at(dir.path()).unwrap();
    assert!(s.old().unwrap());
    assert!(s.load().unwrap().old);
    s.set_old(false).unwrap();
    assert!(!s.old().unwrap());
}
