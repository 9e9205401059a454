//! The record stored for each entry, and the bucket that holds records under a hashed key.
//!
//! Record layout (all integers little-endian; `docs/format.md` has the full format):
//!
//! ```text
//! offset  size  field
//!      0     1  format version (RECORD_VERSION)
//!      1     1  flags (none defined; written 0, ignored on read)
//!      2     2  reserved (written 0, ignored on read)
//!      4     4  key length K: bytes of full key after the header (0 for raw-key records)
//!      8     8  insertion sequence number (orders iteration; kept on overwrite)
//!     16     8  creation time, milliseconds since the Unix epoch (kept on overwrite)
//!     24     8  access time, milliseconds since the Unix epoch
//!     32     K  full encoded key (only in buckets, where the storage key is a digest)
//!   32+K     *  encoded value, to the end of the record
//! ```
//!
//! A bucket (the value under a hashed key) is a sequence of `u32` length-prefixed records.

/// The record format this crate writes and reads.
pub(crate) const RECORD_VERSION: u8 = 1;

const OFF_VERSION: usize = 0;
const OFF_FLAGS: usize = 1;
const OFF_KEY_LEN: usize = 4;
const OFF_SEQ: usize = 8;
const OFF_CREATED: usize = 16;
const OFF_ACCESSED: usize = 24;
/// Length of the fixed header.
pub(crate) const HEADER_LEN: usize = 32;
/// Bytes of the length in front of each record in a bucket.
const FRAME_LEN: usize = 4;

/// The fixed part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Position in insertion order.
    pub(crate) seq: u64,
    /// Creation time, ms since the Unix epoch.
    pub(crate) created: u64,
    /// Last access time, ms since the Unix epoch.
    pub(crate) accessed: u64,
}

/// A record read from storage, borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub(crate) header: Header,
    /// The full key (empty for raw-key records, whose storage key is the key).
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Why a record or bucket can't be read.
pub(crate) type Damage = &'static str;

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[off..off + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[off..off + 4]);
    u32::from_le_bytes(b)
}

/// Reads a record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record<'_>, Damage> {
    if bytes.len() < HEADER_LEN {
        return Err("record shorter than its header");
    }
    if bytes[OFF_VERSION] != RECORD_VERSION {
        return Err("unknown record version");
    }
    let key_len = u32_at(bytes, OFF_KEY_LEN) as usize;
    let rest = &bytes[HEADER_LEN..];
    if key_len > rest.len() {
        return Err("record key length runs past its end");
    }
    let (key, value) = rest.split_at(key_len);
    let header = Header {
        seq: u64_at(bytes, OFF_SEQ),
        created: u64_at(bytes, OFF_CREATED),
        accessed: u64_at(bytes, OFF_ACCESSED),
    };
    Ok(Record { header, key, value })
}

/// The sequence number of a record, if it has a header of this version: what
/// [`decode`] would give as `header.seq`, for a scan that decodes only the records it wants.
pub(crate) fn seq_of(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= HEADER_LEN && bytes[OFF_VERSION] == RECORD_VERSION)
        .then(|| u64_at(bytes, OFF_SEQ))
}

/// Whether a record of a `key` and a `value` of these lengths, framed in a bucket, can be
/// stored: a frame counts its record's length, and a record its key's, in 32 bits.
pub(crate) fn fits_in_bucket(key: usize, value: usize) -> bool {
    (FRAME_LEN + HEADER_LEN)
        .checked_add(key)
        .and_then(|n| n.checked_add(value))
        .is_some_and(|n| u32::try_from(n).is_ok())
}

/// Appends a record with the given header, full key (empty for raw-key records) and value.
/// A key, if any, has been checked with [`fits_in_bucket`].
pub(crate) fn encode_into(out: &mut Vec<u8>, header: &Header, key: &[u8], value: &[u8]) {
    out.reserve(HEADER_LEN + key.len() + value.len());
    let key_len = u32::try_from(key.len()).expect("checked by `fits_in_bucket`");
    out.push(RECORD_VERSION);
    out.push(0); // flags
    out.extend_from_slice(&[0, 0]); // reserved
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&header.created.to_le_bytes());
    out.extend_from_slice(&header.accessed.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Overwrites the access time of an encoded record in place.
pub(crate) fn set_accessed(record: &mut [u8], accessed: u64) {
    record[OFF_ACCESSED..OFF_ACCESSED + 8].copy_from_slice(&accessed.to_le_bytes());
}

/// Overwrites the creation time of an encoded record in place.
pub(crate) fn set_created(record: &mut [u8], created: u64) {
    record[OFF_CREATED..OFF_CREATED + 8].copy_from_slice(&created.to_le_bytes());
}

/// Overwrites the sequence number of an encoded record in place.
pub(crate) fn set_seq(record: &mut [u8], seq: u64) {
    record[OFF_SEQ..OFF_SEQ + 8].copy_from_slice(&seq.to_le_bytes());
}

const _: () = assert!(OFF_FLAGS < OFF_KEY_LEN && OFF_ACCESSED + 8 == HEADER_LEN);

/// The records of a bucket, each with its byte range inside the bucket.
pub(crate) fn bucket_records(
    bucket: &[u8],
) -> impl Iterator<Item = Result<(std::ops::Range<usize>, Record<'_>), Damage>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos == bucket.len() {
            return None;
        }
        if bucket.len() - pos < FRAME_LEN {
            pos = bucket.len();
            return Some(Err("bucket frame shorter than its length prefix"));
        }
        let len = u32_at(bucket, pos) as usize;
        let start = pos + FRAME_LEN;
        if len > bucket.len() - start {
            pos = bucket.len();
            return Some(Err("bucket frame runs past the bucket's end"));
        }
        pos = start + len;
        Some(decode(&bucket[start..pos]).map(|r| (start..pos, r)))
    })
}

