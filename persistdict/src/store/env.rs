//! One shared LMDB environment per directory per process, and every LMDB operation the dict
//! performs.
//!
//! LMDB forbids opening one environment twice in a process (heed answers
//! `EnvAlreadyOpened`), so a process-wide registry hands every handle on a directory the same
//! [`Store`]; the environment closes when the last handle is dropped.
//!
//! Invariants:
//! - Every transaction holds `resize` shared; changing the map size holds it exclusively, as
//!   LMDB requires that no transaction of this process is active during `mdb_env_set_mapsize`.
//! - A write transaction begins and commits on one OS thread (heed issue 339: a write txn
//!   committed on another thread deadlocks the next one). Writes are closures, so `MapFull`
//!   is handled by abort, grow, replay.

use std::cell::RefCell;
use std::cmp;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, MdbError, WithoutTls};

use crate::atime::Pending;
use crate::cache::QuietCommits;
use crate::error::{Error, KeyBytes, Result};
use crate::key::{Slot, digest_bytes};
use crate::record::{self, Header, Record};

/// The setting that says whether `entries` in key order lists every entry in insertion order
/// (`docs/format.md`): one byte, 1 if it does, 0 if that is not known. While it is 1, and
/// `entries` holds as many records as `order` holds keys, a walk reads `entries` alone instead
/// of `order` and then `entries`.
///
/// Invariant: the setting is 1 only while `hashed` is empty and the records of `entries`, in
/// key order, have increasing sequence numbers, as far as our writers go: removing or
/// overwriting an entry keeps that, and so does a new key that sorts after every stored one
/// (checked for a transaction's first new key, and by `MDB_APPEND`, which LMDB refuses
/// otherwise, for the later ones); any other new entry (a key that sorts lower, a hashed key,
/// a record put back in the order by the integrity check) sets it to 0.
/// Only emptying the dict sets it to 1. Records that damage or a foreign writer left in
/// `entries` unlisted make the two counts differ.
const INFO_KEY_ORDER: &str = "key_order";

/// See [`Store::values_of`]: in a profile of walks over 100,000 entries of about 140 bytes, a
/// forward step through `entries` took about 45 ns, a lookup of a random key 0.6 to 1 µs.
const SCAN_PER_KEY: usize = 16;

/// The on-disk format this crate writes and reads (`docs/format.md`).
pub(crate) const FORMAT_VERSION: u32 = 1;

/// A read transaction (of either kind: write transactions can be read through too).
pub(crate) type ReadTxn<'t> = heed::RoTxn<'t>;
type Db = Database<'static, Bytes, Bytes>;

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
        source: heed::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the data file `data.mdb` is empty; if a process died while creating this dict, \
             remove the directory",
        )),
    })
}

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is on disk when it returns (LMDB's default: fsync per commit).
    #[default]
    Immediate,
    /// Commits are not synced; the OS writes them out, and [`flush`](crate::PersistDict::flush)
    /// or the background worker syncs. A process crash loses nothing committed; a power loss
    /// or OS crash can lose the last commits (and, on filesystems that reorder writes, LMDB
    /// documents that the file can be damaged). For caches, ~35x faster per write.
    Eventual,
}

/// Settings of the shared environment.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    pub(crate) map_size: usize,
    pub(crate) durability: Durability,
    pub(crate) max_readers: u32,
}

/// The databases of a dict's environment.
pub(crate) struct Store {
    env: ManuallyDrop<Env<WithoutTls>>,
    /// Records under raw keys.
    entries: Db,
    /// Buckets of records under digests of keys that can't be stored raw.
    hashed: Db,
    /// Insertion order: big-endian sequence number -> full encoded key.
    order: Db,
    /// Settings fixed at creation (format, key size limit, codec names) and flags.
    info: Database<'static, Str, Bytes>,
    /// Records moved aside by the integrity check: big-endian sequence number -> origin.
    quarantine: Db,
    resize: RwLock<()>,
    path: PathBuf,
    durability: Durability,
    /// The dict's key size limit, known once the first handle checked the settings.
    key_size_limit: OnceLock<usize>,
    /// Access times recorded by reads and not yet stored.
    atimes: Mutex<Pending>,
    /// Our commits that stored only access times, which caches need not account for.
    pub(crate) quiet: Arc<QuietCommits>,
    /// The setting [`INFO_KEY_ORDER`] after our last commit, so that our next write transaction,
    /// if nobody committed in between, need not read it: `id << 1 | (setting == 1)`, or 0 if
    /// not known.
    key_order_after: AtomicU64,
    /// Set when the last handle is gone: the worker stops between chunks.
    pub(crate) stopping: AtomicBool,
    /// What the background worker counted.
    pub(crate) counters: crate::background::Counters,
}

