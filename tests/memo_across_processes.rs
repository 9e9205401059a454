//! Identical `#[memoize]` calls in several processes of one machine compute once: the first
//! takes the call's lease, the others wait for its result, and a leader killed mid-call is
//! taken over by one of them.

mod common;

use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use persistdict::memoize;

/// Notes a computation in the file `computations` of the test's directory (shared by the
/// processes of one test).
fn note_computation() {
    let dir = common::child_dir().expect("run as a child, or by a test that sets the directory");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("computations"))
        .unwrap();
    writeln!(file, "{}", std::process::id()).unwrap();
}

fn computations(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("computations")).map_or(0, |s| s.lines().count())
}

#[memoize(path = "persistdict-tests/memo-across-once")]
fn expensive(x: u64) -> u64 {
    note_computation();
    thread::sleep(Duration::from_millis(300));
    x + 1
}

#[test]
fn identical_calls_from_eight_processes_of_four_threads_compute_once() {
    expensive_memo().clear().unwrap();
    let dir = common::tempdir();
    let children: Vec<_> = (0..8)
        .map(|_| common::spawn_child("child_calls_expensive", dir.path(), &[]))
        .collect();
    for child in children {
        let out = common::finish_child(child);
        assert!(out.contains("got 42"), "{out}");
    }
    assert_eq!(computations(dir.path()), 1, "8 processes x 4 threads");
    println!("8 processes x 4 threads calling one key: computed once");
}

#[test]
#[ignore = "child process of identical_calls_from_eight_processes_of_four_threads_compute_once"]
fn child_calls_expensive() {
    if common::child_dir().is_none() {
        return;
    }
    let threads: Vec<_> = (0..4).map(|_| thread::spawn(|| expensive(41))).collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 42);
    }
    println!("got 42");
}

#[memoize(path = "persistdict-tests/memo-across-stall")]
fn stalls(x: u64) -> u64 {
    note_computation();
    println!("computing");
    std::io::stdout().flush().unwrap();
    let dir = common::child_dir().unwrap();
    // The first leader stalls until it is killed; the one that takes over doesn't.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("fast").exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    x * 3
}

#[test]
fn a_leader_killed_mid_call_is_taken_over_by_exactly_one_waiter() {
    stalls_memo().clear().unwrap();
    let dir = common::tempdir();
    let mut leader = common::LineChild::spawn("child_calls_stalls", dir.path(), &[]);
    leader.wait_for("computing", Duration::from_secs(20));
    let mut waiters: Vec<_> = (0..3)
        .map(|_| common::LineChild::spawn("child_calls_stalls", dir.path(), &[]))
        .collect();
    for waiter in &mut waiters {
        waiter.wait_for("calling", Duration::from_secs(20));
    }
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        computations(dir.path()),
        1,
        "the others wait for the leader"
    );
    std::fs::write(dir.path().join("fast"), b"").unwrap();
    let started = Instant::now();
    leader.kill();
    for waiter in waiters {
        let lines = waiter.finish();
        assert!(lines.iter().any(|l| l.contains("got 15")), "{lines:?}");
    }
    let took = started.elapsed();
    assert_eq!(
        computations(dir.path()),
        2,
        "the killed leader and one waiter"
    );
    assert!(took < Duration::from_secs(20), "took over after {took:?}");
    println!("leader killed with SIGKILL: one of 3 waiters took over after {took:?}");
}

#[test]
#[ignore = "child process of a_leader_killed_mid_call_is_taken_over_by_exactly_one_waiter"]
fn child_calls_stalls() {
    if common::child_dir().is_none() {
        return;
    }
    println!("calling");
    std::io::stdout().flush().unwrap();
    println!("got {}", stalls(5));
}

#[memoize(path = "persistdict-tests/memo-across-async")]
async fn fetched(x: u64) -> u64 {
    note_computation();
    thread::sleep(Duration::from_millis(300));
    x * 10
}

#[test]
fn identical_async_calls_from_four_processes_compute_once() {
    fetched_memo().clear().unwrap();
    let dir = common::tempdir();
    let children: Vec<_> = (0..4)
        .map(|_| common::spawn_child("child_awaits_fetched", dir.path(), &[]))
        .collect();
    for child in children {
        let out = common::finish_child(child);
        assert!(out.contains("got 70"), "{out}");
    }
    assert_eq!(computations(dir.path()), 1, "4 processes, async");
}

#[test]
#[ignore = "child process of identical_async_calls_from_four_processes_compute_once"]
fn child_awaits_fetched() {
    if common::child_dir().is_none() {
        return;
    }
    let calls = (0..4).map(|_| fetched(7));
    let results = futures::executor::block_on(futures::future::join_all(calls));
    assert_eq!(results, [70; 4]);
    println!("got 70");
}

#[memoize(path = "persistdict-tests/memo-across-failing")]
fn failing(x: u64) -> Result<u64, String> {
    note_computation();
    thread::sleep(Duration::from_millis(200));
    Err(format!("no {x}"))
}

#[test]
fn a_result_that_is_not_stored_lets_the_next_process_compute() {
    failing_memo().clear().unwrap();
    let dir = common::tempdir();
    let started = Instant::now();
    let children: Vec<_> = (0..3)
        .map(|_| common::spawn_child("child_calls_failing", dir.path(), &[]))
        .collect();
    for child in children {
        let out = common::finish_child(child);
        assert!(out.contains("got no 3"), "{out}");
    }
    // Each computed in turn, none waited out the bound.
    assert_eq!(computations(dir.path()), 3);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
#[ignore = "child process of a_result_that_is_not_stored_lets_the_next_process_compute"]
fn child_calls_failing() {
    if common::child_dir().is_none() {
        return;
    }
    println!("got {}", failing(3).unwrap_err());
}
