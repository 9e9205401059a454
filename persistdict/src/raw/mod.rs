//! The untyped middle: a dict of encoded keys and stored value bytes, with the cache in front
//! of the store, access times, and the one path by which writes are committed and the cache
//! told about them. [`PersistDict`](crate::PersistDict) is codecs on top of it; the runtime
//! halves of the attributes (`fields.rs`, `memo/`) use it and never touch the store or the
//! cache.
//!
//! `V` is what the cache holds: the decoded value for a dict, the encoded bytes for the fields
//! of a `#[persistent]` struct.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::background::{self, WorkerConfig};
use crate::cache::{Cache, Change};
use crate::clock::{Clock, from_ms};
use crate::error::{Error, Result};
use crate::key::KeyBuf;
use crate::options::{Config, Durability, MAP_SIZE_GRANULE};
use crate::shared::Shared;
use crate::store::{
    Claim, IntegrityReport, Reader, Settings, Store, StoreConfig, Walk, WriteTxn, expiry_note,
};
use crate::types::TAG_LEN;

mod tools;

pub(crate) use tools::compact;

/// The creation and access times of an entry, and its size; see
/// [`PersistDict::metadata`](crate::PersistDict::metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// When the key was first inserted (kept when it is overwritten). Millisecond resolution.
    pub created: SystemTime,
    /// When the entry was last read or written.
    pub accessed: SystemTime,
    /// Bytes of the encoded value (as the codec wrote it).
    pub value_size: u64,
}

/// Counters and sizes; see [`PersistDict::stats`](crate::PersistDict::stats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Reads answered by this handle's cache.
    pub hits: u64,
    /// Reads that went to storage.
    pub misses: u64,
    /// Values in this handle's cache now.
    pub cached: usize,
    /// Entries in the dict.
    pub len: u64,
    /// Bytes the data file takes on disk.
    pub disk_bytes: u64,
    /// The id of the last committed LMDB transaction (by any process).
    pub last_txn_id: u64,
    /// Entries removed by expiry in this process.
    pub expired: u64,
    /// Expiry sweeps completed in this process.
    pub sweeps: u64,
    /// Records in the quarantine database.
    pub quarantined: u64,
    /// Failures of the background worker in this process (each is logged).
    pub worker_errors: u64,
    /// The last of them.
    pub last_worker_error: Option<String>,
}

/// A dict of encoded keys and values, with its cache.
pub(crate) struct RawDict<V> {
    shared: Arc<Shared>,
    cache: Cache<V>,
    name: String,
    clock: Clock,
    expire_after: Option<Duration>,
    /// How this handle's commits reach the disk.
    durability: Durability,
    /// This handle reads only (the store may be shared with handles that write).
    read_only: bool,
    /// Values carry a type tag in front (format 2).
    typed: bool,
}

impl<V> fmt::Debug for RawDict<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawDict")
            .field("name", &self.name)
            .field("path", &self.shared.path())
            .finish_non_exhaustive()
    }
}

impl<V> RawDict<V> {
    /// The dict's label, used in log events.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The dict's directory, canonicalized.
    pub(crate) fn path(&self) -> &Path {
        self.shared.path()
    }
}

