//! The typed persistent map.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::background::{self, IntegrityReport};
use crate::cache::{Cache, Change};
use crate::clock::{Clock, from_ms};
use crate::codec::{Codec, Postcard, encode_as, encode_as_into};
use crate::env::{FORMAT_VERSION, ReadTxn, Shared, Store, StoreOptions, WriteTxn};
use crate::error::{Error, KeyBytes, Result};
use crate::key::Scratch;
use crate::options::Builder;

/// Entries in a walk's first chunk, read in one read transaction. Each later chunk holds
/// about [`ITER_CHUNK_BYTES`] of keys and values, at as many bytes per entry as the chunk
/// before, and at most [`ITER_CHUNK_GROWTH`] times as many entries as it, within 1 and
/// [`ITER_CHUNK_MAX`] entries. Large chunks let a walk through the insertion order find keys
/// that arrived in random order in one scan instead of a lookup each (see
/// `Store::values_of`); the byte bound keeps a chunk of large values small; and a read
/// transaction that ends with its chunk keeps LMDB from holding on to pages that writers free
/// meanwhile.
const ITER_CHUNK: usize = 1;
const ITER_CHUNK_BYTES: usize = 4 << 20;
const ITER_CHUNK_GROWTH: usize = 16;
const ITER_CHUNK_MAX: usize = 32_768;

const INFO_FORMAT: &str = "format_version";
const INFO_KEY_SIZE_LIMIT: &str = "key_size_limit";
const INFO_KEY_CODEC: &str = "key_codec";
const INFO_VALUE_CODEC: &str = "value_codec";
const INFO_INITIALIZED: &str = "initialized";

/// Encoded keys and values, end to end in one buffer (one allocation for a whole `extend`).
struct EncodedPairs {
    bytes: Vec<u8>,
    /// Where each pair's key and value end in `bytes`; a key starts where the previous pair
    /// ends.
    ends: Vec<(usize, usize)>,
}

impl EncodedPairs {
    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.ends.iter().scan(0, |start, &(key_end, end)| {
            let key = &self.bytes[*start..key_end];
            *start = end;
            Some((key, &self.bytes[key_end..end]))
        })
    }
}

/// A typed dictionary stored on disk in LMDB, shared by threads and processes.
///
/// Handles are cheap to clone (an `Arc`) and `Send + Sync`. Every handle on one directory in
/// a process shares one LMDB environment; handles in other processes see each committed
/// write at their next operation. Iteration follows insertion order; overwriting a key keeps
/// its place.
///
/// `K` and `V` are any serde types. Lookups take borrowed forms of the key (`&str` for a
/// `String` key) as long as they encode alike, which holds for the std types and every serde
/// format.
///
/// # Examples
///
/// ```
/// use persistdict::PersistDict;
///
/// # fn main() -> persistdict::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let d: PersistDict<String, Vec<u32>> = PersistDict::open(dir.path())?;
/// d.insert("primes".to_string(), vec![2, 3, 5])?;
/// assert_eq!(d.get("primes")?, Some(vec![2, 3, 5]));
/// d.update("primes", |v| v.map(|mut v| { v.push(7); v }))?;
/// assert_eq!(d.len()?, 1);
/// for entry in d.iter() {
///     let (key, value) = entry?;
///     println!("{key}: {value:?}");
/// }
/// # Ok(()) }
/// ```
pub struct PersistDict<K, V, C = Postcard, KC = Postcard> {
    pub(crate) inner: Arc<Inner<V, C, KC>>,
    marker: PhantomData<fn(K) -> V>,
}

pub(crate) struct Inner<V, C, KC> {
    pub(crate) store: Arc<Shared>,
    pub(crate) cache: Cache<V>,
    expire_after: Option<Duration>,
    pub(crate) value_codec: C,
    key_codec: KC,
    name: String,
    key_size_limit: usize,
    clock: Clock,
}

impl<K, V, C, KC> Clone for PersistDict<K, V, C, KC> {
    fn clone(&self) -> Self {
        PersistDict {
            inner: Arc::clone(&self.inner),
            marker: PhantomData,
        }
    }
}

impl<K, V, C, KC> fmt::Debug for PersistDict<K, V, C, KC> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistDict")
            .field("name", &self.inner.name)
            .field("path", &self.inner.store.path())
            .finish_non_exhaustive()
    }
}

impl<K, V> PersistDict<K, V> {
    /// Opens (or creates) the dict in directory `path` with default settings.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned + Clone,
    {
        Self::builder().open(path)
    }

