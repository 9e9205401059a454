//! Bad paths, foreign files and changed value types give typed errors and lose nothing.

mod common;

use persistdict::{Error, PersistDict};
use serde::{Deserialize, Serialize};

#[test]
fn a_path_that_is_a_regular_file_is_an_io_error() {
    let dir = common::tempdir();
    let file = dir.path().join("plain.txt");
    std::fs::write(&file, "hello").unwrap();
    let err = PersistDict::<String, u8>::open(&file).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &file),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "hello",
        "the file is untouched"
    );
}

#[test]
fn a_data_file_that_is_not_lmdb_is_refused_and_left_alone() {
    for (what, bytes) in [
        ("text", b"this is not an LMDB file\n".repeat(1_000)),
        (
            "random bytes",
            (0..100_000_u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ),
    ] {
        let dir = common::tempdir();
        let data = dir.path().join("data.mdb");
        std::fs::write(&data, &bytes).unwrap();
        let err = PersistDict::<String, u8>::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NotADict { .. }), "{what}: {err:?}");
        assert!(
            err.to_string().contains("does not hold a readable dict"),
            "{what}: {err}"
        );
        assert_eq!(
            std::fs::read(&data).unwrap(),
            bytes,
            "{what}: the file is untouched"
        );
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct V1 {
    name: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct V2 {
    name: String,
    tags: Vec<String>,
}

#[test]
fn a_value_of_a_changed_type_is_a_decode_error_naming_key_and_type_and_is_kept() {
    let dir = common::tempdir();
    {
        let d: PersistDict<String, V1> = PersistDict::open(dir.path()).unwrap();
        d.insert("doc".into(), V1 { name: "a".into() }).unwrap();
    }
    let d: PersistDict<String, V2> = PersistDict::open(dir.path()).unwrap();
    let err = d.get("doc").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(message.contains("\"\\x03doc\""), "{message}");
    assert!(message.contains("V2"), "{message}");
    assert!(std::error::Error::source(&err).is_some());
    // Updating refuses too, without calling the closure; iteration reports the entry.
    assert!(d.update("doc", |_| panic!("must not be called")).is_err());
    assert!(d.iter().next().unwrap().is_err());
    assert!(d.contains_key("doc").unwrap());
    drop(d);
    let d: PersistDict<String, V1> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(
        d.get("doc").unwrap(),
        Some(V1 { name: "a".into() }),
        "nothing was lost"
    );
}

#[test]
fn an_unencodable_key_is_an_encode_error() {
    let dir = common::tempdir();
    // JSON can't encode a map with non-string keys.
    let d: PersistDict<
        std::collections::BTreeMap<Vec<u8>, u8>,
        u8,
        persistdict::Postcard,
        persistdict::Json,
    > = PersistDict::builder()
        .key_codec(persistdict::Json)
        .open(dir.path())
        .unwrap();
    let key = std::collections::BTreeMap::from([(vec![1], 1)]);
    let err = d.insert(key, 1).unwrap_err();
    assert!(matches!(err, Error::Encode { what: "key", .. }), "{err:?}");
    assert!(d.is_empty().unwrap());
}
