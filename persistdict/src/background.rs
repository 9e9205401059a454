//! The background worker of a store: access-time flushes, expiry sweeps, integrity checks,
//! freeing the reader slots of dead processes.
//!
//! One worker per shared store (not per handle). It holds only a `Weak` reference, so it
//! never keeps a dict open; it stops when the last handle is dropped (the store's `Drop`
//! disconnects its channel and joins it) and, being a plain thread, never keeps the process
//! alive. Each sweep and check works in chunks of [`CHUNK`] entries per write transaction,
//! so writers and readers never wait long behind it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::env::{Durability, Shared, Store, WriteTxn};
use crate::error::Result;

/// Entries examined per write transaction by sweeps and checks.
pub(crate) const CHUNK: usize = 1_000;
/// Pause between chunks, so that writers waiting for LMDB's lock get it.
const CHUNK_PAUSE: Duration = Duration::from_micros(50);

/// When the checks and sweeps of a dict run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Background {
    /// A worker thread runs the integrity check and an expiry sweep right after open (which
    /// returns at once), then sweeps and flushes periodically.
    #[default]
    Thread,
    /// `open` runs the integrity check and an expiry sweep before returning (bounded by
    /// `background_timeout`); then the worker thread sweeps and flushes periodically.
    Foreground,
    /// No worker: no checks, no automatic expiry, access times stored only by
    /// [`flush`](crate::PersistDict::flush) and when the last handle closes.
    /// [`expire_now`](crate::PersistDict::expire_now) still works.
    Disabled,
}

/// What an integrity check found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Records examined.
    pub checked: u64,
    /// Inconsistencies fixed: access times before creation times, records missing from or
    /// dangling in the insertion order.
    pub repaired: u64,
    /// Storage slots whose bytes could not be read at all, moved to the quarantine database
    /// (nothing is deleted).
    pub quarantined: u64,
    /// Keys whose value does not decode as the dict's value type (reported, not removed).
    /// Only [`PersistDict::check_integrity`](crate::PersistDict::check_integrity) fills this.
    pub undecodable: Vec<crate::KeyBytes>,
    /// Whether the check stopped at its time budget before the end.
    pub incomplete: bool,
}

impl IntegrityReport {
    fn add(&mut self, other: &IntegrityReport) {
        self.checked += other.checked;
        self.repaired += other.repaired;
        self.quarantined += other.quarantined;
    }
}

/// What the worker did, for `stats()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) expired: AtomicU64,
    pub(crate) quarantined: AtomicU64,
    pub(crate) sweeps: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn record_error(&self, name: &str, what: &str, error: &crate::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(dict = name, %error, "{what} failed");
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!("{what}: {error}"));
    }
}

/// What the worker needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) mode: Background,
    pub(crate) expire_after: Option<Duration>,
    pub(crate) sweep_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) limit: usize,
    pub(crate) clock: Clock,
}

/// A running worker thread.
pub(crate) struct Worker {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Worker {
    /// Disconnects the worker and waits for it, unless called from the worker itself (when
    /// the worker held the last reference to the store for a moment).
    pub(crate) fn stop(self) {
        drop(self.stop);
        if self.thread.thread().id() != std::thread::current().id() {
            let _ = self.thread.join();
        }
    }
}

/// Runs the open-time work in the caller's thread (foreground mode) and starts the worker
/// of `store` if it has none yet.
pub(crate) fn start(shared: &Shared, config: Config) {
    let store = shared.store();
    if config.mode == Background::Disabled {
        return;
    }
    let mut slot = shared.worker.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.is_some() {
        return;
    }
    let deadline = Instant::now() + config.timeout;
    if config.mode == Background::Foreground {
        open_time_work(store, &config, deadline);
    }
    let name = config.name.clone();
    let (stop, stopped) = mpsc::channel::<()>();
    let weak = Arc::downgrade(store);
    let spawned = std::thread::Builder::new()
        .name("persistdict-bg".into())
        .spawn(move || {
            if config.mode == Background::Thread {
                match weak.upgrade() {
                    Some(store) => open_time_work(&store, &config, deadline),
                    None => return,
                }
            }
            run(&weak, &config, &stopped);
        });
    match spawned {
        Ok(thread) => *slot = Some(Worker { stop, thread }),
        Err(error) => store.counters.record_error(
            &name,
            "starting the worker",
            &crate::Error::Io {
                path: store.path().to_path_buf(),
                source: error,
            },
        ),
    }
}

fn open_time_work(store: &Store, config: &Config, deadline: Instant) {
    match check(store, config.limit, config.clock.now_ms(), Some(deadline)) {
        Ok(report) => {
            if report.quarantined > 0 || report.repaired > 0 {
                tracing::warn!(dict = %config.name, ?report, "integrity check repaired the dict");
            }
        }
        Err(error) => store
            .counters
            .record_error(&config.name, "integrity check", &error),
    }
    if let Some(expire_after) = config.expire_after
        && let Err(error) = sweep(
            store,
            &config.name,
            &config.clock,
            config.limit,
            expire_after,
            Some(deadline),
        )
    {
        store
            .counters
            .record_error(&config.name, "expiry sweep", &error);
    }
}

fn run(weak: &Weak<Store>, config: &Config, stopped: &mpsc::Receiver<()>) {
    let tick = config
        .flush_interval
        .min(config.sweep_interval)
        .max(Duration::from_millis(1));
    let mut last_sweep = Instant::now();
    loop {
        match stopped.recv_timeout(tick) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(store) = weak.upgrade() else { return };
        if let Err(error) = store.flush_atimes() {
            store
                .counters
                .record_error(&config.name, "storing access times", &error);
        }
        if let Err(error) = store.clear_stale_readers() {
            store
                .counters
                .record_error(&config.name, "clearing stale readers", &error);
        }
        if store.durability() == Durability::Eventual
            && let Err(error) = store.sync()
        {
            store
                .counters
                .record_error(&config.name, "periodic sync", &error);
        }
        if let Some(expire_after) = config.expire_after
            && last_sweep.elapsed() >= config.sweep_interval
        {
            last_sweep = Instant::now();
            if let Err(error) = sweep(
                &store,
                &config.name,
                &config.clock,
                config.limit,
                expire_after,
                None,
            ) {
                store
                    .counters
                    .record_error(&config.name, "expiry sweep", &error);
            }
        }
    }
}

/// Whether chunked work must stop: past its deadline, or the last handle is gone.
fn out_of_time(store: &Store, deadline: Option<Instant>) -> bool {
    store.stopping.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d)
}

