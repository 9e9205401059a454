//! A walk through the insertion order, chunk by chunk: which B-tree each chunk reads, and how
//! large the chunks are. The typed layer decodes what a chunk holds.
//!
//! While the stored keys are in insertion order ([`Store::in_key_order`]), a chunk is the next
//! records of `entries` after the last key yielded; otherwise it is the next keys of `order`
//! after the last sequence number yielded, whose records are then looked up. A walk that finds
//! the key order broken goes on in `order` from its last sequence number, and stays there.
//!
//! Each chunk's keys and values are copied, end to end, into two buffers while its read
//! transaction is open; an entry is decoded only when it is asked for. Decoding the whole chunk
//! up front would allocate hundreds of items to be freed much later, which costs the allocator
//! more than the copy does.

use std::ops::Range;

use super::env::{Reader, Store, corrupt};
use super::snapshot::Snapshot;
use crate::error::{Error, Result};

/// Entries in a walk's first chunk, read in one read transaction. Each later chunk holds
/// about [`CHUNK_BYTES`] of keys and values, at as many bytes per entry as the chunk
/// before, and at most [`CHUNK_GROWTH`] times as many entries as it, within 1 and
/// [`CHUNK_MAX`] entries. Large chunks let a walk through the insertion order find keys
/// that arrived in random order in one scan instead of a lookup each (see
/// `Store::values_of`); the byte bound keeps a chunk of large values small; and a read
/// transaction that ends with its chunk keeps LMDB from holding on to pages that writers free
/// meanwhile.
const FIRST_CHUNK: usize = 1;
const CHUNK_BYTES: usize = 4 << 20;
const CHUNK_GROWTH: usize = 16;
const CHUNK_MAX: usize = 32_768;

/// Where an entry's key and value lie in a chunk's buffers, and its stored access time
/// (`u64::MAX` where the walk read no record), or why it could not be read (boxed: errors are
/// rare, and an unboxed one would make every entry three times as large).
type Entry = Result<(Range<usize>, Range<usize>, u64), Box<Error>>;

/// A walk's position and its current chunk.
pub(crate) struct Walk {
    /// The one read transaction every chunk is read in, for a walk of one snapshot; `None`
    /// when each chunk is read in a transaction of its own.
    snapshot: Option<Snapshot>,
    /// Entries not accessed since this time (ms) are past their expiry and skipped.
    cutoff: Option<u64>,
    /// Whether the walk copies values (a walk of keys alone reads no record through `order`).
    values: bool,
    /// The sequence number of the last entry read.
    after: Option<u64>,
    /// The last key read while walking `entries` in key order; `None` before the first
    /// chunk, or once the walk has left key order.
    after_key: Option<Vec<u8>>,
    /// Whether the walk may still read `entries` in key order.
    by_key: bool,
    /// Entries to read in the next chunk (see [`FIRST_CHUNK`]).
    size: usize,
    /// The current chunk's encoded keys and stored values.
    keys: Vec<u8>,
    vals: Vec<u8>,
    /// The chunk's entries in insertion order, handed out from `at` on.
    chunk: Vec<Option<Entry>>,
    at: usize,
    done: bool,
}

impl Walk {
    /// A walk from the start; with `values` false, the values handed out are empty. With a
    /// `snapshot`, every chunk is read in it. With a `cutoff`, entries whose access time,
    /// stored or recorded in memory, is before it are skipped (past their expiry); the walk
    /// then reads every record, values or not.
    pub(crate) fn new(values: bool, snapshot: Option<Snapshot>, cutoff: Option<u64>) -> Self {
        Walk {
            snapshot,
            cutoff,
            values: values || cutoff.is_some(),
            after: None,
            after_key: None,
            by_key: true,
            size: FIRST_CHUNK,
            keys: Vec::new(),
            vals: Vec::new(),
            chunk: Vec::new(),
            at: 0,
            done: false,
        }
    }