    /// A builder for non-default settings.
    pub fn builder() -> Builder<K, V> {
        Builder::default()
    }
}

impl<K, V, C, KC> PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    pub(crate) fn from_builder(
        builder: Builder<K, V, C, KC>,
        path: &Path,
        store_options: &StoreOptions,
    ) -> Result<Self> {
        let store = Store::open(path, store_options)?;
        let name = builder.settings.name.unwrap_or_else(|| {
            store
                .path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        });
        let inner = Inner {
            store: Arc::clone(&store),
            cache: Cache::new(builder.settings.cache_capacity, Arc::clone(&store.quiet)),
            expire_after: builder.settings.expire_after,
            value_codec: builder.value_codec,
            key_codec: builder.key_codec,
            name,
            key_size_limit: builder.settings.key_size_limit,
            clock: builder.settings.clock.clone(),
        };
        inner.check_settings()?;
        // Everything committed so far is accounted for: the cache is empty.
        inner.cache.committed_unknown(store.last_txn_id());
        store.set_key_size_limit(builder.settings.key_size_limit);
        background::start(
            &store,
            background::Config {
                name: inner.name.clone(),
                mode: builder.settings.background,
                expire_after: builder.settings.expire_after,
                sweep_interval: builder.settings.sweep_interval,
                flush_interval: builder.settings.flush_interval,
                timeout: builder.settings.background_timeout,
                limit: builder.settings.key_size_limit,
                clock: builder.settings.clock,
            },
        );
        Ok(PersistDict {
            inner: Arc::new(inner),
            marker: PhantomData,
        })
    }

    /// The dict's label, used in log events.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The dict's directory, canonicalized.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    pub(crate) fn limit(&self) -> usize {
        self.inner.key_size_limit
    }

    pub(crate) fn encode_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Vec<u8>> {
        encode_as(&self.inner.key_codec, "key", key)
    }

    /// Runs `f` on the encoding of `key`, made in a buffer the thread's reads reuse: a read
    /// allocates nothing for its key.
    fn with_key<Q: Serialize + ?Sized, T>(
        &self,
        key: &Q,
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        let mut buf = Scratch::take();
        encode_as_into(&self.inner.key_codec, "key", key, &mut buf)?;
        f(&buf)
    }

    fn encode_value(&self, value: &V) -> Result<Vec<u8>> {
        encode_as(&self.inner.value_codec, "value", value)
    }

    pub(crate) fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<V> {
        self.inner
            .value_codec
            .decode(bytes)
            .map_err(|source| Error::Decode {
                key: KeyBytes(key.to_vec()),
                type_name: std::any::type_name::<V>(),
                source,
            })
    }

    fn decode_key(&self, key: &[u8]) -> Result<K> {
        self.inner
            .key_codec
            .decode(key)
            .map_err(|source| Error::DecodeKey {
                key: KeyBytes(key.to_vec()),
                type_name: std::any::type_name::<K>(),
                source,
            })
    }

    /// The value of `key` read in `txn`.
    fn get_in(&self, txn: &ReadTxn<'_>, key: &[u8]) -> Result<Option<V>> {
        match self.inner.store.get(txn, key, self.limit())? {
            None => Ok(None),
            Some(record) => self.decode_value(key, record.value).map(Some),
        }
    }

    /// Stores `value` under `key`, replacing any previous value. An overwritten key keeps its
    /// place in iteration order and its creation time.
    pub fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_encoded(self.encode_key(&key)?, value)
    }

    /// [`insert`](Self::insert) under an already encoded key.
    pub(crate) fn insert_encoded(&self, key: Vec<u8>, value: V) -> Result<()> {
        let bytes = self.encode_value(&value)?;
        let now = self.now();
        let ((), id) = self.write(|w| w.put(&key, &bytes, self.limit(), now).map(drop))?;
        self.inner.cache.committed(id, [(key, Change::Put(value))]);
        Ok(())
    }

    fn write<T>(&self, f: impl FnMut(&mut WriteTxn<'_>) -> Result<T>) -> Result<(T, u64)> {
        self.inner.store.write_as(f)
    }

    /// Accounts in the cache for a commit that changed `keys` (values not at hand).
    fn forget<T, B: AsRef<[u8]>>(
        &self,
        (value, id): (T, u64),
        keys: impl IntoIterator<Item = B>,
    ) -> T {
        self.inner
            .cache
            .committed(id, keys.into_iter().map(|k| (k, Change::Forget)));
        value
    }

    /// The value of `key`, or `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored value can't be decoded as `V` (for example because
    /// `V` changed since it was written); the entry is left as it is.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.with_key(key, |key| {
            self.cached_get(key, |key, bytes| self.decode_value(key, bytes))
        })
    }

    /// The value of encoded `key` from the cache, or else read and turned into a `V` by
    /// `decode(key, value bytes)`; either way an access.
    pub(crate) fn cached_get(
        &self,
        key: &[u8],
        decode: impl FnOnce(&[u8], &[u8]) -> Result<V>,
    ) -> Result<Option<V>> {
        let store = &self.inner.store;
        // The cache's own stamps, which only throttle access reports, use the coarse clock.
        let coarse = self.inner.clock.coarse_ms();
        if let Some((value, touch)) = self.inner.cache.get(key, || store.last_txn_id(), coarse) {
            if touch {
                store.touch(key, self.now());
            }
            return Ok(Some(value));
        }
        let now = self.now();
        let (value, snapshot) = store.read_at(|txn, id| {
            let value = match store.get(txn, key, self.limit())? {
                None => None,
                Some(record) => Some(decode(key, record.value)?),
            };
            Ok((value, id))
        })?;
        if let Some(value) = &value {
            self.inner
                .cache
                .put_read(key, value.clone(), snapshot, coarse);
            store.touch(key, now);
        }
        Ok(value)
    }

    /// Whether `key` has a value. Reads no value bytes, and is not an access.
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let store = &self.inner.store;
        self.with_key(key, |key| {
            store.read(|txn| Ok(store.get(txn, key, self.limit())?.is_some()))
        })
    }

    /// Removes `key`; returns whether it had a value.
    pub fn remove<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.remove_encoded(self.encode_key(key)?)
    }

    /// [`remove`](Self::remove) of an already encoded key.
    pub(crate) fn remove_encoded(&self, key: Vec<u8>) -> Result<bool> {
        let done = self.write(|w| w.delete(&key, self.limit()))?;
        Ok(self.forget(done, [key]))
    }

    /// Removes `key` and returns its value.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored value can't be decoded; the entry is then kept.
    pub fn take<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        let done = self.write(|w| {
            let Some(value) = self.get_in(w.as_read(), &key)? else {
                return Ok(None);
            };
            w.delete(&key, self.limit())?;
            Ok(Some(value))
        })?;
        Ok(self.forget(done, [key]))
    }

    /// The number of entries (O(1)).
    pub fn len(&self) -> Result<u64> {
        self.inner.store.read(|txn| self.inner.store.len(txn))
    }

    /// Whether the dict has no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry, in one transaction.
    pub fn clear(&self) -> Result<()> {
        // A closure, not the method path: the method is not generic over the lifetime.
        #[allow(clippy::redundant_closure_for_method_calls)]
        let ((), id) = self.write(|w| w.clear())?;
        self.inner.cache.committed_unknown(id);
        Ok(())
    }

    /// Atomically replaces the value of `key` by `f(old)`, across threads and processes:
    /// `f` runs inside the write transaction, which no other writer can interleave with.
    /// `None` from `f` removes the entry. Returns the new value.
    ///
    /// `f` may run more than once if the map has to grow during the write; only its last
    /// result is stored.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored value can't be decoded; `f` is then not called and
    /// nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> persistdict::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let counters: persistdict::PersistDict<String, u64> = persistdict::PersistDict::open(dir.path())?;
    /// counters.update("visits", |n| Some(n.unwrap_or(0) + 1))?;
    /// assert_eq!(counters.get("visits")?, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn update<Q, F>(&self, key: &Q, mut f: F) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        F: FnMut(Option<V>) -> Option<V>,
    {
        let key = self.encode_key(key)?;
        let (new, id) = self.write(|w| {
            let old = self.get_in(w.as_read(), &key)?;
            let new = f(old);
            match &new {
                Some(value) => {
                    let bytes = self.encode_value(value)?;
                    w.put(&key, &bytes, self.limit(), self.now())?;
                }
                None => {
                    w.delete(&key, self.limit())?;
                }
            }
            Ok(new)
        })?;
        let change = new.clone().map_or(Change::Forget, Change::Put);
        self.inner.cache.committed(id, [(key, change)]);
        Ok(new)
    }

    /// The value of `key`; if it has none, stores `f()` and returns it. `f` runs outside any
    /// transaction (other writers are not held up by it); if another writer stored a value
    /// meanwhile, that value wins and is returned.
    pub fn get_or_insert_with<F>(&self, key: K, f: F) -> Result<V>
    where
        F: FnOnce() -> V,
    {
        let key = self.encode_key(&key)?;
        if let Some(value) = self.inner.store.read(|txn| self.get_in(txn, &key))? {
            return Ok(value);
        }
        let value = f();
        let bytes = self.encode_value(&value)?;
        let done = self.write(|w| {
            if let Some(existing) = self.get_in(w.as_read(), &key)? {
                return Ok(Some(existing));
            }
            w.put(&key, &bytes, self.limit(), self.now())?;
            Ok(None)
        })?;
        Ok(self.forget(done, [key]).unwrap_or(value))
    }

    /// Inserts every pair, in one transaction: all of them or none.
    pub fn extend<I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let encoded = self.encode_pairs(items)?;
        let now = self.now();
        let done = self.write(|w| {
            for (key, value) in encoded.iter() {
                w.put(key, value, self.limit(), now)?;
            }
            Ok(())
        })?;
        self.forget(done, encoded.iter().map(|(k, _)| k));
        Ok(())
    }

    fn encode_pairs<I>(&self, items: I) -> Result<EncodedPairs>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let items = items.into_iter();
        let mut encoded = EncodedPairs {
            bytes: Vec::new(),
            ends: Vec::with_capacity(items.size_hint().0),
        };
        for (k, v) in items {
            encode_as_into(&self.inner.key_codec, "key", &k, &mut encoded.bytes)?;
            let key_end = encoded.bytes.len();
            encode_as_into(&self.inner.value_codec, "value", &v, &mut encoded.bytes)?;
            encoded.ends.push((key_end, encoded.bytes.len()));
        }
        Ok(encoded)
    }

    /// Fills the dict with `items` the first time it is called on this dict (the Python
    /// original's `d(a=1, b=2)`). Later calls fail with [`Error::AlreadyInitialized`] until the
    /// dict is empty again (for example after [`clear`](Self::clear)).
    pub fn init_once<I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let encoded = self.encode_pairs(items)?;
        let now = self.now();
        let done = self.write(|w| {
            if w.info_get(INFO_INITIALIZED)?.is_some() && w.len()? > 0 {
                return Err(Error::AlreadyInitialized);
            }
            for (key, value) in encoded.iter() {
                w.put(key, value, self.limit(), now)?;
            }
            w.info_put(INFO_INITIALIZED, &[1])
        })?;
        self.forget(done, encoded.iter().map(|(k, _)| k));
        Ok(())
    }

    /// Runs `f` in one write transaction: everything it inserts and removes is committed
    /// together when it returns `Ok`, and nothing when it returns `Err`. Reads inside see the
    /// transaction's own writes.
    ///
    /// `f` may run more than once if the map has to grow, so it should have no effects outside
    /// the transaction. Calling a writing method of a dict on the same directory inside `f`
    /// returns [`Error::NestedTransaction`]: use the handle `f` gets.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> persistdict::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let accounts: persistdict::PersistDict<String, i64> = persistdict::PersistDict::open(dir.path())?;
    /// accounts.insert("alice".into(), 10)?;
    /// accounts.transaction(|tx| {
    ///     let alice = tx.get("alice")?.unwrap_or(0);
    ///     tx.insert("alice".into(), alice - 5)?;
    ///     tx.insert("bob".into(), 5)?;
    ///     Ok::<_, persistdict::Error>(())
    /// })?;
    /// assert_eq!(accounts.get("bob")?, Some(5));
    /// # Ok(()) }
    /// ```
    pub fn transaction<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnMut(&mut Transaction<'_, '_, K, V, C, KC>) -> Result<T, E>,
    {
        let mut touched = Vec::new();
        let (value, id) = self.inner.store.write_as(|w| {
            touched.clear();
            f(&mut Transaction {
                dict: self,
                txn: w,
                now: self.now(),
                touched: &mut touched,
            })
        })?;
        if touched.iter().any(Option::is_none) {
            self.inner.cache.committed_unknown(id);
        } else {
            let changes = touched.into_iter().flatten().map(|k| (k, Change::Forget));
            self.inner.cache.committed(id, changes);
        }
        Ok(value)
    }

    /// Stores the access times recorded in memory and syncs committed writes to disk (the
    /// sync matters only with [`Durability::Eventual`](crate::Durability)).
    pub fn flush(&self) -> Result<()> {
        self.inner.store.flush_atimes()?;
        self.inner.store.sync()
    }

    /// The creation time, access time and stored size of `key`'s entry. Looking is not an
    /// access.
    ///
    /// The access time includes reads of this process not yet stored; reads by other
    /// processes count once their worker stores them (every `flush_interval`, 10 s by
    /// default) or they close the dict.
    pub fn metadata<Q>(&self, key: &Q) -> Result<Option<Metadata>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let store = &self.inner.store;
        self.with_key(key, |key| {
            let found = store.read(|txn| {
                Ok(store
                    .get(txn, key, self.limit())?
                    .map(|r| (r.header, r.value.len() as u64)))
            })?;
            Ok(found.map(|(header, value_size)| {
                let accessed = header.accessed.max(store.pending_atime(key).unwrap_or(0));
                Metadata {
                    created: from_ms(header.created),
                    accessed: from_ms(accessed),
                    value_size,
                }
            }))
        })
    }

    /// Counters of the cache and the background worker, and sizes.
    pub fn stats(&self) -> Result<Stats> {
        let store = &self.inner.store;
        let counters = &store.counters;
        let (len, quarantined) =
            store.read(|txn| Ok((store.len(txn)?, store.quarantined(txn)?)))?;
        Ok(Stats {
            hits: self.inner.cache.hits(),
            misses: self.inner.cache.misses(),
            cached: self.inner.cache.len(),
            len,
            disk_bytes: store.disk_size()?,
            last_txn_id: store.last_txn_id(),
            expired: counters.expired.load(Ordering::Relaxed),
            sweeps: counters.sweeps.load(Ordering::Relaxed),
            quarantined,
            worker_errors: counters.errors.load(Ordering::Relaxed),
            last_worker_error: counters
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        })
    }

    /// Removes now every entry not accessed for the dict's `expire_after`, and returns how
    /// many. Does nothing (returns 0) when the dict has no expiry.
    pub fn expire_now(&self) -> Result<u64> {
        let Some(expire_after) = self.inner.expire_after else {
            return Ok(0);
        };
        let inner = &self.inner;
        let removed = background::sweep(
            &inner.store,
            &inner.name,
            &inner.clock,
            self.limit(),
            expire_after,
            None,
        )?;
        // The sweep's commits are not ours to apply key by key: start the cache afresh.
        self.inner
            .cache
            .committed_unknown(self.inner.store.last_txn_id());
        Ok(removed.len() as u64)
    }

    /// Walks every record: moves records that can't be read at all into quarantine (nothing
    /// is deleted), repairs inconsistent times and insertion order, and reports values that
    /// don't decode as `V` (they stay as they are). The worker runs the same check, without
    /// the value decoding, at open.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        let store = &self.inner.store;
        let mut report = background::check(store, self.limit(), self.now(), None)?;
        self.inner.cache.committed_unknown(store.last_txn_id());
        let undecodable = Walk::<_, _, _, _, Undecodable>::new(self.clone());
        report
            .undecodable
            .extend(undecodable.filter_map(|item| item.ok().flatten()));
        Ok(report)
    }

    /// The keys, in insertion order. See [`iter`](Self::iter).
    #[must_use]
    pub fn keys(&self) -> Keys<K, V, C, KC> {
        Keys(Walk::new(self.clone()))
    }

    /// The values, in insertion order. See [`iter`](Self::iter).
    #[must_use]
    pub fn values(&self) -> Values<K, V, C, KC> {
        Values(Walk::new(self.clone()))
    }

    /// The entries, in insertion order.
    ///
    /// The walk is streamed: it reads a chunk of entries (about 4 MiB of keys and values) per
    /// short read transaction and holds only that chunk in memory. Entries inserted during the walk are seen if they come
    /// after its position, removed ones are not; each chunk is a consistent snapshot. An
    /// entry that can't be decoded yields an `Err` and the walk goes on with the next.
    #[must_use]
    pub fn iter(&self) -> Iter<K, V, C, KC> {
        Iter(Walk::new(self.clone()))
    }
}

