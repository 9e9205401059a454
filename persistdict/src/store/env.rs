//! The store's environment: opening and closing LMDB, the read and write runner, map growth.
//!
//! Invariants:
//! - Every transaction holds `resize` shared (its thread's stripe of it, so that readers don't
//!   share a lock's cache line); changing the map size holds every stripe exclusively, with no
//!   read transaction kept (`pool.rs`), as LMDB requires that no transaction of this process
//!   is active during `mdb_env_set_mapsize`.
//! - `env` is boxed, so that the read transactions kept in `pool`, which borrow it, stay valid
//!   wherever the store moves; they are ended before it is dropped.
//! - A write transaction begins and commits on one OS thread (heed issue 339: a write txn
//!   committed on another thread deadlocks the next one). Writes are closures, so `MapFull`
//!   is handled by abort, grow, replay.
//! - One `Store` per directory per process: LMDB forbids opening one environment twice in a
//!   process (heed answers `EnvAlreadyOpened`). The registry above this folder
//!   (`shared.rs`) keeps that true.
//! - LMDB forbids using an environment across `fork()`. A store remembers how many times the
//!   process had forked when it was opened (counted by an at-fork handler, [`FORKS`]); in a
//!   child every operation on it is [`Error::Forked`] before it touches LMDB, and dropping it
//!   there never writes.
//! - Durability is a choice of each commit: the environment's `NO_SYNC` flag is set for the
//!   commit about to be made, while its write transaction serialises such changes.

use std::cell::{RefCell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use heed::types::{Bytes, Str};
use heed::{Database, Env, EnvFlags, FlagSetMode, MdbError, WithoutTls};

use super::atime::Pending;
use super::files;
use super::open::{
    FORKS, create_databases, fork_count, open_databases, open_env, open_read_only, os_code,
};
use super::pool::Pool;
use crate::clock::Clock;
use crate::commits::QuietCommits;
use crate::error::{Error, KeyBytes, Result};
use crate::options::Durability;
use crate::stripe::Striped;

pub(super) type Db = Database<'static, Bytes, Bytes>;

/// What a store is opened with.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    pub(crate) map_size: usize,
    pub(crate) max_readers: u32,
    /// Open for reading only: nothing is created, and no write is made.
    pub(crate) read_only: bool,
    /// The time of the access times stored when the store closes.
    pub(crate) clock: Clock,
    /// Keys whose encoding is longer than this are stored under a digest (see `slot.rs`).
    /// Every handle on the store uses the same: the settings check at open refuses another.
    pub(crate) key_size_limit: usize,
    /// What a new dict stores in `info` (`Settings::initial`), written in the commit that
    /// creates its databases, so that creating a dict costs one durable commit.
    pub(crate) initial_settings: Vec<(String, Vec<u8>)>,
}

/// The databases of a dict's environment.
pub(crate) struct Store {
    /// Dropped early only in a forked child (see [`close_in_child`](Self::close_in_child));
    /// otherwise when the store is.
    env: UnsafeCell<ManuallyDrop<Box<Env<WithoutTls>>>>,
    /// Read transactions kept between reads (`pool.rs`).
    pool: Pool,
    /// Set once `env` is dropped.
    env_closed: AtomicBool,
    /// [`FORKS`] when the store was opened.
    pub(super) generation: u64,
    /// Records under raw keys.
    pub(super) entries: Db,
    /// Buckets of records under digests of keys that can't be stored raw.
    pub(super) hashed: Db,
    /// Insertion order: big-endian sequence number -> full encoded key.
    pub(super) order: Db,
    /// Settings fixed at creation (format, key size limit, codec names) and flags.
    pub(super) info: Database<'static, Str, Bytes>,
    /// Records moved aside by the integrity check: big-endian sequence number -> origin.
    pub(super) quarantine: Db,
    /// Which process computes a key now (`lease.rs`); `None` in a dict made by an older
    /// version and opened read-only.
    pub(super) leases: Option<Db>,
    resize: Striped<RwLock<()>>,
    path: PathBuf,
    /// See [`read_only`](Self::read_only).
    read_only: bool,
    /// See [`StoreConfig::clock`].
    clock: Clock,
    /// Whether LMDB's `NO_SYNC` flag is set now.
    no_sync: AtomicBool,
    /// Set by a commit made without a sync, cleared by [`sync`](Self::sync).
    unsynced: AtomicBool,
    /// Snapshot walks open now: the map can't change size while one is.
    pub(super) snapshots: Arc<AtomicUsize>,
    /// See [`StoreConfig::key_size_limit`].
    pub(super) key_size_limit: usize,
    /// Access times recorded by reads and not yet stored, each thread in its stripe.
    pub(super) atimes: Striped<Mutex<Pending>>,
    /// Our commits that stored only access times, which caches need not account for.
    quiet: Arc<QuietCommits>,
    /// The key-order setting (`table.rs`) after our last commit, so that our next write
    /// transaction, if nobody committed in between, need not read it:
    /// `id << 1 | (setting == 1)`, or 0 if not known.
    pub(super) key_order_after: AtomicU64,
    /// Set when the last handle is gone: chunked work stops between chunks.
    closing: AtomicBool,
}

