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
fn a_value_of_a_changed_type_is_a_typed_error_by_default() {
    let dir = common::tempdir();
    dict_with_an_outdated_value(dir.path());
    let d = reopened(dir.path(), false);
    assert!(matches!(d.get("old"), Err(Error::TypeChanged { .. })));
    assert!(d.contains_key("old").unwrap());
    let items: Vec<_> = d.iter().collect();
    assert_eq!(items.len(), 2);
    assert!(matches!(items[0], Err(Error::TypeChanged { .. })));
    assert!(matches!(
        d.get_or_insert_with("old".into(), || false),
        Err(Error::TypeChanged { .. })
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

#[test]
fn an_i32_read_as_a_u32_is_a_type_changed_error_naming_key_and_both_types() {
    let dir = common::tempdir();
    {
        let d: PersistDict<String, i32> = PersistDict::open(dir.path()).unwrap();
        d.insert("level".into(), -5).unwrap();
    }
    let d: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    let err = d.get("level").unwrap_err();
    let Error::TypeChanged {
        stored, requested, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((stored.as_str(), requested.as_str()), ("i32", "u32"));
    let message = err.to_string();
    assert!(message.contains("\"level\""), "{message}");
    // Nothing was lost: the old type still reads it.
    drop(d);
    let d: PersistDict<String, i32> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(d.get("level").unwrap(), Some(-5));
}

#[test]
fn a_u32_read_as_an_i32_is_an_error_not_another_number() {
    let dir = common::tempdir();
    PersistDict::<String, u32>::open(dir.path())
        .unwrap()
        .insert("n".into(), 5)
        .unwrap();
    let d: PersistDict<String, i32> = PersistDict::open(dir.path()).unwrap();
    assert!(matches!(d.get("n"), Err(Error::TypeChanged { .. })));
    assert!(matches!(
        d.iter().next(),
        Some(Err(Error::TypeChanged { .. }))
    ));
}

mod shapes_v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub(crate) enum Status {
        Active,
        Paused { until: u64 },
    }

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub(crate) struct Point {
        pub(crate) x: i32,
        pub(crate) y: i32,
    }
}

mod shapes_v2 {
    use serde::{Deserialize, Serialize};

    /// `Status` with a variant added at the end.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub(crate) enum Status {
        Active,
        Paused { until: u64 },
        Retired,
    }

    /// `Point` with its fields swapped: postcard alone would read x as y.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub(crate) struct Point {
        pub(crate) y: i32,
        pub(crate) x: i32,
    }
}

#[test]
fn values_of_an_enum_that_gained_a_variant_still_read() {
    let dir = common::tempdir();
    {
        let d: PersistDict<u32, shapes_v1::Status> = PersistDict::open(dir.path()).unwrap();
        d.insert(1, shapes_v1::Status::Paused { until: 9 }).unwrap();
    }
    let d: PersistDict<u32, shapes_v2::Status> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(
        d.get(&1).unwrap(),
        Some(shapes_v2::Status::Paused { until: 9 })
    );
    d.insert(2, shapes_v2::Status::Retired).unwrap();
    drop(d);
    // The older type can't read a value of the newer one.
    let d: PersistDict<u32, shapes_v1::Status> = PersistDict::open(dir.path()).unwrap();
    assert!(matches!(d.get(&2), Err(Error::TypeChanged { .. })));
    assert_eq!(
        d.get(&1).unwrap(),
        Some(shapes_v1::Status::Paused { until: 9 })
    );
}

#[test]
fn a_struct_whose_fields_were_reordered_reads_each_field_by_name_never_swapped() {
    let dir = common::tempdir();
    {
        let d: PersistDict<u32, shapes_v1::Point> = PersistDict::open(dir.path()).unwrap();
        d.insert(1, shapes_v1::Point { x: 1, y: 2 }).unwrap();
    }
    let d: PersistDict<u32, shapes_v2::Point> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(shapes_v2::Point { y: 2, x: 1 }));
}

mod shapes_v3 {
    use serde::{Deserialize, Serialize};

    /// `Point` whose `x` became a `u32`.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    pub(crate) struct Point {
        pub(crate) x: u32,
        pub(crate) y: i32,
    }
}

#[test]
fn a_struct_field_whose_type_changed_is_a_type_changed_error_even_where_the_value_fits() {
    let dir = common::tempdir();
    {
        let d: PersistDict<u32, shapes_v1::Point> = PersistDict::open(dir.path()).unwrap();
        d.insert(1, shapes_v1::Point { x: 1, y: 2 }).unwrap();
    }
    let d: PersistDict<u32, shapes_v3::Point> = PersistDict::open(dir.path()).unwrap();
    let err = d.get(&1).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("Point { x: i32, y: i32 }")
            && message.contains("Point { x: u32, y: i32 }"),
        "{message}"
    );
}

#[test]
fn with_undecodable_as_missing_a_value_of_a_changed_type_is_missing_and_overwritten() {
    let dir = common::tempdir();
    PersistDict::<String, i32>::open(dir.path())
        .unwrap()
        .insert("n".into(), -5)
        .unwrap();
    let d: PersistDict<String, u32> = PersistDict::builder()
        .undecodable_as_missing(true)
        .open(dir.path())
        .unwrap();
    assert_eq!(d.get("n").unwrap(), None);
    assert_eq!(d.get_or_insert_with("n".into(), || 7).unwrap(), 7);
    assert_eq!(d.get("n").unwrap(), Some(7));
}

mod field_v1 {
    #[persistdict::persistent(path = "persistdict-tests/type-changes-field")]
    #[derive(serde::Serialize, serde::Deserialize, Default)]
    pub(crate) struct Limits {
        pub(crate) floor: i32,
    }
}

mod field_v2 {
    #[persistdict::persistent(path = "persistdict-tests/type-changes-field")]
    #[derive(serde::Serialize, serde::Deserialize, Default)]
    pub(crate) struct Limits {
        pub(crate) floor: u32,
    }
}

#[test]
fn a_field_whose_type_changed_is_a_field_error_naming_both_types() {
    let dir = common::tempdir();
    field_v1::Limits::open_at(dir.path())
        .unwrap()
        .set_floor(-5)
        .unwrap();
    let s = field_v2::Limits::open_at(dir.path()).unwrap();
    let err = s.floor().unwrap_err();
    assert!(
        matches!(&err, Error::Field { field: "floor", .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("`i32`") && message.contains("`u32`"),
        "{message}"
    );
    assert!(s.load().is_err());
    // Setting it stores the new type; the old one then can't read it.
    s.set_floor(3).unwrap();
    assert_eq!(s.floor().unwrap(), 3);
    let old = field_v1::Limits::open_at(dir.path()).unwrap();
    assert!(matches!(old.floor(), Err(Error::Field { .. })));
}
