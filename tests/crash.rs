//! Crash safety: a writer process is killed with SIGKILL at a random moment, and the dict it
//! leaves behind opens cleanly and holds every write the writer saw committed.
//!
//! The writer prints a line only after the operation's commit returned. Its operations are a
//! deterministic sequence (a seed per round), so the parent can replay them into a model: the
//! reopened dict must equal the model after the last printed operation, or after the one
//! that followed (committed, but killed before it could print). Kills also land in `extend`,
//! `update`, `clear`, expiry sweeps and access-time flushes. Rounds per durability mode:
//! `PERSISTDICT_CRASH_ROUNDS` (default 50).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use persistdict::{Background, Clock, Durability, PersistDict};

type Dict = PersistDict<String, String>;

const KEYS: u32 = 200;
const SWEEP_ENTRIES: u32 = 20_000;
const FLUSH_ENTRIES: u32 = 3_000;

#[derive(Debug)]
enum Op {
    Insert(String, String),
    Extend(Vec<(String, String)>),
    Update(String),
    Remove(String),
    Clear,
}

fn key(n: u32) -> String {
    format!("key-{n:03}")
}

fn value(n: u64, len: usize) -> String {
    format!("{n}:{}", "x".repeat(len))
}

/// Operation `i` of the sequence of `seed`.
fn op(seed: u64, i: u64) -> Op {
    let mut r = fastrand::Rng::with_seed(seed.wrapping_mul(1_000_003) ^ i);
    match r.u32(0..100) {
        0..40 => Op::Insert(key(r.u32(0..KEYS)), value(i, r.usize(0..3000))),
        40..55 => Op::Extend(
            (0..r.u64(2..40))
                .map(|j| (key(r.u32(0..KEYS)), value(i * 100 + j, r.usize(0..500))))
                .collect(),
        ),
        55..80 => Op::Update(format!("counter-{}", r.u32(0..4))),
        80..98 => Op::Remove(key(r.u32(0..KEYS))),
        _ => Op::Clear,
    }
}

fn increment(old: Option<String>) -> String {
    let n: u64 = old.map_or(0, |v| v.parse().expect("a counter"));
    (n + 1).to_string()
}

fn apply(d: &Dict, op: Op) {
    match op {
        Op::Insert(k, v) => d.insert(k, v).unwrap(),
        Op::Extend(items) => d.extend(items).unwrap(),
        Op::Update(k) => {
            d.update(&k, |old| Some(increment(old))).unwrap();
        }
        Op::Remove(k) => {
            d.remove(&k).unwrap();
        }
        Op::Clear => d.clear().unwrap(),
    }
}

fn apply_model(m: &mut BTreeMap<String, String>, op: Op) {
    match op {
        Op::Insert(k, v) => {
            m.insert(k, v);
        }
        Op::Extend(items) => m.extend(items),
        Op::Update(k) => {
            let new = increment(m.get(&k).cloned());
            m.insert(k, new);
        }
        Op::Remove(k) => {
            m.remove(&k);
        }
        Op::Clear => m.clear(),
    }
}

fn durability(name: &str) -> Durability {
    match name {
        "immediate" => Durability::Immediate,
        _ => Durability::Eventual,
    }
}

fn open(dir: &Path, durability: Durability) -> Dict {
    PersistDict::builder()
        .durability(durability)
        .background(Background::Disabled)
        .open(dir)
        .unwrap()
}

/// Everything in the dict; an entry that can't be read fails the test.
fn contents(d: &Dict) -> BTreeMap<String, String> {
    d.iter().map(Result::unwrap).collect()
}

/// Opens what a killed writer left and checks that it is whole: no damaged record, nothing
/// to repair, `len` agreeing with iteration.
fn reopen_whole(dir: &Path, durability: Durability) -> (Dict, BTreeMap<String, String>) {
    let d = open(dir, durability);
    let report = d.check_integrity().unwrap();
    assert_eq!(
        (
            report.quarantined,
            report.repaired,
            report.undecodable.len()
        ),
        (0, 0, 0),
        "{report:?}"
    );
    let found = contents(&d);
    assert_eq!(d.len().unwrap(), found.len() as u64);
    (d, found)
}

