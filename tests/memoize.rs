//! `#[memoize]`: keys, what is stored, single-flight, sharing across processes, async,
//! failures of the cache.
//!
//! Each test uses its own function and directory under `persistdict-tests/` (in `$PERSISTDICT_DIR`), and clears
//! the function's results first, so reruns start from nothing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use persistdict::{Durability, PersistDict, memoize};

static SQUARES: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-square")]
fn square(x: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[test]
fn each_distinct_argument_is_computed_once() {
    square_memo().clear().unwrap();
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(square(4), 16);
    assert_eq!(square(4), 16);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 2);
    // The companion reaches the very dict (and cache) the function uses.
    let stats = square_memo().dict().unwrap().stats().unwrap();
    assert_eq!((stats.len, stats.hits), (2, 2), "{stats:?}");
    assert!(square_invalidate(3).unwrap());
    assert!(!square_invalidate(3).unwrap());
    assert_eq!(square(3), 9);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 3);
    assert_eq!(square_memo().clear().unwrap(), 2);
}

static JOINS: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-join")]
fn join(words: &[&str], sep: &str) -> String {
    JOINS.fetch_add(1, Ordering::SeqCst);
    words.join(sep)
}

#[test]
fn borrowed_arguments_are_keys_and_never_share_an_entry() {
    join_memo().clear().unwrap();
    assert_eq!(join(&["a", "b"], "-"), "a-b");
    assert_eq!(join(&["a", "b"], "+"), "a+b");
    assert_eq!(join(&["a-b"], ""), "a-b");
    assert_eq!(join(&["a", "b"], "-"), "a-b");
    let owned = vec!["a", "b"];
    assert_eq!(join(&owned, &String::from("-")), "a-b");
    assert_eq!(JOINS.load(Ordering::SeqCst), 3);
    let long = "x".repeat(2000);
    assert_eq!(join(&[&long], ""), long);
    assert_eq!(join(&[&long], ""), long);
    assert_eq!(JOINS.load(Ordering::SeqCst), 4);
}

static PARSES: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-parse")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    PARSES.fetch_add(1, Ordering::SeqCst);
    text.parse()
}

#[test]
fn only_ok_results_are_stored() {
    parse_memo().clear().unwrap();
    assert_eq!(parse("12"), Ok(12));
    assert_eq!(parse("12"), Ok(12));
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(PARSES.load(Ordering::SeqCst), 3);
}

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-lookup")]
fn lookup(id: u32) -> Option<String> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    id.is_multiple_of(2).then(|| format!("even {id}"))
}

#[test]
fn only_some_results_are_stored() {
    lookup_memo().clear().unwrap();
    for _ in 0..2 {
        assert_eq!(lookup(2).as_deref(), Some("even 2"));
        assert_eq!(lookup(3), None);
    }
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 3);
}

static CHECKS: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-check", store_all = true)]
fn check(n: i32) -> Result<i32, String> {
    CHECKS.fetch_add(1, Ordering::SeqCst);
    if n < 0 {
        Err(format!("{n} < 0"))
    } else {
        Ok(n)
    }
}

#[test]
fn store_all_stores_errors_too() {
    check_memo().clear().unwrap();
    assert_eq!(check(-1), Err("-1 < 0".into()));
    assert_eq!(check(-1), Err("-1 < 0".into()));
    assert_eq!(CHECKS.load(Ordering::SeqCst), 1);
}

static FETCHES: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-fetch", ignore(verbose))]
fn fetch(url: &str, verbose: bool) -> usize {
    FETCHES.fetch_add(1, Ordering::SeqCst);
    if verbose {
        println!("fetching {url}");
    }
    url.len()
}

#[test]
fn ignored_arguments_are_not_part_of_the_key() {
    fetch_memo().clear().unwrap();
    assert_eq!(fetch("abc", true), 3);
    assert_eq!(fetch("abc", false), 3);
    assert_eq!(FETCHES.load(Ordering::SeqCst), 1);
    assert!(fetch_invalidate("abc").unwrap());
}

