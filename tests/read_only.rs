//! A dict opened read-only reads and iterates, refuses writes with a typed error, and changes
//! no file; it opens where the process may not write (a shipped dict, another user's).

mod common;

use std::path::Path;

use persistdict::{Error, PersistDict};

type Dict = PersistDict<String, u32>;

fn fill(path: &Path) {
    let d: Dict = PersistDict::open(path).unwrap();
    d.extend((0..100).map(|i| (format!("k{i}"), i))).unwrap();
}

fn open_read_only(path: &Path) -> Dict {
    PersistDict::builder().read_only().open(path).unwrap()
}

#[test]
fn a_read_only_dict_reads_and_iterates_and_refuses_writes() {
    let dir = common::tempdir();
    fill(dir.path());
    let data = dir.path().join("data.mdb");
    let before = std::fs::read(&data).unwrap();
    let d = open_read_only(dir.path());
    assert_eq!(d.get("k7").unwrap(), Some(7));
    assert_eq!(d.len().unwrap(), 100);
    assert_eq!(d.iter().count(), 100);
    assert!(d.metadata("k7").unwrap().is_some());
    for (what, result) in [
        ("insert", d.insert("new".into(), 1)),
        ("remove", d.remove("k1").map(drop)),
        ("update", d.update("k1", |v| v).map(drop)),
        ("clear", d.clear()),
        ("extend", d.extend([("x".to_string(), 1)])),
    ] {
        assert!(
            matches!(&result, Err(Error::ReadOnly { .. })),
            "{what}: {result:?}"
        );
    }
    assert!(matches!(d.check_integrity(), Err(Error::ReadOnly { .. })));
    d.flush().unwrap();
    drop(d);
    assert_eq!(
        std::fs::read(&data).unwrap(),
        before,
        "the data file is untouched"
    );
}

#[test]
fn a_read_only_open_of_a_missing_dict_creates_nothing() {
    let dir = common::tempdir();
    let path = dir.path().join("none");
    let err = PersistDict::<String, u32>::builder()
        .read_only()
        .open(&path)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(!path.exists());
}

#[test]
fn a_read_only_dict_sees_what_a_writer_commits_later() {
    let dir = common::tempdir();
    fill(dir.path());
    let reader = open_read_only(dir.path());
    let writer: Dict = PersistDict::open(dir.path()).unwrap();
    assert_eq!(reader.get("k1").unwrap(), Some(1));
    writer.insert("k1".into(), 100).unwrap();
    assert_eq!(reader.get("k1").unwrap(), Some(100));
}

#[test]
fn a_dict_the_process_may_not_write_opens_read_only() {
    let dir = common::tempdir();
    let path = dir.path().join("shipped");
    fill(&path);
    if common::is_root() {
        // Root reads and writes anything: the check runs in a child that gives up root.
        for p in [dir.path(), &path] {
            common::set_mode(p, 0o755);
        }
        for f in ["data.mdb", "lock.mdb"] {
            common::set_mode(&path.join(f), 0o644);
        }
        let out = common::finish_child(common::spawn_child("child_reads_as_nobody", &path, &[]));
        assert!(out.contains("read: 100"), "{out}");
    } else {
        for f in ["data.mdb", "lock.mdb"] {
            common::set_mode(&path.join(f), 0o444);
        }
        common::set_mode(&path, 0o555);
        assert_eq!(open_read_only(&path).len().unwrap(), 100);
    }
}

#[test]
#[ignore = "child process of a_dict_the_process_may_not_write_opens_read_only"]
fn child_reads_as_nobody() {
    let Some(path) = common::child_dir() else {
        return;
    };
    common::become_nobody();
    let d = open_read_only(&path);
    assert_eq!(d.get("k99").unwrap(), Some(99));
    println!("read: {}", d.iter().count());
}
