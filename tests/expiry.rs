//! Access times, metadata and expiry, with a clock the tests move.

mod common;

use std::time::{Duration, Instant, UNIX_EPOCH};

use persistdict::{Background, Clock, PersistDict};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

fn clock() -> Clock {
    Clock::manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn open(dir: &std::path::Path, clock: &Clock, mode: Background) -> PersistDict<String, u32> {
    PersistDict::builder()
        .expire_days(1)
        .clock(clock.clone())
        .background(mode)
        .open(dir)
        .unwrap()
}

#[test]
fn expired_entry_is_gone_after_a_sweep_and_a_recently_read_one_survives() {
    let dir = common::tempdir();
    let clock = clock();
    let d = open(dir.path(), &clock, Background::Disabled);
    d.insert("stale".into(), 1).unwrap();
    d.insert("read".into(), 2).unwrap();
    clock.advance(20 * HOUR);
    assert_eq!(d.get("read").unwrap(), Some(2));
    clock.advance(5 * HOUR);
    assert_eq!(d.expire_now().unwrap(), 1);
    assert_eq!(d.get("stale").unwrap(), None);
    assert_eq!(d.get("read").unwrap(), Some(2));
    assert_eq!(d.stats().unwrap().expired, 1);
}

#[test]
fn a_write_counts_as_an_access() {
    let dir = common::tempdir();
    let clock = clock();
    let d = open(dir.path(), &clock, Background::Disabled);
    d.insert("k".into(), 1).unwrap();
    clock.advance(20 * HOUR);
    d.insert("k".into(), 2).unwrap();
    clock.advance(20 * HOUR);
    assert_eq!(d.expire_now().unwrap(), 0);
}

#[test]
fn metadata_keeps_creation_time_and_follows_access_time_across_reopen() {
    let dir = common::tempdir();
    let clock = clock();
    let t0 = clock.now();
    {
        let d = open(dir.path(), &clock, Background::Disabled);
        d.insert("k".into(), 1).unwrap();
        clock.advance(HOUR);
        d.insert("k".into(), 2).unwrap();
        clock.advance(HOUR);
        assert_eq!(d.get("k").unwrap(), Some(2));
        let m = d.metadata("k").unwrap().unwrap();
        assert_eq!((m.created, m.accessed), (t0, t0 + 2 * HOUR));
        assert_eq!(m.value_size, 1);
        assert_eq!(d.metadata("missing").unwrap(), None);
    }
    // The read's access time was stored when the last handle closed.
    let d = open(dir.path(), &clock, Background::Disabled);
    let m = d.metadata("k").unwrap().unwrap();
    assert_eq!((m.created, m.accessed), (t0, t0 + 2 * HOUR));
}

#[test]
fn expiry_happens_in_a_long_running_process_without_reopening() {
    let dir = common::tempdir();
    let clock = clock();
    let d: PersistDict<String, u32> = PersistDict::builder()
        .expire_days(1)
        .clock(clock.clone())
        .sweep_interval(Duration::from_millis(20))
        .flush_interval(Duration::from_millis(10))
        .open(dir.path())
        .unwrap();
    d.insert("k".into(), 1).unwrap();
    clock.advance(2 * DAY);
    assert!(!d.contains_key("k").unwrap(), "past its expiry at once");
    let start = Instant::now();
    // `len` counts it until the worker's sweep removes it.
    while d.len().unwrap() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the worker never swept"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(d.stats().unwrap().sweeps >= 1);
}

fn with_expired_entries(dir: &std::path::Path, clock: &Clock) {
    let d = open(dir, clock, Background::Disabled);
    d.extend((0..3_000).map(|i| (format!("k{i}"), i))).unwrap();
    drop(d);
    clock.advance(2 * DAY);
}

#[test]
fn foreground_mode_has_swept_when_open_returns() {
    let dir = common::tempdir();
    let clock = clock();
    with_expired_entries(dir.path(), &clock);
    let d = open(dir.path(), &clock, Background::Foreground);
    assert_eq!(d.len().unwrap(), 0);
}

#[test]
fn disabled_mode_sweeps_only_when_asked() {
    let dir = common::tempdir();
    let clock = clock();
    with_expired_entries(dir.path(), &clock);
    let d = open(dir.path(), &clock, Background::Disabled);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.len().unwrap(), 3_000);
    assert_eq!(d.expire_now().unwrap(), 3_000);
    assert!(d.is_empty().unwrap());
}