static SLOW: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-slow")]
fn slow(x: u32) -> u32 {
    SLOW.fetch_add(1, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(200));
    x + 1
}

#[test]
fn concurrent_identical_calls_compute_once() {
    slow_memo().clear().unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                slow(41)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 42);
    }
    assert_eq!(SLOW.load(Ordering::SeqCst), 1);
}

static FLAKY: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-flaky")]
fn flaky(x: u32) -> Result<u32, String> {
    let n = FLAKY.fetch_add(1, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(50));
    if n == 0 {
        Err("first call fails".into())
    } else {
        Ok(x)
    }
}

#[test]
fn callers_waiting_on_a_failed_call_compute_for_themselves() {
    flaky_memo().clear().unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                flaky(7)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert_eq!(results.iter().filter(|r| **r == Ok(7)).count(), 3);
    // The failure was not stored; the first success was, and the rest read it.
    assert_eq!(FLAKY.load(Ordering::SeqCst), 2);
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-panics")]
fn panics_once(x: u32) -> u32 {
    assert!(
        PANICS.fetch_add(1, Ordering::SeqCst) > 0,
        "first call panics"
    );
    x
}

#[test]
fn a_panicking_call_leaves_nothing_behind() {
    panics_once_memo().clear().unwrap();
    assert!(std::panic::catch_unwind(|| panics_once(5)).is_err());
    assert_eq!(panics_once(5), 5);
    assert_eq!(panics_once(5), 5);
    assert_eq!(PANICS.load(Ordering::SeqCst), 2);
}

static STALE: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-stale")]
fn stale(x: u32) -> u64 {
    STALE.fetch_add(1, Ordering::SeqCst);
    u64::from(x) * 10
}

#[test]
fn a_stored_value_that_no_longer_decodes_is_a_miss_and_is_overwritten() {
    // The whole directory: its only key must be this version's result.
    stale_memo().dict().unwrap().clear().unwrap();
    assert_eq!(stale(1), 10);
    let dict = stale_memo().dict().unwrap();
    let key = dict.keys().next().unwrap().unwrap();
    // Another return type under the same key, as after a change with
    // `invalidate_on_change = false`.
    let other: PersistDict<Vec<u8>, String> = PersistDict::builder()
        .durability(Durability::Eventual)
        .open(dict.path())
        .unwrap();
    other.insert(key.clone(), "not a number".into()).unwrap();
    assert_eq!(stale(1), 10);
    assert_eq!(stale(1), 10);
    assert_eq!(STALE.load(Ordering::SeqCst), 2);
    assert_eq!(dict.get(&key[..]).unwrap(), Some(10));
}

static SIGNED: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-signed")]
fn unsigned(x: u32) -> u64 {
    SIGNED.fetch_add(1, Ordering::SeqCst);
    u64::from(x) * 10
}

#[test]
fn a_result_stored_as_another_type_of_the_same_bytes_is_recomputed_not_misread() {
    unsigned_memo().dict().unwrap().clear().unwrap();
    assert_eq!(unsigned(1), 10);
    let dict = unsigned_memo().dict().unwrap();
    let key = dict.keys().next().unwrap().unwrap();
    // An `i64` of -5 has bytes a `u64` would read as 9.
    let other: PersistDict<Vec<u8>, i64> = PersistDict::builder()
        .durability(Durability::Eventual)
        .open(dict.path())
        .unwrap();
    other.insert(key.clone(), -5).unwrap();
    assert_eq!(unsigned(1), 10);
    assert_eq!(SIGNED.load(Ordering::SeqCst), 2);
}

static UNCACHED: AtomicUsize = AtomicUsize::new(0);

// `/dev/null` is not a directory, so no directory can be made under it.
#[memoize(path = "/dev/null/memo")]
fn uncached(x: u32) -> u32 {
    UNCACHED.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[test]
fn a_store_that_cannot_be_opened_still_runs_the_function() {
    assert_eq!(uncached(2), 4);
    assert_eq!(uncached(2), 4);
    assert_eq!(UNCACHED.load(Ordering::SeqCst), 2);
    assert!(uncached_memo().dict().is_none());
    assert!(!uncached_invalidate(2).unwrap());
    assert_eq!(uncached_memo().clear().unwrap(), 0);
}

struct Model {
    calls: AtomicUsize,
}

impl Model {
    #[memoize(path = "persistdict-tests/memo-method", ignore(self))]
    fn embed(&self, text: &str) -> Vec<f32> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        text.bytes().map(f32::from).collect()
    }

    #[memoize(path = "persistdict-tests/memo-method")]
    fn tokens(text: &str) -> usize {
        text.split_whitespace().count()
    }
}

#[test]
fn methods_and_associated_functions_are_memoized() {
    Model::embed_memo().clear().unwrap();
    let model = Model {
        calls: AtomicUsize::new(0),
    };
    assert_eq!(model.embed("ab"), [97.0, 98.0]);
    assert_eq!(model.embed("ab"), [97.0, 98.0]);
    assert_eq!(model.calls.load(Ordering::SeqCst), 1);
    assert_eq!(Model::tokens("a b c"), 3);
    assert!(Model::tokens_invalidate("a b c").unwrap());
    // Two functions in one directory: clearing one leaves the other.
    assert_eq!(Model::tokens("a b"), 2);
    assert_eq!(Model::embed_memo().clear().unwrap(), 1);
    assert_eq!(Model::tokens_memo().clear().unwrap(), 1);
}

static ASYNC_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Yields to the executor once.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[memoize(path = "persistdict-tests/memo-async")]
async fn fetch_async(id: u32) -> Result<String, String> {
    ASYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    for _ in 0..10 {
        yield_now().await;
    }
    Ok(format!("item {id}"))
}

#[test]
fn async_calls_wait_for_an_identical_call_without_blocking_the_thread() {
    fetch_async_memo().clear().unwrap();
    // Eight identical calls on one thread: had a waiter blocked the thread, the leader could
    // never finish.
    let results =
        futures::executor::block_on(futures::future::join_all((0..8).map(|_| fetch_async(1))));
    assert!(results.iter().all(|r| r.as_deref() == Ok("item 1")));
    assert_eq!(ASYNC_CALLS.load(Ordering::SeqCst), 1);
    let again = futures::executor::block_on(fetch_async(1));
    assert_eq!(again.as_deref(), Ok("item 1"));
    assert_eq!(ASYNC_CALLS.load(Ordering::SeqCst), 1);
}

static SHARED: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-shared")]
fn shared(x: u32) -> String {
    SHARED.fetch_add(1, Ordering::SeqCst);
    format!("computed {x} in {}", std::process::id())
}

#[test]
fn a_result_computed_in_one_process_is_a_hit_in_another() {
    shared_memo().clear().unwrap();
    let child = common::spawn_child("child_calls_shared", std::path::Path::new("."), &[]);
    let from_child = common::finish_child(child);
    let from_child = from_child
        .lines()
        .find_map(|l| l.split_once("result: ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("the child printed no result:\n{from_child}"))
        .to_owned();
    assert_eq!(shared(7), from_child);
    assert_eq!(SHARED.load(Ordering::SeqCst), 0);
}

#[test]
#[ignore = "child process of a_result_computed_in_one_process_is_a_hit_in_another"]
fn child_calls_shared() {
    if common::child_dir().is_none() {
        return;
    }
    println!("result: {}", shared(7));
    assert_eq!(SHARED.load(Ordering::SeqCst), 1);
}

static CUBES: AtomicUsize = AtomicUsize::new(0);

#[memoize(path = "persistdict-tests/memo-cubes")]
fn cube(x: u64) -> u64 {
    CUBES.fetch_add(1, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(1));
    x * x * x
}

const CUBE_ARGS: u64 = 200;

#[test]
fn four_processes_calling_at_once_each_get_the_right_results() {
    cube_memo().clear().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| common::spawn_child("child_calls_cube", std::path::Path::new("."), &[]))
        .collect();
    let mut computed = 0;
    for child in children {
        let out = common::finish_child(child);
        computed += out
            .lines()
            .find_map(|l| {
                l.split_once("computed ")
                    .map(|(_, n)| n.parse::<usize>().unwrap())
            })
            .expect("the child printed its count");
    }
    // Every argument was computed at least once, and no process computed one twice.
    assert!((CUBE_ARGS as usize..=4 * CUBE_ARGS as usize).contains(&computed));
    for x in 0..CUBE_ARGS {
        assert_eq!(cube(x), x * x * x);
    }
    assert_eq!(
        CUBES.load(Ordering::SeqCst),
        0,
        "the parent found every result stored"
    );
    println!("4 processes x {CUBE_ARGS} calls: {computed} computations in all, every result right");
}

#[test]
#[ignore = "child process of four_processes_calling_at_once_each_get_the_right_results"]
fn child_calls_cube() {
    if common::child_dir().is_none() {
        return;
    }
    // Each process walks the arguments from another starting point, so that they overlap.
    let start = u64::from(std::process::id()) % CUBE_ARGS;
    for i in 0..CUBE_ARGS {
        let x = (start + i) % CUBE_ARGS;
        assert_eq!(cube(x), x * x * x);
    }
    for x in 0..CUBE_ARGS {
        assert_eq!(cube(x), x * x * x);
    }
    let computed = CUBES.load(Ordering::SeqCst);
    assert!(computed <= CUBE_ARGS as usize, "computed {computed}");
    println!("computed {computed}");
}

/// Runs `f` on a thread and fails the test if it has not returned within 20 s (a hang).
fn returns_in_time<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(f()));
    receive
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} did not return: it waits for itself"))
}