/// Appends one record, framed, to a bucket under construction: a new one checked with
/// [`fits_in_bucket`], or one read from a bucket.
pub(crate) fn push_framed(bucket: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len()).expect("checked by `fits_in_bucket` or read framed");
    bucket.extend_from_slice(&len.to_le_bytes());
    bucket.extend_from_slice(record);
}

/// The value under which the integrity check keeps a storage slot's bytes in the quarantine
/// database. Layout: origin (1 byte: 0 `entries`, 1 `hashed`), quarantine time (u64 ms), slot
/// length (u32), the slot's storage key, then its original bytes.
pub(crate) fn quarantined(hashed: bool, now: u64, slot: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(13 + slot.len() + bytes.len());
    value.push(u8::from(hashed));
    value.extend_from_slice(&now.to_le_bytes());
    // A storage key is at most LMDB's 511 bytes.
    value.extend_from_slice(&(slot.len() as u32).to_le_bytes());
    value.extend_from_slice(slot);
    value.extend_from_slice(bytes);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_framed_record_fits_up_to_four_gib() {
        let most = u32::MAX as usize - FRAME_LEN - HEADER_LEN;
        assert!(fits_in_bucket(0, most));
        assert!(fits_in_bucket(most, 0));
        assert!(!fits_in_bucket(1, most));
        assert!(!fits_in_bucket(usize::MAX, 1));
    }

    fn header() -> Header {
        Header {
            seq: 7,
            created: 1_700_000_000_000,
            accessed: 1_700_000_000_500,
        }
    }

    #[test]
    fn record_round_trips_with_and_without_key() {
        for key in [&b""[..], b"full key"] {
            let mut out = Vec::new();
            encode_into(&mut out, &header(), key, b"value");
            let r = decode(&out).unwrap();
            assert_eq!((r.header, r.key, r.value), (header(), key, &b"value"[..]));
        }
    }

    #[test]
    fn header_bytes_are_laid_out_as_documented() {
        let mut out = Vec::new();
        encode_into(&mut out, &header(), b"k", b"v");
        let mut expected = vec![RECORD_VERSION, 0, 0, 0, 1, 0, 0, 0];
        expected.extend_from_slice(&7_u64.to_le_bytes());
        expected.extend_from_slice(&1_700_000_000_000_u64.to_le_bytes());
        expected.extend_from_slice(&1_700_000_000_500_u64.to_le_bytes());
        expected.extend_from_slice(b"kv");
        assert_eq!(out, expected);
    }

    #[test]
    fn times_and_seq_can_be_rewritten_in_place() {
        let mut out = Vec::new();
        encode_into(&mut out, &header(), b"", b"v");
        set_accessed(&mut out, 9);
        set_seq(&mut out, 4);
        let r = decode(&out).unwrap();
        assert_eq!(
            (r.header.seq, r.header.accessed, r.value),
            (4, 9, &b"v"[..])
        );
    }

    #[test]
    fn damaged_records_are_reported() {
        assert!(decode(&[RECORD_VERSION; 10]).is_err());
        let mut out = Vec::new();
        encode_into(&mut out, &header(), b"key", b"");
        out[OFF_VERSION] = 99;
        assert_eq!(decode(&out).unwrap_err(), "unknown record version");
        out[OFF_VERSION] = RECORD_VERSION;
        out.truncate(HEADER_LEN + 1);
        assert_eq!(
            decode(&out).unwrap_err(),
            "record key length runs past its end"
        );
    }

    #[test]
    fn bucket_frames_round_trip_and_damage_stops_the_walk() {
        let mut bucket = Vec::new();
        for key in [&b"a"[..], b"bb"] {
            let mut rec = Vec::new();
            encode_into(&mut rec, &header(), key, b"v");
            push_framed(&mut bucket, &rec);
        }
        let keys: Vec<_> = bucket_records(&bucket).map(|r| r.unwrap().1.key).collect();
        assert_eq!(keys, [&b"a"[..], b"bb"]);
        bucket.truncate(bucket.len() - 1);
        let results: Vec<_> = bucket_records(&bucket).collect();
        assert_eq!(results.len(), 2);
        assert!(results[1].is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            for item in bucket_records(&bytes) {
                let _ = item;
            }
        }
    }
}
