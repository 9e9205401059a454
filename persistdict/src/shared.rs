//! What every handle on one directory shares in a process: the store, its worker, and the
//! worker's counters, found through a process-wide registry keyed by canonical path.
//!
//! LMDB forbids opening one environment twice in a process, so the registry hands every handle on a directory the same
//! [`Shared`]. The worker holds only a `Weak<Store>`; dropping the last `Shared` stops and
//! joins it, closes the store, and only then frees the directory's slot, so an opener waiting
//! for the slot never meets an environment that is still open.
//!
//! In a forked child the registry still lists the parent's stores: an entry remembers the
//! fork count it was made at, and an older one is closed (without writing) and replaced, so
//! that the child opens the dict anew. Dropping a parent's `Shared` in the child neither
//! joins the parent's worker, which does not exist there, nor writes.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Once, PoisonError, Weak};
use std::time::Duration;

use crate::background::{self, Counters, Worker, WorkerConfig};
use crate::error::{Error, Result};
use crate::store::{self, Compacted, Store, StoreConfig, fork_count, io_error};

/// A directory's `Shared`, with the fork count of the process that registered it.
type Entry = (u64, Weak<Shared>);

static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Entry>>> = LazyLock::new(Mutex::default);

/// Stores the access times of every store still open when the process exits normally
/// (returning from `main`, or `std::process::exit`). A store held in a `static` (every
/// `#[memoize]` function's) is never dropped, so a short process would otherwise never store
/// the accesses it made, and expiry would remove results it reads every day. An abnormal exit
/// (`kill -9`, an abort) loses what was recorded since the last flush (`flush_interval`).
extern "C" fn flush_at_exit() {
    // Nothing may unwind into the C runtime.
    let _ = std::panic::catch_unwind(|| {
        // Another thread may hold the registry for good at exit: then nothing is flushed.
        let Ok(registry) = REGISTRY.try_lock() else {
            return;
        };
        let forks = fork_count();
        let open: Vec<Arc<Shared>> = registry
            .values()
            .filter(|(generation, _)| *generation == forks)
            .filter_map(|(_, weak)| weak.upgrade())
            .collect();
        drop(registry);
        for shared in &open {
            shared.flush_at_exit();
        }
        // Leaked, not dropped: a drop would close stores the rest of the exit may still use.
        std::mem::forget(open);
    });
}

/// Registers [`flush_at_exit`] once per process.
fn flush_stores_at_exit() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a plain function with the C runtime.
        if unsafe { libc::atexit(flush_at_exit) } != 0 {
            tracing::warn!(
                "cannot register the flush at exit; access times of stores open at \
                            exit are kept only up to the last periodic flush"
            );
        }
    });
}

/// The store of a directory, its worker and counters.
pub(crate) struct Shared {
    /// Taken only in `drop`, to close the store before the registry slot is freed.
    store: ManuallyDrop<Arc<Store>>,
    worker: Mutex<Option<Worker>>,
    counters: Arc<Counters>,
}

impl Deref for Shared {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Shared {
    /// The shared store of `path`, opened if no handle in this process has it open.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `path` is a regular file or can't be created (a variant of its
    /// own for a permission or a full disk); [`Error::NotFound`] for a read-only open of a
    /// missing dict; the store's errors at open.
    pub(crate) fn open(path: &Path, config: &StoreConfig) -> Result<Arc<Shared>> {
        let io_err = |source| io_error(path, source);
        if path.is_file() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "the path is a regular file",
                ),
            });
        }
        if config.read_only {
            if !path.is_dir() {
                return Err(Error::NotFound {
                    path: path.to_path_buf(),
                });
            }
        } else {
            std::fs::create_dir_all(path).map_err(io_err)?;
        }
        let canonical = path.canonicalize().map_err(io_err)?;
        flush_stores_at_exit();
        loop {
            let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
            let forks = fork_count();
            // A store the parent of this (forked) process opened: closed in this process,
            // without writing, so that it can be opened anew.
            if let Some((generation, inherited)) = registry.get(&canonical)
                && *generation != forks
            {
                if let Some(inherited) = inherited.upgrade() {
                    inherited.close_in_child();
                }
                registry.remove(&canonical);
                continue;
            }
            match registry.get(&canonical).map(|(_, weak)| weak.upgrade()) {
                Some(Some(shared)) => return Ok(shared),
                // The last handle is being dropped: wait until its environment is closed.
                Some(None) => {
                    drop(registry);
                    std::thread::sleep(Duration::from_millis(1));
                }
                None => {
                    let store = Arc::new(Store::open(&canonical, config)?);
                    let shared = Arc::new(Shared {
                        store: ManuallyDrop::new(store),
                        worker: Mutex::default(),
                        counters: Arc::default(),
                    });
                    registry.insert(canonical, (forks, Arc::downgrade(&shared)));
                    return Ok(shared);
                }
            }
        }
    }

    /// Compacts the dict in `path` (see `store::compact`) while no handle of this process has
    /// it open, and none can open it until it is done.
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] when a handle of this process or another process has it open;
    /// [`Error::NotFound`] when `path` holds no dict; those of the copy.
    pub(crate) fn compact(path: &Path, config: &StoreConfig) -> Result<Compacted> {
        let canonical = path.canonicalize().map_err(|_| Error::NotFound {
            path: path.to_path_buf(),
        })?;
        let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let forks = fork_count();
        if registry
            .get(&canonical)
            .is_some_and(|(generation, weak)| *generation == forks && weak.strong_count() > 0)
        {
            return Err(Error::InUse {
                path: canonical,
                by: "in this process",
            });
        }
        let compacted = store::compact(&canonical, config);
        drop(registry);
        compacted
    }

    /// Starts the directory's worker, unless it has one: the first writable handle's settings
    /// decide. A read-only handle starts none (it stores nothing).
    pub(crate) fn start_worker(&self, config: WorkerConfig) {
        if config.read_only {
            return;
        }
        let mut slot = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = background::start(&self.store, &self.counters, config);
            if slot.is_some() {
                self.store.keep_reads();
            }
        }
    }

    /// What the worker and the sweeps counted.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.store.alive().is_err() {
            // A parent's store, in a forked child: its worker thread does not exist here, and
            // its registry slot is replaced by the next open. Nothing is joined or written.
            if let Some(worker) = self
                .worker
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                std::mem::forget(worker);
            }
            self.store.close_in_child();
            return;
        }
        let path = self.store.path().to_path_buf();
        self.store.close_soon();
        if let Some(worker) = self
            .worker
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            worker.stop();
        }
        // SAFETY: `store` is not used after this; the worker, the only other holder of the
        // store, was joined above, so this drops the last reference and closes LMDB's
        // environment before the slot is freed below.
        drop(unsafe { ManuallyDrop::take(&mut self.store) });
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        // While a dead entry is present no new store is registered at this path, so a dead
        // entry at our path is ours.
        if registry
            .get(&path)
            .is_some_and(|(_, w)| w.strong_count() == 0)
        {
            registry.remove(&path);
        }
    }
}
