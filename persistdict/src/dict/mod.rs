//! The typed persistent map: codecs over the untyped middle (`crate::raw`).

mod encoding;
mod transaction;
mod upkeep;
mod walk;

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::transaction::{Transaction, TransactionError, TransactionIter};
pub use self::walk::{Iter, Keys, Values};
use crate::codec::{Codec, Postcard};
use crate::error::{Error, Result};
use crate::options::Builder;
pub use crate::raw::{Metadata, Stats};
use crate::raw::{RawDict, RawRead};
use crate::store::Settings;
use crate::types::{Described, TypeTable};

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
    inner: Arc<Inner<V, C, KC>>,
    marker: PhantomData<fn(K) -> V>,
}

struct Inner<V, C, KC> {
    raw: RawDict<V>,
    value_codec: C,
    key_codec: KC,
    /// [`Builder::undecodable_as_missing`].
    undecodable_as_missing: bool,
    /// In a dict whose values carry type tags (format 2): `V` as it is written, and the
    /// types recorded in the dict.
    typed: Option<Typed>,
}

struct Typed {
    me: Described,
    table: TypeTable,
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
            .field("name", &self.inner.raw.name())
            .field("path", &self.inner.raw.path())
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

impl<K, V, C: Codec, KC: Codec> Builder<K, V, C, KC> {
    /// Opens the dict in directory `path`, creating the directory (and its parents) and the
    /// dict if missing.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidOption`] for an option out of range, or a durability other than the
    ///   one the same directory is already open with in this process.
    /// - [`Error::Io`] when `path` is a regular file or can't be created.
    /// - [`Error::NotADict`] when the directory holds a data file LMDB can't read.
    /// - [`Error::SettingsMismatch`] / [`Error::UnsupportedFormat`] when the dict was created
    ///   with other settings or by a newer version.
    pub fn open(self, path: impl AsRef<Path>) -> Result<PersistDict<K, V, C, KC>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned + Clone,
    {
        self.config.validate()?;
        let me = Described::for_codec::<V>(&self.value_codec);
        let record = me.record();
        let key_record = Described::for_codec::<K>(&self.key_codec).record();
        let settings = Settings {
            key_size_limit: self.config.key_size_limit,
            key_codec: &self.key_codec.name(),
            value_codec: &self.value_codec.name(),
            read_only: self.config.read_only,
            value_type: record.as_ref().map(|(tag, shape)| (&tag[..], &shape[..])),
            key_type: key_record
                .as_ref()
                .map(|(tag, shape)| (&tag[..], &shape[..])),
            notes: &[],
        };
        let raw = RawDict::open(path.as_ref(), &self.config, settings)?;
        let typed = if raw.typed() {
            let table = TypeTable::new(raw.value_types()?);
            table.learn(&me);
            Some(Typed { me, table })
        } else {
            None
        };
        Ok(PersistDict {
            inner: Arc::new(Inner {
                raw,
                value_codec: self.value_codec,
                key_codec: self.key_codec,
                undecodable_as_missing: self.config.undecodable_as_missing,
                typed,
            }),
            marker: PhantomData,
        })
    }
}

impl<K, V, C, KC> PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    /// The dict's label, used in log events.
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.raw.name()
    }

    /// The dict's directory, canonicalized.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.inner.raw.path()
    }

    /// The untyped dict underneath, for the runtime halves of the attributes.
    pub(crate) fn raw(&self) -> &RawDict<V> {
        &self.inner.raw
    }

    /// Stores `value` under `key`, replacing any previous value. An overwritten key keeps its
    /// place in iteration order and its creation time. The old value is neither read nor
    /// decoded (so a value written as another type is overwritten too); [`replace`](Self::replace)
    /// returns it, as `HashMap::insert` does.
    pub fn insert(&self, key: K, value: V) -> Result<()> {
        let key = self.encode_new_key(&key)?;
        let bytes = self.encode_value(&value)?;
        // The cache gets the value itself; a replay after the map grew has none left to give,
        // and the cache then forgets the key instead.
        let mut value = Some(value);
        self.keyed(
            self.inner
                .raw
                .write(|mut w| w.put(&key, &bytes, value.take()).map(drop)),
        )
    }

    /// The value of `key`, or `None`. In a dict with expiry, an entry past its expiry is
    /// `None` from the moment it expires, before a sweep removes it (as it is for
    /// [`contains_key`](Self::contains_key), [`metadata`](Self::metadata), iteration and
    /// every read inside a write).
    ///
    /// # Errors
    ///
    /// [`Error::TypeChanged`] when the value was written as a type `V` can't read, and
    /// [`Error::Decode`] when it can't be decoded as `V`; the entry is left as it is (see
    /// [`Builder::undecodable_as_missing`](crate::Builder::undecodable_as_missing)).
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.keyed(self.with_key(key, |key| {
            self.inner
                .raw
                .get(key, |key, bytes| self.decode_found(key, bytes))
        }))
    }

    /// `f` of the value of `key`, by reference, or `None`: what [`get`](Self::get) returns,
    /// without its copy of the value. A cache hit runs `f` on the cached value itself, and a
    /// value read from storage is cached after `f` has seen it, so a large value is never
    /// copied. `f` runs while no lock is held: it may use the dict.
    ///
    /// ```
    /// # fn main() -> persistdict::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let docs: persistdict::PersistDict<String, Vec<String>> =
    ///     persistdict::PersistDict::open(dir.path().join("docs"))?;
    /// docs.insert("a".into(), vec!["one".into(), "two".into()])?;
    /// assert_eq!(docs.get_with("a", |words| words.len())?, Some(2));
    /// assert_eq!(docs.get_with("b", |words| words.len())?, None);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get); `f` is not called then.
    pub fn get_with<Q, T>(&self, key: &Q, f: impl FnOnce(&V) -> T) -> Result<Option<T>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.keyed(self.with_key(key, |key| {
            self.inner
                .raw
                .get_with(key, |key, bytes| self.decode_found(key, bytes), f)
        }))
    }

    /// Whether `key` has a value. Reads no value bytes, and is not an access.
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.keyed(self.with_key(key, |key| {
            if self.inner.undecodable_as_missing {
                // Present means decodable here, which only decoding can tell.
                Ok(self.read_stored(key)?.is_some())
            } else {
                self.inner.raw.contains(key)
            }
        }))
    }

    /// Removes `key`; returns whether it had a value. Neither reads nor decodes the value, so
    /// it also removes one written as another type; [`take`](Self::take) returns the value,
    /// as `HashMap::remove` does.
    pub fn remove<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        self.keyed(self.inner.raw.write(|mut w| w.delete(&key)))
    }

    /// Removes `key` and returns its value.
    ///
    /// # Errors
    ///
    /// [`Error::TypeChanged`] / [`Error::Decode`] when the stored value can't be read as `V`;
    /// the entry is then kept.
    pub fn take<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.encode_key(key)?;
        self.keyed(self.inner.raw.write(|mut w| {
            let Some(value) = w.with(&key, |b| self.decode_stored(&key, b))?? else {
                return Ok(None);
            };
            w.delete(&key)?;
            Ok(Some(value))
        }))
    }

    /// The number of entries (O(1)). In a dict with expiry, it counts entries past their
    /// expiry until a sweep removes them (every `sweep_interval`, or
    /// [`expire_now`](Self::expire_now)), though every other read treats them as missing.
    ///
    /// A `u64`, where `HashMap::len` returns a `usize`: the count is of entries on disk,
    /// which a 32-bit program can open with more than `usize::MAX` entries in it.
    pub fn len(&self) -> Result<u64> {
        self.inner.raw.len()
    }

    /// Whether the dict has no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry, in one transaction.
    pub fn clear(&self) -> Result<()> {
        self.inner.raw.write(|mut w| w.clear())
    }

    /// Atomically replaces the value of `key` by `f(old)`, across threads and processes:
    /// `f` runs inside the write transaction, which no other writer can interleave with.
    /// `None` from `f` removes the entry. Returns the new value.
    ///
    /// `f` may run more than once if the map has to grow during the write; only its last
    /// result is stored.
    ///
    /// While `f` runs, this thread holds the dict's writer lock, which every writer of the
    /// dict, in any process, waits for. `f` may write to *another* dict (through its own
    /// methods), but then the order of the two locks is the caller's to keep: two threads that
    /// each update one dict while writing the other, in opposite orders, wait for each other
    /// forever. Take such dicts in one fixed order everywhere.
    ///
    /// # Errors
    ///
    /// [`Error::TypeChanged`] / [`Error::Decode`] when the stored value can't be read as `V`;
    /// `f` is then not called and
    /// nothing changes.
    ///
    /// # Why a closure and not an `entry` guard
    ///
    /// `HashMap::entry` hands out a guard to read and then write a key. Here a guard would hold
    /// the dict's writer lock, across processes, for as long as the caller keeps it, and it
    /// could not be atomic when the map has to grow mid-write: growing ends the transaction,
    /// another process may then write the key, and replaying the guard's last write would lose
    /// that write. A closure can be run again on the fresh value, which is why `f` may run
    /// more than once; and the lock is held only while `f` runs. For the other uses of an
    /// entry, [`get_or_insert_with`](Self::get_or_insert_with), [`replace`](Self::replace) and
    /// [`transaction`](Self::transaction) cover them.
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
        let key = self.encode_new_key(key)?;
        let updated = self.inner.raw.write(|mut w| {
            let old = w.with(&key, |b| self.decode_stored(&key, b))??;
            let new = f(old);
            match &new {
                Some(value) => {
                    let bytes = self.encode_value(value)?;
                    w.put(&key, &bytes, Some(value.clone()))?;
                }
                None => {
                    w.delete(&key)?;
                }
            }
            Ok(new)
        });
        self.keyed(updated)
    }

    /// The value of `key`; if it has none, stores `f()` and returns it. `f` runs outside any
    /// transaction (other writers are not held up by it); if another writer stored a value
    /// meanwhile, that value wins and is returned.
    pub fn get_or_insert_with<F>(&self, key: K, f: F) -> Result<V>
    where
        F: FnOnce() -> V,
    {
        self.get_or_try_insert_with(key, || Ok::<_, Error>(f()))
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with a fallible `f`: when `f` fails,
    /// its error is returned and nothing is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let ports: persistdict::PersistDict<String, u16> = persistdict::PersistDict::open(dir.path())?;
    /// let port = ports.get_or_try_insert_with("web".into(), || "8080".parse::<u16>().map_err(Box::<dyn std::error::Error>::from))?;
    /// assert_eq!(port, 8080);
    /// # Ok(()) }
    /// ```
    pub fn get_or_try_insert_with<F, E>(&self, key: K, f: F) -> Result<V, E>
    where
        F: FnOnce() -> Result<V, E>,
        E: From<Error>,
    {
        let key = self.encode_new_key(&key)?;
        if let Some(value) = self.keyed(self.read_stored(&key))? {
            return Ok(value);
        }
        let value = f()?;
        let bytes = self.encode_value(&value)?;
        let existing = self.keyed(self.inner.raw.write(|mut w| {
            if let Some(existing) = w.with(&key, |b| self.decode_stored(&key, b))?? {
                return Ok(Some(existing));
            }
            w.put(&key, &bytes, None)?;
            Ok(None)
        }))?;
        Ok(existing.unwrap_or(value))
    }

    /// Stores `value` under `key` and returns the value it replaces, as
    /// [`HashMap::insert`](std::collections::HashMap::insert) does. [`insert`](Self::insert)
    /// returns nothing: it neither reads nor decodes the old value, so it also overwrites a
    /// value written as another type.
    ///
    /// # Errors
    ///
    /// [`Error::TypeChanged`] / [`Error::Decode`] when the old value can't be read as `V`;
    /// nothing is written then.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> persistdict::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let d: persistdict::PersistDict<String, u32> = persistdict::PersistDict::open(dir.path())?;
    /// assert_eq!(d.replace("a".into(), 1)?, None);
    /// assert_eq!(d.replace("a".into(), 2)?, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn replace(&self, key: K, value: V) -> Result<Option<V>> {
        let key = self.encode_new_key(&key)?;
        let bytes = self.encode_value(&value)?;
        let mut value = Some(value);
        self.keyed(self.inner.raw.write(|mut w| {
            let old = w.with(&key, |b| self.decode_stored(&key, b))??;
            w.put(&key, &bytes, value.take())?;
            Ok(old)
        }))
    }

    /// Keeps only the entries for which `keep(&key, &value)` is true, removing the others;
    /// returns how many were removed, as
    /// [`HashMap::retain`](std::collections::HashMap::retain) does without the count.
    ///
    /// The walk goes through the insertion order in chunks of 1,000 entries, each judged and
    /// committed in a write transaction of its own, like an expiry sweep: other writers wait
    /// at most one chunk, and a crash or an error keeps the chunks committed before. So the
    /// whole is not atomic (use [`transaction`](Self::transaction) for that); each chunk is.
    /// `keep` may see a chunk again if the map had to grow.
    ///
    /// # Errors
    ///
    /// [`Error::TypeChanged`], [`Error::Decode`] or [`Error::DecodeKey`] for an entry that
    /// can't be read; the walk
    /// stops there, and what it removed before stays removed.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> persistdict::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let d: persistdict::PersistDict<u32, u32> = persistdict::PersistDict::open(dir.path())?;
    /// d.extend((0..10).map(|i| (i, i * i)))?;
    /// assert_eq!(d.retain(|_, square| square % 2 == 0)?, 5);
    /// assert_eq!(d.keys().collect::<persistdict::Result<Vec<_>>>()?, [0, 2, 4, 6, 8]);
    /// # Ok(()) }
    /// ```
    pub fn retain<F>(&self, mut keep: F) -> Result<u64>
    where
        F: FnMut(&K, &V) -> bool,
    {
        self.keyed(self.inner.raw.retain(|key, value| {
            match self.decode_found(key, value)? {
                Some(value) => Ok(keep(&self.decode_key(key)?, &value)),
                // A value that reads as missing is not the caller's to judge; it stays.
                None => Ok(true),
            }
        }))
    }

    /// The stored value of encoded `key`, read past the cache and not counted as an access.
    fn read_stored(&self, key: &[u8]) -> Result<Option<V>> {
        self.inner
            .raw
            .read(|r: &RawRead<'_, '_>| self.decode_stored(key, r.get(key)?))
    }

    /// Inserts every pair, in one transaction: all of them or none.
    pub fn extend<I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let encoded = self.encode_pairs(items)?;
        self.inner.raw.write(|mut w| {
            for (key, value) in encoded.iter() {
                w.put(key, value, None)?;
            }
            Ok(())
        })
    }

    /// Fills the dict with `items` the first time it is called on this dict (the Python
    /// original's `d(a=1, b=2)`). Later calls fail with [`Error::AlreadyInitialized`] until the
    /// dict is empty again (for example after [`clear`](Self::clear)).
    pub fn init_once<I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let encoded = self.encode_pairs(items)?;
        self.inner.raw.write(|mut w| {
            if w.initialized()? && w.len()? > 0 {
                return Err(Error::AlreadyInitialized);
            }
            for (key, value) in encoded.iter() {
                w.put(key, value, None)?;
            }
            w.mark_initialized()
        })
    }

    /// Runs `f` in one write transaction: everything it inserts and removes is committed
    /// together when it returns `Ok`, and nothing when it returns `Err`. Reads inside see the
    /// transaction's own writes.
    ///
    /// `f` may run more than once if the map has to grow, so it should have no effects outside
    /// the transaction. Calling a writing method of a dict on the same directory inside `f`
    /// returns [`Error::NestedTransaction`]: use the handle `f` gets. Writing to another dict
    /// inside `f` is allowed, and the order of the dicts is then the caller's to keep (see
    /// [`update`](Self::update)).
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
    ///
    /// The closure may return an error type of the program's own: any type with
    /// `From<persistdict::Error>` ([`TransactionError`]), so that `?` works on the
    /// transaction's methods. An error returned from the closure rolls everything back.
    ///
    /// ```
    /// #[derive(Debug)]
    /// enum TransferError {
    ///     Store(persistdict::Error),
    ///     Insufficient { balance: i64 },
    /// }
    ///
    /// impl From<persistdict::Error> for TransferError {
    ///     fn from(e: persistdict::Error) -> Self {
    ///         TransferError::Store(e)
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), TransferError> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let accounts: persistdict::PersistDict<String, i64> = persistdict::PersistDict::open(dir.path())?;
    /// accounts.insert("alice".into(), 3)?;
    /// let result = accounts.transaction(|tx| {
    ///     let balance = tx.get("alice")?.unwrap_or(0);
    ///     if balance < 5 {
    ///         return Err(TransferError::Insufficient { balance });
    ///     }
    ///     tx.insert("alice".into(), balance - 5)?;
    ///     Ok(())
    /// });
    /// assert!(matches!(result, Err(TransferError::Insufficient { balance: 3 })));
    /// assert_eq!(accounts.get("alice")?, Some(3), "nothing was written");
    /// # Ok(()) }
    /// ```
    ///
    /// `Box<dyn std::error::Error + Send + Sync>` works as it is; a plain `String` does not
    /// (it has no `From<persistdict::Error>`), and the compiler says so with this advice.
    pub fn transaction<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        E: TransactionError,
        F: FnMut(&mut Transaction<'_, '_, K, V, C, KC>) -> Result<T, E>,
    {
        self.inner.raw.write(|w| f(&mut Transaction::new(self, w)))
    }
}