// SAFETY: `env` is the only field that isn't `Sync`, being in an `UnsafeCell`. It is read
// through shared references, and dropped through the cell only by `close_in_child` and
// `Drop`: the first in a forked child, where every other access is refused before it reaches
// `env` (the generation check in `env()`), and once (`env_closed`); the second when no
// reference is left.
unsafe impl Sync for Store {}

thread_local! {
    /// Stores on which this thread holds `resize` shared (so nested reads don't re-lock), and
    /// whether it holds a write transaction there.
    static HELD: RefCell<Vec<(usize, bool)>> = const { RefCell::new(Vec::new()) };
}

/// Marks a store as used by this thread for the guard's lifetime.
pub(super) struct Held<'s> {
    _lock: Option<std::sync::RwLockReadGuard<'s, ()>>,
    id: usize,
    /// Whether this guard took the lock itself (only such a thread may wait for the exclusive
    /// one).
    pub(super) pushed: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.pushed {
            // During the thread's exit (the flush at process exit) the list may be gone.
            let _ = HELD.try_with(|h| {
                let mut h = h.borrow_mut();
                if let Some(i) = h.iter().rposition(|(id, _)| *id == self.id) {
                    h.remove(i);
                }
            });
        }
    }
}

impl Store {
    /// Opens (or creates) the environment in directory `path`, which exists and is
    /// canonical. Only the registry (`shared.rs`) calls this, once per directory.
    pub(crate) fn open(path: &Path, config: &StoreConfig) -> Result<Store> {
        let generation = fork_count();
        let (env, read_only) = if config.read_only {
            if !path.join("data.mdb").is_file() {
                return Err(Error::NotFound {
                    path: path.to_path_buf(),
                });
            }
            if files::creation_cut_short(path) {
                return Err(Error::NotADict {
                    path: path.to_path_buf(),
                    source: "its creation was cut short; opening it writable starts it afresh"
                        .into(),
                });
            }
            // Opened writable where the process may write, so that writable handles opened
            // later in this process share it; the handle itself never writes.
            let writable = files::prepare(path, config.max_readers, false)
                .and_then(|()| open_env(path, config, EnvFlags::empty()));
            match writable {
                Err(Error::PermissionDenied { .. }) => (open_read_only(path, config)?, true),
                other => (other?, false),
            }
        } else {
            (open_writable(path, config)?, false)
        };
        let (entries, hashed, order, info, quarantine, leases) = if config.read_only {
            open_databases(&env).map_err(|source| Error::NotADict {
                path: path.to_path_buf(),
                source,
            })?
        } else {
            // Readers of processes that died keep their slot until cleared.
            env.clear_stale_readers().map_err(storage)?;
            create_databases(&env, &config.initial_settings)?
        };
        Ok(Store {
            env: UnsafeCell::new(ManuallyDrop::new(Box::new(env))),
            pool: Pool::new(),
            env_closed: AtomicBool::new(false),
            generation,
            entries,
            hashed,
            order,
            info,
            quarantine,
            leases,
            resize: Striped::default(),
            path: path.to_path_buf(),
            read_only,
            clock: config.clock.clone(),
            no_sync: AtomicBool::new(false),
            unsynced: AtomicBool::new(false),
            snapshots: Arc::default(),
            key_size_limit: config.key_size_limit,
            atimes: Striped::default(),
            quiet: Arc::default(),
            key_order_after: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        })
    }