#[memoize(path = "persistdict-tests/memo-reentry", ignore(depth))]
fn retried(x: u64, depth: u32) -> u64 {
    // A retry that reaches the same call again: `depth` is not part of the key.
    if depth < 2 {
        retried(x, depth + 1) + 1
    } else {
        x
    }
}

#[test]
fn a_memoized_function_that_calls_itself_with_the_same_key_returns() {
    retried_memo().clear().unwrap();
    assert_eq!(returns_in_time("sync recursion", || retried(10, 0)), 12);
    assert_eq!(retried(10, 0), 12, "the outermost result is stored");
}

#[memoize(path = "persistdict-tests/memo-reentry-async", ignore(depth))]
async fn retried_async(x: u64, depth: u32) -> u64 {
    if depth < 2 {
        Box::pin(retried_async(x, depth + 1)).await + 1
    } else {
        x
    }
}

#[test]
fn an_async_memoized_function_that_awaits_itself_with_the_same_key_returns() {
    retried_async_memo().clear().unwrap();
    let out = returns_in_time("async recursion", || {
        futures::executor::block_on(retried_async(20, 0))
    });
    assert_eq!(out, 22);
}

#[memoize(path = "persistdict-tests/memo-cycle", ignore(hop))]
fn ping(n: u32, hop: u32) -> u32 {
    if hop == 0 { pong(n) + 1 } else { n }
}

