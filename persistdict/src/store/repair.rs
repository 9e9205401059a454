//! Chunked maintenance: expiry sweeps and the integrity check, each a loop of short write
//! transactions, and the steps they are made of.

use std::ops::Bound;
use std::time::{Duration, Instant};

use super::env::{Reader, Store, WriteTxn, storage};
use super::record::{self, Header};
use crate::error::Result;
use crate::options::Durability;

/// What `Store::retain` asks of each entry: keep it (given its encoded key and value)?
type Keep<'k> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'k;

/// How far ahead of the clock a stored time must be to count as stamped by a clock that ran
/// ahead: enough that a clock stepped back a little (NTP) rewrites nothing.
pub(crate) const FUTURE_TOLERANCE_MS: u64 = 60_000;

/// Entries examined per write transaction by sweeps and checks.
pub(crate) const CHUNK: usize = 1_000;
/// Pause between chunks, so that writers waiting for LMDB's lock get it.
const CHUNK_PAUSE: Duration = Duration::from_micros(50);

/// What an integrity check found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Records examined.
    pub checked: u64,
    /// Inconsistencies fixed: access times before creation times, records missing from or
    /// dangling in the insertion order.
    pub repaired: u64,
    /// Storage slots whose bytes could not be read at all, moved to the quarantine database
    /// (nothing is deleted).
    pub quarantined: u64,
    /// Keys whose value does not decode as the dict's value type (reported, not removed).
    /// Only [`PersistDict::check_integrity`](crate::PersistDict::check_integrity) fills this.
    pub undecodable: Vec<crate::KeyBytes>,
    /// Whether the check stopped at its time budget before the end.
    pub incomplete: bool,
}

impl IntegrityReport {
    fn add(&mut self, other: &IntegrityReport) {
        self.checked += other.checked;
        self.repaired += other.repaired;
        self.quarantined += other.quarantined;
    }
}