impl<V: Clone> RawDict<V> {
    /// Opens the dict in `path` with `config`, checking (or, for a new dict, storing) the
    /// `settings` that decide where entries are, and starts its worker.
    /// The `notes` of `settings` are made here: the config's, and the dict's expiry.
    pub(crate) fn open(path: &Path, config: &Config, settings: Settings<'_>) -> Result<Self> {
        let mut notes = config.notes.clone();
        notes.push(expiry_note(config.expire_after.map(duration_ms)));
        let settings = Settings {
            notes: &notes,
            ..settings
        };
        let shared = Shared::open(path, &store_config(config, &settings))?;
        if shared.read_only() && !config.read_only {
            return Err(Error::InvalidOption {
                option: "read_only",
                reason: format!(
                    "{} is open read-only in this process; open it read-only here too",
                    shared.path().display()
                ),
            });
        }
        let name = config.name.clone().unwrap_or_else(|| {
            shared
                .path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        });
        let typed = shared.check_settings(settings)?;
        let max_idle = config.expire_after.map(duration_ms);
        let cache = Cache::new(
            config.cache_capacity,
            Arc::clone(shared.quiet_commits()),
            max_idle,
        );
        // Everything committed so far is accounted for: the cache is empty.
        cache.committed_unknown(shared.last_txn_id());
        shared.start_worker(WorkerConfig {
            name: name.clone(),
            read_only: config.read_only,
            mode: config.background,
            expire_after: config.expire_after,
            sweep_interval: config.sweep_interval,
            flush_interval: config.flush_interval,
            timeout: config.background_timeout,
            clock: config.clock.clone(),
        });
        Ok(RawDict {
            shared,
            cache,
            name,
            clock: config.clock.clone(),
            expire_after: config.expire_after,
            durability: config.durability,
            read_only: config.read_only,
            typed,
        })
    }

    /// Takes the lease of `key` for this process (see `store::lease`) unless it has a value
    /// or a live process holds the lease.
    pub(crate) fn claim(&self, key: &[u8]) -> Result<Claim> {
        self.writable()?;
        let now = self.now();
        self.shared.claim(key, now, self.cutoff(now))
    }

    /// Gives up this process's lease of `key`, if it holds it.
    pub(crate) fn release(&self, key: &[u8]) -> Result<()> {
        self.writable()?;
        self.shared.release(key)
    }

    /// Whether values carry a type tag in front (`crate::types`).
    pub(crate) fn typed(&self) -> bool {
        self.typed
    }

