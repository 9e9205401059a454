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

#[test]
fn one_worker_per_directory_and_it_exits_when_the_last_handle_drops() {
    let dir = common::tempdir();
    let a: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    let b: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    let c = a.clone();
    assert_eq!(workers(), 1, "handles on one directory share one worker");
    drop(a);
    drop(b);
    assert_eq!(workers(), 1, "a handle is still open");
    drop(c);
    let start = Instant::now();
    while workers() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    // The environment is closed: the directory can be opened again at once.
    let again: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(again.len().unwrap(), 0);
}
