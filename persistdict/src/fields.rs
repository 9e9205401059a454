//! The storage behind a `#[persistent]` struct: one entry per field, each field with its own
//! type.
//!
//! The entries live in an ordinary dict whose keys are the field names (postcard-encoded
//! strings) and whose values are each field's value encoded by the value codec, so the
//! directory is a valid `PersistDict<String, _>` with the usual expiry, worker and integrity
//! check. It is reached through the untyped middle (`crate::raw`), whose cache holds the
//! encoded bytes of recently read fields; they are decoded on every read.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attrs::AttrOptions;
use crate::codec::{Codec, Postcard, encode_as, encode_as_into};
use crate::error::{BoxError, Error, Result};
use crate::options::Builder;
use crate::raw::{RawDict, RawRead, RawWrite};
use crate::store::Settings;
use crate::types::{Described, Tag, TypeTable};

/// The fields of one `#[persistent]` struct on disk. Cloning is cheap (an `Arc`).
pub struct Fields<C = Postcard> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    /// The cache holds fields' encoded values.
    raw: RawDict<Vec<u8>>,
    codec: C,
    /// A stored value that no longer decodes reads as never stored (so as its default).
    undecodable_as_missing: bool,
    /// In a dict whose values carry type tags (format 2): the types recorded in it.
    table: Option<TypeTable>,
    /// Field types as traced, by type name.
    types: Mutex<HashMap<&'static str, Arc<Described>>>,
}

impl<C> Clone for Fields<C> {
    fn clone(&self) -> Self {
        Fields {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for Fields<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("path", &self.inner.raw.path())
            .finish_non_exhaustive()
    }
}

/// The key of a field: its name as the default key codec encodes a `String`, so that the
/// directory reads as a `PersistDict<String, _>`.
fn field_key(field: &str) -> Result<Vec<u8>> {
    encode_as(&Postcard, "key", field)
}

impl<C: Codec> Fields<C> {
    /// Opens (or creates) the fields stored in `path`.
    pub fn open(path: &Path, options: &AttrOptions, codec: C) -> Result<Self> {
        let builder = options.apply(Builder::<String, Vec<u8>>::default());
        builder.config.validate()?;
        let key_record = Described::of::<String>().record();
        let settings = Settings {
            key_size_limit: builder.config.key_size_limit,
            key_codec: &Postcard.name(),
            value_codec: &codec.name(),
            read_only: builder.config.read_only,
            // Each field's type is recorded when the field is first set.
            value_type: None,
            key_type: key_record
                .as_ref()
                .map(|(tag, shape)| (&tag[..], &shape[..])),
            notes: &[],
        };
        let raw = RawDict::open(path, &builder.config, settings)?;
        let table = if raw.typed() {
            Some(TypeTable::new(raw.value_types()?))
        } else {
            None
        };
        Ok(Fields {
            inner: Arc::new(Inner {
                raw,
                codec,
                undecodable_as_missing: builder.config.undecodable_as_missing,
                table,
                types: Mutex::default(),
            }),
        })
    }

    /// `T` as this handle traced it.
    fn described<T: DeserializeOwned>(&self) -> Arc<Described> {
        let mut types = self
            .inner
            .types
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        types
            .entry(std::any::type_name::<T>())
            .or_insert_with(|| {
                let described = Arc::new(Described::for_codec::<T>(&self.inner.codec));
                if let Some(table) = &self.inner.table {
                    table.learn(&described);
                }
                described
            })
            .clone()
    }

    /// The directory, canonicalized.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.inner.raw.path()
    }

    /// Stores pending access times and syncs (see
    /// [`PersistDict::flush`](crate::PersistDict::flush)).
    pub fn flush(&self) -> Result<()> {
        self.inner.raw.flush()
    }

    /// The stored value of `field`, or `None` if it was never stored (or was reset).
    pub fn get<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>> {
        let key = field_key(field)?;
        let bytes = self
            .inner
            .raw
            .get(&key, |_, bytes| Ok(Some(bytes.to_vec())))?;
        self.decode_stored(field, bytes.as_deref())
    }

    /// Stores `value` as `field`, a value read back as `D` (`T` itself, or the type that
    /// decodes it through the field's serde `with` functions).
    pub fn set<T: Serialize + ?Sized, D: DeserializeOwned>(
        &self,
        field: &'static str,
        value: &T,
    ) -> Result<()> {
        self.write(|w| w.set::<T, D>(field, value))
    }

    /// Removes the stored value of `field`, so that it reads as its default; returns whether
    /// there was one. Needs no decoding, so it also clears a value of an outdated type.
    pub fn reset(&self, field: &'static str) -> Result<bool> {
        self.write(|w| w.reset(field))
    }

