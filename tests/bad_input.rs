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
        ("a short text", b"not LMDB".to_vec()),
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

/// What LMDB leaves in `data.mdb` when its creation was cut short: nothing, the first meta
/// page of a new file (a disk that filled up mid-write), or a page of zeros.
fn cut_short_data_files() -> Vec<(&'static str, Vec<u8>)> {
    let dir = common::tempdir();
    // LMDB writes its two initial meta pages when it creates the file.
    // SAFETY: a fresh directory, opened once.
    drop(unsafe { heed::EnvOpenOptions::new().open(dir.path()) }.unwrap());
    let whole = std::fs::read(dir.path().join("data.mdb")).unwrap();
    assert_eq!(whole.len(), 8192, "two pages");
    vec![
        ("empty", Vec::new()),
        ("the first meta page", whole[..4096].to_vec()),
        ("a page of zeros", vec![0; 4096]),
    ]
}

#[test]
fn a_data_file_whose_creation_was_cut_short_becomes_a_new_dict() {
    for (what, bytes) in cut_short_data_files() {
        let dir = common::tempdir();
        std::fs::write(dir.path().join("data.mdb"), &bytes).unwrap();
        let d: PersistDict<String, u8> =
            PersistDict::open(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(d.len().unwrap(), 0, "{what}");
        d.insert("k".into(), 1).unwrap();
        drop(d);
        let d: PersistDict<String, u8> = PersistDict::open(dir.path()).unwrap();
        assert_eq!(d.get("k").unwrap(), Some(1), "{what}");
    }
}

#[test]
fn an_opener_waits_for_a_live_creator_instead_of_giving_up() {
    let dir = common::tempdir();
    std::fs::write(dir.path().join("data.mdb"), b"").unwrap();
    // Another process holds LMDB's lock on the directory, as a creator does, for 600 ms.
    let mut holder = common::LineChild::spawn("child_holds_the_lock", dir.path(), &[]);
    holder.wait_for("locked", std::time::Duration::from_secs(30));
    let start = std::time::Instant::now();
    let d: PersistDict<String, u8> = PersistDict::open(dir.path()).unwrap();
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(300),
        "the opener did not wait: {:?}",
        start.elapsed()
    );
    d.insert("k".into(), 1).unwrap();
    holder.finish();
}

#[test]
#[ignore = "child process of an_opener_waits_for_a_live_creator_instead_of_giving_up"]
fn child_holds_the_lock() {
    use std::os::fd::AsRawFd;
    let Some(dir) = common::child_dir() else {
        return;
    };
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock.mdb"))
        .unwrap();
    // LMDB's liveness lock: a shared lock on the lock file's first byte.
    // SAFETY: `flock` is a plain C struct, valid all zero; `fcntl` gets a pointer to it.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_RDLCK as _;
    range.l_whence = libc::SEEK_SET as _;
    range.l_len = 1;
    assert_eq!(
        unsafe { libc::fcntl(lock.as_raw_fd(), libc::F_SETLK, &range) },
        0
    );
    println!("locked");
    std::thread::sleep(std::time::Duration::from_millis(600));
    drop(lock);
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
fn a_value_of_a_changed_type_is_an_error_naming_key_and_both_types_and_is_kept() {
    let dir = common::tempdir();
    {
        let d: PersistDict<String, V1> = PersistDict::open(dir.path()).unwrap();
        d.insert("doc".into(), V1 { name: "a".into() }).unwrap();
    }
    let d: PersistDict<String, V2> = PersistDict::open(dir.path()).unwrap();
    let err = d.get("doc").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::TypeChanged { .. }), "{err:?}");
    assert!(message.contains("\"doc\""), "{message}");
    assert!(message.contains("V1 { name: string }"), "{message}");
    assert!(
        message.contains("V2 { name: string, tags: [string] }"),
        "{message}"
    );
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