impl Store {
    /// Whether chunked work must stop: past its deadline, or the last handle is gone.
    fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        self.is_closing() || deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs `step` in one write transaction per chunk, each time from the position the
    /// previous one reached, until it reports the end (returns `true`) or time is up (returns
    /// `false`). Each chunk's output goes to `committed` once its transaction is committed: a
    /// step replayed after the map grew is counted once.
    fn chunked<P, T>(
        &self,
        durability: Durability,
        deadline: Option<Instant>,
        mut step: impl FnMut(&mut WriteTxn<'_>, Option<&P>) -> Result<(Option<P>, bool, T)>,
        mut committed: impl FnMut(T),
    ) -> Result<bool> {
        let mut after = None;
        loop {
            let ((reached, done, output), _) =
                self.write_as(durability, |w| step(w, after.as_ref()))?;
            committed(output);
            after = reached;
            if done {
                return Ok(true);
            }
            if self.out_of_time(deadline) {
                return Ok(false);
            }
            // LMDB's writer lock is not fair: without a pause, the next chunk takes it back
            // before a waiting writer wakes up, and that writer waits for the whole sweep.
            std::thread::sleep(CHUNK_PAUSE);
        }
    }

    /// Removes the entries whose access time, stored or recorded in memory, is before
    /// `cutoff` (ms), in chunks; returns their keys. `now` is the time of the sweep.
    pub(crate) fn sweep(
        &self,
        now: u64,
        cutoff: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<Vec<u8>>> {
        // Stored access times must be current before they are judged.
        self.flush_atimes(now)?;
        let mut removed = Vec::new();
        self.chunked(
            Durability::Eventual,
            deadline,
            |w, after: Option<&u64>| {
                let pending = |k: &[u8]| self.pending_atime(k);
                let (chunk, reached, done) =
                    w.expire_chunk(after.copied(), CHUNK, cutoff, pending)?;
                Ok((reached, done, chunk))
            },
            |chunk| removed.extend(chunk),
        )?;
        Ok(removed)
    }

    /// Walks every record in chunks: quarantines what can't be read, repairs what is
    /// inconsistent. `now()`, read in each chunk's transaction (so after every commit the
    /// chunk sees), stamps quarantined records and bounds the times kept.
    pub(crate) fn check(
        &self,
        now: &dyn Fn() -> u64,
        deadline: Option<Instant>,
    ) -> Result<IntegrityReport> {
        let mut report = IntegrityReport::default();
        let mut complete = true;
        for hashed in [false, true] {
            if complete {
                complete = self.chunked(
                    Durability::Eventual,
                    deadline,
                    |w, after: Option<&Vec<u8>>| {
                        let mut chunk = IntegrityReport::default();
                        let after = after.map(Vec::as_slice);
                        let (reached, done) =
                            w.check_slots_chunk(hashed, after, CHUNK, now(), &mut chunk)?;
                        Ok((reached, done, chunk))
                    },
                    |chunk| report.add(&chunk),
                )?;
            }
        }
        if complete {
            complete = self.chunked(
                Durability::Eventual,
                deadline,
                |w, after: Option<&u64>| {
                    let mut chunk = IntegrityReport::default();
                    let (reached, done) = w.check_order_chunk(after.copied(), CHUNK, &mut chunk)?;
                    Ok((reached, done, chunk))
                },
                |chunk| report.add(&chunk),
            )?;
        }
        report.incomplete = !complete;
        Ok(report)
    }
}

impl Store {
    /// Removes the entries that `keep(key, value)` rejects, walking the insertion order in
    /// chunks of [`CHUNK`] entries, each in a write transaction committed with `durability`.
    /// Returns how many were removed. An error from `keep` stops the walk; the chunks before
    /// stay committed. `keep` may see a chunk's entries twice if the map had to grow.
    pub(crate) fn retain(
        &self,
        durability: Durability,
        mut keep: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<u64> {
        let mut removed = 0;
        self.chunked(
            durability,
            None,
            |w, after: Option<&u64>| w.retain_chunk(after.copied(), CHUNK, &mut keep),
            |n| removed += n,
        )?;
        Ok(removed)
    }
}

impl Reader<'_> {
    /// Number of records in quarantine.
    pub(crate) fn quarantined(&self) -> Result<u64> {
        self.store.quarantine.len(self.txn).map_err(storage)
    }
}

impl WriteTxn<'_> {
    /// Up to `n` entries in insertion order after `after`, with their headers.
    fn headers_after(&self, after: Option<u64>, n: usize) -> Result<Vec<OrderedHeader>> {
        let mut chunk = Vec::new();
        self.store.order_chunk(&self.txn, after, n, |seq, key| {
            chunk.push((seq, key.to_vec()));
        })?;
        Ok(chunk
            .into_iter()
            .map(|(seq, key)| {
                let header = self.store.get(&self.txn, &key).map(|r| r.map(|r| r.header));
                (seq, key, header)
            })
            .collect())
    }

    /// Removes, among up to `n` entries after `after` in insertion order, those whose access
    /// time (the later of the stored one and `pending(key)`) is before `cutoff`. Returns the
    /// removed keys, the position reached, and whether the walk reached the end.
    pub(crate) fn expire_chunk(
        &mut self,
        after: Option<u64>,
        n: usize,
        cutoff: u64,
        pending: impl Fn(&[u8]) -> Option<u64>,
    ) -> Result<(Vec<Vec<u8>>, Option<u64>, bool)> {
        let chunk = self.headers_after(after, n)?;
        let done = chunk.len() < n;
        let reached = chunk.last().map(|(seq, _, _)| *seq).or(after);
        let mut removed = Vec::new();
        for (_, key, header) in chunk {
            // A damaged record is the integrity check's business, never expiry's.
            let Ok(Some(header)) = header else { continue };
            let accessed = header.accessed.max(pending(&key).unwrap_or(0));
            if accessed < cutoff && self.delete(&key)? {
                removed.push(key);
            }
        }
        Ok((removed, reached, done))
    }

    /// Removes, among up to `n` entries after `after` in insertion order, those `keep` rejects.
    /// Returns the position reached, whether the walk reached the end, and how many it
    /// removed. An entry listed without a record is the integrity check's business.
    fn retain_chunk(
        &mut self,
        after: Option<u64>,
        n: usize,
        keep: &mut Keep<'_>,
    ) -> Result<(Option<u64>, bool, u64)> {
        let mut chunk = Vec::new();
        self.store.order_chunk(&self.txn, after, n, |seq, key| {
            chunk.push((seq, key.to_vec()));
        })?;
        let done = chunk.len() < n;
        let reached = chunk.last().map(|(seq, _)| *seq).or(after);
        let mut removed = 0;
        for (_, key) in chunk {
            let kept = match self.store.get(&self.txn, &key)? {
                None => true,
                Some(record) => keep(&key, record.value)?,
            };
            if !kept && self.delete(&key)? {
                removed += 1;
            }
        }
        Ok((reached, done, removed))
    }

    /// Checks up to `n` storage slots of `entries` (or `hashed`) after storage key `after`:
    /// moves undecodable ones to quarantine, brings times more than [`FUTURE_TOLERANCE_MS`]
    /// later than `now` (a clock that ran ahead) back to `now`, raises access times that are before the creation time, and puts
    /// back in insertion order records missing from it.
    pub(crate) fn check_slots_chunk(
        &mut self,
        hashed: bool,
        after: Option<&[u8]>,
        n: usize,
        now: u64,
        report: &mut IntegrityReport,
    ) -> Result<(Option<Vec<u8>>, bool)> {
        let store = self.store;
        let db = if hashed { store.hashed } else { store.entries };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut slots = Vec::new();
        let range = db
            .range(&self.txn, &(lower, Bound::Unbounded))
            .map_err(storage)?;
        for item in range.take(n) {
            let (k, v) = item.map_err(storage)?;
            slots.push((k.to_vec(), v.to_vec()));
        }
        let done = slots.len() < n;
        let reached = slots
            .last()
            .map(|(k, _)| k.clone())
            .or(after.map(<[u8]>::to_vec));
        for (slot, bytes) in slots {
            let mut records = Vec::new();
            let mut damaged = false;
            if hashed {
                for item in record::bucket_records(&bytes) {
                    match item {
                        Ok((_, rec)) => records.push((rec.key.to_vec(), rec.header)),
                        Err(_) => damaged = true,
                    }
                }
            } else {
                match record::decode(&bytes) {
                    Ok(rec) => records.push((slot.clone(), rec.header)),
                    Err(_) => damaged = true,
                }
            }
            report.checked += records.len() as u64 + u64::from(damaged);
            if damaged {
                self.quarantine_slot(hashed, &slot, &bytes, now)?;
                report.quarantined += 1;
                continue;
            }
            for (key, header) in records {
                let ahead = now.saturating_add(FUTURE_TOLERANCE_MS);
                if header.created > ahead || header.accessed > ahead {
                    let created = header.created.min(now);
                    let accessed = header.accessed.clamp(created, now);
                    self.rewrite(&key, |rec| {
                        record::set_created(rec, created);
                        record::set_accessed(rec, accessed);
                    })?;
                    report.repaired += 1;
                } else if header.created > header.accessed {
                    let created = header.created;
                    self.rewrite(&key, |rec| record::set_accessed(rec, created))?;
                    report.repaired += 1;
                }
                let listed = store
                    .order
                    .get(&self.txn, &header.seq.to_be_bytes())
                    .map_err(storage)?;
                if listed != Some(&key[..]) {
                    self.break_key_order()?;
                    let seq = self.next_seq()?;
                    self.list(seq, &key)?;
                    self.rewrite(&key, |rec| record::set_seq(rec, seq))?;
                    report.repaired += 1;
                }
            }
        }
        Ok((reached, done))
    }

    /// Moves the bytes of a storage slot into the quarantine database.
    fn quarantine_slot(&mut self, hashed: bool, slot: &[u8], bytes: &[u8], now: u64) -> Result<()> {
        let store = self.store;
        let next = match store.quarantine.last(&self.txn).map_err(storage)? {
            Some((k, _)) => <[u8; 8]>::try_from(k).map_or(0, u64::from_be_bytes) + 1,
            None => 0,
        };
        let value = record::quarantined(hashed, now, slot, bytes);
        let r = store
            .quarantine
            .put(&mut self.txn, &next.to_be_bytes(), &value);
        self.check(r)?;
        let db = if hashed { store.hashed } else { store.entries };
        let r = db.delete(&mut self.txn, slot).map(drop);
        self.check(r)
    }

    /// Removes, among up to `n` insertion-order entries after `after`, those whose record is
    /// missing or lists another position. Returns the position reached and whether done.
    pub(crate) fn check_order_chunk(
        &mut self,
        after: Option<u64>,
        n: usize,
        report: &mut IntegrityReport,
    ) -> Result<(Option<u64>, bool)> {
        let chunk = self.headers_after(after, n)?;
        let done = chunk.len() < n;
        let reached = chunk.last().map(|(seq, _, _)| *seq).or(after);
        for (seq, _, header) in chunk {
            let stale = match header {
                Ok(Some(h)) => h.seq != seq,
                Ok(None) | Err(_) => true,
            };
            if stale {
                let r = self
                    .store
                    .order
                    .delete(&mut self.txn, &seq.to_be_bytes())
                    .map(drop);
                self.check(r)?;
                report.repaired += 1;
            }
        }
        Ok((reached, done))
    }
}

/// An entry's position in insertion order, its key, and its record's header (or why it
/// can't be read).
type OrderedHeader = (u64, Vec<u8>, Result<Option<Header>>);
