//! A full disk, a missing permission or too little address space is a typed error that names
//! the path and the remedy, never a crash; and every error's message includes its cause.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use persistdict::{Durability, Error, PersistDict};

/// A tmpfs of `kib` KiB mounted on a fresh directory, unmounted when dropped; `None` (with the
/// reason printed) where this machine can't mount one.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u32) -> Option<SmallDisk> {
        let dir = common::tempdir();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => skip(&String::from_utf8_lossy(&out.stderr)),
            Err(e) => skip(&e.to_string()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk up, leaving about `spare` bytes free.
    fn fill(&self, spare: u64) {
        let free = free_bytes(self.path());
        let filler = vec![0xAA_u8; free.saturating_sub(spare) as usize];
        // A short write on a full disk is what we want here.
        let _ = std::fs::write(self.path().join("filler"), filler);
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn skip(reason: &str) -> Option<SmallDisk> {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must be able to mount a tmpfs for the full-disk tests: {reason}"
    );
    println!(
        "skipped: cannot mount a small tmpfs here ({})",
        reason.trim()
    );
    None
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// Runs the child entry point `name` on `dir` and returns its output; a child killed by a
/// signal (SIGBUS) fails the test.
fn run_child(name: &str, dir: &Path) -> String {
    common::finish_child(common::spawn_child(name, dir, &[]))
}

#[test]
fn creating_a_dict_on_a_full_disk_is_an_error_and_not_a_crash() {
    let Some(disk) = SmallDisk::mount(256) else {
        return;
    };
    disk.fill(0);
    let out = run_child("child_creates_a_dict", disk.path());
    assert!(out.contains("no space: ok"), "{out}");
}

#[test]
#[ignore = "child process of creating_a_dict_on_a_full_disk_is_an_error_and_not_a_crash"]
fn child_creates_a_dict() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let path = dir.join("dict");
    let err = PersistDict::<String, u32>::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::NoSpace { path: p } if p.starts_with(&dir)),
        "{err:?}"
    );
    assert!(err.to_string().contains("free some space"), "{err}");
    println!("no space: ok");
}

#[test]
fn a_memoized_function_on_a_full_disk_runs_and_returns() {
    let Some(disk) = SmallDisk::mount(256) else {
        return;
    };
    disk.fill(0);
    let base = disk.path().display().to_string();
    let child = common::spawn_child(
        "child_memoizes_on_a_full_disk",
        disk.path(),
        &[("PERSISTDICT_DIR", base)],
    );
    let out = common::finish_child(child);
    assert!(out.contains("memoized: 42"), "{out}");
    assert!(out.contains("store opened: false"), "{out}");
}

#[test]
#[ignore = "child process of a_memoized_function_on_a_full_disk_runs_and_returns"]
fn child_memoizes_on_a_full_disk() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    #[persistdict::memoize(path = "memo")]
    fn answer(x: u32) -> u32 {
        x * 2
    }
    println!("memoized: {}", answer(21));
    // `PERSISTDICT_DIR` put the store on the full disk, where it could not be created.
    println!("store opened: {}", answer_memo().dict().is_some());
    assert!(!std::fs::exists(dir.join("memo")).unwrap());
}

#[test]
fn a_write_that_fills_the_disk_is_a_no_space_error_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount(1024) else {
        return;
    };
    let path = disk.path().join("dict");
    let d: PersistDict<u32, Vec<u8>> = PersistDict::builder()
        .durability(Durability::Eventual)
        .open(&path)
        .unwrap();
    disk.fill(96 << 10);
    let mut stored = 0;
    let err = loop {
        match d.insert(stored, vec![7; 8 << 10]) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1_000, "the disk never filled up");
    };
    assert!(matches!(&err, Error::NoSpace { .. }), "{err:?}");
    assert!(err.to_string().contains("free some space"), "{err}");
    for i in 0..stored {
        assert_eq!(
            d.get(&i).unwrap().map(|v| v.len()),
            Some(8 << 10),
            "entry {i}"
        );
    }
    assert_eq!(d.len().unwrap(), u64::from(stored));
}