#[test]
fn thread_mode_returns_at_once_and_sweeps_in_the_background() {
    let dir = common::tempdir();
    let clock = clock();
    with_expired_entries(dir.path(), &clock);
    let d = open(dir.path(), &clock, Background::Thread);
    let start = Instant::now();
    while !d.is_empty().unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the worker never swept"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_dict_without_expiry_never_expires() {
    let dir = common::tempdir();
    let clock = clock();
    let d: PersistDict<String, u32> = PersistDict::builder()
        .clock(clock.clone())
        .background(Background::Disabled)
        .open(dir.path())
        .unwrap();
    d.insert("k".into(), 1).unwrap();
    clock.advance(10_000 * DAY);
    assert_eq!(d.expire_now().unwrap(), 0);
    assert!(d.contains_key("k").unwrap());
}

#[test]
fn an_expiry_longer_than_the_clock_can_count_never_expires_anything() {
    let dir = common::tempdir();
    let clock = clock();
    let d: PersistDict<String, u32> = PersistDict::builder()
        .expire_after(Some(Duration::MAX))
        .clock(clock.clone())
        .background(Background::Disabled)
        .open(dir.path())
        .unwrap();
    d.insert("k".into(), 1).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(d.expire_now().unwrap(), 0);
    assert_eq!(d.get("k").unwrap(), Some(1));
}

#[test]
fn an_access_time_from_a_clock_that_ran_ahead_is_repaired_and_expires() {
    let dir = common::tempdir();
    let clock = clock();
    let now = clock.now();
    let d = open(dir.path(), &clock, Background::Disabled);
    // The clock jumps a year ahead, an entry is written and read there, and the clock is
    // set right again.
    clock.set(now + 365 * DAY);
    d.insert("future".into(), 1).unwrap();
    d.get("future").unwrap();
    d.flush().unwrap();
    clock.set(now);
    let report = d.check_integrity().unwrap();
    assert_eq!(report.repaired, 1, "{report:?}");
    let meta = d.metadata("future").unwrap().unwrap();
    assert!(meta.accessed <= clock.now() && meta.created <= clock.now());
    clock.advance(25 * HOUR);
    assert_eq!(
        d.expire_now().unwrap(),
        1,
        "the entry expires a day after the repair"
    );
}

#[test]
fn an_access_stored_after_a_future_one_brings_it_back_to_now() {
    let dir = common::tempdir();
    let clock = clock();
    let now = clock.now();
    let d = open(dir.path(), &clock, Background::Disabled);
    clock.set(now + 365 * DAY);
    d.insert("future".into(), 1).unwrap();
    clock.set(now);
    // A read now, stored: the stored access time must not stay a year ahead.
    d.get("future").unwrap();
    d.flush().unwrap();
    let meta = d.metadata("future").unwrap().unwrap();
    assert!(meta.accessed <= clock.now(), "{meta:?}");
    clock.advance(25 * HOUR);
    assert_eq!(d.expire_now().unwrap(), 1);
}

#[test]
fn an_entry_past_its_expiry_is_missing_before_any_sweep() {
    let dir = common::tempdir();
    let clock = clock();
    let d = open(dir.path(), &clock, Background::Disabled);
    d.insert("old".into(), 1).unwrap();
    assert_eq!(d.get("old").unwrap(), Some(1)); // now in the cache too
    clock.advance(20 * HOUR);
    d.insert("new".into(), 2).unwrap();
    clock.advance(5 * HOUR);
    // "old" was last used 25 hours ago, "new" 5: no sweep has run.
    assert_eq!(
        d.get("old").unwrap(),
        None,
        "a cached entry past its expiry"
    );
    assert!(!d.contains_key("old").unwrap());
    assert!(d.metadata("old").unwrap().is_none());
    assert_eq!(d.keys().map(Result::unwrap).collect::<Vec<_>>(), ["new"]);
    assert_eq!(d.iter().count(), 1);
    assert_eq!(
        d.update("old", |v| v).unwrap(),
        None,
        "update sees no old value"
    );
    assert_eq!(
        d.get_or_insert_with("old".into(), || 7).unwrap(),
        7,
        "and it is replaced"
    );
    assert_eq!(d.get("old").unwrap(), Some(7));
    assert_eq!(d.get("new").unwrap(), Some(2));
}

#[test]
fn an_entry_read_elsewhere_in_the_process_is_not_past_its_expiry() {
    let dir = common::tempdir();
    let clock = clock();
    let (a, b) = (
        open(dir.path(), &clock, Background::Disabled),
        open(dir.path(), &clock, Background::Disabled),
    );
    a.insert("k".into(), 1).unwrap();
    clock.advance(20 * HOUR);
    // Read through another handle: recorded in memory, not stored yet.
    assert_eq!(b.get("k").unwrap(), Some(1));
    clock.advance(5 * HOUR);
    assert_eq!(a.get("k").unwrap(), Some(1));
}