    /// The environment, unless this process is a fork of the one that opened it.
    pub(super) fn env(&self) -> Result<&Env<WithoutTls>> {
        self.alive()?;
        // SAFETY: see `impl Sync for Store`: in the process that opened the store, `env` is
        // dropped only by `Drop`.
        Ok(unsafe { &*self.env.get() })
    }

    /// [`Error::Forked`] in a process forked after the store was opened.
    pub(crate) fn alive(&self) -> Result<()> {
        if FORKS.load(Ordering::Relaxed) == self.generation {
            Ok(())
        } else {
            Err(Error::Forked {
                path: self.path.clone(),
            })
        }
    }

    /// In a forked child, closes the inherited environment without writing anything, so that
    /// the dict can be opened again in the child (LMDB allows one environment per path per
    /// process). Does nothing in the process that opened the store.
    pub(crate) fn close_in_child(&self) {
        if self.alive().is_ok() || self.env_closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: see `impl Sync for Store`: in a child no access reaches `env` (`env()`
        // refuses them), and `env_closed` lets this run once. Closing unmaps the child's copy
        // of the files and closes its descriptors; it writes nothing, and the reader slots it
        // would free are those of the child's pid, which has none.
        unsafe { ManuallyDrop::drop(&mut *self.env.get()) };
    }

    /// Stores the access times recorded in memory and syncs: what closing does, for a store
    /// that stays open until the process exits. Failures are logged.
    pub(crate) fn flush_at_exit(&self) {
        if self.read_only || self.alive().is_err() {
            return;
        }
        if let Err(error) = self
            .flush_atimes(self.clock.now_ms())
            .and_then(|_| self.sync())
        {
            tracing::warn!(path = %self.path.display(), %error, "access times not stored at exit");
        }
    }

    /// Whether LMDB's environment is open for reading only (the process may not write the
    /// dict's files).
    pub(crate) fn read_only(&self) -> bool {
        self.read_only
    }

    /// The canonical directory of the store.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// Takes `resize` shared unless this thread already holds it.
    pub(super) fn hold(&self, writing: bool) -> Result<Held<'_>> {
        self.alive()?;
        let id = self.id();
        // During the thread's exit the list is gone: nothing is nested then.
        let state = HELD
            .try_with(|h| h.borrow().iter().rev().find(|(i, _)| *i == id).map(|x| x.1))
            .unwrap_or(None);
        match state {
            Some(true) if writing => Err(Error::NestedTransaction),
            Some(_) if !writing => Ok(Held {
                _lock: None,
                id,
                pushed: false,
            }),
            // A write nested in a read of this thread (only reachable from an iterator's
            // callback) takes its own transaction; LMDB allows a read and a write per thread.
            _ => {
                let lock = self
                    .resize
                    .mine()
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                let pushed = HELD
                    .try_with(|h| h.borrow_mut().push((id, writing)))
                    .is_ok();
                Ok(Held {
                    _lock: Some(lock),
                    id,
                    pushed,
                })
            }
        }
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T>) -> Result<T> {
        self.read_at(|r, _| f(r))
    }

