//! Records by encoded key, the insertion order beside them, and the key-order flag: every
//! read and write of an entry, and the chunked scans that walks and checks are made of.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use heed::MdbError;

use super::env::{Reader, Store, WriteTxn, corrupt, storage};
use super::record::{self, Header, Record};
use super::slot::{Slot, digest_bytes};
use crate::error::{Error, KeyBytes, Result};

/// The setting that says whether `entries` in key order lists every entry in insertion order
/// (`docs/format.md`): one byte, 1 if it does, 0 if that is not known. While it is 1, and
/// `entries` holds as many records as `order` holds keys, a walk reads `entries` alone instead
/// of `order` and then `entries`.
///
/// Invariant: the setting is 1 only while `hashed` is empty and the records of `entries`, in
/// key order, have increasing sequence numbers, as far as our writers go: removing or
/// overwriting an entry keeps that, and so does a new key that sorts after every stored one
/// (checked for a transaction's first new key, and by `MDB_APPEND`, which LMDB refuses
/// otherwise, for the later ones); any other new entry (a key that sorts lower, a hashed key,
/// a record put back in the order by the integrity check) sets it to 0.
/// Only emptying the dict sets it to 1. Records that damage or a foreign writer left in
/// `entries` unlisted make the two counts differ.
pub(super) const INFO_KEY_ORDER: &str = "key_order";

/// See [`Store::values_of`]: in a profile of walks over 100,000 entries of about 140 bytes, a
/// forward step through `entries` took about 45 ns, a lookup of a random key 0.6 to 1 µs.
const SCAN_PER_KEY: usize = 16;

impl Store {
    /// Remembers the key-order setting after our commit `id`. A transaction that never
    /// consulted it (`None`) added no entry, and left it as it was.
    pub(super) fn key_order_committed(&self, id: u64, holds: Option<bool>) {
        let Some(holds) = holds.or_else(|| self.key_order_left_by(id.wrapping_sub(1))) else {
            return;
        };
        self.key_order_after
            .store(id << 1 | u64::from(holds), Ordering::Relaxed);
    }

    /// The key-order setting as write transaction `txn` finds it, if our last commit was the
    /// one right before it.
    fn key_order_before(&self, txn: &heed::RoTxn<'_>) -> Option<bool> {
        self.key_order_left_by((txn.id() as u64).wrapping_sub(1))
    }

    /// The key-order setting as our commit `id` left it, if that is the last one remembered.
    fn key_order_left_by(&self, id: u64) -> Option<bool> {
        let after = self.key_order_after.load(Ordering::Relaxed);
        (after != 0 && after >> 1 == id).then_some(after & 1 == 1)
    }

    // ---- records -----------------------------------------------------------------------

