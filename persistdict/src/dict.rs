//! The typed persistent map.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::codec::{Codec, Postcard};
use crate::env::{FORMAT_VERSION, ReadTxn, Store, StoreOptions, WriteTxn};
use crate::error::{Error, KeyBytes, Result};
use crate::options::Builder;

/// Entries read per read transaction while iterating: short transactions keep LMDB from
/// holding on to pages that writers free meanwhile.
const ITER_CHUNK: usize = 512;

const INFO_FORMAT: &str = "format_version";
const INFO_KEY_SIZE_LIMIT: &str = "key_size_limit";
const INFO_KEY_CODEC: &str = "key_codec";
const INFO_VALUE_CODEC: &str = "value_codec";
const INFO_INITIALIZED: &str = "initialized";

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
    inner: Arc<Inner<C, KC>>,
    marker: PhantomData<fn(K) -> V>,
}

struct Inner<C, KC> {
    store: Arc<Store>,
    value_codec: C,
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
        V: Serialize + DeserializeOwned,
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
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    pub(crate) fn from_builder(
        builder: Builder<K, V, C, KC>,
        path: &Path,
        store_options: &StoreOptions,
    ) -> Result<Self> {
        let store = Store::open(path, store_options)?;
        let name = builder.name.unwrap_or_else(|| {
            store
                .path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        });
        let inner = Inner {
            store,
            value_codec: builder.value_codec,
            key_codec: builder.key_codec,
            name,
            key_size_limit: builder.key_size_limit,
            clock: builder.clock,
        };
        inner.check_settings()?;
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

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    fn limit(&self) -> usize {
        self.inner.key_size_limit
    }

    fn encode_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Vec<u8>> {
        self.inner
            .key_codec
            .encode(key)
            .map_err(|source| Error::Encode {
                what: "key",
                type_name: std::any::type_name::<Q>(),
                source,
            })
    }

    fn encode_value(&self, value: &V) -> Result<Vec<u8>> {
        self.inner
            .value_codec
            .encode(value)
            .map_err(|source| Error::Encode {
                what: "value",
                type_name: std::any::type_name::<V>(),
                source,
            })
    }

    fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<V> {
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
        let key = self.encode_key(&key)?;
        let value = self.encode_value(&value)?;
        let now = self.now();
        self.inner
            .store
            .write(|w| w.put(&key, &value, self.limit(), now).map(drop))
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
        let key = self.encode_key(key)?;
        self.inner.store.read(|txn| self.get_in(txn, &key))
    }

    /// Whether `key` has a value. Reads no value bytes.
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        self.inner
            .store
            .read(|txn| Ok(self.inner.store.get(txn, &key, self.limit())?.is_some()))
    }

    /// Removes `key`; returns whether it had a value.
    pub fn remove<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        self.inner.store.write(|w| w.delete(&key, self.limit()))
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
        self.inner.store.write(|w| {
            let Some(value) = self.get_in(w.as_read(), &key)? else {
                return Ok(None);
            };
            w.delete(&key, self.limit())?;
            Ok(Some(value))
        })
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
        self.inner.store.write(|w| w.clear())
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
        self.inner.store.write(|w| {
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
        })
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
        let stored = self.inner.store.write(|w| {
            if let Some(existing) = self.get_in(w.as_read(), &key)? {
                return Ok(Some(existing));
            }
            w.put(&key, &bytes, self.limit(), self.now())?;
            Ok(None)
        })?;
        Ok(stored.unwrap_or(value))
    }

    /// Inserts every pair, in one transaction: all of them or none.
    pub fn extend<I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let encoded = self.encode_pairs(items)?;
        let now = self.now();
        self.inner.store.write(|w| {
            for (key, value) in &encoded {
                w.put(key, value, self.limit(), now)?;
            }
            Ok(())
        })
    }

    fn encode_pairs<I>(&self, items: I) -> Result<Vec<(Vec<u8>, Vec<u8>)>>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        items
            .into_iter()
            .map(|(k, v)| Ok((self.encode_key(&k)?, self.encode_value(&v)?)))
            .collect()
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
        self.inner.store.write(|w| {
            if w.info_get(INFO_INITIALIZED)?.is_some() && w.len()? > 0 {
                return Err(Error::AlreadyInitialized);
            }
            for (key, value) in &encoded {
                w.put(key, value, self.limit(), now)?;
            }
            w.info_put(INFO_INITIALIZED, &[1])
        })
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
        self.inner.store.write_as(|w| {
            f(&mut Transaction {
                dict: self,
                txn: w,
                now: self.now(),
            })
        })
    }

    /// Syncs committed writes to disk. Needed only with [`Durability::Eventual`](crate::Durability).
    pub fn flush(&self) -> Result<()> {
        self.inner.store.sync()
    }

    /// The keys, in insertion order. See [`iter`](Self::iter).
    #[must_use]
    pub fn keys(&self) -> Keys<K, V, C, KC> {
        Keys(Walk::new(self.clone(), |_, _, _| Ok(Some(Vec::new()))))
    }

    /// The values, in insertion order. See [`iter`](Self::iter).
    #[must_use]
    pub fn values(&self) -> Values<K, V, C, KC> {
        Values(Walk::new(self.clone(), Self::value_at))
    }

    /// The entries, in insertion order.
    ///
    /// The walk is streamed: it reads a chunk of entries per short read transaction and holds
    /// only that chunk in memory. Entries inserted during the walk are seen if they come
    /// after its position, removed ones are not; each chunk is a consistent snapshot. An
    /// entry that can't be decoded yields an `Err` and the walk goes on with the next.
    #[must_use]
    pub fn iter(&self) -> Iter<K, V, C, KC> {
        Iter(Walk::new(self.clone(), Self::value_at))
    }

    fn value_at(&self, txn: &ReadTxn<'_>, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .store
            .get(txn, key, self.limit())?
            .map(|r| r.value.to_vec()))
    }
}