    /// The value types recorded in the dict: each tag with its stored shape.
    pub(crate) fn value_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.shared.value_types()
    }

    /// The time stamped on what is written now (ms).
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Entries not accessed since this time (ms) are past their expiry at `now`, if the dict
    /// expires.
    fn cutoff(&self, now: u64) -> Option<u64> {
        self.expire_after
            .map(|after| now.saturating_sub(duration_ms(after)))
    }

    /// [`cutoff`](Self::cutoff) now, reading the clock only for a dict that expires.
    fn cutoff_now(&self) -> Option<u64> {
        self.expire_after.and_then(|_| self.cutoff(self.now()))
    }

    /// The value of `key` from the cache, or else read and made a `V` by
    /// `decode(key, stored bytes)`; either way an access.
    pub(crate) fn get(
        &self,
        key: &[u8],
        decode: impl FnOnce(&[u8], &[u8]) -> Result<Option<V>>,
    ) -> Result<Option<V>> {
        self.get_with(key, decode, V::clone)
    }

    /// `f` of the value of `key`, by reference: the cached one, or else the one read and made
    /// a `V` by `decode(key, stored bytes)`, which is then cached without a copy. Either way
    /// an access.
    pub(crate) fn get_with<T>(
        &self,
        key: &[u8],
        decode: impl FnOnce(&[u8], &[u8]) -> Result<Option<V>>,
        f: impl FnOnce(&V) -> T,
    ) -> Result<Option<T>> {
        let store = &self.shared;
        // Nothing inherited across fork() is served, not even from the cache.
        store.alive()?;
        // The cache's own stamps, which only throttle access reports, use the coarse clock.
        let coarse = self.clock.coarse_ms();
        // Given to the cache, and still here after a miss.
        let mut f = Some(f);
        let hit = self.cache.with(
            key,
            || store.last_txn_id(),
            coarse,
            |v| f.take().map(|f| f(v)),
        );
        if let Some((out, touch)) = hit {
            if touch && !self.read_only {
                store.touch(key, self.now());
            }
            return Ok(out);
        }
        let now = self.now();
        let cutoff = self.cutoff(now);
        let (value, snapshot) = store.read_at(|r, id| {
            let value = match r.get(key)? {
                Some(record) if !expired(store, key, record.header.accessed, cutoff) => {
                    decode(key, record.value)?
                }
                _ => None,
            };
            Ok((value, id))
        })?;
        let Some(value) = value else {
            return Ok(None);
        };
        let out = f.take().map(|f| f(&value));
        self.cache.put_read(key, value, snapshot, coarse);
        if !self.read_only {
            store.touch(key, now);
        }
        Ok(out)
    }

    /// Whether `key` has a value (one not past its expiry). Not an access.
    pub(crate) fn contains(&self, key: &[u8]) -> Result<bool> {
        let cutoff = self.cutoff_now();
        self.shared.read(|r| {
            Ok(r.get(key)?
                .is_some_and(|rec| !expired(&self.shared, key, rec.header.accessed, cutoff)))
        })
    }

    /// Runs `f` over one snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&RawRead<'_, '_>) -> Result<T>) -> Result<T> {
        let now = self.now();
        self.shared.read(|reader| {
            f(&RawRead {
                dict: self.shared.as_ref(),
                reader,
                now,
                cutoff: self.cutoff(now),
                read_only: self.read_only,
            })
        })
    }

    /// Runs `f` in one write transaction and commits what it wrote, all or nothing, with
    /// this handle's durability, then tells the cache what changed. `f` runs again from the
    /// start if the map had to grow, so it must have no effects outside the transaction.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns; [`Error::ReadOnly`] for a read-only handle;
    /// [`Error::NestedTransaction`] when this thread is inside a write transaction on the same
    /// store already.
    pub(crate) fn write<T, E: From<Error>>(
        &self,
        mut f: impl FnMut(RawWrite<'_, '_, V>) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.path().to_path_buf(),
            }
            .into());
        }
        let mut changes = Vec::new();
        let mut cleared = false;
        let now = self.now();
        let cutoff = self.cutoff(now);
        let (value, id) = self.shared.write_as(self.durability, |txn| {
            changes.clear();
            cleared = false;
            f(RawWrite {
                txn,
                now,
                cutoff,
                changes: &mut changes,
                cleared: &mut cleared,
            })
        })?;
        if cleared {
            self.cache.committed_unknown(id);
        } else {
            self.cache.committed(id, changes);
        }
        Ok(value)
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> Result<u64> {
        // A closure, not the method path: the method is not generic over the lifetime.
        #[allow(clippy::redundant_closure_for_method_calls)]
        self.shared.read(|r| r.len())
    }

    /// The creation and access times and the stored size of `key`'s entry. Not an access.
    pub(crate) fn metadata(&self, key: &[u8]) -> Result<Option<Metadata>> {
        let store = &self.shared;
        let cutoff = self.cutoff_now();
        // The size is the codec's bytes, without the type tag in front.
        let tag = if self.typed { TAG_LEN } else { 0 };
        let found = store.read(|r| {
            Ok(r.get(key)?
                .filter(|r| !expired(store, key, r.header.accessed, cutoff))
                .map(|r| (r.header, r.value.len().saturating_sub(tag) as u64)))
        })?;
        Ok(found.map(|(header, value_size)| {
            let accessed = header.accessed.max(store.pending_atime(key).unwrap_or(0));
            Metadata {
                created: from_ms(header.created),
                accessed: from_ms(accessed),
                value_size,
            }
        }))
    }

    /// Counters of the cache and the worker, and sizes.
    pub(crate) fn stats(&self) -> Result<Stats> {
        let store = &self.shared;
        let counters = store.counters();
        let (len, quarantined) = store.read(|r| Ok((r.len()?, r.quarantined()?)))?;
        Ok(Stats {
            hits: self.cache.hits(),
            misses: self.cache.misses(),
            cached: self.cache.len(),
            len,
            disk_bytes: store.disk_size()?,
            last_txn_id: store.last_txn_id(),
            expired: counters.expired.load(Ordering::Relaxed),
            sweeps: counters.sweeps.load(Ordering::Relaxed),
            quarantined,
            worker_errors: counters.errors.load(Ordering::Relaxed),
            last_worker_error: counters.last_error(),
        })
    }

    /// Stores the access times recorded in memory and syncs committed writes.
    pub(crate) fn flush(&self) -> Result<()> {
        self.shared.flush_atimes(self.now())?;
        self.shared.sync()
    }

    /// Removes now every entry not accessed for the dict's `expire_after`; returns how many.
    pub(crate) fn expire_now(&self) -> Result<u64> {
        match self.expire_after {
            Some(expire_after) => self.expire_idle(expire_after),
            None => Ok(0),
        }
    }

    /// Removes now every entry not accessed for `expire_after`; returns how many.
    pub(crate) fn expire_idle(&self, expire_after: Duration) -> Result<u64> {
        self.writable()?;
        let store = &self.shared;
        let removed = background::sweep(
            store,
            store.counters(),
            &self.name,
            &self.clock,
            expire_after,
            None,
        )?;
        // The sweep's commits are not ours to apply key by key: start the cache afresh.
        self.cache.committed_unknown(store.last_txn_id());
        Ok(removed.len() as u64)
    }

    /// Removes the entries `keep(key, value bytes)` rejects, in chunked write transactions
    /// (see [`Store::retain`](crate::store::Store::retain)); returns how many.
    pub(crate) fn retain(&self, keep: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<u64> {
        self.writable()?;
        let result = self.shared.retain(self.durability, keep);
        // The chunks' commits are not applied key by key: start the cache afresh.
        self.cache.committed_unknown(self.shared.last_txn_id());
        result
    }

    /// The integrity check of the whole store (see `store::repair`); with `repair` false it
    /// only reports, and works through a read-only handle too.
    pub(crate) fn check(&self, repair: bool) -> Result<IntegrityReport> {
        if repair {
            self.writable()?;
        }
        let store = &self.shared;
        let report = background::check(store, store.counters(), &|| self.now(), None, repair)?;
        if repair {
            self.cache.committed_unknown(store.last_txn_id());
        }
        Ok(report)
    }

    /// [`Error::ReadOnly`] for a read-only handle.
    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly {
                path: self.path().to_path_buf(),
            })
        } else {
            Ok(())
        }
    }

    /// A walk through the insertion order; with `snapshot`, all of it in one read transaction
    /// (see [`Store::snapshot`](crate::store::Store::snapshot)), else a short one per chunk.
    /// An error opening the snapshot is the walk's first item.
    pub(crate) fn walk(&self, values: bool, snapshot: bool) -> RawWalk {
        let (snapshot, failed) = if snapshot {
            match self.shared.snapshot() {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        RawWalk {
            walk: Walk::new(values, snapshot, self.cutoff_now()),
            failed,
            done: false,
        }
    }

    /// The next entry of `walk`: its encoded key and stored value bytes.
    pub(crate) fn next_in<'w>(
        &self,
        walk: &'w mut RawWalk,
    ) -> Option<Result<(&'w [u8], &'w [u8])>> {
        if let Some(e) = walk.failed.take() {
            walk.done = true;
            return Some(Err(e));
        }
        if walk.done {
            return None;
        }
        walk.walk.next(&self.shared)
    }
}

