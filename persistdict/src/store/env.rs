//! The store's environment: opening and closing LMDB, the read and write runner, map growth.
//!
//! Invariants:
//! - Every transaction holds `resize` shared; changing the map size holds it exclusively, as
//!   LMDB requires that no transaction of this process is active during `mdb_env_set_mapsize`.
//! - A write transaction begins and commits on one OS thread (heed issue 339: a write txn
//!   committed on another thread deadlocks the next one). Writes are closures, so `MapFull`
//!   is handled by abort, grow, replay.
//! - One `Store` per directory per process: LMDB forbids opening one environment twice in a
//!   process (heed answers `EnvAlreadyOpened`). The registry above this folder
//!   (`shared.rs`) keeps that true.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, MdbError, WithoutTls};

use super::atime::Pending;
use crate::commits::QuietCommits;
use crate::error::{Error, KeyBytes, Result};
use crate::options::Durability;

pub(super) type Db = Database<'static, Bytes, Bytes>;

/// Refuses a data file that stays empty: LMDB would silently start a new database in it, and
/// an empty `data.mdb` is a damaged or truncated dict, not a new one. While another process
/// creates a dict the file is empty for a moment (until LMDB writes its first pages), hence
/// the short wait before deciding.
fn refuse_empty_data_file(path: &Path) -> Result<()> {
    let data = path.join("data.mdb");
    let is_empty = || std::fs::metadata(&data).is_ok_and(|m| m.is_file() && m.len() == 0);
    for _ in 0..20 {
        if !is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(Error::NotADict {
        path: path.to_path_buf(),
        source: "the data file `data.mdb` is empty; if a process died while creating this \
                 dict, remove the directory"
            .into(),
    })
}

/// What a store is opened with.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    pub(crate) map_size: usize,
    pub(crate) durability: Durability,
    pub(crate) max_readers: u32,
    /// Keys whose encoding is longer than this are stored under a digest (see `slot.rs`).
    /// Every handle on the store uses the same: the settings check at open refuses another.
    pub(crate) key_size_limit: usize,
}

/// The databases of a dict's environment.
pub(crate) struct Store {
    env: ManuallyDrop<Env<WithoutTls>>,
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
    resize: RwLock<()>,
    path: PathBuf,
    durability: Durability,
    /// See [`StoreConfig::key_size_limit`].
    pub(super) key_size_limit: usize,
    /// Access times recorded by reads and not yet stored.
    pub(super) atimes: Mutex<Pending>,
    /// Our commits that stored only access times, which caches need not account for.
    quiet: Arc<QuietCommits>,
    /// The key-order setting (`table.rs`) after our last commit, so that our next write
    /// transaction, if nobody committed in between, need not read it:
    /// `id << 1 | (setting == 1)`, or 0 if not known.
    pub(super) key_order_after: AtomicU64,
    /// Set when the last handle is gone: chunked work stops between chunks.
    closing: AtomicBool,
}

thread_local! {
    /// Stores on which this thread holds `resize` shared (so nested reads don't re-lock), and
    /// whether it holds a write transaction there.
    static HELD: RefCell<Vec<(usize, bool)>> = const { RefCell::new(Vec::new()) };
}