/// Runs `step` in one write transaction per chunk, each time from the position the previous
/// one reached, until it reports the end (returns `true`) or time is up (returns `false`).
/// Each chunk's output goes to `committed` once its transaction is committed: a step replayed
/// after the map grew is counted once.
fn chunked<P, T>(
    store: &Store,
    deadline: Option<Instant>,
    mut step: impl FnMut(&mut WriteTxn<'_>, Option<&P>) -> Result<(Option<P>, bool, T)>,
    mut committed: impl FnMut(T),
) -> Result<bool> {
    let mut after = None;
    loop {
        let (reached, done, output) = store.write(|w| step(w, after.as_ref()))?;
        committed(output);
        after = reached;
        if done {
            return Ok(true);
        }
        if out_of_time(store, deadline) {
            return Ok(false);
        }
        // LMDB's writer lock is not fair: without a pause, the next chunk takes it back
        // before a waiting writer wakes up, and that writer waits for the whole sweep.
        std::thread::sleep(CHUNK_PAUSE);
    }
}

/// Removes entries not accessed for `expire_after`, in chunks; returns their keys.
pub(crate) fn sweep(
    store: &Store,
    name: &str,
    clock: &Clock,
    limit: usize,
    expire_after: Duration,
    deadline: Option<Instant>,
) -> Result<Vec<Vec<u8>>> {
    // Stored access times must be current before they are judged.
    store.flush_atimes()?;
    let cutoff = clock
        .now_ms()
        .saturating_sub(expire_after.as_millis() as u64);
    let mut removed = Vec::new();
    chunked(
        store,
        deadline,
        |w, after: Option<&u64>| {
            let pending = |k: &[u8]| store.pending_atime(k);
            let (chunk, reached, done) =
                w.expire_chunk(after.copied(), CHUNK, cutoff, limit, pending)?;
            Ok((reached, done, chunk))
        },
        |chunk| removed.extend(chunk),
    )?;
    store
        .counters
        .expired
        .fetch_add(removed.len() as u64, Ordering::Relaxed);
    store.counters.sweeps.fetch_add(1, Ordering::Relaxed);
    if !removed.is_empty() {
        tracing::info!(
            dict = name,
            removed = removed.len(),
            "expired entries removed"
        );
    }
    Ok(removed)
}

/// Walks every record in chunks: quarantines what can't be read, repairs what is
/// inconsistent.
pub(crate) fn check(
    store: &Store,
    limit: usize,
    now: u64,
    deadline: Option<Instant>,
) -> Result<IntegrityReport> {
    let mut report = IntegrityReport::default();
    let mut complete = true;
    for hashed in [false, true] {
        if complete {
            complete = chunked(
                store,
                deadline,
                |w, after: Option<&Vec<u8>>| {
                    let mut chunk = IntegrityReport::default();
                    let after = after.map(Vec::as_slice);
                    let (reached, done) =
                        w.check_slots_chunk(hashed, after, CHUNK, limit, now, &mut chunk)?;
                    Ok((reached, done, chunk))
                },
                |chunk| report.add(&chunk),
            )?;
        }
    }
    if complete {
        complete = chunked(
            store,
            deadline,
            |w, after: Option<&u64>| {
                let mut chunk = IntegrityReport::default();
                let (reached, done) =
                    w.check_order_chunk(after.copied(), CHUNK, limit, &mut chunk)?;
                Ok((reached, done, chunk))
            },
            |chunk| report.add(&chunk),
        )?;
    }
    report.incomplete = !complete;
    store
        .counters
        .quarantined
        .fetch_add(report.quarantined, Ordering::Relaxed);
    Ok(report)
}
