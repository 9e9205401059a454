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
    let start = Instant::now();
    while d.contains_key("k").unwrap() {
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
