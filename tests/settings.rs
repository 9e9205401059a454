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
                supported: 1,
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
fn a_second_open_with_another_durability_in_one_process_is_refused() {
    let dir = common::tempdir();
    let _d = PersistDict::<String, u8>::open(dir.path()).unwrap();
    let err = PersistDict::<String, u8>::builder()
        .durability(persistdict::Durability::Eventual)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "durability",
                ..
            }
        ),
        "{err:?}"
    );
}