    /// The record of `key`, if there is one.
    pub(crate) fn get<'t>(
        &self,
        txn: &'t heed::RoTxn<'_>,
        key: &[u8],
    ) -> Result<Option<Record<'t>>> {
        match Slot::of(key, self.key_size_limit) {
            Slot::Raw(k) => match self.entries.get(txn, k).map_err(storage)? {
                None => Ok(None),
                Some(bytes) => record::decode(bytes)
                    .map(Some)
                    .map_err(|reason| corrupt(key, reason)),
            },
            Slot::Hashed { digest, len } => {
                let Some(bucket) = self
                    .hashed
                    .get(txn, digest_bytes(&digest, len))
                    .map_err(storage)?
                else {
                    return Ok(None);
                };
                for item in record::bucket_records(bucket) {
                    let (_, rec) = item.map_err(|reason| corrupt(key, reason))?;
                    if rec.key == key {
                        return Ok(Some(rec));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Hands `each(i, record)` the record of each `keys[i]`, whose sequence number in the
    /// insertion order is `seqs[i]`: what [`get`](Self::get) gives for it. `seqs` is
    /// ascending, as `order` lists them. Not in the order of `keys`.
    ///
    /// Keys stored raw are found in one forward scan of `entries` from the smallest of them,
    /// which reads neighbouring pages instead of descending the B-tree once per key: keys
    /// inserted in key order (ids, timestamps) read like a plain scan. A scanned record is
    /// placed by its sequence number (found in `seqs` where it falls between the first and
    /// the last: by its distance from the first where the numbers have no gaps, else by a
    /// binary search), and is taken when its key is the one `order`
    /// lists there; nothing is sorted, and only a match compares keys. A scan step costs about
    /// a sixteenth of a lookup, so when `entries` holds at most [`SCAN_PER_KEY`] entries per
    /// key looked for, the scan may go through all of them; otherwise it stops after meeting
    /// twice as many other entries as it looks for. What it did not find is looked up key by
    /// key (as are hashed keys, and keys whose record does not decode, so that the lookup
    /// reports the damage).
    pub(crate) fn values_of<'t>(
        &self,
        txn: &'t heed::RoTxn<'_>,
        keys: &[&[u8]],
        seqs: &[u64],
        mut each: impl FnMut(usize, Result<Option<Record<'t>>>),
    ) {
        debug_assert!(keys.len() == seqs.len() && seqs.is_sorted());
        let mut found = vec![false; keys.len()];
        let raw = || {
            keys.iter()
                .filter(|key| Slot::is_raw(key, self.key_size_limit))
        };
        let (first, wanted) = (raw().min(), raw().count());
        if let (Some(first), Some(&low), Some(&high)) = (first, seqs.first(), seqs.last()) {
            // No upper bound: the scan stops once it has found every key, and an upper bound
            // would cost a key comparison per entry.
            let range = (Bound::Included(*first), Bound::Unbounded);
            // Not known: treated as too many to scan.
            let entries = self
                .entries
                .len(txn)
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
            let budget = if entries <= SCAN_PER_KEY.saturating_mul(wanted) {
                entries
            } else {
                2 * wanted
            };
            // Sequence numbers have gaps only where entries were removed or a write took a
            // number it did not use: without gaps, a number's place is its distance from
            // the first.
            let dense = high - low == seqs.len() as u64 - 1;
            let mut others = 0;
            let mut left = wanted;
            if let Ok(scan) = self.entries.range(txn, &range) {
                for item in scan {
                    let Ok((key, bytes)) = item else { break };
                    let place = record::seq_of(bytes)
                        .filter(|seq| (low..=high).contains(seq))
                        .and_then(|seq| {
                            if dense {
                                usize::try_from(seq - low).ok()
                            } else {
                                seqs.binary_search(&seq).ok()
                            }
                        })
                        .filter(|&i| !found[i] && keys[i] == key)
                        .and_then(|i| Some((i, record::decode(bytes).ok()?)));
                    if let Some((i, record)) = place {
                        found[i] = true;
                        each(i, Ok(Some(record)));
                        left -= 1;
                        if left == 0 {
                            break;
                        }
                    } else {
                        others += 1;
                        if others > budget {
                            break;
                        }
                    }
                }
            }
        }
        for (i, key) in keys.iter().enumerate() {
            if !found[i] {
                each(i, self.get(txn, key));
            }
        }
    }

    /// Whether encoded `key` is stored under a digest.
    pub(crate) fn hashed(&self, key: &[u8]) -> bool {
        !Slot::is_raw(key, self.key_size_limit)
    }

    /// Number of entries.
    pub(crate) fn len(&self, txn: &heed::RoTxn<'_>) -> Result<u64> {
        self.order.len(txn).map_err(storage)
    }

    /// Whether `entries` in key order lists every entry in insertion order (see
    /// [`INFO_KEY_ORDER`]). A dict made before the setting existed reads as not known. So does
    /// one where `entries` and `order` differ in length, which only damage or a foreign writer
    /// leaves behind: a walk through `order` then skips the records it does not list.
    pub(crate) fn in_key_order(&self, txn: &heed::RoTxn<'_>) -> Result<bool> {
        Ok(self.key_order_setting(txn)?
            && self.entries.len(txn).map_err(storage)? == self.order.len(txn).map_err(storage)?)
    }

    /// Whether the setting [`INFO_KEY_ORDER`] is 1.
    fn key_order_setting(&self, txn: &heed::RoTxn<'_>) -> Result<bool> {
        Ok(self.info.get(txn, INFO_KEY_ORDER).map_err(storage)? == Some(&[1][..]))
    }

    /// Hands `each(key, record)` the next up to `n` records of `entries` in key order after
    /// key `after`; returns how many. While [`in_key_order`](Self::in_key_order) holds, this
    /// is the insertion order.
    pub(crate) fn key_order_chunk<'t>(
        &self,
        txn: &'t heed::RoTxn<'_>,
        after: Option<&[u8]>,
        n: usize,
        mut each: impl FnMut(&'t [u8], Result<Record<'t>>),
    ) -> Result<usize> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut count = 0;
        for item in self
            .entries
            .range(txn, &(lower, Bound::Unbounded))
            .map_err(storage)?
            .take(n)
        {
            let (key, bytes) = item.map_err(storage)?;
            each(
                key,
                record::decode(bytes).map_err(|reason| corrupt(key, reason)),
            );
            count += 1;
        }
        Ok(count)
    }

    /// Hands `each(seq, encoded key)` the next up to `n` entries in insertion order after
    /// sequence number `after`; returns how many.
    pub(crate) fn order_chunk(
        &self,
        txn: &heed::RoTxn<'_>,
        after: Option<u64>,
        n: usize,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<usize> {
        let start = after.map(u64::to_be_bytes);
        let lower = match &start {
            Some(s) => Bound::Excluded(&s[..]),
            None => Bound::Unbounded,
        };
        let mut count = 0;
        for item in self
            .order
            .range(txn, &(lower, Bound::Unbounded))
            .map_err(storage)?
            .take(n)
        {
            let (seq, key) = item.map_err(storage)?;
            let seq =
                <[u8; 8]>::try_from(seq).map_err(|_| corrupt(seq, "order key is not 8 bytes"))?;
            each(u64::from_be_bytes(seq), key);
            count += 1;
        }
        Ok(count)
    }
}

impl Reader<'_> {
    /// The record of `key`, if there is one.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Record<'_>>> {
        self.store.get(self.txn, key)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> Result<u64> {
        self.store.len(self.txn)
    }
}

impl WriteTxn<'_> {
    /// Stores `value` (already encoded) under `key`; returns whether the key was new.
    /// An existing entry keeps its place in insertion order and its creation time.
    pub(crate) fn put(&mut self, key: &[u8], value: &[u8], now: u64) -> Result<bool> {
        let (digest, len) = match Slot::of(key, self.store.key_size_limit) {
            Slot::Raw(k) => return self.put_raw(k, value, now),
            Slot::Hashed { digest, len } => (digest, len),
        };
        if !record::fits_in_bucket(key.len(), value.len()) {
            return Err(Error::RecordTooLarge {
                key: KeyBytes::new(key),
                size: (key.len() as u64).saturating_add(value.len() as u64),
            });
        }
        let store = self.store;
        let existing = store.get(&self.txn, key)?.map(|r| r.header);
        let header = if let Some(h) = existing {
            Header { accessed: now, ..h }
        } else {
            self.break_key_order()?;
            let seq = self.next_seq()?;
            self.list(seq, key)?;
            Header {
                seq,
                created: now,
                accessed: now,
            }
        };
        let slot = digest_bytes(&digest, len);
        let mut rec = Vec::new();
        record::encode_into(&mut rec, &header, key, value);
        let mut bucket = self.bucket_without(slot, key)?;
        record::push_framed(&mut bucket, &rec);
        let r = store.hashed.put(&mut self.txn, slot, &bucket);
        self.check(r)?;
        Ok(existing.is_none())
    }

    /// [`put`](Self::put) of a key stored raw. A new key is written without looking first: an
    /// append once the transaction is [`appending`](Self::appending) (LMDB refuses it unless
    /// the key sorts after every stored one), and otherwise a put that LMDB refuses for an
    /// existing key, handing back its record instead. Either spares a B-tree descent per new
    /// key. An existing key is rewritten with its old position and creation time; the
    /// sequence number taken for the attempt is then left unused.
    fn put_raw(&mut self, k: &[u8], value: &[u8], now: u64) -> Result<bool> {
        let store = self.store;
        let seq = self.next_seq()?;
        let mut header = Header {
            seq,
            created: now,
            accessed: now,
        };
        let mut rec = std::mem::take(&mut self.record);
        rec.clear();
        record::encode_into(&mut rec, &header, b"", value);
        let appended = if self.appending {
            let r = store
                .entries
                .put_with_flags(&mut self.txn, heed::PutFlags::APPEND, k, &rec);
            match r {
                // The key is not above the last one: it is stored, or goes lower.
                Err(heed::Error::Mdb(MdbError::KeyExist)) => false,
                r => {
                    self.check(r)?;
                    true
                }
            }
        } else {
            false
        };
        let new = if appended {
            self.list(seq, k)?;
            true
        } else {
            let r = store
                .entries
                .get_or_put(&mut self.txn, k, &rec)
                .map(|old| old.map(record::decode));
            match self.check(r)? {
                None => {
                    // An append that LMDB refused went lower. Otherwise this is the
                    // transaction's first new key: it may have gone to the end.
                    if !self.appending && self.key_order_holds()? && self.is_last(k)? {
                        self.appending = true;
                    } else {
                        self.break_key_order()?;
                    }
                    self.list(seq, k)?;
                    true
                }
                Some(old) => {
                    let old = old.map_err(|reason| corrupt(k, reason))?.header;
                    header.seq = old.seq;
                    header.created = old.created;
                    rec.clear();
                    record::encode_into(&mut rec, &header, b"", value);
                    let r = store.entries.put(&mut self.txn, k, &rec);
                    self.check(r)?;
                    false
                }
            }
        };
        self.record = rec;
        Ok(new)
    }

    /// Whether `k` is the last key of `entries`.
    fn is_last(&self, k: &[u8]) -> Result<bool> {
        Ok(self
            .store
            .entries
            .last(&self.txn)
            .map_err(storage)?
            .is_some_and(|(last, _)| last == k))
    }

    /// Whether the setting [`INFO_KEY_ORDER`] is 1; read once per transaction, and not at all
    /// if our last commit was the one before and left it known.
    fn key_order_holds(&mut self) -> Result<bool> {
        if let Some(holds) = self.key_order {
            return Ok(holds);
        }
        let holds = match self.store.key_order_before(&self.txn) {
            Some(holds) => holds,
            None => self.store.key_order_setting(&self.txn)?,
        };
        self.key_order = Some(holds);
        Ok(holds)
    }

    /// Records that the key order may no longer hold: a new entry was not appended to
    /// `entries`. Keeps the setting exact: `key_order` is `Some(false)` only when it is not 1.
    pub(super) fn break_key_order(&mut self) -> Result<()> {
        if self.key_order_holds()? {
            self.info_put(INFO_KEY_ORDER, &[0])?;
            self.key_order = Some(false);
        }
        self.appending = false;
        Ok(())
    }

    /// Records that the key order holds. Only for an empty dict.
    pub(crate) fn start_key_order(&mut self) -> Result<()> {
        self.info_put(INFO_KEY_ORDER, &[1])?;
        self.key_order = Some(true);
        Ok(())
    }

    /// The bucket under `slot` minus the record of `key`, re-framed.
    fn bucket_without(&self, slot: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(bucket) = self.store.hashed.get(&self.txn, slot).map_err(storage)? {
            for item in record::bucket_records(bucket) {
                let (range, rec) = item.map_err(|reason| corrupt(key, reason))?;
                if rec.key != key {
                    record::push_framed(&mut out, &bucket[range]);
                }
            }
        }
        Ok(out)
    }

    /// Lists `key` in the insertion order under `seq`, taken from [`next_seq`](Self::next_seq):
    /// above every number in use, so LMDB can append it to the last page without a search.
    pub(super) fn list(&mut self, seq: u64, key: &[u8]) -> Result<()> {
        let r = self.store.order.put_with_flags(
            &mut self.txn,
            heed::PutFlags::APPEND,
            &seq.to_be_bytes(),
            key,
        );
        self.check(r)
    }

    /// A sequence number above every one in use. The first call of a transaction reads the
    /// largest from the `order` database; later ones count on from there, which spares a
    /// B-tree descent per new key in `extend` (numbers stay increasing, gaps are harmless).
    pub(super) fn next_seq(&mut self) -> Result<u64> {
        let seq = match self.next_seq {
            Some(seq) => seq,
            None => match self.store.order.last(&self.txn).map_err(storage)? {
                None => 0,
                Some((last, _)) => <[u8; 8]>::try_from(last)
                    .ok()
                    .and_then(|seq| u64::from_be_bytes(seq).checked_add(1))
                    .ok_or_else(|| corrupt(last, "last order key is not a usable number"))?,
            },
        };
        // Only a damaged file gets near the end of the numbers (one per insert).
        self.next_seq = Some(seq.saturating_add(1));
        Ok(seq)
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let store = self.store;
        let Some(header) = store.get(&self.txn, key)?.map(|r| r.header) else {
            return Ok(false);
        };
        let r = store.order.delete(&mut self.txn, &header.seq.to_be_bytes());
        self.check(r)?;
        match Slot::of(key, self.store.key_size_limit) {
            Slot::Raw(k) => {
                let r = store.entries.delete(&mut self.txn, k);
                self.check(r)?;
            }
            Slot::Hashed { digest, len } => {
                let slot = digest_bytes(&digest, len);
                let bucket = self.bucket_without(slot, key)?;
                let r = if bucket.is_empty() {
                    store.hashed.delete(&mut self.txn, slot).map(drop)
                } else {
                    store.hashed.put(&mut self.txn, slot, &bucket)
                };
                self.check(r)?;
            }
        }
        Ok(true)
    }

    /// Applies `edit` to the encoded record of `key`, if there is one; returns whether it was.
    pub(super) fn rewrite(&mut self, key: &[u8], edit: impl FnOnce(&mut [u8])) -> Result<bool> {
        let store = self.store;
        match Slot::of(key, self.store.key_size_limit) {
            Slot::Raw(k) => {
                let Some(bytes) = store.entries.get(&self.txn, k).map_err(storage)? else {
                    return Ok(false);
                };
                record::decode(bytes).map_err(|reason| corrupt(key, reason))?;
                let mut rec = bytes.to_vec();
                edit(&mut rec);
                let r = store.entries.put(&mut self.txn, k, &rec);
                self.check(r)?;
            }
            Slot::Hashed { digest, len } => {
                let slot = digest_bytes(&digest, len);
                let Some(bucket) = store.hashed.get(&self.txn, slot).map_err(storage)? else {
                    return Ok(false);
                };
                let mut out = Vec::with_capacity(bucket.len());
                let mut edit = Some(edit);
                for item in record::bucket_records(bucket) {
                    let (range, rec) = item.map_err(|reason| corrupt(key, reason))?;
                    let mut bytes = bucket[range].to_vec();
                    if rec.key == key
                        && let Some(edit) = edit.take()
                    {
                        edit(&mut bytes);
                    }
                    record::push_framed(&mut out, &bytes);
                }
                if edit.is_some() {
                    return Ok(false);
                }
                let r = store.hashed.put(&mut self.txn, slot, &out);
                self.check(r)?;
            }
        }
        Ok(true)
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) -> Result<()> {
        let store = self.store;
        for db in [store.entries, store.hashed, store.order] {
            let r = db.clear(&mut self.txn);
            self.check(r)?;
        }
        self.start_key_order()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> Result<u64> {
        self.store.len(&self.txn)
    }
}
