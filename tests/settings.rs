//! A dict remembers the settings it was made with and refuses ones that would hide entries.

mod common;

use persistdict::{Error, Json, PersistDict};

#[test]
fn reopening_with_another_key_size_limit_is_refused() {
    let dir = common::tempdir();
    let d: PersistDict<String, u8> = PersistDict::builder()
        .key_size_limit(16)
        .open(dir.path())
        .unwrap();
    d.insert("a".into(), 1).unwrap();
    drop(d);
    let err = PersistDict::<String, u8>::open(dir.path()).unwrap_err();
    let Error::SettingsMismatch {
        setting,
        stored,
        requested,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*setting, stored.as_str(), requested.as_str()),
        ("key_size_limit", "16", "511")
    );
    assert!(
        err.to_string()
            .contains("key_size_limit = 16, but is opened with 511"),
        "{err}"
    );
    // The refusal lost nothing.
    let d: PersistDict<String, u8> = PersistDict::builder()
        .key_size_limit(16)
        .open(dir.path())
        .unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
}

#[test]
fn reopening_with_another_value_codec_is_refused() {
    let dir = common::tempdir();
    PersistDict::<String, u8>::open(dir.path()).unwrap();
    let err = PersistDict::<String, u8>::builder()
        .value_codec(Json)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(&err, Error::SettingsMismatch { setting: "value codec", stored, requested, .. }
            if stored == "postcard" && requested == "json"),
        "{err:?}"
    );
}

#[test]
fn a_dict_from_a_newer_format_is_refused() {
    let dir = common::tempdir();
    drop(PersistDict::<String, u8>::open(dir.path()).unwrap());
    {
        // Rewrite the stored format version as a future one, with heed directly.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .max_dbs(8)
                .open(dir.path())
                .unwrap()
        };
        let wtxn = env.write_txn().unwrap();
        let info = env
            .create_databases_and_commit(wtxn, |o, w| {
                o.create_database::<heed::types::Str, heed::types::Bytes>(w, Some("info"))
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit();
        let mut wtxn = env.write_txn().unwrap();
        info.put(&mut wtxn, "format_version", &99_u32.to_le_bytes())
            .unwrap();
        wtxn.commit().unwrap();
        env.prepare_for_closing().wait();
    }
    let err = PersistDict::<String, u8>::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedFormat {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn out_of_range_options_are_refused_before_touching_disk() {
    let dir = common::tempdir();
    let path = dir.path().join("never");
    for limit in [0, 512] {
        let err = PersistDict::<String, u8>::builder()
            .key_size_limit(limit)
            .open(&path)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidOption {
                    option: "key_size_limit",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert!(!path.exists());
}

#[test]
fn handles_with_different_durability_share_a_directory() {
    let dir = common::tempdir();
    let durable = PersistDict::<String, u8>::open(dir.path()).unwrap();
    let fast = PersistDict::<String, u8>::builder()
        .durability(persistdict::Durability::Eventual)
        .open(dir.path())
        .unwrap();
    durable.insert("durable".into(), 1).unwrap();
    fast.insert("fast".into(), 2).unwrap();
    assert_eq!(durable.get("fast").unwrap(), Some(2));
    assert_eq!(fast.get("durable").unwrap(), Some(1));
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[persistdict::memoize(path = "persistdict-tests/shared-durability")]
fn counted(x: u32) -> u32 {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    x + 1
}

#[test]
fn a_memoized_function_beside_a_durable_dict_on_its_path_stores_its_results() {
    // The dict is `Immediate` (the default), the memo store `Eventual` (its default).
    let path = common::attribute_dir("persistdict-tests/shared-durability");
    let dict = PersistDict::<String, u8>::open(&path).unwrap();
    dict.insert("mine".into(), 1).unwrap();
    counted_memo().clear().unwrap();
    let before = CALLS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!((counted(1), counted(1)), (2, 2));
    assert_eq!(
        CALLS.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "computed once"
    );
    assert!(counted_memo().dict().is_some(), "the memo store opened");
    assert_eq!(dict.get("mine").unwrap(), Some(1));
}

#[test]
fn creating_a_dict_is_one_commit_whatever_its_settings() {
    let dir = common::tempdir();
    let plain: PersistDict<String, u8> = PersistDict::open(dir.path().join("plain")).unwrap();
    let expiring: PersistDict<String, u8> = PersistDict::builder()
        .expire_after(Some(std::time::Duration::from_secs(60)))
        .name("named")
        .open(dir.path().join("expiring"))
        .unwrap();
    for d in [&plain, &expiring] {
        // LMDB counts commits from 0 in a new environment.
        assert_eq!(d.stats().unwrap().last_txn_id, 1);
    }
    drop((plain, expiring));
    let again: PersistDict<String, u8> = PersistDict::open(dir.path().join("plain")).unwrap();
    assert_eq!(
        again.stats().unwrap().last_txn_id,
        1,
        "reopening writes nothing"
    );
}