#[derive(Default)]
struct Tally {
    rounds: u32,
    ops_committed: u64,
    committed_unprinted: u32,
    entries_checked: u64,
    partial_sweeps: u32,
}

fn round(mode: &str, durability_name: &str, seed: u64, tally: &mut Tally) {
    let dir = common::tempdir();
    let env = [
        ("MODE", mode.to_owned()),
        ("DURABILITY", durability_name.to_owned()),
        ("SEED", seed.to_string()),
    ];
    let mut child = common::LineChild::spawn("child_writer", dir.path(), &env);
    child.wait_for("ready", Duration::from_secs(60));
    let mut r = fastrand::Rng::with_seed(seed);
    std::thread::sleep(Duration::from_micros(r.u64(0..40_000)));
    let lines = child.kill();
    let durability = durability(durability_name);
    let (_d, found) = reopen_whole(dir.path(), durability);
    tally.rounds += 1;
    tally.entries_checked += found.len() as u64;
    match mode {
        "ops" => {
            let done: Vec<u64> = common::after(&lines, "done ")
                .map(|n| n.parse().unwrap())
                .collect();
            let mut model = BTreeMap::new();
            let printed = done.last().map_or(0, |last| last + 1);
            for i in 0..printed {
                apply_model(&mut model, op(seed, i));
            }
            tally.ops_committed += printed;
            if found != model {
                apply_model(&mut model, op(seed, printed));
                assert_eq!(
                    found, model,
                    "seed {seed}: the dict is neither the state after operation {printed} nor the next one"
                );
                tally.committed_unprinted += 1;
            }
        }
        "sweep" => {
            // A sweep commits in chunks; each entry is there with its value, or expired.
            for (k, v) in &found {
                let n: u64 = k.trim_start_matches("entry-").parse().unwrap();
                assert_eq!(*v, value(n, 50), "seed {seed}: {k}");
            }
            if !found.is_empty() && found.len() < SWEEP_ENTRIES as usize {
                tally.partial_sweeps += 1;
            }
        }
        _ => {
            // Access-time flushes write no values: every entry is there, unchanged.
            assert_eq!(found.len(), FLUSH_ENTRIES as usize, "seed {seed}");
            for (k, v) in &found {
                let n: u64 = k.trim_start_matches("entry-").parse().unwrap();
                assert_eq!(*v, value(n, 50), "seed {seed}: {k}");
            }
        }
    }
}

#[test]
fn a_writer_killed_at_any_moment_loses_no_committed_write() {
    let rounds: u64 = std::env::var("PERSISTDICT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let started = std::time::Instant::now();
    for durability in ["immediate", "eventual"] {
        let mut tally = Tally::default();
        for i in 0..rounds {
            // Three rounds in five kill a mix of writes; one a sweep; one a flush.
            let mode = ["ops", "ops", "ops", "sweep", "flush"][(i % 5) as usize];
            round(mode, durability, 7919 * i + 17, &mut tally);
        }
        println!(
            "{durability}: {} kills ({} mid-operation stream, {} mid-sweep, {} mid-flush); \
             {} operations confirmed before the kill, {} committed but unconfirmed; \
             {} sweeps cut short; {} entries checked",
            tally.rounds,
            rounds.div_ceil(5) * 3,
            rounds / 5,
            rounds / 5,
            tally.ops_committed,
            tally.committed_unprinted,
            tally.partial_sweeps,
            tally.entries_checked,
        );
        assert_eq!(u64::from(tally.rounds), rounds);
    }
    println!("crash rounds took {:.1?}", started.elapsed());
}

#[test]
#[ignore = "child process of a_writer_killed_at_any_moment_loses_no_committed_write"]
fn child_writer() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let var = |name| std::env::var(name).unwrap();
    let durability = durability(&var("DURABILITY"));
    let seed: u64 = var("SEED").parse().unwrap();
    match var("MODE").as_str() {
        "ops" => {
            let d = open(&dir, durability);
            println!("ready");
            for i in 0.. {
                apply(&d, op(seed, i));
                println!("done {i}");
            }
        }
        "sweep" => {
            // A year back, so that the two days added per round stay in the past for the 40 ms
            // the child may live: a record stamped ahead of the system clock would be repaired
            // by the check after the kill, which must find nothing to repair.
            let year = Duration::from_secs(365 * 86_400);
            let clock = Clock::manual(std::time::SystemTime::now() - year);
            let d: Dict = PersistDict::builder()
                .durability(durability)
                .background(Background::Disabled)
                .clock(clock.clone())
                .expire_days(1)
                .open(&dir)
                .unwrap();
            loop {
                let entries = (0..SWEEP_ENTRIES).map(|n| {
                    let n = u64::from(n);
                    (format!("entry-{n:05}"), value(n, 50))
                });
                d.extend(entries).unwrap();
                clock.advance(Duration::from_secs(2 * 86_400));
                println!("ready");
                let removed = d.expire_now().unwrap();
                println!("swept {removed}");
            }
        }
        _ => {
            let d = open(&dir, durability);
            d.extend((0..FLUSH_ENTRIES).map(|n| {
                let n = u64::from(n);
                (format!("entry-{n:05}"), value(n, 50))
            }))
            .unwrap();
            println!("ready");
            loop {
                for n in 0..FLUSH_ENTRIES {
                    d.get(&format!("entry-{n:05}")).unwrap();
                }
                d.flush().unwrap();
                println!("flushed");
            }
        }
    }
}