    /// Runs `f` with a read snapshot: every field it reads comes from the same moment.
    pub fn read<R>(&self, f: impl FnOnce(&FieldsRead<'_, C>) -> Result<R>) -> Result<R> {
        self.inner.raw.read(|r| f(&FieldsRead { fields: self, r }))
    }

    /// Runs `f` in one write transaction: what it sets is committed together, and nothing is
    /// if it fails. `f` may run more than once if the map has to grow.
    pub fn write<R>(
        &self,
        mut f: impl FnMut(&mut FieldsWrite<'_, '_, C>) -> Result<R>,
    ) -> Result<R> {
        self.inner
            .raw
            .write(|w| f(&mut FieldsWrite { fields: self, w }))
    }

    fn decode<T: DeserializeOwned>(&self, field: &'static str, bytes: &[u8]) -> Result<T> {
        let failed = |source: BoxError| Error::Field {
            field,
            type_name: std::any::type_name::<T>(),
            source,
        };
        let bytes = match &self.inner.table {
            None => bytes,
            Some(table) => match table.check(&self.described::<T>(), bytes) {
                Ok(rest) => rest,
                Err(mismatch) => {
                    if self.inner.codec.name() == Postcard.name()
                        && let Some(value) = table.evolve::<T>(bytes)
                    {
                        return Ok(value);
                    }
                    return Err(failed(
                        format!(
                            "it was written as `{}`, which can't be read as `{}`",
                            mismatch.stored(),
                            mismatch.requested
                        )
                        .into(),
                    ));
                }
            },
        };
        self.inner.codec.decode(bytes).map_err(failed)
    }

    /// `value` as stored: the tag of `D` (in a dict with tags), then the codec's bytes; and
    /// `D`'s tag and shape to record beside it.
    #[allow(clippy::type_complexity)]
    fn encode<T: Serialize + ?Sized, D: DeserializeOwned>(
        &self,
        value: &T,
    ) -> Result<(Vec<u8>, Option<(Tag, Vec<u8>)>)> {
        let mut bytes = Vec::new();
        let mut record = None;
        if self.inner.table.is_some() {
            let described = self.described::<D>();
            bytes.extend_from_slice(&described.tag);
            record = described.record();
        }
        encode_as_into(&self.inner.codec, "field", value, &mut bytes)?;
        Ok((bytes, record))
    }

    /// `field`'s stored bytes, if any, decoded; `None` for bytes that don't decode when
    /// such values read as missing.
    fn decode_stored<T: DeserializeOwned>(
        &self,
        field: &'static str,
        bytes: Option<&[u8]>,
    ) -> Result<Option<T>> {
        match bytes.map(|b| self.decode(field, b)).transpose() {
            Err(Error::Field { .. }) if self.inner.undecodable_as_missing => Ok(None),
            decoded => decoded,
        }
    }
}

/// Reads fields in one read transaction. See [`Fields::read`].
pub struct FieldsRead<'a, C> {
    fields: &'a Fields<C>,
    r: &'a RawRead<'a, 'a>,
}

impl<C> fmt::Debug for FieldsRead<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldsRead")
            .field("fields", self.fields)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> FieldsRead<'_, C> {
    /// The stored value of `field`, as of this snapshot.
    pub fn get<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>> {
        let key = field_key(field)?;
        let value = self.fields.decode_stored(field, self.r.get(&key)?)?;
        if value.is_some() {
            self.r.touch(&key);
        }
        Ok(value)
    }
}

/// Reads and writes fields in one write transaction. See [`Fields::write`].
pub struct FieldsWrite<'a, 's, C> {
    fields: &'a Fields<C>,
    w: RawWrite<'a, 's, Vec<u8>>,
}

impl<C> fmt::Debug for FieldsWrite<'_, '_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldsWrite")
            .field("fields", self.fields)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> FieldsWrite<'_, '_, C> {
    /// The value of `field`, including this transaction's writes.
    pub fn get<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>> {
        let key = field_key(field)?;
        self.w.with(&key, |b| self.fields.decode_stored(field, b))?
    }

    /// Stores `value` as `field`, a value read back as `D` (see [`Fields::set`]), unless that
    /// is exactly what is stored already (then the entry, with its times, is left alone).
    pub fn set<T: Serialize + ?Sized, D: DeserializeOwned>(
        &mut self,
        field: &'static str,
        value: &T,
    ) -> Result<()> {
        let (bytes, record) = self.fields.encode::<T, D>(value)?;
        if let Some((tag, shape)) = &record {
            // A look-up in a small table when the type is recorded already.
            self.w.record_value_type(tag, shape)?;
        }
        let key = field_key(field)?;
        if self.w.with(&key, |stored| stored == Some(&bytes[..]))? {
            return Ok(());
        }
        self.w.put(&key, &bytes, Some(bytes.clone()))?;
        Ok(())
    }

    /// Removes the stored value of `field`; returns whether there was one.
    pub fn reset(&mut self, field: &'static str) -> Result<bool> {
        let key = field_key(field)?;
        self.w.delete(&key)
    }
}
