//! The storage key of a call: its namespace and encoded arguments, built in the thread's
//! scratch buffer as the dict's key codec (postcard) encodes a `Vec<u8>`; and what a store
//! records of the function a namespace belongs to.

use std::fmt;

use serde::Serialize;

use super::NAMESPACE_LEN;
use crate::key::Scratch;

/// The storage key of a call, built in the thread's scratch buffer (`key::Scratch`): a hit allocates
/// nothing for it.
pub struct MemoKey {
    buf: Scratch,
    /// Where the key starts in `buf`: its length prefix is written into room left in front.
    start: usize,
}

impl fmt::Debug for MemoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MemoKey")
            .field(&crate::KeyBytes::new(self.bytes()))
            .finish()
    }
}

impl MemoKey {
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The function a `#[memoize]` store records for a namespace (`docs/format.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct FunctionRecord {
    /// The function's module path and name.
    pub(crate) function: String,
    /// Its `version` option.
    pub(crate) version: u32,
    /// Whether its signature and body are part of the namespace (`invalidate_on_change`).
    pub(crate) tracks_source: bool,
}

impl FunctionRecord {
    /// A stored record, or `None` for bytes that aren't one.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }

    /// The record as it is stored.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Plain data: postcard encodes it without fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }
}

/// The namespace a stored key of a `#[memoize]` store starts with (its bytes after the
/// postcard length prefix of the `Vec<u8>` it is) and the encoded arguments after it, or
/// `None` for a key too short to have a namespace.
pub(crate) fn split_key(key: &[u8]) -> Option<([u8; NAMESPACE_LEN], &[u8])> {
    let prefix = key.iter().position(|b| b & 0x80 == 0)? + 1;
    let namespace = key.get(prefix..prefix + NAMESPACE_LEN)?.try_into().ok()?;
    Some((namespace, &key[prefix + NAMESPACE_LEN..]))
}

/// The namespace of a stored key; see [`split_key`].
pub(crate) fn namespace_of(key: &[u8]) -> Option<[u8; NAMESPACE_LEN]> {
    split_key(key).map(|(namespace, _)| namespace)
}

/// Bytes left in front of a key for its length prefix: enough for keys under 2 MiB.
pub(super) const PREFIX_ROOM: usize = 3;

/// A postcard output that appends to a [`MemoKey`]'s buffer.
pub(super) struct KeyFlavor(pub(super) Scratch);

impl postcard::ser_flavors::Flavor for KeyFlavor {
    type Output = Scratch;

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn finalize(self) -> postcard::Result<Self::Output> {
        Ok(self.0)
    }
}

/// The bytes of `buf` after [`PREFIX_ROOM`] as the dict's key codec (postcard) encodes a
/// `Vec<u8>`: a varint of the length, then the bytes. Built by hand because serde hands a
/// `Vec<u8>` to the codec one byte at a time, which made encoding the key the larger part of
/// a memoized hit.
// Inlined into the caller's crate, like the rest of a hit's path.
#[inline]
pub(super) fn storage_key(mut buf: Scratch) -> MemoKey {
    let mut prefix = [0; 10];
    let mut n = 0;
    let mut len = buf.len() - PREFIX_ROOM;
    while len >= 0x80 {
        prefix[n] = (len as u8) | 0x80;
        n += 1;
        len >>= 7;
    }
    prefix[n] = len as u8;
    let prefix = &prefix[..=n];
    if let Some(start) = PREFIX_ROOM.checked_sub(prefix.len()) {
        buf[start..PREFIX_ROOM].copy_from_slice(prefix);
        MemoKey { buf, start }
    } else {
        buf.splice(..PREFIX_ROOM, prefix.iter().copied());
        MemoKey { buf, start: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::{NAMESPACE_LEN, PREFIX_ROOM, namespace_of, split_key, storage_key};
    use crate::codec::{Codec, Postcard};
    use crate::key::Scratch;

    #[test]
    fn the_namespace_is_read_back_from_a_stored_key() {
        let mut buf = Scratch::take();
        buf.extend_from_slice(&[0; PREFIX_ROOM]);
        buf.extend_from_slice(&[7; NAMESPACE_LEN]);
        buf.extend_from_slice(&[1; 200]);
        let key = storage_key(buf);
        assert_eq!(namespace_of(key.bytes()), Some([7; NAMESPACE_LEN]));
        assert_eq!(
            split_key(key.bytes()).map(|(_, args)| args),
            Some(&[1; 200][..])
        );
        assert_eq!(namespace_of(&[3, 1, 2, 3]), None);
    }

    #[test]
    fn a_storage_key_is_the_postcard_encoding_of_the_bytes() {
        for len in [
            0_u32, 1, 127, 128, 300, 16_384, 70_000, 2_097_151, 2_097_152,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut buf = Scratch::take();
            buf.extend_from_slice(&[7; PREFIX_ROOM]);
            buf.extend_from_slice(&bytes);
            assert_eq!(
                storage_key(buf).bytes(),
                Postcard.encode(&bytes).unwrap(),
                "{len}"
            );
        }
    }
}