/// Whether the entry of `key`, last accessed at `accessed` as stored, is past its expiry.
fn expired(store: &Store, key: &[u8], accessed: u64, cutoff: Option<u64>) -> bool {
    cutoff.is_some_and(|cutoff| store.expired(key, accessed, cutoff))
}

/// `duration` in milliseconds, saturating.
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What the store is opened with: the builder's settings, the map size rounded up to whole
/// granules.
fn store_config(config: &Config, settings: &Settings<'_>) -> StoreConfig {
    StoreConfig {
        map_size: config
            .map_size
            .div_ceil(MAP_SIZE_GRANULE)
            .saturating_mul(MAP_SIZE_GRANULE),
        max_readers: config.max_readers,
        read_only: config.read_only,
        clock: config.clock.clone(),
        key_size_limit: config.key_size_limit,
        initial_settings: if config.read_only {
            Vec::new()
        } else {
            settings.initial()
        },
    }
}

/// A walk through the insertion order; see [`RawDict::walk`] and [`RawDict::next_in`].
pub(crate) struct RawWalk {
    walk: Walk,
    /// Why the walk could not start, handed out as its first item.
    failed: Option<Error>,
    done: bool,
}

/// One snapshot of a dict; see [`RawDict::read`].
pub(crate) struct RawRead<'r, 't> {
    dict: &'r Shared,
    reader: &'r Reader<'t>,
    now: u64,
    cutoff: Option<u64>,
    read_only: bool,
}