/// Marks a store as used by this thread for the guard's lifetime.
struct Held<'s> {
    _lock: Option<std::sync::RwLockReadGuard<'s, ()>>,
    id: usize,
    pushed: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.pushed {
            HELD.with(|h| {
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
    pub(crate) fn open(path: &Path, options: &StoreConfig) -> Result<Store> {
        refuse_empty_data_file(path)?;
        let mut flags = EnvFlags::empty();
        if options.durability == Durability::Eventual {
            flags |= EnvFlags::NO_SYNC;
        }
        let mut env_options = EnvOpenOptions::new().read_txn_without_tls();
        env_options
            .map_size(options.map_size)
            .max_dbs(8)
            .max_readers(options.max_readers);
        // SAFETY: the flags are plain LMDB flags; NO_SYNC's durability trade-off is the
        // documented meaning of `Durability::Eventual`.
        unsafe { env_options.flags(flags) };
        // SAFETY: LMDB's rules for a memory-mapped file: this registry opens each directory
        // at most once per process, and we never use NO_LOCK, so LMDB's lock file keeps other
        // processes coherent.
        let env = unsafe { env_options.open(path) }.map_err(|source| Error::NotADict {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        // Readers of processes that died keep their slot until cleared.
        env.clear_stale_readers().map_err(storage)?;
        let wtxn = env.write_txn().map_err(storage)?;
        let (entries, hashed, order, info, quarantine) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                Ok(CommitOrAbort::<_, ()>::Commit((
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("entries"))?,
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("hashed"))?,
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("order"))?,
                    opener.create_database::<Str, Bytes>(wtxn, Some("info"))?,
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("quarantine"))?,
                )))
            })
            .map_err(storage)?
            .unwrap_commit();
        Ok(Store {
            env: ManuallyDrop::new(env),
            entries,
            hashed,
            order,
            info,
            quarantine,
            resize: RwLock::default(),
            path: path.to_path_buf(),
            durability: options.durability,
            key_size_limit: options.key_size_limit,
            atimes: Mutex::default(),
            quiet: Arc::default(),
            key_order_after: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        })
    }

    /// The canonical directory of the store.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// Takes `resize` shared unless this thread already holds it.
    fn hold(&self, writing: bool) -> Result<Held<'_>> {
        let id = self.id();
        let state = HELD.with(|h| h.borrow().iter().rev().find(|(i, _)| *i == id).map(|x| x.1));
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
                let lock = self.resize.read().unwrap_or_else(PoisonError::into_inner);
                HELD.with(|h| h.borrow_mut().push((id, writing)));
                Ok(Held {
                    _lock: Some(lock),
                    id,
                    pushed: true,
                })
            }
        }
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T>) -> Result<T> {
        self.read_at(|r, _| f(r))
    }

    /// Runs `f` in a read transaction, with the id of the snapshot it reads.
    pub(crate) fn read_at<T>(&self, f: impl FnOnce(&Reader<'_>, u64) -> Result<T>) -> Result<T> {
        loop {
            let held = self.hold(false)?;
            match self.env.read_txn() {
                Ok(txn) => {
                    let id = txn.id() as u64;
                    return f(
                        &Reader {
                            store: self,
                            txn: &txn,
                        },
                        id,
                    );
                }
                // Only a thread that took the lock itself can wait for the exclusive one.
                Err(heed::Error::Mdb(MdbError::MapResized)) if held.pushed => {
                    drop(held);
                    self.adopt_map_size()?;
                }
                Err(e) => return Err(storage(e)),
            }
        }
    }

    /// Runs `f` in a write transaction and commits it. `f` runs again from the start if the
    /// map had to grow, so it must not have effects outside the transaction.
    pub(crate) fn write<T>(&self, f: impl FnMut(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        self.write_as(f).map(|(value, _)| value)
    }

    /// [`write`](Self::write) for closures with their own error type; also returns the id of
    /// the committed transaction, or 0 if `f` wrote nothing and nothing was committed.
    ///
    /// A transaction that wrote nothing is aborted rather than committed: LMDB would not give
    /// it a new id, so its id could be taken by another process's next commit, and a cache that
    /// accounted for ours under that id would miss theirs.
    pub(crate) fn write_as<T, E: From<Error>>(
        &self,
        mut f: impl FnMut(&mut WriteTxn<'_>) -> Result<T, E>,
    ) -> Result<(T, u64), E> {
        loop {
            let held = self.hold(true)?;
            let txn = match self.env.write_txn() {
                Ok(txn) => txn,
                Err(heed::Error::Mdb(MdbError::MapResized)) => {
                    drop(held);
                    self.adopt_map_size()?;
                    continue;
                }
                Err(e) => return Err(storage(e).into()),
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
                Ok(value) => match (w.txn.id() as u64, w.key_order, w.txn.commit()) {
                    (id, key_order, Ok(())) => {
                        self.key_order_committed(id, key_order);
                        return Ok((value, id));
                    }
                    (_, _, Err(heed::Error::Mdb(MdbError::MapFull))) => {}
                    (_, _, Err(e)) => return Err(storage(e).into()),
                },
                Err(e) if !w.map_full => return Err(e),
                Err(_) => drop(w),
            }
            drop(held);
            self.grow_map()?;
        }
    }

    /// Doubles the map.
    fn grow_map(&self) -> Result<()> {
        let _exclusive = self.resize.write().unwrap_or_else(PoisonError::into_inner);
        let current = self.env.info().map_size;
        let new_size = current.checked_mul(2).ok_or_else(|| Error::MapExhausted {
            path: self.path.clone(),
        })?;
        tracing::debug!(path = %self.path.display(), new_size, "growing the map");
        // SAFETY: every transaction of this process holds `resize` shared, and we hold it
        // exclusively, so none is active.
        unsafe { self.env.resize(new_size) }.map_err(storage)?;
        Ok(())
    }

    /// Adopts the map size another process set.
    fn adopt_map_size(&self) -> Result<()> {
        let _exclusive = self.resize.write().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: as in `grow_map`. Size 0 makes LMDB adopt the size recorded in the file.
        unsafe { self.env.resize(0) }.map_err(storage)?;
        Ok(())
    }

    /// The id of the last committed transaction, by any process (3 ns: reads shared memory).
    pub(crate) fn last_txn_id(&self) -> u64 {
        self.env.info().last_txn_id as u64
    }

    /// Bytes the data file takes on disk.
    pub(crate) fn disk_size(&self) -> Result<u64> {
        self.env.real_disk_size().map_err(storage)
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

    /// The store's durability.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// Frees the reader slots of processes that died holding a read transaction; a dead
    /// reader would otherwise keep every page freed after its snapshot from being reused.
    pub(crate) fn clear_stale_readers(&self) -> Result<usize> {
        self.env.clear_stale_readers().map_err(storage)
    }

    /// Syncs the data file to disk.
    pub(crate) fn sync(&self) -> Result<()> {
        self.env.force_sync().map_err(storage)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The last handle is gone (and the worker stopped): store what only memory holds.
        if let Err(error) = self.flush_atimes() {
            tracing::warn!(path = %self.path.display(), %error, "access times not stored at close");
        }
        if self.durability == Durability::Eventual
            && let Err(error) = self.env.force_sync()
        {
            tracing::warn!(path = %self.path.display(), %error, "sync at close failed");
        }
        // SAFETY: `env` is not used after this point; the other fields hold no reference to it.
        let env = unsafe { ManuallyDrop::take(&mut self.env) };
        let closing = env.clone().prepare_for_closing();
        // The environment is closed when this returns, so that the registry can free the
        // directory's slot after it (an opener waiting on the slot then never meets heed's
        // `EnvAlreadyOpened`). No other clone of `env` exists, so dropping it closes it.
        drop(env);
        closing.wait();
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
        result.map_err(storage)
    }
}