#[memoize(path = "persistdict-tests/memo-cycle")]
fn pong(n: u32) -> u32 {
    // Back to `ping` with the same key (`hop` is left out of it): a cycle a -> b -> a.
    ping(n, 1) * 10
}

#[test]
fn memoized_functions_that_call_each_other_in_a_cycle_return() {
    ping_memo().clear().unwrap();
    pong_memo().clear().unwrap();
    assert_eq!(returns_in_time("a two-function cycle", || ping(5, 0)), 51);
    assert_eq!(pong(5), 50);
}

#[memoize(path = "persistdict-tests/memo-daily")]
fn daily(x: u32) -> u32 {
    x + 1
}

/// The stored access time of `daily`'s only result.
fn daily_accessed() -> std::time::SystemTime {
    let dict = daily_memo().dict().unwrap();
    let key = dict.keys().next().unwrap().unwrap();
    dict.metadata(&key).unwrap().unwrap().accessed
}

#[test]
fn a_hit_in_a_process_that_then_exits_is_stored() {
    // The whole directory: its only key must be this version's result.
    daily_memo().dict().unwrap().clear().unwrap();
    assert_eq!(daily(1), 2);
    daily_memo().dict().unwrap().flush().unwrap();
    let before = daily_accessed();
    thread::sleep(Duration::from_millis(50));
    // A short process: one hit, then a normal exit, long before any periodic flush.
    let out = common::finish_child(common::spawn_child(
        "child_hits_daily_once",
        std::path::Path::new("."),
        &[],
    ));
    assert!(out.contains("hit: 2"), "{out}");
    let after = daily_accessed();
    assert!(
        after > before,
        "the child's access was not stored: {before:?} -> {after:?}"
    );
}