impl RawRead<'_, '_> {
    /// The stored value bytes of `key`, as of this snapshot. Not an access: see
    /// [`touch`](Self::touch).
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        Ok(self
            .reader
            .get(key)?
            .filter(|r| !expired(self.dict, key, r.header.accessed, self.cutoff))
            .map(|r| r.value))
    }

    /// The creation and access times (ms) and stored value bytes of `key`, as of this
    /// snapshot and whatever its access time: what a tool shows. Not an access.
    pub(crate) fn record(&self, key: &[u8]) -> Result<Option<(u64, u64, &[u8])>> {
        Ok(self
            .reader
            .get(key)?
            .map(|r| (r.header.created, r.header.accessed, r.value)))
    }

    /// Records an access to `key` (not through a read-only handle).
    pub(crate) fn touch(&self, key: &[u8]) {
        if !self.read_only {
            self.dict.touch(key, self.now);
        }
    }
}

/// One write transaction of a dict; see [`RawDict::write`]. Every change is recorded for the
/// cache.
pub(crate) struct RawWrite<'a, 's, V> {
    txn: &'a mut WriteTxn<'s>,
    now: u64,
    /// Entries not accessed since this time are past their expiry: reads don't see them.
    cutoff: Option<u64>,
    changes: &'a mut Vec<(KeyBuf, Change<V>)>,
    cleared: &'a mut bool,
}

impl<V> RawWrite<'_, '_, V> {
    /// Records the shape of the value type tagged `tag` unless it is recorded already.
    pub(crate) fn record_value_type(&mut self, tag: &[u8], shape: &[u8]) -> Result<()> {
        self.txn.record_value_type(tag, shape)
    }

    /// Runs `f` on the stored value bytes of `key` (`None` if it has none), including this
    /// transaction's writes, without copying them.
    pub(crate) fn with<T>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> T) -> Result<T> {
        let reader = self.txn.as_read();
        let store = reader.store();
        Ok(f(reader
            .get(key)?
            .filter(|r| !expired(store, key, r.header.accessed, self.cutoff))
            .map(|r| r.value)))
    }

    /// Whether `key` has a value, including this transaction's writes.
    pub(crate) fn contains(&self, key: &[u8]) -> Result<bool> {
        self.with(key, |value| value.is_some())
    }

    /// The number of entries, including this transaction's writes.
    pub(crate) fn len(&self) -> Result<u64> {
        self.txn.len()
    }

    /// Stores `bytes` under `key`; `cached`, if given, is the value the cache may hold for it
    /// once committed. Returns whether the key was new. An existing entry keeps its place in
    /// insertion order and its creation time.
    pub(crate) fn put(&mut self, key: &[u8], bytes: &[u8], cached: Option<V>) -> Result<bool> {
        let new = self.txn.put(key, bytes, self.now)?;
        let change = cached.map_or(Change::Forget, Change::Put);
        self.changes.push((KeyBuf::from_slice(key), change));
        Ok(new)
    }

    /// Removes `key`; returns whether it had a value.
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let removed = self.txn.delete(key)?;
        self.changes.push((KeyBuf::from_slice(key), Change::Forget));
        Ok(removed)
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.txn.clear()?;
        *self.cleared = true;
        Ok(())
    }

    /// The next entry of `walk` as this transaction sees it.
    pub(crate) fn next_in<'w>(
        &self,
        walk: &'w mut RawWalk,
    ) -> Option<Result<(&'w [u8], &'w [u8])>> {
        walk.walk.next_in(&self.txn.as_read())
    }

    /// Whether `init_once` filled this dict before.
    pub(crate) fn initialized(&self) -> Result<bool> {
        self.txn.initialized()
    }

    /// Records that `init_once` filled this dict.
    pub(crate) fn mark_initialized(&mut self) -> Result<()> {
        self.txn.mark_initialized()
    }
}
