//! Where an encoded key is stored.
//!
//! A key whose encoding is 1 to `key_size_limit` bytes long is stored as it is, in the
//! `entries` database, so it costs no hashing and keeps LMDB's byte order. Any other key (an
//! empty encoding, which LMDB can't store, or one longer than the limit) is stored in the
//! `hashed` database under its blake3 digest cropped to `min(key_size_limit, 32)` bytes, in a
//! bucket that keeps every record's full key. Lookups compare the full key, so keys whose
//! digests collide share a bucket and never each other's value. The two kinds live in separate
//! databases, so a raw key can never be mistaken for a digest.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

/// An encoded key held in memory (the cache, the pending access times): up to 32 bytes
/// inline, so a lookup compares the key without following a pointer.
pub(crate) type KeyBuf = smallvec::SmallVec<[u8; 32]>;

thread_local! {
    /// The buffer [`Scratch::take`] hands out.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A scratch buffer larger than this is freed rather than kept for reuse.
const SCRATCH_KEPT: usize = 1024;

/// A buffer to encode a key in, reused by the thread's reads and memoized calls, so that they
/// allocate nothing for their key. It goes back to the thread that drops it. The buffer is
/// taken out while in use: a key encoded meanwhile (by a read inside a codec, or by a nested
/// memoized call) gets a buffer of its own.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    /// The thread's buffer, empty.
    pub(crate) fn take() -> Scratch {
        let mut buf = SCRATCH.try_with(Cell::take).unwrap_or_default();
        buf.clear();
        Scratch(buf)
    }
}

impl Deref for Scratch {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.capacity() <= SCRATCH_KEPT {
            let buf = std::mem::take(&mut self.0);
            // During the thread's exit the buffer is simply freed.
            let _ = SCRATCH.try_with(|cell| cell.set(buf));
        }
    }
}

/// The longest digest used as a storage key.
const DIGEST_LEN: usize = 32;

/// The storage location of one encoded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot<'k> {
    /// Stored under the key itself.
    Raw(&'k [u8]),
    /// Stored in the bucket under this digest (its first `len` bytes).
    Hashed {
        digest: [u8; DIGEST_LEN],
        len: usize,
    },
}

impl Slot<'_> {
    /// Whether `key` is stored under itself ([`Slot::Raw`]) in a dict whose limit is `limit`.
    pub(crate) fn is_raw(key: &[u8], limit: usize) -> bool {
        !key.is_empty() && key.len() <= limit
    }

    /// The slot of `key` for a dict whose `key_size_limit` is `limit` (1 to 511).
    pub(crate) fn of(key: &[u8], limit: usize) -> Slot<'_> {
        if Slot::is_raw(key, limit) {
            Slot::Raw(key)
        } else {
            Slot::Hashed {
                digest: *blake3::hash(key).as_bytes(),
                len: limit.min(DIGEST_LEN),
            }
        }
    }
}

/// Returns the storage key bytes of a hashed slot.
pub(crate) fn digest_bytes(digest: &[u8; DIGEST_LEN], len: usize) -> &[u8] {
    &digest[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_buffer_is_reused_and_one_taken_while_it_is_out_starts_empty() {
        let mut outer = Scratch::take();
        outer.extend_from_slice(b"outer key");
        let inner = Scratch::take();
        assert!(inner.is_empty());
        drop(inner);
        assert_eq!(&outer[..], b"outer key");
        let capacity = outer.capacity();
        let pointer = outer.as_ptr();
        drop(outer);
        let again = Scratch::take();
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (pointer, capacity));
    }

    #[test]
    fn a_large_scratch_buffer_is_not_kept() {
        let mut large = Scratch::take();
        large.resize(SCRATCH_KEPT + 1, 0);
        drop(large);
        assert!(Scratch::take().capacity() <= SCRATCH_KEPT);
    }

    #[test]
    fn short_keys_are_stored_raw() {
        assert_eq!(Slot::of(b"abc", 511), Slot::Raw(b"abc"));
        assert_eq!(Slot::of(b"abc", 3), Slot::Raw(b"abc"));
    }

    #[test]
    fn empty_and_long_keys_are_hashed_and_cropped() {
        for (key, limit, len) in [(&b""[..], 511, 32), (b"abcd", 3, 3), (b"ab", 1, 1)] {
            match Slot::of(key, limit) {
                Slot::Hashed { digest, len: got } => {
                    assert_eq!(got, len);
                    assert_eq!(digest, *blake3::hash(key).as_bytes());
                }
                Slot::Raw(_) => panic!("{key:?} should be hashed at limit {limit}"),
            }
        }
    }
}
