//! A process that forks while it uses dicts: the child's inherited handles refuse to work
//! (LMDB forbids using an environment across `fork()`), dropping them is harmless, opening the
//! dict again in the child works, and the parent's dict stays whole.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use persistdict::{Error, PersistDict};

const ROUNDS: u32 = 100;
const KEYS: u32 = 1_000;
/// Keys the children write, one per round, above the parent's.
const CHILD_KEYS: u32 = 1_000_000;

type Dict = PersistDict<u32, u64>;

fn open(path: &std::path::Path) -> Dict {
    PersistDict::builder()
        .flush_interval(Duration::from_millis(2))
        .open(path)
        .unwrap()
}

#[test]
fn a_child_process_refuses_inherited_handles_and_opens_its_own() {
    let dir = common::tempdir();
    let shared_path = dir.path().join("shared");
    let own_path = dir.path().join("own");
    let shared = open(&shared_path);
    shared.extend((0..KEYS).map(|k| (k, 0))).unwrap();
    // Held by this thread alone, so that a child holds its last reference.
    let mut own = Some(open(&own_path));
    own.as_ref().unwrap().insert(1, 1).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2_u64)
        .map(|t| {
            let (d, stop) = (shared.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = t;
                let mut increments = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let k = (i >> 33) as u32 % KEYS;
                    d.get(&k).unwrap();
                    if i % 4 == 0 {
                        d.update(&k, |v| v.map(|v| v + 1)).unwrap();
                        increments += 1;
                    }
                }
                increments
            })
        })
        .collect();

    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        // Drop `own` in the children of even rounds; keep it in odd ones.
        let drop_own = round % 2 == 0;
        // SAFETY: the child only runs `child` and then `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child(round, &shared, &mut own, drop_own, &shared_path, &own_path);
            })) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failures.push((round, status));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let increments: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        failures.is_empty(),
        "children failed (round, wait status): {failures:?}"
    );

    // The parent's handles kept working, and the dict is whole.
    let total: u64 = (0..KEYS).map(|k| shared.get(&k).unwrap().unwrap()).sum();
    assert_eq!(
        total, increments,
        "every increment of the parent's threads is there"
    );
    for round in 0..ROUNDS {
        assert_eq!(
            shared.get(&(CHILD_KEYS + round)).unwrap(),
            Some(u64::from(round))
        );
    }
    let report = shared.check_integrity().unwrap();
    assert_eq!((report.repaired, report.quarantined), (0, 0), "{report:?}");
    assert!(report.undecodable.is_empty());
    assert_eq!(own.as_ref().unwrap().get(&1).unwrap(), Some(1));
    println!(
        "{ROUNDS} forks while 2 threads read and updated ({increments} increments): the dict is whole"
    );
}

/// What a child checks; a failed check panics, and the child exits with 1.
fn child(
    round: u32,
    shared: &Dict,
    own: &mut Option<Dict>,
    drop_own: bool,
    shared_path: &std::path::Path,
    own_path: &std::path::Path,
) {
    let forked = |r: Result<(), Error>| matches!(r, Err(Error::Forked { .. }));
    assert!(
        forked(shared.get(&1).map(drop)),
        "get on an inherited handle"
    );
    assert!(forked(shared.insert(1, 9)), "insert on an inherited handle");
    assert!(forked(shared.len().map(drop)), "len on an inherited handle");
    assert!(forked(shared.contains_key(&1).map(drop)));
    assert!(forked(shared.flush()), "flush on an inherited handle");
    assert!(
        matches!(shared.iter().next(), Some(Err(Error::Forked { .. }))),
        "iteration of an inherited handle"
    );
    if drop_own {
        // The last reference: its worker belongs to the parent and its environment too.
        drop(own.take());
    }
    // Opened again in the child, the same dicts work, here as in any other process.
    let mine = open(shared_path);
    mine.insert(CHILD_KEYS + round, u64::from(round)).unwrap();
    assert_eq!(
        mine.get(&(CHILD_KEYS + round)).unwrap(),
        Some(u64::from(round))
    );
    let again = open(own_path);
    assert_eq!(again.get(&1).unwrap(), Some(1));
}