/// What the handles of a directory share: the store, and its worker. The worker holds only a
/// `Weak<Store>`; dropping the last `Shared` stops and joins it, so the store (and LMDB's
/// environment) closes in the thread that dropped the last handle.
pub(crate) struct Shared {
    store: Arc<Store>,
    pub(crate) worker: Mutex<Option<crate::background::Worker>>,
}

impl std::ops::Deref for Shared {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Shared {
    /// The store, for the worker to hold weakly.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.store.stopping.store(true, Ordering::Relaxed);
        if let Some(worker) = self
            .worker
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            worker.stop();
        }
    }
}

static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = LazyLock::new(Mutex::default);

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
    /// The shared store of `path`, opened if no handle in this process has it open.
    pub(crate) fn open(path: &Path, options: &StoreOptions) -> Result<Arc<Shared>> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.is_file() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "the path is a regular file",
            )));
        }
        std::fs::create_dir_all(path).map_err(io_err)?;
        let canonical = path.canonicalize().map_err(io_err)?;
        loop {
            let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
            match registry.get(&canonical).map(Weak::upgrade) {
                Some(Some(store)) => {
                    if store.durability != options.durability {
                        return Err(Error::InvalidOption {
                            option: "durability",
                            reason: format!(
                                "{} is already open in this process with {:?} durability",
                                canonical.display(),
                                store.durability
                            ),
                        });
                    }
                    return Ok(store);
                }
                // The last handle is being dropped: wait until its environment is closed.
                Some(None) => {
                    drop(registry);
                    std::thread::sleep(Duration::from_millis(1));
                }
                None => {
                    let store = Arc::new(Store::open_env(&canonical, options)?);
                    let shared = Arc::new(Shared {
                        store,
                        worker: Mutex::default(),
                    });
                    registry.insert(canonical, Arc::downgrade(&shared));
                    return Ok(shared);
                }
            }
        }
    }

    fn open_env(path: &Path, options: &StoreOptions) -> Result<Store> {
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
            source,
        })?;
        // Readers of processes that died keep their slot until cleared.
        env.clear_stale_readers()?;
        let wtxn = env.write_txn()?;
        let (entries, hashed, order, info, quarantine) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                Ok(CommitOrAbort::<_, ()>::Commit((
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("entries"))?,
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("hashed"))?,
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("order"))?,
                    opener.create_database::<Str, Bytes>(wtxn, Some("info"))?,
                    opener.create_database::<Bytes, Bytes>(wtxn, Some("quarantine"))?,
                )))
            })?
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
            key_size_limit: OnceLock::new(),
            atimes: Mutex::default(),
            quiet: Arc::default(),
            key_order_after: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            counters: crate::background::Counters::default(),
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
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTxn<'_>) -> Result<T>) -> Result<T> {
        self.read_at(|txn, _| f(txn))
    }

    /// Runs `f` in a read transaction, with the id of the snapshot it reads.
    pub(crate) fn read_at<T>(&self, f: impl FnOnce(&ReadTxn<'_>, u64) -> Result<T>) -> Result<T> {
        loop {
            let held = self.hold(false)?;
            match self.env.read_txn() {
                Ok(txn) => return f(&txn, txn.id() as u64),
                // Only a thread that took the lock itself can wait for the exclusive one.
                Err(heed::Error::Mdb(MdbError::MapResized)) if held.pushed => {
                    drop(held);
                    self.adopt_map_size()?;
                }
                Err(e) => return Err(e.into()),
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
                Err(e) => return Err(Error::from(e).into()),
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
                    (_, _, Err(e)) => return Err(Error::from(e).into()),
                },
                Err(e) if !w.map_full => return Err(e),
                Err(_) => drop(w),
            }
            drop(held);
            self.grow_map()?;
        }
    }

    /// Remembers the key-order setting after our commit `id`. A transaction that never
    /// consulted it (`None`) added no entry, and left it as it was.
    fn key_order_committed(&self, id: u64, holds: Option<bool>) {
        let Some(holds) = holds.or_else(|| self.key_order_left_by(id.wrapping_sub(1))) else {
            return;
        };
        self.key_order_after
            .store(id << 1 | u64::from(holds), Ordering::Relaxed);
    }

    /// The key-order setting as write transaction `txn` finds it, if our last commit was the
    /// one right before it.
    fn key_order_before(&self, txn: &ReadTxn<'_>) -> Option<bool> {
        self.key_order_left_by((txn.id() as u64).wrapping_sub(1))
    }

    /// The key-order setting as our commit `id` left it, if that is the last one remembered.
    fn key_order_left_by(&self, id: u64) -> Option<bool> {
        let after = self.key_order_after.load(Ordering::Relaxed);
        (after != 0 && after >> 1 == id).then_some(after & 1 == 1)
    }

    /// Doubles the map.
    fn grow_map(&self) -> Result<()> {
        let _exclusive = self.resize.write().unwrap_or_else(PoisonError::into_inner);
        let current = self.env.info().map_size;
        let new_size = current
            .checked_mul(2)
            .ok_or(Error::Storage(heed::Error::Mdb(MdbError::MapFull)))?;
        tracing::debug!(path = %self.path.display(), new_size, "growing the map");
        // SAFETY: every transaction of this process holds `resize` shared, and we hold it
        // exclusively, so none is active.
        unsafe { self.env.resize(new_size) }?;
        Ok(())
    }

    /// Adopts the map size another process set.
    fn adopt_map_size(&self) -> Result<()> {
        let _exclusive = self.resize.write().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: as in `grow_map`. Size 0 makes LMDB adopt the size recorded in the file.
        unsafe { self.env.resize(0) }?;
        Ok(())
    }

    /// The id of the last committed transaction, by any process (3 ns: reads shared memory).
    pub(crate) fn last_txn_id(&self) -> u64 {
        self.env.info().last_txn_id as u64
    }

    /// Bytes the data file takes on disk.
    pub(crate) fn disk_size(&self) -> Result<u64> {
        Ok(self.env.real_disk_size()?)
    }

    /// The key size limit, recorded by the first handle once the settings are checked.
    pub(crate) fn set_key_size_limit(&self, limit: usize) {
        let _ = self.key_size_limit.set(limit);
    }

    pub(crate) fn key_size_limit(&self) -> Option<usize> {
        self.key_size_limit.get().copied()
    }

    // ---- access times ------------------------------------------------------------------

    /// Records an access to `key` at `now`; stored by the next [`flush_atimes`](Self::flush_atimes).
    pub(crate) fn touch(&self, key: &[u8], now: u64) {
        self.pending().touch(key, now);
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.atimes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The access time of `key` recorded in memory and not yet stored.
    pub(crate) fn pending_atime(&self, key: &[u8]) -> Option<u64> {
        self.pending().get(key)
    }

    /// Stores the access times recorded in memory, in one write transaction; returns how many.
    pub(crate) fn flush_atimes(&self) -> Result<usize> {
        let Some(limit) = self.key_size_limit() else {
            return Ok(0);
        };
        let pending = self.pending().take();
        if pending.is_empty() {
            return Ok(0);
        }
        let result = self.write_as(|w| {
            for (key, t) in &pending {
                w.set_accessed(key, *t, limit)?;
            }
            Ok(pending.len())
        });
        match result {
            Ok((_, 0)) => {}
            Ok((_, id)) => self.quiet.record(id),
            Err(_) => {
                // Keep them for the next attempt.
                self.pending().restore(pending);
            }
        }
        result.map(|(stored, _)| stored)
    }

    /// The store's durability.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// Frees the reader slots of processes that died holding a read transaction; a dead
    /// reader would otherwise keep every page freed after its snapshot from being reused.
    pub(crate) fn clear_stale_readers(&self) -> Result<usize> {
        Ok(self.env.clear_stale_readers()?)
    }

    /// Syncs the data file to disk.
    pub(crate) fn sync(&self) -> Result<()> {
        Ok(self.env.force_sync()?)
    }

    // ---- settings ----------------------------------------------------------------------

    /// Reads a setting.
    pub(crate) fn info_get(&self, txn: &ReadTxn<'_>, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.info.get(txn, name)?.map(<[u8]>::to_vec))
    }

    // ---- records -----------------------------------------------------------------------

    /// The record of `key`, if there is one.
    pub(crate) fn get<'t>(
        &self,
        txn: &'t ReadTxn<'_>,
        key: &[u8],
        limit: usize,
    ) -> Result<Option<Record<'t>>> {
        match Slot::of(key, limit) {
            Slot::Raw(k) => match self.entries.get(txn, k)? {
                None => Ok(None),
                Some(bytes) => record::decode(bytes)
                    .map(Some)
                    .map_err(|reason| corrupt(key, reason)),
            },
            Slot::Hashed { digest, len } => {
                let Some(bucket) = self.hashed.get(txn, digest_bytes(&digest, len))? else {
                    return Ok(None);
                };
                for item in record::bucket_records(bucket) {
                    let (_, rec) = item.map_err(|reason| corrupt(key, reason))?;
                    if rec.key == key {
                        return Ok(Some(rec));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Hands `each(i, value)` the stored value of each `keys[i]`: what [`get`](Self::get)
    /// gives for it. Not in the order of `keys`.
    ///
    /// Keys stored raw are found in one forward scan of `entries` from the smallest to the
    /// largest of them, which reads neighbouring pages instead of descending the B-tree once
    /// per key: keys inserted in key order (ids, timestamps) read like a plain scan. A scan
    /// step costs about a sixteenth of a lookup, so when `entries` holds at most
    /// [`SCAN_PER_KEY`] entries per key looked for, the scan may go through all of them;
    /// otherwise it stops after meeting twice as many other entries as it looks for. What it
    /// did not find is looked up key by key (as are hashed keys).
    pub(crate) fn values_of<'t>(
        &self,
        txn: &'t ReadTxn<'_>,
        keys: &[&[u8]],
        limit: usize,
        mut each: impl FnMut(usize, Result<Option<&'t [u8]>>),
    ) {
        let mut found = vec![false; keys.len()];
        let mut raw: Vec<usize> = (0..keys.len())
            .filter(|&i| Slot::is_raw(keys[i], limit))
            .collect();
        // LMDB's default order is the bytes' lexicographic order, as `[u8]`'s. Keys inserted
        // in key order come sorted already.
        if !raw.is_sorted_by(|&a, &b| keys[a] <= keys[b]) {
            raw.sort_unstable_by(|&a, &b| keys[a].cmp(keys[b]));
        }
        if let Some(&first) = raw.first() {
            // No upper bound: the scan stops once it has passed the last wanted key, and an
            // upper bound would cost a comparison per entry.
            let range = (Bound::Included(keys[first]), Bound::Unbounded);
            // Not known: treated as too many to scan.
            let entries = self
                .entries
                .len(txn)
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
            let budget = if entries <= SCAN_PER_KEY.saturating_mul(raw.len()) {
                entries
            } else {
                2 * raw.len()
            };
            let mut others = 0;
            // `raw[next..]` are the keys the scan has not passed yet.
            let mut next = 0;
            if let Ok(scan) = self.entries.range(txn, &range) {
                'scan: for item in scan {
                    let Ok((key, bytes)) = item else { break };
                    while let Some(&i) = raw.get(next) {
                        match keys[i].cmp(key) {
                            // Not stored: left for the lookups below.
                            cmp::Ordering::Less => next += 1,
                            cmp::Ordering::Equal => {
                                next += 1;
                                found[i] = true;
                                each(
                                    i,
                                    record::decode(bytes)
                                        .map(|r| Some(r.value))
                                        .map_err(|reason| corrupt(key, reason)),
                                );
                                if next == raw.len() {
                                    break 'scan;
                                }
                                continue 'scan;
                            }
                            cmp::Ordering::Greater => break,
                        }
                    }
                    others += 1;
                    if next == raw.len() || others > budget {
                        break;
                    }
                }
            }
        }
        for (i, key) in keys.iter().enumerate() {
            if !found[i] {
                each(i, self.get(txn, key, limit).map(|r| r.map(|r| r.value)));
            }
        }
    }

    /// Number of records in quarantine.
    pub(crate) fn quarantined(&self, txn: &ReadTxn<'_>) -> Result<u64> {
        Ok(self.quarantine.len(txn)?)
    }

    /// Number of entries.
    pub(crate) fn len(&self, txn: &ReadTxn<'_>) -> Result<u64> {
        Ok(self.order.len(txn)?)
    }

    /// Whether `entries` in key order lists every entry in insertion order (see
    /// [`INFO_KEY_ORDER`]). A dict made before the setting existed reads as not known. So does
    /// one where `entries` and `order` differ in length, which only damage or a foreign writer
    /// leaves behind: a walk through `order` then skips the records it does not list.
    pub(crate) fn in_key_order(&self, txn: &ReadTxn<'_>) -> Result<bool> {
        Ok(self.key_order_setting(txn)? && self.entries.len(txn)? == self.order.len(txn)?)
    }

    /// Whether the setting [`INFO_KEY_ORDER`] is 1.
    fn key_order_setting(&self, txn: &ReadTxn<'_>) -> Result<bool> {
        Ok(self.info.get(txn, INFO_KEY_ORDER)? == Some(&[1][..]))
    }

    /// Hands `each(key, record)` the next up to `n` records of `entries` in key order after
    /// key `after`; returns how many. While [`in_key_order`](Self::in_key_order) holds, this
    /// is the insertion order.
    pub(crate) fn key_order_chunk<'t>(
        &self,
        txn: &'t ReadTxn<'_>,
        after: Option<&[u8]>,
        n: usize,
        mut each: impl FnMut(&'t [u8], Result<Record<'t>>),
    ) -> Result<usize> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut count = 0;
        for item in self.entries.range(txn, &(lower, Bound::Unbounded))?.take(n) {
            let (key, bytes) = item?;
            each(
                key,
                record::decode(bytes).map_err(|reason| corrupt(key, reason)),
            );
            count += 1;
        }
        Ok(count)
    }

    /// Hands `each(seq, encoded key)` the next up to `n` entries in insertion order after
    /// sequence number `after`; returns how many.
    pub(crate) fn order_chunk(
        &self,
        txn: &ReadTxn<'_>,
        after: Option<u64>,
        n: usize,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<usize> {
        let start = after.map(u64::to_be_bytes);
        let lower = match &start {
            Some(s) => Bound::Excluded(&s[..]),
            None => Bound::Unbounded,
        };
        let mut count = 0;
        for item in self.order.range(txn, &(lower, Bound::Unbounded))?.take(n) {
            let (seq, key) = item?;
            let seq =
                <[u8; 8]>::try_from(seq).map_err(|_| corrupt(seq, "order key is not 8 bytes"))?;
            each(u64::from_be_bytes(seq), key);
            count += 1;
        }
        Ok(count)
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
        // Close the environment before freeing the registry slot, so that an opener waiting
        // on the slot (see `Store::open`) never meets heed's `EnvAlreadyOpened`. No other
        // clone of `env` exists, so dropping it here closes it.
        drop(env);
        closing.wait();
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        // While a dead entry is present no new store is registered at this path, so a dead
        // entry at our path is ours.
        if registry
            .get(&self.path)
            .is_some_and(|w| w.strong_count() == 0)
        {
            registry.remove(&self.path);
        }
    }
}

/// A corrupt-record error for the record stored under `key`.
pub(crate) fn corrupt(key: &[u8], reason: &'static str) -> Error {
    Error::Corrupt {
        key: KeyBytes(key.to_vec()),
        reason,
    }
}

/// An entry's position in insertion order, its key, and its record's header (or why it
/// can't be read).
type OrderedHeader = (u64, Vec<u8>, Result<Option<Header>>);

/// An open write transaction on a store.
pub(crate) struct WriteTxn<'s> {
    txn: heed::RwTxn<'s>,
    store: &'s Store,
    /// Set when an operation hit `MapFull`: the transaction is then replayed in a larger map
    /// whatever error the caller's closure turned it into.
    map_full: bool,
    /// Set when a change reached LMDB. Every change goes through [`check`](Self::check), and
    /// each one (a put, a delete of a key that is there, a clear) marks LMDB's transaction
    /// dirty, so a commit with `wrote` set takes a new transaction id.
    wrote: bool,
    /// See [`next_seq`](Self::next_seq).
    next_seq: Option<u64>,
    /// The setting [`INFO_KEY_ORDER`] as this transaction left it (`true`: 1); read on first
    /// need.
    key_order: Option<bool>,
    /// Set once a new key of this transaction went to the end of `entries` while the key order
    /// held: later new keys are tried with `MDB_APPEND` first. Not the first one: an append
    /// leaves the last page full and splits off a page of one entry, and with that layout each
    /// commit of a single insert wrote its pages in more pieces (6.8 system calls instead of
    /// 5.5) and took 5% longer.
    appending: bool,
    /// The buffer records are built in, kept for the transaction's next put.
    record: Vec<u8>,
}

