//! How a dict's keys and values become bytes and back: the codecs, the type tag in front of
//! each value (`crate::types`), and errors that show the key as the program wrote it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PersistDict;
use crate::codec::{Codec, Postcard, check_faithful, encode_as, encode_as_into};
use crate::error::{Error, KeyBytes, Result};
use crate::key::Scratch;

/// Encoded keys and values, end to end in one buffer (one allocation for a whole `extend`).
pub(super) struct EncodedPairs {
    bytes: Vec<u8>,
    /// Where each pair's key and value end in `bytes`; a key starts where the previous pair
    /// ends.
    ends: Vec<(usize, usize)>,
}

impl EncodedPairs {
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.ends.iter().scan(0, |start, &(key_end, end)| {
            let key = &self.bytes[*start..key_end];
            *start = end;
            Some((key, &self.bytes[key_end..end]))
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
    pub(super) fn encode_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Vec<u8>> {
        encode_as(&self.inner.key_codec, "key", key)
    }

    /// Runs `f` on the encoding of `key`, made in a buffer the thread's reads reuse: a read
    /// allocates nothing for its key.
    pub(super) fn with_key<Q: Serialize + ?Sized, T>(
        &self,
        key: &Q,
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        let mut buf = Scratch::take();
        encode_as_into(&self.inner.key_codec, "key", key, &mut buf)?;
        f(&buf)
    }

    /// `value` encoded by the value codec, for a write: refused if the codec would not read
    /// it back as it is (see [`Codec::round_trips`]).
    pub(crate) fn encode_value(&self, value: &V) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.encode_value_into(value, &mut bytes)?;
        Ok(bytes)
    }

    /// [`encode_value`](Self::encode_value) onto the end of `out`: the type tag, if the dict
    /// has them, then the codec's bytes.
    pub(super) fn encode_value_into(&self, value: &V, out: &mut Vec<u8>) -> Result<()> {
        let codec = &self.inner.value_codec;
        if let Some(typed) = &self.inner.typed {
            out.extend_from_slice(&typed.me.tag);
        }
        let start = out.len();
        encode_as_into(codec, "value", value, out)?;
        check_faithful::<V, V>(codec, "value", value, &out[start..])
    }

    /// `key` encoded by the key codec, for a write: refused if the codec would not read it
    /// back as it is, so that two keys never share an encoding (see [`Codec::round_trips`]).
    pub(super) fn encode_new_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Vec<u8>> {
        let codec = &self.inner.key_codec;
        let bytes = self.encode_key(key)?;
        check_faithful::<Q, K>(codec, "key", key, &bytes)?;
        Ok(bytes)
    }

    /// The value stored under encoded `key` as bytes, decoded as `V`.
    pub(crate) fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<V> {
        self.decode_or(key, bytes, |error| Err(self.show_key(error)))
    }

    /// The value stored under encoded `key` as bytes, decoded as `V`; `None` when it doesn't
    /// decode (or was written as a type `V` can't read) and the dict treats such values as
    /// missing.
    pub(crate) fn decode_found(&self, key: &[u8], bytes: &[u8]) -> Result<Option<V>> {
        if self.inner.undecodable_as_missing {
            self.decode_or(key, bytes, |_| Ok(None))
        } else {
            self.decode_value(key, bytes).map(Some)
        }
    }

    /// Decodes stored value bytes, checking their type tag first; what can't be read is
    /// handed to `failed` as the error it is (its key not shown yet).
    pub(super) fn decode_or<T: From<V>>(
        &self,
        key: &[u8],
        bytes: &[u8],
        failed: impl FnOnce(Error) -> Result<T>,
    ) -> Result<T> {
        let bytes = match &self.inner.typed {
            None => bytes,
            Some(typed) => match typed.table.check(&typed.me, bytes) {
                Ok(rest) => rest,
                Err(mismatch) => {
                    if self.inner.value_codec.name() == Postcard.name()
                        && let Some(value) = typed.table.evolve::<V>(bytes)
                    {
                        return Ok(T::from(value));
                    }
                    return failed(Error::TypeChanged {
                        key: KeyBytes::new(key),
                        stored: mismatch.stored(),
                        requested: mismatch.requested,
                    });
                }
            },
        };
        match self.inner.value_codec.decode(bytes) {
            Ok(value) => Ok(T::from(value)),
            Err(source) => failed(Error::Decode {
                key: KeyBytes::new(key),
                type_name: std::any::type_name::<V>(),
                source,
            }),
        }
    }

    /// `error` with the key it names shown as the program wrote it, where the key's bytes
    /// decode as `K` (rendered through `K`'s `Serialize`, so `K` needs no `Debug`).
    pub(crate) fn show_key(&self, error: Error) -> Error {
        error.with_key_shown(|key| {
            let key: K = self.inner.key_codec.decode(key).ok()?;
            Some(format!("{:?}", serde_fmt::to_debug(&key)))
        })
    }

    /// `result` with the key of its error shown; see [`show_key`](Self::show_key).
    pub(super) fn keyed<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| self.show_key(e))
    }

    pub(super) fn decode_key(&self, key: &[u8]) -> Result<K> {
        self.inner
            .key_codec
            .decode(key)
            .map_err(|source| Error::DecodeKey {
                key: KeyBytes::new(key),
                type_name: std::any::type_name::<K>(),
                source,
            })
    }

    /// The value of encoded `key` in `bytes`, if any, decoded (see
    /// [`decode_found`](Self::decode_found)).
    pub(super) fn decode_stored(&self, key: &[u8], bytes: Option<&[u8]>) -> Result<Option<V>> {
        bytes.map_or(Ok(None), |b| self.decode_found(key, b))
    }

    pub(super) fn encode_pairs<I>(&self, items: I) -> Result<EncodedPairs>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let items = items.into_iter();
        let mut encoded = EncodedPairs {
            bytes: Vec::new(),
            ends: Vec::with_capacity(items.size_hint().0),
        };
        let key_codec = &self.inner.key_codec;
        for (k, v) in items {
            let start = encoded.bytes.len();
            encode_as_into(key_codec, "key", &k, &mut encoded.bytes)?;
            let key_end = encoded.bytes.len();
            self.encode_value_into(&v, &mut encoded.bytes)?;
            check_faithful::<K, K>(key_codec, "key", &k, &encoded.bytes[start..key_end])?;
            encoded.ends.push((key_end, encoded.bytes.len()));
        }
        Ok(encoded)
    }
}