/// Overwrites a 4 KiB value 2,000 times and tells whether the file stayed small. Had a dead
/// reader kept its slot, no page freed since its snapshot could be reused, and every update
/// would grow the file (by about 24 KiB).
fn pages_are_reused(d: &Dict, dir: &Path) -> bool {
    for i in 0..2_000 {
        d.insert("big".into(), format!("{i}{}", "x".repeat(4096)))
            .unwrap();
    }
    let size = std::fs::metadata(dir.join("data.mdb")).unwrap().len();
    println!("data file after 2,000 updates of a 4 KiB value: {size} bytes");
    size < 2 << 20
}

#[test]
fn a_reader_killed_inside_a_read_transaction_does_not_pin_pages() {
    let dir = common::tempdir();
    {
        let d = open(dir.path(), Durability::Eventual);
        d.insert("big".into(), "x".repeat(4096)).unwrap();
    }
    // Another process keeps the environment open: LMDB itself resets the reader table only
    // when the first process opens it.
    let mut keeper = common::LineChild::spawn("child_keeps_the_dict_open", dir.path(), &[]);
    keeper.wait_for("open", Duration::from_secs(60));
    let mut reader = common::LineChild::spawn("child_holds_a_read_transaction", dir.path(), &[]);
    reader.wait_for("holding", Duration::from_secs(60));
    let _ = reader.kill();
    // Opening clears the dead reader's slot.
    let d = open(dir.path(), Durability::Eventual);
    let reused = pages_are_reused(&d, dir.path());
    let _ = keeper.kill();
    assert!(reused);
}

#[test]
#[ignore = "child process of a_reader_killed_inside_a_read_transaction_does_not_pin_pages"]
fn child_keeps_the_dict_open() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let _d = open(&dir, Durability::Eventual);
    println!("open");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_reader_that_dies_while_the_dict_is_open_is_cleared_by_the_worker() {
    let dir = common::tempdir();
    let d: Dict = PersistDict::builder()
        .durability(Durability::Eventual)
        .flush_interval(Duration::from_millis(20))
        .open(dir.path())
        .unwrap();
    d.insert("big".into(), "x".repeat(4096)).unwrap();
    let mut reader = common::LineChild::spawn("child_holds_a_read_transaction", dir.path(), &[]);
    reader.wait_for("holding", Duration::from_secs(60));
    let _ = reader.kill();
    // The worker frees dead readers' slots every `flush_interval`.
    std::thread::sleep(Duration::from_millis(500));
    assert!(pages_are_reused(&d, dir.path()));
}

#[test]
#[ignore = "child process of the reader tests"]
fn child_holds_a_read_transaction() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    // SAFETY: this process opens the environment once, and it is not `NO_LOCK`.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .max_dbs(8)
            .map_size(1 << 40)
            .open(&dir)
            .unwrap()
    };
    let _txn = env.read_txn().unwrap();
    println!("holding");
    std::thread::sleep(Duration::from_secs(600));
}