    /// The next entry's encoded key and stored value, reading the next chunk from `store`
    /// (in the walk's snapshot, or a read transaction of its own) when this one is used up;
    /// `None` at the end.
    pub(crate) fn next<'w>(&'w mut self, store: &Store) -> Option<Result<(&'w [u8], &'w [u8])>> {
        self.next_with(store, |walk| {
            let snapshot = walk.snapshot.take();
            let result = match &snapshot {
                Some(snapshot) => store.read_snapshot(snapshot, |r| walk.fill(r)),
                None => store.read(|r| walk.fill(r)),
            };
            walk.snapshot = snapshot;
            result
        })
    }

    /// [`next`](Self::next), reading chunks through `reader` (a write transaction's, which
    /// sees its own writes).
    pub(crate) fn next_in<'w>(
        &'w mut self,
        reader: &Reader<'_>,
    ) -> Option<Result<(&'w [u8], &'w [u8])>> {
        self.next_with(reader.store, |walk| walk.fill(reader))
    }

    fn next_with(
        &mut self,
        store: &Store,
        mut refill: impl FnMut(&mut Self) -> Result<()>,
    ) -> Option<Result<(&[u8], &[u8])>> {
        loop {
            if self.at == self.chunk.len() {
                if self.done {
                    return None;
                }
                self.keys.clear();
                self.vals.clear();
                self.chunk.clear();
                self.at = 0;
                if let Err(e) = refill(self) {
                    self.done = true;
                    self.chunk.push(Some(Err(Box::new(e))));
                }
                self.resize();
                continue;
            }
            self.at += 1;
            match self.chunk[self.at - 1].take() {
                None => {}
                Some(Ok((key, value, accessed))) => {
                    if let Some(cutoff) = self.cutoff
                        && store.expired(&self.keys[key.clone()], accessed, cutoff)
                    {
                        continue;
                    }
                    return Some(Ok((&self.keys[key], &self.vals[value])));
                }
                Some(Err(e)) => return Some(Err(*e)),
            }
        }
    }

    /// Reads the next chunk through `r` into the (empty) buffers.
    fn fill(&mut self, r: &Reader<'_>) -> Result<()> {
        let Walk {
            values,
            after,
            after_key,
            by_key,
            size,
            keys,
            vals,
            chunk,
            done,
            ..
        } = self;
        let values = *values;
        let store = r.store;
        let txn = r.txn;
        if *by_key && store.in_key_order(txn)? {
            let from = after_key.take();
            let mut last: Option<&[u8]> = None;
            let n = store.key_order_chunk(txn, from.as_deref(), *size, |key, record| {
                let start = keys.len();
                keys.extend_from_slice(key);
                let key_span = start..keys.len();
                chunk.push(Some(match record {
                    Ok(record) => {
                        *after = Some(record.header.seq);
                        let start = vals.len();
                        if values {
                            vals.extend_from_slice(record.value);
                        }
                        Ok((key_span, start..vals.len(), record.header.accessed))
                    }
                    // A walk of keys alone reads no record through `order` either.
                    Err(_) if !values => Ok((key_span, 0..0, u64::MAX)),
                    Err(e) => Err(Box::new(e)),
                }));
                last = Some(key);
            })?;
            *after_key = match last {
                Some(key) => {
                    let mut buf = from.unwrap_or_default();
                    buf.clear();
                    buf.extend_from_slice(key);
                    Some(buf)
                }
                None => from,
            };
            *done = n < *size;
            return Ok(());
        }
        *by_key = false;
        *after_key = None;
        let mut spans = Vec::with_capacity(*size);
        let mut seqs = Vec::with_capacity(*size);
        let n = store.order_chunk(txn, *after, *size, |seq, key| {
            let start = keys.len();
            keys.extend_from_slice(key);
            spans.push(start..keys.len());
            seqs.push(seq);
            *after = Some(seq);
        })?;
        *done = n < *size;
        if !values {
            chunk.extend(spans.into_iter().map(|key| Some(Ok((key, 0..0, u64::MAX)))));
            return Ok(());
        }
        let encoded: Vec<&[u8]> = spans.iter().map(|span| &keys[span.clone()]).collect();
        // Values come in key order and go to their entry's place. `values_of` answers for
        // every key; an entry left unanswered would be skipped. `order` lists sequence
        // numbers in ascending order, as `values_of` needs them.
        chunk.resize_with(spans.len(), || None);
        store.values_of(txn, &encoded, &seqs, |i, value| {
            chunk[i] = Some(match value {
                Ok(Some(record)) => {
                    let start = vals.len();
                    vals.extend_from_slice(record.value);
                    Ok((spans[i].clone(), start..vals.len(), record.header.accessed))
                }
                Ok(None) => Err(Box::new(corrupt(
                    encoded[i],
                    "listed in the insertion order but has no record",
                ))),
                Err(e) => Err(Box::new(e)),
            });
        });
        Ok(())
    }

    /// Sizes the next chunk after the one just read (see [`FIRST_CHUNK`]).
    fn resize(&mut self) {
        if !self.chunk.is_empty() {
            let per_entry = ((self.keys.len() + self.vals.len()) / self.chunk.len()).max(1);
            self.size = (CHUNK_BYTES / per_entry)
                .min(self.chunk.len() * CHUNK_GROWTH)
                .clamp(1, CHUNK_MAX);
        }
    }
}
