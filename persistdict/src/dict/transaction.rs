//! The handle a [`PersistDict::transaction`] closure writes through.

use std::borrow::Borrow;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PersistDict;
use crate::codec::Codec;
use crate::error::Result;
use crate::raw::RawWrite;

/// The handle given to [`PersistDict::transaction`]'s closure.
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
        let key = self.dict.encode_key(&key)?;
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
}
