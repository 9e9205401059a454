//! The handle a [`PersistDict::transaction`] closure writes through.

use std::borrow::Borrow;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PersistDict;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::raw::{RawWalk, RawWrite};

/// The handle given to [`PersistDict::transaction`]'s closure: the dict's calls, seeing the
/// transaction's own writes, all committed together or not at all.
///
/// # Examples
///
/// ```
/// # fn main() -> persistdict::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let stock: persistdict::PersistDict<String, u32> = persistdict::PersistDict::open(dir.path())?;
/// stock.extend([("apples".to_string(), 3), ("pears".to_string(), 0)])?;
/// let listed = stock.transaction(|tx| {
///     tx.update("apples", |n| n.map(|n| n - 1))?;           // read-modify-write
///     let pears = tx.take("pears")?;                        // remove, returning the value
///     assert_eq!(pears, Some(0));
///     tx.extend([("plums".to_string(), 5)])?;
///     let figs = tx.get_or_insert_with("figs".into(), || 1)?;
///     assert_eq!(figs, 1);
///     tx.iter().collect::<persistdict::Result<Vec<_>>>() // what the transaction sees
/// })?;
/// assert_eq!(listed, [("apples".into(), 2), ("plums".into(), 5), ("figs".into(), 1)]);
/// # Ok(()) }
/// ```
pub struct Transaction<'t, 's, K, V, C, KC> {
    dict: &'t PersistDict<K, V, C, KC>,
    w: RawWrite<'t, 's, V>,
}

impl<K, V, C, KC> fmt::Debug for Transaction<'_, '_, K, V, C, KC> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("dict", &self.dict)
            .finish_non_exhaustive()
    }
}

impl<'t, 's, K, V, C, KC> Transaction<'t, 's, K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    pub(super) fn new(dict: &'t PersistDict<K, V, C, KC>, w: RawWrite<'t, 's, V>) -> Self {
        Transaction { dict, w }
    }

    /// Stores `value` under `key` in this transaction.
    pub fn insert(&mut self, key: K, value: V) -> Result<()> {
        let key = self.dict.encode_new_key(&key)?;
        let value = self.dict.encode_value(&value)?;
        self.w.put(&key, &value, None)?;
        Ok(())
    }

    /// The value of `key`, including this transaction's writes.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        self.w.with(&key, |b| self.dict.decode_stored(&key, b))?
    }

    /// Whether `key` has a value, including this transaction's writes.
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        self.w.contains(&key)
    }

    /// Removes `key` in this transaction; returns whether it had a value.
    pub fn remove<Q>(&mut self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        self.w.delete(&key)
    }

    /// The number of entries, including this transaction's writes.
    pub fn len(&self) -> Result<u64> {
        self.w.len()
    }

    /// Whether the dict is empty, including this transaction's writes.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry in this transaction.
    pub fn clear(&mut self) -> Result<()> {
        self.w.clear()
    }

    /// Replaces the value of `key` by `f(old)` in this transaction (`None` from `f` removes
    /// it); returns the new value. See [`PersistDict::update`].
    pub fn update<Q, F>(&mut self, key: &Q, f: F) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        F: FnOnce(Option<V>) -> Option<V>,
    {
        let key = self.dict.encode_new_key(key)?;
        let old = self.w.with(&key, |b| self.dict.decode_stored(&key, b))??;
        let new = f(old);
        match &new {
            Some(value) => {
                let bytes = self.dict.encode_value(value)?;
                self.w.put(&key, &bytes, None)?;
            }
            None => {
                self.w.delete(&key)?;
            }
        }
        Ok(new)
    }

    /// Removes `key` in this transaction and returns its value.
    ///
    /// # Errors
    ///
    /// [`Error::TypeChanged`] / [`Error::Decode`] when the stored value can't be read as `V`;
    /// it is then not removed.
    pub fn take<Q>(&mut self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = self.dict.encode_key(key)?;
        let Some(value) = self.w.with(&key, |b| self.dict.decode_stored(&key, b))?? else {
            return Ok(None);
        };
        self.w.delete(&key)?;
        Ok(Some(value))
    }

    /// Inserts every pair in this transaction.
    pub fn extend<I>(&mut self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        for (key, value) in items {
            self.insert(key, value)?;
        }
        Ok(())
    }

    /// The value of `key` as this transaction sees it; if it has none, stores `f()` in this
    /// transaction and returns it.
    pub fn get_or_insert_with<F>(&mut self, key: K, f: F) -> Result<V>
    where
        F: FnOnce() -> V,
    {
        let key = self.dict.encode_new_key(&key)?;
        if let Some(value) = self.w.with(&key, |b| self.dict.decode_stored(&key, b))?? {
            return Ok(value);
        }
        let value = f();
        self.w.put(&key, &self.dict.encode_value(&value)?, None)?;
        Ok(value)
    }

    /// The entries in insertion order, as this transaction sees them (its own writes
    /// included). It borrows the transaction, so it ends before the next write.
    #[must_use]
    pub fn iter(&self) -> TransactionIter<'_, 't, 's, K, V, C, KC> {
        TransactionIter {
            tx: self,
            walk: self.dict.raw().walk(true, false),
        }
    }
}

impl<'a, 't, 's, K, V, C, KC> IntoIterator for &'a Transaction<'t, 's, K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    type Item = Result<(K, V)>;
    type IntoIter = TransactionIter<'a, 't, 's, K, V, C, KC>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The entries a [`Transaction`] sees, in insertion order; see [`Transaction::iter`].
pub struct TransactionIter<'a, 't, 's, K, V, C, KC> {
    tx: &'a Transaction<'t, 's, K, V, C, KC>,
    walk: RawWalk,
}

impl<K, V, C, KC> fmt::Debug for TransactionIter<'_, '_, '_, K, V, C, KC> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionIter")
            .field("dict", &self.tx.dict)
            .finish_non_exhaustive()
    }
}

impl<K, V, C, KC> Iterator for TransactionIter<'_, '_, '_, K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let dict = self.tx.dict;
        loop {
            let entry = self.tx.w.next_in(&mut self.walk)?;
            let item = entry.and_then(|(key, value)| match dict.decode_found(key, value)? {
                Some(value) => Ok(Some((dict.decode_key(key)?, value))),
                // A value that reads as missing (`Builder::undecodable_as_missing`).
                None => Ok(None),
            });
            match item {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(error) => return Some(Err(dict.show_key(error))),
            }
        }
    }
}

/// The errors a [`PersistDict::transaction`] closure may return: any type that a
/// [`persistdict::Error`](Error) converts into, so that `?` works on the transaction's
/// methods inside it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` can't be the error of a transaction: it has no `From<persistdict::Error>`",
    label = "the closure's error type",
    note = "use `persistdict::Error`, `Box<dyn std::error::Error + Send + Sync>`, or an error enum of yours with a variant `#[error(transparent)] Store(#[from] persistdict::Error)`"
)]
pub trait TransactionError: From<Error> {}

impl<E: From<Error>> TransactionError for E {}
