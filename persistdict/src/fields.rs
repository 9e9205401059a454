//! The storage behind a `#[persistent]` struct: one entry per field, each field with its own
//! type.
//!
//! The entries live in an ordinary dict whose keys are the field names (as `String`) and whose
//! values are each field's value encoded by the dict's value codec, so the directory is a valid
//! `PersistDict` with the usual expiry, worker and integrity check. The dict's cache holds the
//! encoded bytes of recently read fields; they are decoded on every read.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::Options;
use crate::cache::Change;
use crate::codec::{Codec, Postcard, encode_as};
use crate::dict::PersistDict;
use crate::env::{ReadTxn, WriteTxn};
use crate::error::{Error, Result};

/// The fields of one `#[persistent]` struct on disk. Cloning is cheap (an `Arc`).
pub struct Fields<C = Postcard> {
    dict: PersistDict<String, Vec<u8>, C>,
}

impl<C> Clone for Fields<C> {
    fn clone(&self) -> Self {
        Fields {
            dict: self.dict.clone(),
        }
    }
}

impl<C> fmt::Debug for Fields<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("path", &self.dict.inner.store.path())
            .finish_non_exhaustive()
    }
}

impl<C: Codec> Fields<C> {
    /// Opens (or creates) the fields stored in `path`.
    pub fn open(path: &Path, options: &Options, codec: C) -> Result<Self> {
        let builder = PersistDict::<String, Vec<u8>>::builder().value_codec(codec);
        Ok(Fields {
            dict: options.apply(builder).open(path)?,
        })
    }

    /// The directory, canonicalized.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dict.path()
    }

    /// Stores pending access times and syncs (see [`PersistDict::flush`]).
    pub fn flush(&self) -> Result<()> {
        self.dict.flush()
    }

    /// The stored value of `field`, or `None` if it was never stored (or was reset).
    pub fn get<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>> {
        let key = self.dict.encode_key(field)?;
        match self.dict.cached_get(&key, |_, bytes| Ok(bytes.to_vec()))? {
            None => Ok(None),
            Some(bytes) => self.decode(field, &bytes).map(Some),
        }
    }

    /// Stores `value` as `field`.
    pub fn set<T: Serialize + ?Sized>(&self, field: &'static str, value: &T) -> Result<()> {
        self.write(|w| w.set(field, value))
    }

    /// Removes the stored value of `field`, so that it reads as its default; returns whether
    /// there was one. Needs no decoding, so it also clears a value of an outdated type.
    pub fn reset(&self, field: &'static str) -> Result<bool> {
        self.write(|w| w.reset(field))
    }

    /// Atomically applies `f` to `field` (its stored value, or `default()`), stores the result
    /// and returns it. `f` may run more than once if the map has to grow; only the last run
    /// counts.
    pub fn update<T, F>(&self, field: &'static str, default: impl Fn() -> T, mut f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T),
    {
        self.write(|w| {
            let mut value = w.get(field)?.unwrap_or_else(&default);
            f(&mut value);
            w.set(field, &value)?;
            Ok(value)
        })
    }

    /// Runs `f` with a read snapshot: every field it reads comes from the same moment.
    pub fn read<R>(&self, f: impl FnOnce(&FieldsRead<'_, C>) -> Result<R>) -> Result<R> {
        self.dict
            .inner
            .store
            .read(|txn| f(&FieldsRead { fields: self, txn }))
    }

    /// Runs `f` in one write transaction: what it sets is committed together, and nothing is
    /// if it fails. `f` may run more than once if the map has to grow.
    pub fn write<R>(
        &self,
        mut f: impl FnMut(&mut FieldsWrite<'_, '_, C>) -> Result<R>,
    ) -> Result<R> {
        let mut changes = Vec::new();
        let (result, id) = self.dict.inner.store.write_as(|txn| {
            changes.clear();
            f(&mut FieldsWrite {
                fields: self,
                txn,
                now: self.dict.now(),
                changes: &mut changes,
            })
        })?;
        self.dict.inner.cache.committed(id, changes);
        Ok(result)
    }

    fn decode<T: DeserializeOwned>(&self, field: &'static str, bytes: &[u8]) -> Result<T> {
        self.dict
            .inner
            .value_codec
            .decode(bytes)
            .map_err(|source| Error::Field {
                field,
                type_name: std::any::type_name::<T>(),
                source,
            })
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        encode_as(&self.dict.inner.value_codec, "field", value)
    }

    /// The encoded key of `field`, and its encoded value in `txn`.
    fn raw(&self, txn: &ReadTxn<'_>, field: &'static str) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let key = self.dict.encode_key(field)?;
        let value = self
            .dict
            .inner
            .store
            .get(txn, &key, self.dict.limit())?
            .map(|record| record.value.to_vec());
        Ok((key, value))
    }

    /// The encoded key of `field`, and its value in `txn`.
    fn get_in<T: DeserializeOwned>(
        &self,
        txn: &ReadTxn<'_>,
        field: &'static str,
    ) -> Result<(Vec<u8>, Option<T>)> {
        let (key, bytes) = self.raw(txn, field)?;
        let value = bytes.map(|b| self.decode(field, &b)).transpose()?;
        Ok((key, value))
    }
}

/// Reads fields in one read transaction. See [`Fields::read`].
pub struct FieldsRead<'a, C> {
    fields: &'a Fields<C>,
    txn: &'a ReadTxn<'a>,
}

impl<C: Codec> FieldsRead<'_, C> {
    /// The stored value of `field`, as of this snapshot.
    pub fn get<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>> {
        let (key, value) = self.fields.get_in(self.txn, field)?;
        if value.is_some() {
            self.fields
                .dict
                .inner
                .store
                .touch(&key, self.fields.dict.now());
        }
        Ok(value)
    }
}

/// Reads and writes fields in one write transaction. See [`Fields::write`].
pub struct FieldsWrite<'a, 's, C> {
    fields: &'a Fields<C>,
    txn: &'a mut WriteTxn<'s>,
    now: u64,
    changes: &'a mut Vec<(Vec<u8>, Change<Vec<u8>>)>,
}

impl<C: Codec> FieldsWrite<'_, '_, C> {
    /// The value of `field`, including this transaction's writes.
    pub fn get<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>> {
        Ok(self.fields.get_in(self.txn.as_read(), field)?.1)
    }

    /// Stores `value` as `field`, unless that is exactly what is stored already (then the
    /// entry, with its times, is left alone).
    pub fn set<T: Serialize + ?Sized>(&mut self, field: &'static str, value: &T) -> Result<()> {
        let bytes = self.fields.encode(value)?;
        let (key, stored) = self.fields.raw(self.txn.as_read(), field)?;
        if stored.as_ref() == Some(&bytes) {
            return Ok(());
        }
        self.txn
            .put(&key, &bytes, self.fields.dict.limit(), self.now)?;
        self.changes.push((key, Change::Put(bytes)));
        Ok(())
    }

    /// Removes the stored value of `field`; returns whether there was one.
    pub fn reset(&mut self, field: &'static str) -> Result<bool> {
        let key = self.fields.dict.encode_key(field)?;
        let removed = self.txn.delete(&key, self.fields.dict.limit())?;
        self.changes.push((key, Change::Forget));
        Ok(removed)
    }
}