#[test]
fn a_map_larger_than_the_address_space_says_to_lower_map_size() {
    let dir = common::tempdir();
    let err = PersistDict::<String, u32>::builder()
        .map_size(1 << 60)
        .open(dir.path())
        .unwrap_err();
    assert!(matches!(&err, Error::AddressSpace { .. }), "{err:?}");
    assert!(err.to_string().contains("map_size"), "{err}");
}

#[test]
fn a_dict_the_process_may_not_write_is_a_permission_error_naming_the_path() {
    let dir = common::tempdir();
    let path = dir.path().join("dict");
    PersistDict::<String, u32>::open(&path)
        .unwrap()
        .insert("k".into(), 1)
        .unwrap();
    if common::is_root() {
        // Root may write anything: the check runs in a child that gives up root.
        make_readable_by_all(dir.path());
        let out = run_child("child_opens_as_nobody", &path);
        assert!(out.contains("permission: ok"), "{out}");
    } else {
        common::set_mode(&path, 0o555);
        for file in ["data.mdb", "lock.mdb"] {
            common::set_mode(&path.join(file), 0o444);
        }
        expect_permission_error(&path);
    }
}

#[test]
#[ignore = "child process of a_dict_the_process_may_not_write_is_a_permission_error_naming_the_path"]
fn child_opens_as_nobody() {
    let Some(path) = common::child_dir() else {
        return;
    };
    common::become_nobody();
    expect_permission_error(&path);
    println!("permission: ok");
}

fn expect_permission_error(path: &Path) {
    let err = PersistDict::<String, u32>::open(path).unwrap_err();
    assert!(
        matches!(&err, Error::PermissionDenied { path: p, .. } if p == path),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("read_only"), "{message}");
}

/// Directories 0755 and files 0644 from `dir` down, as a shipped dict owned by another user.
fn make_readable_by_all(dir: &Path) {
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            common::set_mode(&p, 0o755);
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            common::set_mode(&p, 0o644);
        }
    }
}

#[test]
fn every_error_message_includes_its_cause() {
    let dir = common::tempdir();
    let data = dir.path().join("data.mdb");
    std::fs::write(&data, b"not lmdb".repeat(2_000)).unwrap();
    let err = PersistDict::<String, u8>::open(dir.path()).unwrap_err();
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(err.to_string().contains(&cause), "{err} / {cause}");

    let dir = common::tempdir();
    {
        let d: PersistDict<String, String> = PersistDict::open(dir.path()).unwrap();
        d.insert("doc".into(), "text".into()).unwrap();
    }
    // A changed type has no cause beneath it: its message names both types.
    let d: PersistDict<String, u64> = PersistDict::open(dir.path()).unwrap();
    let err = d.get("doc").unwrap_err().to_string();
    assert!(err.contains("`string`") && err.contains("`u64`"), "{err}");
}

#[test]
fn an_error_names_a_key_as_the_program_wrote_it() {
    let dir = common::tempdir();
    {
        let d: PersistDict<String, String> = PersistDict::open(dir.path()).unwrap();
        d.insert("alpha".into(), "text".into()).unwrap();
        let e: PersistDict<(u32, String), String> =
            PersistDict::open(dir.path().join("pairs")).unwrap();
        e.insert((7, "beta".into()), "text".into()).unwrap();
    }
    let d: PersistDict<String, u64> = PersistDict::open(dir.path()).unwrap();
    let message = d.get("alpha").unwrap_err().to_string();
    assert!(message.contains("\"alpha\""), "{message}");
    assert!(!message.contains("\\x05"), "{message}");
    let e: PersistDict<(u32, String), u64> = PersistDict::open(dir.path().join("pairs")).unwrap();
    let message = e.get(&(7, "beta".to_string())).unwrap_err().to_string();
    assert!(message.contains("(7, \"beta\")"), "{message}");
}
