//! Where an encoded key is stored.
//!
//! A key whose encoding is 1 to `key_size_limit` bytes long is stored as it is, in the
//! `entries` database, so it costs no hashing and keeps LMDB's byte order. Any other key (an
//! empty encoding, which LMDB can't store, or one longer than the limit) is stored in the
//! `hashed` database under its blake3 digest cropped to `min(key_size_limit, 32)` bytes, in a
//! bucket that keeps every record's full key. Lookups compare the full key, so keys whose
//! digests collide share a bucket and never each other's value. The two kinds live in separate
//! databases, so a raw key can never be mistaken for a digest.

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