    /// Runs `f` in a read transaction, with the id of the snapshot it reads: the one this
    /// thread kept from its last read if nobody committed since (`pool.rs`), else a new one.
    pub(crate) fn read_at<T>(&self, f: impl FnOnce(&Reader<'_>, u64) -> Result<T>) -> Result<T> {
        let mut readers_full = false;
        loop {
            let held = self.hold(false)?;
            let env = self.env()?;
            let txn = match self.pool.take(self.last_txn_id()) {
                Some(txn) => Ok(txn),
                // SAFETY: the transaction borrows the boxed `env`, which stays where it is
                // until the store is dropped; a kept one is ended before that (`Drop`), and
                // one in use here ends before this returns.
                None => env.read_txn().map(|txn| unsafe {
                    std::mem::transmute::<
                        heed::RoTxn<'_, WithoutTls>,
                        heed::RoTxn<'static, WithoutTls>,
                    >(txn)
                }),
            };
            match txn {
                Ok(txn) => {
                    let id = txn.id() as u64;
                    let result = f(
                        &Reader {
                            store: self,
                            txn: &txn,
                        },
                        id,
                    );
                    // Given back while `resize` is held: a resize finds it in the pool.
                    self.pool.give_back(txn);
                    drop(held);
                    return result;
                }
                // Only a thread that took the lock itself can wait for the exclusive one.
                Err(heed::Error::Mdb(MdbError::MapResized)) if held.pushed => {
                    drop(held);
                    self.adopt_map_size()?;
                }
                // The kept transactions hold reader slots: give them up and try once more.
                Err(heed::Error::Mdb(MdbError::ReadersFull)) if !readers_full => {
                    readers_full = true;
                    self.pool.sweep(self.last_txn_id(), true);
                }
                Err(e) => return Err(storage(e)),
            }
        }
    }

    /// Lets threads keep their read transaction between reads (`pool.rs`): called once a
    /// worker runs, whose ticks call [`end_old_reads`](Self::end_old_reads).
    pub(crate) fn keep_reads(&self) {
        self.pool.enable();
    }

    /// Ends the read transactions kept for reads that other processes' commits made old, so
    /// that they don't keep freed pages from being reused.
    pub(crate) fn end_old_reads(&self) {
        if self.alive().is_ok() {
            self.pool.sweep(self.last_txn_id(), false);
        }
    }

    /// Runs `f` in a write transaction and commits it without a sync (for the store's own
    /// upkeep: settings, expiry, repairs, access times). `f` runs again from the start if the
    /// map had to grow, so it must not have effects outside the transaction.
    pub(crate) fn write<T>(&self, f: impl FnMut(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        self.write_as(Durability::Eventual, f)
            .map(|(value, _)| value)
    }

    /// [`write`](Self::write) for closures with their own error type; also returns the id of
    /// the committed transaction, or 0 if `f` wrote nothing and nothing was committed.
    ///
    /// A transaction that wrote nothing is aborted rather than committed: LMDB would not give
    /// it a new id, so its id could be taken by another process's next commit, and a cache that
    /// accounted for ours under that id would miss theirs.
    ///
    /// The commit is synced to disk before this returns with [`Durability::Immediate`], and
    /// left to the OS with [`Durability::Eventual`] (see [`sync`](Self::sync)).
    pub(crate) fn write_as<T, E: From<Error>>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&mut WriteTxn<'_>) -> Result<T, E>,
    ) -> Result<(T, u64), E> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            }
            .into());
        }
        loop {
            let held = self.hold(true)?;
            let txn = match self.env()?.write_txn() {
                Ok(txn) => txn,
                Err(heed::Error::Mdb(MdbError::MapResized)) => {
                    drop(held);
                    self.adopt_map_size()?;
                    continue;
                }
                Err(e) => return Err(self.error(e).into()),
            };
            let mut w = WriteTxn {
                txn,
                store: self,
                map_full: false,
                wrote: false,
                next_seq: None,
                key_order: None,
                appending: false,
                record: Vec::new(),
            };
            match f(&mut w) {
                Ok(value) if !w.wrote => {
                    drop(w);
                    return Ok((value, 0));
                }
                Ok(value) => {
                    let (id, key_order) = (w.txn.id() as u64, w.key_order);
                    self.set_sync(durability)?;
                    match w.txn.commit() {
                        Ok(()) => {
                            // Every kept read transaction is older than this commit now.
                            self.pool.sweep(id, false);
                            self.key_order_committed(id, key_order);
                            if durability == Durability::Eventual {
                                self.unsynced.store(true, Ordering::Relaxed);
                            }
                            return Ok((value, id));
                        }
                        Err(heed::Error::Mdb(MdbError::MapFull)) => {}
                        Err(e) => return Err(self.error(e).into()),
                    }
                }
                Err(e) if !w.map_full => return Err(e),
                Err(_) => drop(w),
            }
            drop(held);
            self.grow_map()?;
        }
    }

    /// Sets LMDB's `NO_SYNC` flag for the commit about to be made with `durability`. Called
    /// only while this thread holds a write transaction.
    fn set_sync(&self, durability: Durability) -> Result<()> {
        let no_sync = durability == Durability::Eventual;
        if self.no_sync.load(Ordering::Relaxed) != no_sync {
            let mode = if no_sync {
                FlagSetMode::Enable
            } else {
                FlagSetMode::Disable
            };
            // SAFETY: `mdb_env_set_flags` must not run in two threads at once; it runs only
            // here, under the write transaction, which LMDB gives one thread at a time.
            unsafe { self.env()?.set_flags(EnvFlags::NO_SYNC, mode) }.map_err(storage)?;
            self.no_sync.store(no_sync, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The error for `error` from LMDB: a full disk is [`Error::NoSpace`].
    ///
    /// LMDB reports a short write as `EIO`, and a write the disk has room for only in part
    /// is short rather than failing with `ENOSPC`; so an `EIO` while the filesystem is (all
    /// but) full counts as a full disk too.
    pub(super) fn error(&self, error: heed::Error) -> Error {
        let full = match os_code(&error) {
            Some(libc::ENOSPC | libc::EDQUOT) => true,
            Some(libc::EIO) => files::nearly_full(&self.path),
            _ => false,
        };
        if full {
            Error::NoSpace {
                path: self.path.clone(),
            }
        } else {
            storage(error)
        }
    }

    /// Refuses to change the map's size while a snapshot walk is open.
    fn no_snapshot_open(&self) -> Result<()> {
        if self.snapshots.load(Ordering::Acquire) == 0 {
            Ok(())
        } else {
            Err(Error::SnapshotOpen {
                path: self.path.clone(),
            })
        }
    }

    /// Doubles the map.
    fn grow_map(&self) -> Result<()> {
        let _exclusive = self.exclusive();
        self.no_snapshot_open()?;
        let current = self.env()?.info().map_size;
        let new_size = current.checked_mul(2).ok_or_else(|| Error::MapExhausted {
            path: self.path.clone(),
        })?;
        tracing::debug!(path = %self.path.display(), new_size, "growing the map");
        // SAFETY: every transaction of this process holds `resize` shared, and we hold it
        // exclusively, with no read transaction kept, so none is active.
        unsafe { self.env()?.resize(new_size) }.map_err(storage)?;
        Ok(())
    }

    /// Every stripe of `resize`, held exclusively, with no read transaction kept.
    fn exclusive(&self) -> Vec<std::sync::RwLockWriteGuard<'_, ()>> {
        let held = self
            .resize
            .all()
            .map(|lock| lock.write().unwrap_or_else(PoisonError::into_inner))
            .collect();
        self.pool.sweep(0, true);
        held
    }

    /// Adopts the map size another process set.
    pub(super) fn adopt_map_size(&self) -> Result<()> {
        let _exclusive = self.exclusive();
        self.no_snapshot_open()?;
        // SAFETY: as in `grow_map`. Size 0 makes LMDB adopt the size recorded in the file.
        unsafe { self.env()?.resize(0) }.map_err(storage)?;
        Ok(())
    }

    /// The id of the last committed transaction, by any process (3 ns: reads shared memory);
    /// 0 in a forked child.
    pub(crate) fn last_txn_id(&self) -> u64 {
        self.env().map_or(0, |env| env.info().last_txn_id as u64)
    }

    /// Bytes the data file takes on disk.
    pub(crate) fn disk_size(&self) -> Result<u64> {
        self.env()?.real_disk_size().map_err(storage)
    }

    /// The store's list of our commits that changed no value, which caches share.
    pub(crate) fn quiet_commits(&self) -> &Arc<QuietCommits> {
        &self.quiet
    }

    /// Tells long chunked work (sweeps, checks) to stop between chunks: the last handle is
    /// gone.
    pub(crate) fn close_soon(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether [`close_soon`](Self::close_soon) was called.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Frees the reader slots of processes that died holding a read transaction; a dead
    /// reader would otherwise keep every page freed after its snapshot from being reused.
    pub(crate) fn clear_stale_readers(&self) -> Result<usize> {
        if self.read_only {
            return Ok(0);
        }
        self.env()?.clear_stale_readers().map_err(storage)
    }

    /// Syncs commits made without a sync to disk.
    pub(crate) fn sync(&self) -> Result<()> {
        let env = self.env()?;
        if self.unsynced.swap(false, Ordering::AcqRel)
            && let Err(e) = env.force_sync()
        {
            self.unsynced.store(true, Ordering::Relaxed);
            return Err(self.error(e));
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.alive().is_err() {
            // In a forked child: nothing of the parent's is written, nor waited for.
            self.close_in_child();
            return;
        }
        // The last handle is gone (and the worker stopped): store what only memory holds.
        if let Err(error) = self.flush_atimes(self.clock.now_ms()) {
            tracing::warn!(path = %self.path.display(), %error, "access times not stored at close");
        }
        if let Err(error) = self.sync() {
            tracing::warn!(path = %self.path.display(), %error, "sync at close failed");
        }
        self.pool.sweep(0, true);
        // SAFETY: `env` is not used after this point; the other fields hold no reference to
        // it, the last kept read transaction having just ended.
        let env = *unsafe { ManuallyDrop::take(self.env.get_mut()) };
        let closing = env.clone().prepare_for_closing();
        // The environment is closed when this returns, so that the registry can free the
        // directory's slot after it (an opener waiting on the slot then never meets heed's
        // `EnvAlreadyOpened`). No other clone of `env` exists, so dropping it closes it.
        drop(env);
        closing.wait();
    }
}

/// How long an opener keeps trying while another process sets the dict up (or died doing so,
/// leaving a data file with no committed page).
const SETUP_WAIT: Duration = Duration::from_secs(10);

/// Opens LMDB's environment in `path` for writing, after preparing its files.
///
/// LMDB sets a new environment up in the one process that takes its liveness lock first;
/// the others wait for that lock and then read what it wrote. If that process died before
/// it wrote anything, they find nothing set up and fail; so does an opener that meets a
/// creation cut short. While the data file still holds no committed page, the open is tried
/// again, until one opener finds itself first and starts the dict afresh.
fn open_writable(path: &Path, config: &StoreConfig) -> Result<Env<WithoutTls>> {
    let deadline = Instant::now() + SETUP_WAIT;
    loop {
        files::prepare(path, config.max_readers, true)?;
        match open_env(path, config, EnvFlags::empty()) {
            Err(Error::NotADict { .. })
                if files::creation_cut_short(path) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A corrupt-record error for the record stored under `key`.
pub(crate) fn corrupt(key: &[u8], reason: &'static str) -> Error {
    Error::Corrupt {
        key: KeyBytes::new(key),
        reason,
    }
}

/// An error of LMDB's, as the crate reports it: heed's type stays inside this folder.
pub(crate) fn storage(error: heed::Error) -> Error {
    Error::Storage {
        source: Box::new(error),
    }
}

/// A read transaction (or a write transaction read through): what the store holds as of one
/// snapshot.
pub(crate) struct Reader<'t> {
    pub(super) store: &'t Store,
    pub(super) txn: &'t heed::RoTxn<'t>,
}

impl Reader<'_> {
    /// The store read.
    pub(crate) fn store(&self) -> &Store {
        self.store
    }
}

/// An open write transaction on a store.
pub(crate) struct WriteTxn<'s> {
    pub(super) txn: heed::RwTxn<'s>,
    pub(super) store: &'s Store,
    /// Set when an operation hit `MapFull`: the transaction is then replayed in a larger map
    /// whatever error the caller's closure turned it into.
    map_full: bool,
    /// Set when a change reached LMDB. Every change goes through [`check`](Self::check), and
    /// each one (a put, a delete of a key that is there, a clear) marks LMDB's transaction
    /// dirty, so a commit with `wrote` set takes a new transaction id.
    wrote: bool,
    /// See `next_seq` (`table.rs`).
    pub(super) next_seq: Option<u64>,
    /// The key-order setting (`table.rs`) as this transaction left it (`true`: 1); read on first
    /// need.
    pub(super) key_order: Option<bool>,
    /// Set once a new key of this transaction went to the end of `entries` while the key order
    /// held: later new keys are tried with `MDB_APPEND` first. Not the first one: an append
    /// leaves the last page full and splits off a page of one entry, and with that layout each
    /// commit of a single insert wrote its pages in more pieces (6.8 system calls instead of
    /// 5.5) and took 5% longer.
    pub(super) appending: bool,
    /// The buffer records are built in, kept for the transaction's next put.
    pub(super) record: Vec<u8>,
}

impl WriteTxn<'_> {
    /// Reads through the write transaction, seeing its own writes.
    pub(crate) fn as_read(&self) -> Reader<'_> {
        Reader {
            store: self.store,
            txn: &self.txn,
        }
    }

    /// Notes what a change to LMDB did: see [`wrote`](Self::wrote) and
    /// [`map_full`](Self::map_full). Every change of a write transaction goes through here.
    pub(super) fn check<T>(&mut self, result: heed::Result<T>) -> Result<T> {
        match result {
            Ok(_) => self.wrote = true,
            Err(heed::Error::Mdb(MdbError::MapFull)) => self.map_full = true,
            Err(_) => {}
        }
        result.map_err(|e| self.store.error(e))
    }
}