impl<C: Codec, KC: Codec> Inner<C, KC> {
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
            Ok(())
        })
    }
}

impl<K, V, C, KC> IntoIterator for &PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<K, V, C, KC>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The handle given to [`PersistDict::transaction`]'s closure.
pub struct Transaction<'t, 's, K, V, C, KC> {
    dict: &'t PersistDict<K, V, C, KC>,
    txn: &'t mut WriteTxn<'s>,
    now: u64,
}

impl<K, V, C, KC> Transaction<'_, '_, K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    /// Stores `value` under `key` in this transaction.
    pub fn insert(&mut self, key: K, value: V) -> Result<()> {
        let key = self.dict.encode_key(&key)?;
        let value = self.dict.encode_value(&value)?;
        self.txn
            .put(&key, &value, self.dict.limit(), self.now)
            .map(drop)
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
        self.txn.delete(&key, self.dict.limit())
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
        self.txn.clear()
    }
}

type Fetch<K, V, C, KC> =
    fn(&PersistDict<K, V, C, KC>, &ReadTxn<'_>, &[u8]) -> Result<Option<Vec<u8>>>;

/// A chunked walk over the insertion order: `(key, fetched bytes)` per live entry.
struct Walk<K, V, C, KC> {
    dict: PersistDict<K, V, C, KC>,
    fetch: Fetch<K, V, C, KC>,
    after: Option<u64>,
    buffer: VecDeque<Result<(Vec<u8>, Vec<u8>)>>,
    done: bool,
}

impl<K, V, C, KC> Walk<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    fn new(dict: PersistDict<K, V, C, KC>, fetch: Fetch<K, V, C, KC>) -> Self {
        Walk {
            dict,
            fetch,
            after: None,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    fn refill(&mut self) {
        let store = &self.dict.inner.store;
        let result = store.read(|txn| {
            let chunk = store.order_chunk(txn, self.after, ITER_CHUNK)?;
            if chunk.len() < ITER_CHUNK {
                self.done = true;
            }
            for (seq, key) in chunk {
                self.after = Some(seq);
                match (self.fetch)(&self.dict, txn, &key) {
                    Ok(Some(bytes)) => self.buffer.push_back(Ok((key, bytes))),
                    Ok(None) => self.buffer.push_back(Err(crate::env::corrupt(
                        &key,
                        "listed in the insertion order but has no record",
                    ))),
                    Err(e) => self.buffer.push_back(Err(e)),
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            self.done = true;
            self.buffer.push_back(Err(e));
        }
    }

    fn next_raw(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.buffer.is_empty() && !self.done {
            self.refill();
        }
        self.buffer.pop_front()
    }
}

/// Iterator over a dict's entries; see [`PersistDict::iter`].
pub struct Iter<K, V, C = Postcard, KC = Postcard>(Walk<K, V, C, KC>);
/// Iterator over a dict's keys; see [`PersistDict::keys`].
pub struct Keys<K, V, C = Postcard, KC = Postcard>(Walk<K, V, C, KC>);
/// Iterator over a dict's values; see [`PersistDict::values`].
pub struct Values<K, V, C = Postcard, KC = Postcard>(Walk<K, V, C, KC>);

impl<K, V, C, KC> Iterator for Iter<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.0.next_raw()?;
        let dict = &self.0.dict;
        Some(item.and_then(|(key, value)| {
            Ok((dict.decode_key(&key)?, dict.decode_value(&key, &value)?))
        }))
    }
}

impl<K, V, C, KC> Iterator for Keys<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    type Item = Result<K>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.0.next_raw()?;
        Some(item.and_then(|(key, _)| self.0.dict.decode_key(&key)))
    }
}

impl<K, V, C, KC> Iterator for Values<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    C: Codec,
    KC: Codec,
{
    type Item = Result<V>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.0.next_raw()?;
        Some(item.and_then(|(key, value)| self.0.dict.decode_value(&key, &value)))
    }
}
