//! The background worker of a store: access-time flushes, expiry sweeps, integrity checks,
//! freeing the reader slots of dead processes.
//!
//! One worker per shared store (not per handle). It holds only a `Weak` reference, so it
//! never keeps a dict open; it stops when the last handle is dropped (the registry in
//! `shared.rs` disconnects its channel and joins it) and, being a plain thread, never keeps the process
//! alive. Sweeps and checks work in chunks (`store::repair`), so writers and readers never
//! wait long behind it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::options::Background;
use crate::store::{IntegrityReport, Store};

/// What the worker, and the sweeps and checks run on demand, counted in this process, for
/// `stats()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) expired: AtomicU64,
    pub(crate) quarantined: AtomicU64,
    pub(crate) sweeps: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    /// Counts and logs a failure of `what` in the dict labelled `name`.
    pub(crate) fn record_error(&self, name: &str, what: &str, error: &Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(dict = name, %error, "{what} failed");
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!("{what}: {error}"));
    }

    /// The last failure recorded.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the worker needs to know.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    pub(crate) name: String,
    /// The handle starting it reads only: no worker then.
    pub(crate) read_only: bool,
    pub(crate) mode: Background,
    pub(crate) expire_after: Option<Duration>,
    pub(crate) sweep_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) clock: Clock,
}

/// A running worker thread.
pub(crate) struct Worker {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Worker {
    /// Disconnects the worker and waits for it, unless called from the worker itself.
    pub(crate) fn stop(self) {
        drop(self.stop);
        if self.thread.thread().id() != std::thread::current().id() {
            let _ = self.thread.join();
        }
    }
}

/// Runs the open-time work in the caller's thread (foreground mode) and starts a worker for
/// `store`; `None` when the mode is [`Background::Disabled`] or the thread could not be
/// started (counted as an [`Error::WorkerStart`]).
pub(crate) fn start(
    store: &Arc<Store>,
    counters: &Arc<Counters>,
    config: WorkerConfig,
) -> Option<Worker> {
    if config.mode == Background::Disabled {
        return None;
    }
    let deadline = Instant::now() + config.timeout;
    if config.mode == Background::Foreground {
        open_time_work(store, counters, &config, deadline);
    }
    let name = config.name.clone();
    let (stop, stopped) = mpsc::channel::<()>();
    let weak = Arc::downgrade(store);
    let worker_counters = Arc::clone(counters);
    let spawned = std::thread::Builder::new()
        .name("persistdict-bg".into())
        .spawn(move || {
            if config.mode == Background::Thread {
                match weak.upgrade() {
                    Some(store) => open_time_work(&store, &worker_counters, &config, deadline),
                    None => return,
                }
            }
            run(&weak, &worker_counters, &config, &stopped);
        });
    match spawned {
        Ok(thread) => Some(Worker { stop, thread }),
        Err(source) => {
            let error = Error::WorkerStart {
                path: store.path().to_path_buf(),
                source,
            };
            counters.record_error(&name, "starting the worker", &error);
            None
        }
    }
}

fn open_time_work(store: &Store, counters: &Counters, config: &WorkerConfig, deadline: Instant) {
    match check(
        store,
        counters,
        &|| config.clock.now_ms(),
        Some(deadline),
        true,
    ) {
        Ok(report) => {
            if report.quarantined > 0 || report.repaired > 0 {
                tracing::warn!(dict = %config.name, ?report, "integrity check repaired the dict");
            }
        }
        Err(error) => counters.record_error(&config.name, "integrity check", &error),
    }
    if let Some(expire_after) = config.expire_after
        && let Err(error) = sweep(
            store,
            counters,
            &config.name,
            &config.clock,
            expire_after,
            Some(deadline),
        )
    {
        counters.record_error(&config.name, "expiry sweep", &error);
    }
}

fn run(
    weak: &Weak<Store>,
    counters: &Counters,
    config: &WorkerConfig,
    stopped: &mpsc::Receiver<()>,
) {
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
        if let Err(error) = store.flush_atimes(config.clock.now_ms()) {
            counters.record_error(&config.name, "storing access times", &error);
        }
        store.end_old_reads();
        if let Err(error) = store.clear_stale_readers() {
            counters.record_error(&config.name, "clearing stale readers", &error);
        }
        // Commits made with `Durability::Eventual` reach the disk here at the latest.
        if let Err(error) = store.sync() {
            counters.record_error(&config.name, "periodic sync", &error);
        }
        if let Some(expire_after) = config.expire_after
            && last_sweep.elapsed() >= config.sweep_interval
        {
            last_sweep = Instant::now();
            if let Err(error) = sweep(
                &store,
                counters,
                &config.name,
                &config.clock,
                expire_after,
                None,
            ) {
                counters.record_error(&config.name, "expiry sweep", &error);
            }
        }
    }
}

/// Removes entries not accessed for `expire_after`, in chunks, and counts them; returns their
/// keys.
pub(crate) fn sweep(
    store: &Store,
    counters: &Counters,
    name: &str,
    clock: &Clock,
    expire_after: Duration,
    deadline: Option<Instant>,
) -> Result<Vec<Vec<u8>>> {
    let now = clock.now_ms();
    // An expiry longer than the clock counts back expires nothing.
    let after = u64::try_from(expire_after.as_millis()).unwrap_or(u64::MAX);
    let removed = store.sweep(now, now.saturating_sub(after), deadline)?;
    counters
        .expired
        .fetch_add(removed.len() as u64, Ordering::Relaxed);
    counters.sweeps.fetch_add(1, Ordering::Relaxed);
    if !removed.is_empty() {
        tracing::info!(
            dict = name,
            removed = removed.len(),
            "expired entries removed"
        );
    }
    Ok(removed)
}

/// Runs the integrity check (repairing, or with `repair` false only reporting) and counts what
/// it quarantined.
pub(crate) fn check(
    store: &Store,
    counters: &Counters,
    now: &dyn Fn() -> u64,
    deadline: Option<Instant>,
    repair: bool,
) -> Result<IntegrityReport> {
    let report = store.check(now, deadline, repair)?;
    // A check that only reports moved nothing.
    if repair {
        counters
            .quarantined
            .fetch_add(report.quarantined, Ordering::Relaxed);
    }
    Ok(report)
}
