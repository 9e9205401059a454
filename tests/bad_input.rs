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
        ("empty", Vec::new()),
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

#[test]
fn a_path_that_is_not_utf8_works() {
    use std::os::unix::ffi::OsStrExt;
    let dir = common::tempdir();
    let path = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"dict-\xff\xfe"));
    {
        let d: PersistDict<String, u8> = PersistDict::open(&path).unwrap();
        d.insert("k".into(), 1).unwrap();
    }
    let d: PersistDict<String, u8> = PersistDict::open(&path).unwrap();
    assert_eq!(d.get("k").unwrap(), Some(1));
    assert!(d.path().as_os_str().as_bytes().ends_with(b"dict-\xff\xfe"));
}

#[test]
fn a_sixty_four_mebibyte_value_round_trips() {
    let dir = common::tempdir();
    let value: Vec<u8> = (0..64_u32 << 20).map(|i| (i % 251) as u8).collect();
    {
        let d: PersistDict<String, Vec<u8>> = PersistDict::open(dir.path()).unwrap();
        d.insert("big".into(), value.clone()).unwrap();
    }
    let d: PersistDict<String, Vec<u8>> = PersistDict::open(dir.path()).unwrap();
    assert!(
        d.get("big").unwrap() == Some(value),
        "the value came back changed"
    );
    let meta = d.metadata("big").unwrap().unwrap();
    assert!(meta.value_size >= 64 << 20, "{meta:?}");
}

#[test]
fn a_hundred_thousand_long_keys_under_a_two_byte_limit_each_keep_their_value() {
    let dir = common::tempdir();
    // Two-byte digests: 65,536 slots for 100,000 keys, so most slots hold colliding keys.
    let d: PersistDict<String, u32> = PersistDict::builder()
        .key_size_limit(2)
        .open(dir.path())
        .unwrap();
    let key = |i: u32| format!("{i:06}-{}", "long key ".repeat(20));
    d.extend((0..100_000).map(|i| (key(i), i))).unwrap();
    assert_eq!(d.len().unwrap(), 100_000);
    for i in (0..100_000).step_by(7) {
        assert_eq!(d.get(&key(i)).unwrap(), Some(i), "key {i}");
    }
    d.transaction(|tx| {
        for i in (0..100_000).step_by(2) {
            assert!(tx.remove(&key(i))?);
        }
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(d.len().unwrap(), 50_000);
    let mut seen = 0;
    for (n, entry) in d.iter().enumerate() {
        let (k, v) = entry.unwrap();
        assert_eq!((k, v), (key(2 * n as u32 + 1), 2 * n as u32 + 1));
        seen += 1;
    }
    assert_eq!(seen, 50_000);
    println!(
        "100,000 keys of {} bytes under 2-byte digests: all found",
        key(0).len()
    );
}