#[test]
#[ignore = "child process of a_hit_in_a_process_that_then_exits_is_stored"]
fn child_hits_daily_once() {
    if common::child_dir().is_none() {
        return;
    }
    println!("hit: {}", daily(1));
}

#[memoize(path = "persistdict-tests/memo-where")]
fn located(x: u32) -> u32 {
    x + 100
}

/// Runs `child_reports_where_located_lives` in `cwd` with `env`, and returns the directory it
/// reports and whether its call was a hit.
fn run_located(cwd: &std::path::Path, env: &[(&str, String)]) -> (std::path::PathBuf, bool) {
    let [dir, hit] = common::child_fields(
        "child_reports_where_located_lives",
        cwd,
        env,
        ["dir: ", "hit: "],
    );
    (dir.into(), hit == "true")
}

#[test]
fn a_relative_path_is_under_persistdict_dir_from_any_working_directory() {
    let base = common::tempdir();
    let (one, two) = (common::tempdir(), common::tempdir());
    let env = [("PERSISTDICT_DIR", base.path().display().to_string())];
    let (first, hit) = run_located(one.path(), &env);
    assert!(!hit);
    let expected = base
        .path()
        .join(env!("CARGO_PKG_NAME"))
        .join("persistdict-tests/memo-where");
    assert_eq!(first, expected.canonicalize().unwrap());
    // The same binary from another working directory finds the stored result.
    let (second, hit) = run_located(two.path(), &env);
    assert_eq!(second, first);
    assert!(
        hit,
        "the second process recomputed: the store moved with the working directory"
    );
    assert_eq!(std::fs::read_dir(one.path()).unwrap().count(), 0);
}

#[test]
fn without_persistdict_dir_a_relative_path_is_under_the_platform_cache_directory() {
    let home = common::tempdir();
    let cache = home.path().join("cache");
    let env = [
        ("PERSISTDICT_DIR", String::new()),
        ("HOME", home.path().display().to_string()),
        ("XDG_CACHE_HOME", cache.display().to_string()),
    ];
    let (dir, _) = run_located(home.path(), &env);
    let expected = cache
        .join(env!("CARGO_PKG_NAME"))
        .join("persistdict-tests/memo-where");
    assert_eq!(dir, expected.canonicalize().unwrap());
}

#[test]
#[ignore = "child process of the tests of where a memo store lives"]
fn child_reports_where_located_lives() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    // One thread runs in a child (`--test-threads=1`), so changing directory races nothing.
    std::env::set_current_dir(&dir).unwrap();
    let dict = located_memo().dict().expect("the store opens");
    let hit = dict.len().unwrap() > 0;
    assert_eq!(located(1), 101);
    println!("dir: {}", dict.path().display());
    println!("hit: {hit}");
}