impl WriteTxn<'_> {
    /// Reads through the write transaction.
    pub(crate) fn as_read(&self) -> &ReadTxn<'_> {
        &self.txn
    }

    fn check<T>(&mut self, result: heed::Result<T>) -> Result<T> {
        match result {
            Ok(_) => self.wrote = true,
            Err(heed::Error::Mdb(MdbError::MapFull)) => self.map_full = true,
            Err(_) => {}
        }
        Ok(result?)
    }

    /// Stores `value` (already encoded) under `key`; returns whether the key was new.
    /// An existing entry keeps its place in insertion order and its creation time.
    pub(crate) fn put(&mut self, key: &[u8], value: &[u8], limit: usize, now: u64) -> Result<bool> {
        let (digest, len) = match Slot::of(key, limit) {
            Slot::Raw(k) => return self.put_raw(k, value, now),
            Slot::Hashed { digest, len } => (digest, len),
        };
        if !record::fits_in_bucket(key.len(), value.len()) {
            // What LMDB answers for a value too large to store raw.
            return Err(Error::Storage(heed::Error::Mdb(MdbError::BadValSize)));
        }
        let store = self.store;
        let existing = store.get(&self.txn, key, limit)?.map(|r| r.header);
        let header = if let Some(h) = existing {
            Header { accessed: now, ..h }
        } else {
            self.break_key_order()?;
            let seq = self.next_seq()?;
            self.list(seq, key)?;
            Header {
                seq,
                created: now,
                accessed: now,
            }
        };
        let slot = digest_bytes(&digest, len);
        let mut rec = Vec::new();
        record::encode_into(&mut rec, &header, key, value);
        let mut bucket = self.bucket_without(slot, key)?;
        record::push_framed(&mut bucket, &rec);
        let r = store.hashed.put(&mut self.txn, slot, &bucket);
        self.check(r)?;
        Ok(existing.is_none())
    }

    /// [`put`](Self::put) of a key stored raw. A new key is written without looking first: an
    /// append once the transaction is [`appending`](Self::appending) (LMDB refuses it unless
    /// the key sorts after every stored one), and otherwise a put that LMDB refuses for an
    /// existing key, handing back its record instead. Either spares a B-tree descent per new
    /// key. An existing key is rewritten with its old position and creation time; the
    /// sequence number taken for the attempt is then left unused.
    fn put_raw(&mut self, k: &[u8], value: &[u8], now: u64) -> Result<bool> {
        let store = self.store;
        let seq = self.next_seq()?;
        let mut header = Header {
            seq,
            created: now,
            accessed: now,
        };
        let mut rec = std::mem::take(&mut self.record);
        rec.clear();
        record::encode_into(&mut rec, &header, b"", value);
        let appended = if self.appending {
            let r = store
                .entries
                .put_with_flags(&mut self.txn, heed::PutFlags::APPEND, k, &rec);
            match r {
                // The key is not above the last one: it is stored, or goes lower.
                Err(heed::Error::Mdb(MdbError::KeyExist)) => false,
                r => {
                    self.check(r)?;
                    true
                }
            }
        } else {
            false
        };
        let new = if appended {
            self.list(seq, k)?;
            true
        } else {
            let r = store
                .entries
                .get_or_put(&mut self.txn, k, &rec)
                .map(|old| old.map(record::decode));
            match self.check(r)? {
                None => {
                    // An append that LMDB refused went lower. Otherwise this is the
                    // transaction's first new key: it may have gone to the end.
                    if !self.appending && self.key_order_holds()? && self.is_last(k)? {
                        self.appending = true;
                    } else {
                        self.break_key_order()?;
                    }
                    self.list(seq, k)?;
                    true
                }
                Some(old) => {
                    let old = old.map_err(|reason| corrupt(k, reason))?.header;
                    header.seq = old.seq;
                    header.created = old.created;
                    rec.clear();
                    record::encode_into(&mut rec, &header, b"", value);
                    let r = store.entries.put(&mut self.txn, k, &rec);
                    self.check(r)?;
                    false
                }
            }
        };
        self.record = rec;
        Ok(new)
    }

    /// Whether `k` is the last key of `entries`.
    fn is_last(&self, k: &[u8]) -> Result<bool> {
        Ok(self
            .store
            .entries
            .last(&self.txn)?
            .is_some_and(|(last, _)| last == k))
    }

    /// Whether the setting [`INFO_KEY_ORDER`] is 1; read once per transaction, and not at all
    /// if our last commit was the one before and left it known.
    fn key_order_holds(&mut self) -> Result<bool> {
        if let Some(holds) = self.key_order {
            return Ok(holds);
        }
        let holds = match self.store.key_order_before(&self.txn) {
            Some(holds) => holds,
            None => self.store.key_order_setting(&self.txn)?,
        };
        self.key_order = Some(holds);
        Ok(holds)
    }

    /// Records that the key order may no longer hold: a new entry was not appended to
    /// `entries`. Keeps the setting exact: `key_order` is `Some(false)` only when it is not 1.
    fn break_key_order(&mut self) -> Result<()> {
        if self.key_order_holds()? {
            self.info_put(INFO_KEY_ORDER, &[0])?;
            self.key_order = Some(false);
        }
        self.appending = false;
        Ok(())
    }

    /// Records that the key order holds. Only for an empty dict.
    pub(crate) fn start_key_order(&mut self) -> Result<()> {
        self.info_put(INFO_KEY_ORDER, &[1])?;
        self.key_order = Some(true);
        Ok(())
    }

    /// The bucket under `slot` minus the record of `key`, re-framed.
    fn bucket_without(&self, slot: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(bucket) = self.store.hashed.get(&self.txn, slot)? {
            for item in record::bucket_records(bucket) {
                let (range, rec) = item.map_err(|reason| corrupt(key, reason))?;
                if rec.key != key {
                    record::push_framed(&mut out, &bucket[range]);
                }
            }
        }
        Ok(out)
    }

    /// Lists `key` in the insertion order under `seq`, taken from [`next_seq`](Self::next_seq):
    /// above every number in use, so LMDB can append it to the last page without a search.
    fn list(&mut self, seq: u64, key: &[u8]) -> Result<()> {
        let r = self.store.order.put_with_flags(
            &mut self.txn,
            heed::PutFlags::APPEND,
            &seq.to_be_bytes(),
            key,
        );
        self.check(r)
    }

    /// A sequence number above every one in use. The first call of a transaction reads the
    /// largest from the `order` database; later ones count on from there, which spares a
    /// B-tree descent per new key in `extend` (numbers stay increasing, gaps are harmless).
    fn next_seq(&mut self) -> Result<u64> {
        let seq = match self.next_seq {
            Some(seq) => seq,
            None => match self.store.order.last(&self.txn)? {
                None => 0,
                Some((last, _)) => <[u8; 8]>::try_from(last)
                    .ok()
                    .and_then(|seq| u64::from_be_bytes(seq).checked_add(1))
                    .ok_or_else(|| corrupt(last, "last order key is not a usable number"))?,
            },
        };
        // Only a damaged file gets near the end of the numbers (one per insert).
        self.next_seq = Some(seq.saturating_add(1));
        Ok(seq)
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn delete(&mut self, key: &[u8], limit: usize) -> Result<bool> {
        let store = self.store;
        let Some(header) = store.get(&self.txn, key, limit)?.map(|r| r.header) else {
            return Ok(false);
        };
        let r = store.order.delete(&mut self.txn, &header.seq.to_be_bytes());
        self.check(r)?;
        match Slot::of(key, limit) {
            Slot::Raw(k) => {
                let r = store.entries.delete(&mut self.txn, k);
                self.check(r)?;
            }
            Slot::Hashed { digest, len } => {
                let slot = digest_bytes(&digest, len);
                let bucket = self.bucket_without(slot, key)?;
                let r = if bucket.is_empty() {
                    store.hashed.delete(&mut self.txn, slot).map(drop)
                } else {
                    store.hashed.put(&mut self.txn, slot, &bucket)
                };
                self.check(r)?;
            }
        }
        Ok(true)
    }

    /// Applies `edit` to the encoded record of `key`, if there is one; returns whether it was.
    fn rewrite(&mut self, key: &[u8], limit: usize, edit: impl FnOnce(&mut [u8])) -> Result<bool> {
        let store = self.store;
        match Slot::of(key, limit) {
            Slot::Raw(k) => {
                let Some(bytes) = store.entries.get(&self.txn, k)? else {
                    return Ok(false);
                };
                record::decode(bytes).map_err(|reason| corrupt(key, reason))?;
                let mut rec = bytes.to_vec();
                edit(&mut rec);
                let r = store.entries.put(&mut self.txn, k, &rec);
                self.check(r)?;
            }
            Slot::Hashed { digest, len } => {
                let slot = digest_bytes(&digest, len);
                let Some(bucket) = store.hashed.get(&self.txn, slot)? else {
                    return Ok(false);
                };
                let mut out = Vec::with_capacity(bucket.len());
                let mut edit = Some(edit);
                for item in record::bucket_records(bucket) {
                    let (range, rec) = item.map_err(|reason| corrupt(key, reason))?;
                    let mut bytes = bucket[range].to_vec();
                    if rec.key == key
                        && let Some(edit) = edit.take()
                    {
                        edit(&mut bytes);
                    }
                    record::push_framed(&mut out, &bytes);
                }
                if edit.is_some() {
                    return Ok(false);
                }
                let r = store.hashed.put(&mut self.txn, slot, &out);
                self.check(r)?;
            }
        }
        Ok(true)
    }

    /// Raises the stored access time of `key` to `t` (never lowers it).
    pub(crate) fn set_accessed(&mut self, key: &[u8], t: u64, limit: usize) -> Result<()> {
        let Some(stored) = self
            .store
            .get(&self.txn, key, limit)?
            .map(|r| r.header.accessed)
        else {
            return Ok(());
        };
        if t > stored {
            self.rewrite(key, limit, |rec| record::set_accessed(rec, t))?;
        }
        Ok(())
    }

    /// Up to `n` entries in insertion order after `after`, with their headers.
    fn headers_after(
        &self,
        after: Option<u64>,
        n: usize,
        limit: usize,
    ) -> Result<Vec<OrderedHeader>> {
        let mut chunk = Vec::new();
        self.store.order_chunk(&self.txn, after, n, |seq, key| {
            chunk.push((seq, key.to_vec()));
        })?;
        Ok(chunk
            .into_iter()
            .map(|(seq, key)| {
                let header = self
                    .store
                    .get(&self.txn, &key, limit)
                    .map(|r| r.map(|r| r.header));
                (seq, key, header)
            })
            .collect())
    }

    /// Removes, among up to `n` entries after `after` in insertion order, those whose access
    /// time (the later of the stored one and `pending(key)`) is before `cutoff`. Returns the
    /// removed keys, the position reached, and whether the walk reached the end.
    pub(crate) fn expire_chunk(
        &mut self,
        after: Option<u64>,
        n: usize,
        cutoff: u64,
        limit: usize,
        pending: impl Fn(&[u8]) -> Option<u64>,
    ) -> Result<(Vec<Vec<u8>>, Option<u64>, bool)> {
        let chunk = self.headers_after(after, n, limit)?;
        let done = chunk.len() < n;
        let reached = chunk.last().map(|(seq, _, _)| *seq).or(after);
        let mut removed = Vec::new();
        for (_, key, header) in chunk {
            // A damaged record is the integrity check's business, never expiry's.
            let Ok(Some(header)) = header else { continue };
            let accessed = header.accessed.max(pending(&key).unwrap_or(0));
            if accessed < cutoff && self.delete(&key, limit)? {
                removed.push(key);
            }
        }
        Ok((removed, reached, done))
    }

    /// Checks up to `n` storage slots of `entries` (or `hashed`) after storage key `after`:
    /// moves undecodable ones to quarantine, raises access times that are before the
    /// creation time, and puts back in insertion order records missing from it.
    pub(crate) fn check_slots_chunk(
        &mut self,
        hashed: bool,
        after: Option<&[u8]>,
        n: usize,
        limit: usize,
        now: u64,
        report: &mut crate::background::IntegrityReport,
    ) -> Result<(Option<Vec<u8>>, bool)> {
        let store = self.store;
        let db = if hashed { store.hashed } else { store.entries };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut slots = Vec::new();
        for item in db.range(&self.txn, &(lower, Bound::Unbounded))?.take(n) {
            let (k, v) = item?;
            slots.push((k.to_vec(), v.to_vec()));
        }
        let done = slots.len() < n;
        let reached = slots
            .last()
            .map(|(k, _)| k.clone())
            .or(after.map(<[u8]>::to_vec));
        for (slot, bytes) in slots {
            let mut records = Vec::new();
            let mut damaged = false;
            if hashed {
                for item in record::bucket_records(&bytes) {
                    match item {
                        Ok((_, rec)) => records.push((rec.key.to_vec(), rec.header)),
                        Err(_) => damaged = true,
                    }
                }
            } else {
                match record::decode(&bytes) {
                    Ok(rec) => records.push((slot.clone(), rec.header)),
                    Err(_) => damaged = true,
                }
            }
            report.checked += records.len() as u64 + u64::from(damaged);
            if damaged {
                self.quarantine_slot(hashed, &slot, &bytes, now)?;
                report.quarantined += 1;
                continue;
            }
            for (key, header) in records {
                if header.created > header.accessed {
                    let created = header.created;
                    self.rewrite(&key, limit, |rec| record::set_accessed(rec, created))?;
                    report.repaired += 1;
                }
                let listed = store.order.get(&self.txn, &header.seq.to_be_bytes())?;
                if listed != Some(&key[..]) {
                    self.break_key_order()?;
                    let seq = self.next_seq()?;
                    self.list(seq, &key)?;
                    self.rewrite(&key, limit, |rec| record::set_seq(rec, seq))?;
                    report.repaired += 1;
                }
            }
        }
        Ok((reached, done))
    }

    /// Moves the bytes of a storage slot into the quarantine database.
    fn quarantine_slot(&mut self, hashed: bool, slot: &[u8], bytes: &[u8], now: u64) -> Result<()> {
        let store = self.store;
        let next = match store.quarantine.last(&self.txn)? {
            Some((k, _)) => <[u8; 8]>::try_from(k).map_or(0, u64::from_be_bytes) + 1,
            None => 0,
        };
        // Layout: origin (0 entries, 1 hashed), quarantine time (u64 ms), slot length (u32),
        // slot, then the original bytes.
        let mut value = vec![u8::from(hashed)];
        value.extend_from_slice(&now.to_le_bytes());
        value.extend_from_slice(&(slot.len() as u32).to_le_bytes());
        value.extend_from_slice(slot);
        value.extend_from_slice(bytes);
        let r = store
            .quarantine
            .put(&mut self.txn, &next.to_be_bytes(), &value);
        self.check(r)?;
        let db = if hashed { store.hashed } else { store.entries };
        let r = db.delete(&mut self.txn, slot).map(drop);
        self.check(r)
    }

    /// Removes, among up to `n` insertion-order entries after `after`, those whose record is
    /// missing or lists another position. Returns the position reached and whether done.
    pub(crate) fn check_order_chunk(
        &mut self,
        after: Option<u64>,
        n: usize,
        limit: usize,
        report: &mut crate::background::IntegrityReport,
    ) -> Result<(Option<u64>, bool)> {
        let chunk = self.headers_after(after, n, limit)?;
        let done = chunk.len() < n;
        let reached = chunk.last().map(|(seq, _, _)| *seq).or(after);
        for (seq, _, header) in chunk {
            let stale = match header {
                Ok(Some(h)) => h.seq != seq,
                Ok(None) | Err(_) => true,
            };
            if stale {
                let r = self
                    .store
                    .order
                    .delete(&mut self.txn, &seq.to_be_bytes())
                    .map(drop);
                self.check(r)?;
                report.repaired += 1;
            }
        }
        Ok((reached, done))
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) -> Result<()> {
        let store = self.store;
        for db in [store.entries, store.hashed, store.order] {
            let r = db.clear(&mut self.txn);
            self.check(r)?;
        }
        self.start_key_order()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> Result<u64> {
        self.store.len(&self.txn)
    }

    /// Writes a setting.
    pub(crate) fn info_put(&mut self, name: &str, value: &[u8]) -> Result<()> {
        let r = self.store.info.put(&mut self.txn, name, value);
        self.check(r)
    }

    /// Reads a setting.
    pub(crate) fn info_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.store.info_get(&self.txn, name)
    }
}
