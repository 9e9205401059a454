//! The background worker's lifetime follows the handles. This binary holds one test only, so
//! no other test's worker is counted.

mod common;

use std::time::{Duration, Instant};

use persistdict::PersistDict;

fn workers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "persistdict-bg")
        .count()
}

/// Waits up to 5 s for `count` workers (a new thread names itself shortly after it starts).
fn wait_for_workers(count: usize) {
    let start = Instant::now();
    while workers() != count {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} workers, expected {count}",
            workers()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn one_worker_per_directory_and_it_exits_when_the_last_handle_drops() {
    let dir = common::tempdir();
    let a: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    let b: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    let c = a.clone();
    wait_for_workers(1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(workers(), 1, "handles on one directory share one worker");
    drop(a);
    drop(b);
    assert_eq!(workers(), 1, "a handle is still open");
    drop(c);
    // Dropping the last handle joins the worker: it is gone when `drop` returns.
    assert_eq!(workers(), 0);
    // The environment is closed: the directory can be opened again at once.
    let again: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(again.len().unwrap(), 0);
}