impl<V, C: Codec, KC: Codec> Inner<V, C, KC> {
    /// Stores the settings on creation; checks them on every later open.
    fn check_settings(&self) -> Result<()> {
        let limit = (self.key_size_limit as u32).to_le_bytes();
        let key_codec = self.key_codec.name();
        let value_codec = self.value_codec.name();
        let expected: [(&str, &'static str, &[u8]); 3] = [
            (INFO_KEY_SIZE_LIMIT, "key_size_limit", &limit),
            (INFO_KEY_CODEC, "key codec", key_codec.as_bytes()),
            (INFO_VALUE_CODEC, "value codec", value_codec.as_bytes()),
        ];
        let check = |get: &dyn Fn(&str) -> Result<Option<Vec<u8>>>| -> Result<bool> {
            let Some(format) = get(INFO_FORMAT)? else {
                return Ok(false);
            };
            let found = <[u8; 4]>::try_from(format.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| {
                    crate::env::corrupt(INFO_FORMAT.as_bytes(), "format version is not 4 bytes")
                })?;
            if found != FORMAT_VERSION {
                return Err(Error::UnsupportedFormat {
                    path: self.store.path().to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            for (info_key, setting, want) in expected {
                let stored = get(info_key)?.unwrap_or_default();
                if stored != want {
                    let show = |b: &[u8]| {
                        if info_key == INFO_KEY_SIZE_LIMIT {
                            <[u8; 4]>::try_from(b).map_or_else(
                                |_| format!("{b:?}"),
                                |b| u32::from_le_bytes(b).to_string(),
                            )
                        } else {
                            String::from_utf8_lossy(b).into_owned()
                        }
                    };
                    return Err(Error::SettingsMismatch {
                        path: self.store.path().to_path_buf(),
                        setting,
                        stored: show(&stored),
                        requested: show(want),
                    });
                }
            }
            Ok(true)
        };
        let store = &self.store;
        if store.read(|txn| check(&|name| store.info_get(txn, name)))? {
            return Ok(());
        }
        store.write(|w| {
            if check(&|name| w.info_get(name))? {
                return Ok(());
            }
            w.info_put(INFO_FORMAT, &FORMAT_VERSION.to_le_bytes())?;
            for (info_key, _, value) in expected {
                w.info_put(info_key, value)?;
            }
            if w.len()? == 0 {
                w.start_key_order()?;
            }
            Ok(())
        })
    }
}

impl<K, V, C, KC> IntoIterator for &PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<K, V, C, KC>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The creation and access times of an entry, and its size; see [`PersistDict::metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// When the key was first inserted (kept when it is overwritten). Millisecond resolution.
    pub created: SystemTime,
    /// When the entry was last read or written.
    pub accessed: SystemTime,
    /// Bytes of the encoded value.
    pub value_size: u64,
}

/// Counters and sizes; see [`PersistDict::stats`].
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

/// The handle given to [`PersistDict::transaction`]'s closure.
pub struct Transaction<'t, 's, K, V, C, KC> {
    dict: &'t PersistDict<K, V, C, KC>,
    txn: &'t mut WriteTxn<'s>,
    now: u64,
    /// Keys written (`None`: the whole dict, by `clear`), for the cache.
    touched: &'t mut Vec<Option<Vec<u8>>>,
}

impl<K, V, C, KC> Transaction<'_, '_, K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    /// Stores `value` under `key` in this transaction.
    pub fn insert(&mut self, key: K, value: V) -> Result<()> {
        let key = self.dict.encode_key(&key)?;
        let value = self.dict.encode_value(&value)?;
        self.txn.put(&key, &value, self.dict.limit(), self.now)?;
        self.touched.push(Some(key));
        Ok(())
    }

    /// The value of `key`, including this transaction's writes.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        self.dict.get_in(self.txn.as_read(), &key)
    }

    /// Whether `key` has a value, including this transaction's writes.
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        Ok(self
            .dict
            .inner
            .store
            .get(self.txn.as_read(), &key, self.dict.limit())?
            .is_some())
    }

    /// Removes `key` in this transaction; returns whether it had a value.
    pub fn remove<Q>(&mut self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        let removed = self.txn.delete(&key, self.dict.limit())?;
        self.touched.push(Some(key));
        Ok(removed)
    }

    /// The number of entries, including this transaction's writes.
    pub fn len(&self) -> Result<u64> {
        self.txn.len()
    }

    /// Whether the dict is empty, including this transaction's writes.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry in this transaction.
    pub fn clear(&mut self) -> Result<()> {
        self.txn.clear()?;
        self.touched.push(None);
        Ok(())
    }
}

/// What a walk yields for each entry, made from its encoded key and stored value bytes. A
/// type rather than a function pointer, so that the decoding is inlined into the walk.
trait WalkItem<K, V, C, KC> {
    type Out;
    /// Whether the walk reads the values; if not, `make` is given empty value bytes.
    const VALUES: bool;
    fn make(dict: &PersistDict<K, V, C, KC>, key: &[u8], value: &[u8]) -> Result<Self::Out>;
}

/// A [`WalkItem`] named `$name`, yielding `$out` made by `$make`.
macro_rules! walk_item {
    (
        $(#[$doc:meta])* $name:ident, values: $values:expr, $out:ty,
        |$dict:ident, $key:ident, $value:tt| $make:expr
    ) => {
        $(#[$doc])*
        struct $name;

        impl<K, V, C, KC> WalkItem<K, V, C, KC> for $name
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned + Clone,
            C: Codec,
            KC: Codec,
        {
            type Out = $out;
            const VALUES: bool = $values;
            fn make($dict: &PersistDict<K, V, C, KC>, $key: &[u8], $value: &[u8]) -> Result<$out> {
                $make
            }
        }
    };
}

walk_item!(
    /// Walks the entries.
    Pairs, values: true, (K, V),
    |dict, key, value| Ok((dict.decode_key(key)?, dict.decode_value(key, value)?))
);
walk_item!(
    /// Walks the keys.
    KeysOnly, values: false, K,
    |dict, key, _| dict.decode_key(key)
);
walk_item!(
    /// Walks the values.
    ValuesOnly, values: true, V,
    |dict, key, value| dict.decode_value(key, value)
);
walk_item!(
    /// Walks the values for the integrity check: the key of each that does not decode as `V`.
    Undecodable, values: true, Option<KeyBytes>,
    |dict, key, value| {
        let failed = dict.decode_value(key, value).is_err();
        Ok(failed.then(|| KeyBytes(key.to_vec())))
    }
);

/// A chunked walk over the insertion order, one item per live entry.
///
/// While the stored keys are in insertion order (`Store::in_key_order`), a chunk is the next
/// records of `entries` after the last key yielded; otherwise it is the next keys of `order`
/// after the last sequence number yielded, whose records are then looked up. A walk that finds
/// the key order broken goes on in `order` from its last sequence number, and stays there.
///
/// Each chunk's keys and values are copied, end to end, into two buffers while its read
/// transaction is open; an item is decoded only when it is asked for. Decoding the whole chunk
/// up front would allocate hundreds of items to be freed much later, which costs the allocator
/// more than the copy does.
struct Walk<K, V, C, KC, W> {
    dict: PersistDict<K, V, C, KC>,
    item: PhantomData<fn() -> W>,
    /// The sequence number of the last entry yielded.
    after: Option<u64>,
    /// The last key yielded while walking `entries` in key order; `None` before the first
    /// chunk, or once the walk has left key order.
    after_key: Option<Vec<u8>>,
    /// Whether the walk may still read `entries` in key order.
    by_key: bool,
    /// Entries to read in the next chunk (see [`ITER_CHUNK`]).
    size: usize,
    /// The current chunk's encoded keys and stored values.
    keys: Vec<u8>,
    vals: Vec<u8>,
    /// The chunk's entries in insertion order, yielded from `at` on: where the key and the
    /// value lie in their buffers, or why the entry could not be read (boxed: errors are rare,
    /// and an unboxed one would make every entry three times as large).
    chunk: Vec<Option<WalkEntry>>,
    at: usize,
    done: bool,
}

type WalkEntry = Result<(Range<usize>, Range<usize>), Box<Error>>;

impl<K, V, C, KC, W> Walk<K, V, C, KC, W>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
    W: WalkItem<K, V, C, KC>,
{
    fn new(dict: PersistDict<K, V, C, KC>) -> Self {
        Walk {
            dict,
            item: PhantomData,
            after: None,
            after_key: None,
            by_key: true,
            size: ITER_CHUNK,
            keys: Vec::new(),
            vals: Vec::new(),
            chunk: Vec::new(),
            at: 0,
            done: false,
        }
    }

    fn refill(&mut self) {
        let Walk {
            dict,
            after,
            after_key,
            by_key,
            size,
            keys,
            vals,
            chunk,
            at,
            done,
            ..
        } = self;
        let store = &dict.inner.store;
        keys.clear();
        vals.clear();
        chunk.clear();
        *at = 0;
        let result = store.read(|txn| {
            if *by_key && store.in_key_order(txn)? {
                let from = after_key.take();
                let mut last: Option<&[u8]> = None;
                let n = store.key_order_chunk(txn, from.as_deref(), *size, |key, record| {
                    let start = keys.len();
                    keys.extend_from_slice(key);
                    let key_span = start..keys.len();
                    chunk.push(Some(match record {
                        Ok(record) => {
                            *after = Some(record.header.seq);
                            let start = vals.len();
                            if W::VALUES {
                                vals.extend_from_slice(record.value);
                            }
                            Ok((key_span, start..vals.len()))
                        }
                        // A walk of keys alone reads no record through `order` either.
                        Err(_) if !W::VALUES => Ok((key_span, 0..0)),
                        Err(e) => Err(Box::new(e)),
                    }));
                    last = Some(key);
                })?;
                *after_key = match last {
                    Some(key) => {
                        let mut buf = from.unwrap_or_default();
                        buf.clear();
                        buf.extend_from_slice(key);
                        Some(buf)
                    }
                    None => from,
                };
                *done = n < *size;
                return Ok(());
            }
            *by_key = false;
            *after_key = None;
            let mut spans = Vec::with_capacity(*size);
            let n = store.order_chunk(txn, *after, *size, |seq, key| {
                let start = keys.len();
                keys.extend_from_slice(key);
                spans.push(start..keys.len());
                *after = Some(seq);
            })?;
            *done = n < *size;
            if !W::VALUES {
                chunk.extend(spans.into_iter().map(|key| Some(Ok((key, 0..0)))));
                return Ok(());
            }
            let encoded: Vec<&[u8]> = spans.iter().map(|span| &keys[span.clone()]).collect();
            // Values come in key order and go to their entry's place. `values_of` answers for
            // every key; an entry left unanswered would be skipped.
            chunk.resize_with(spans.len(), || None);
            store.values_of(txn, &encoded, dict.limit(), |i, value| {
                chunk[i] = Some(match value {
                    Ok(Some(value)) => {
                        let start = vals.len();
                        vals.extend_from_slice(value);
                        Ok((spans[i].clone(), start..vals.len()))
                    }
                    Ok(None) => Err(Box::new(crate::env::corrupt(
                        encoded[i],
                        "listed in the insertion order but has no record",
                    ))),
                    Err(e) => Err(Box::new(e)),
                });
            });
            Ok(())
        });
        if let Err(e) = result {
            *done = true;
            chunk.push(Some(Err(Box::new(e))));
        }
        if !chunk.is_empty() {
            let per_entry = ((keys.len() + vals.len()) / chunk.len()).max(1);
            *size = (ITER_CHUNK_BYTES / per_entry)
                .min(chunk.len() * ITER_CHUNK_GROWTH)
                .clamp(1, ITER_CHUNK_MAX);
        }
    }
}

impl<K, V, C, KC, W> Iterator for Walk<K, V, C, KC, W>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
    W: WalkItem<K, V, C, KC>,
{
    type Item = Result<W::Out>;

    fn next(&mut self) -> Option<Result<W::Out>> {
        loop {
            if self.at == self.chunk.len() {
                if self.done {
                    return None;
                }
                self.refill();
                continue;
            }
            self.at += 1;
            match self.chunk[self.at - 1].take() {
                None => {}
                Some(Ok((key, value))) => {
                    return Some(W::make(&self.dict, &self.keys[key], &self.vals[value]));
                }
                Some(Err(e)) => return Some(Err(*e)),
            }
        }
    }
}

/// A public iterator over a [`Walk`] yielding `$item`s.
macro_rules! walk_iterator {
    ($(#[$doc:meta])* $name:ident => $walk:ty, $item:ty) => {
        $(#[$doc])*
        pub struct $name<K, V, C = Postcard, KC = Postcard>(Walk<K, V, C, KC, $walk>);

        impl<K, V, C, KC> Iterator for $name<K, V, C, KC>
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned + Clone,
            C: Codec,
            KC: Codec,
        {
            type Item = Result<$item>;

            fn next(&mut self) -> Option<Self::Item> {
                self.0.next()
            }
        }
    };
}

walk_iterator!(
    /// Iterator over a dict's entries; see [`PersistDict::iter`].
    Iter => Pairs, (K, V)
);
walk_iterator!(
    /// Iterator over a dict's keys; see [`PersistDict::keys`].
    Keys => KeysOnly, K
);
walk_iterator!(
    /// Iterator over a dict's values; see [`PersistDict::values`].
    Values => ValuesOnly, V
);
