//! The calls a `HashMap` user reaches for work here too, with borrowed keys.

mod common;

use persistdict::{Error, PersistDict};

type Dict = PersistDict<String, u32>;

fn open(dir: &tempfile::TempDir) -> Dict {
    PersistDict::open(dir.path()).unwrap()
}

#[test]
fn replace_returns_the_value_it_replaces() {
    let dir = common::tempdir();
    let d = open(&dir);
    assert_eq!(d.replace("a".into(), 1).unwrap(), None);
    assert_eq!(d.replace("a".into(), 2).unwrap(), Some(1));
    assert_eq!(d.get("a").unwrap(), Some(2));
}

#[test]
fn replace_over_a_value_of_another_type_is_an_error_and_writes_nothing() {
    let dir = common::tempdir();
    {
        let old: PersistDict<String, String> = PersistDict::open(dir.path()).unwrap();
        old.insert("a".into(), "text".into()).unwrap();
    }
    let d = open(&dir);
    assert!(matches!(
        d.replace("a".into(), 1),
        Err(Error::TypeChanged { .. })
    ));
    // `insert` overwrites it all the same, and `remove` removes it.
    d.insert("a".into(), 1).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
}

#[test]
fn retain_removes_what_the_closure_rejects_and_keeps_the_order() {
    let dir = common::tempdir();
    let d: PersistDict<u32, u32> = PersistDict::open(dir.path()).unwrap();
    // More than one chunk of 1,000.
    d.extend((0..2_500).rev().map(|i| (i, i))).unwrap();
    let removed = d.retain(|k, v| k % 3 == 0 && k == v).unwrap();
    assert_eq!(removed, 2_500 - 834);
    let keys: Vec<u32> = d.keys().map(Result::unwrap).collect();
    let expected: Vec<u32> = (0..2_500).rev().filter(|k| k % 3 == 0).collect();
    assert_eq!(keys, expected);
    assert_eq!(d.len().unwrap(), 834);
}

#[test]
fn retain_sees_values_written_by_another_handle() {
    let dir = common::tempdir();
    let a = open(&dir);
    let b = open(&dir);
    a.insert("x".into(), 1).unwrap();
    assert_eq!(a.get("x").unwrap(), Some(1)); // cached in `a`
    b.insert("x".into(), 2).unwrap();
    a.retain(|_, v| *v != 2).unwrap();
    assert_eq!(a.get("x").unwrap(), None);
    assert_eq!(b.get("x").unwrap(), None);
}

#[test]
fn get_or_try_insert_with_stores_only_a_success() {
    let dir = common::tempdir();
    let d = open(&dir);
    let failed: Result<u32, Error> = d.get_or_try_insert_with("a".into(), || {
        Err(Error::InvalidOption {
            option: "test",
            reason: "failed on purpose".into(),
        })
    });
    assert!(failed.is_err());
    assert!(!d.contains_key("a").unwrap());
    let got: Result<u32, Error> = d.get_or_try_insert_with("a".into(), || Ok(7));
    assert_eq!(got.unwrap(), 7);
    let again: Result<u32, Error> =
        d.get_or_try_insert_with("a".into(), || panic!("not called when there is a value"));
    assert_eq!(again.unwrap(), 7);
}

#[test]
fn a_transaction_updates_takes_extends_and_walks_what_it_sees() {
    let dir = common::tempdir();
    let d = open(&dir);
    d.insert("a".into(), 1).unwrap();
    d.insert("b".into(), 2).unwrap();
    let seen = d
        .transaction(|tx| {
            assert_eq!(tx.update("a", |v| v.map(|v| v + 10))?, Some(11));
            assert_eq!(tx.take("b")?, Some(2));
            tx.extend([("c".to_string(), 3), ("d".to_string(), 4)])?;
            assert_eq!(tx.get_or_insert_with("c".into(), || 99)?, 3);
            assert_eq!(tx.get_or_insert_with("e".into(), || 5)?, 5);
            tx.iter().collect::<persistdict::Result<Vec<_>>>()
        })
        .unwrap();
    let expected = vec![
        ("a".to_string(), 11),
        ("c".to_string(), 3),
        ("d".to_string(), 4),
        ("e".to_string(), 5),
    ];
    assert_eq!(seen, expected);
    assert_eq!(
        d.iter().collect::<persistdict::Result<Vec<_>>>().unwrap(),
        expected
    );
}

#[test]
fn a_failed_transaction_leaves_nothing_of_its_update_and_take() {
    let dir = common::tempdir();
    let d = open(&dir);
    d.insert("a".into(), 1).unwrap();
    let result = d.transaction(|tx| {
        tx.update("a", |_| Some(100))?;
        tx.take("a")?;
        Err::<(), _>(Error::AlreadyInitialized)
    });
    assert!(result.is_err());
    assert_eq!(d.get("a").unwrap(), Some(1));
}

#[test]
fn string_keys_are_looked_up_by_str_everywhere() {
    let dir = common::tempdir();
    let d = open(&dir);
    d.insert("k".into(), 1).unwrap();
    let k: &str = "k";
    assert_eq!(d.get(k).unwrap(), Some(1));
    assert!(d.contains_key(k).unwrap());
    assert!(d.metadata(k).unwrap().is_some());
    assert_eq!(d.update(k, |v| v.map(|v| v + 1)).unwrap(), Some(2));
    d.transaction(|tx| {
        assert_eq!(tx.get(k)?, Some(2));
        assert!(tx.contains_key(k)?);
        tx.update(k, |v| v)?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(d.take(k).unwrap(), Some(2));
    assert!(!d.remove(k).unwrap());
}

#[test]
fn a_transaction_may_return_the_programs_own_error_type() {
    #[derive(Debug)]
    enum AppError {
        Store(#[allow(dead_code)] Error),
        TooLow,
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Store(e)
        }
    }
    let dir = common::tempdir();
    let d = open(&dir);
    d.insert("a".into(), 1).unwrap();
    let result = d.transaction(|tx| {
        tx.insert("a".into(), 2)?;
        if tx.get("a")?.unwrap_or(0) < 5 {
            return Err(AppError::TooLow);
        }
        Ok(())
    });
    assert!(matches!(result, Err(AppError::TooLow)));
    assert_eq!(d.get("a").unwrap(), Some(1));
    let boxed: Result<(), Box<dyn std::error::Error + Send + Sync>> = d.transaction(|tx| {
        tx.insert("b".into(), 3)?;
        Ok(())
    });
    boxed.unwrap();
}
