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
    /// What was found, one by one (the first 10,000), with what a repair does about each.
    pub problems: Vec<Problem>,
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
    /// chunk sees), stamps quarantined records and bounds the times kept. With `repair`
    /// false the same walk only reports, in read transactions, and changes nothing.
    pub(crate) fn check(
        &self,
        now: &dyn Fn() -> u64,
        deadline: Option<Instant>,
        repair: bool,
    ) -> Result<IntegrityReport> {
        let mut report = IntegrityReport::default();
        let mut complete = true;
        for part in [Part::Entries, Part::Hashed, Part::Order] {
            if !complete {
                break;
            }
            let mut after = None;
            // One chunk: the findings after `after`, fixed in `w` when repairing.
            let step = |r: &Reader<'_>, after: Option<&Position>| {
                let now = now();
                let (findings, checked, reached, done) = r.find_problems(part, after, CHUNK, now);
                (findings, checked, reached, done, now)
            };
            complete = if repair {
                self.chunked(
                    Durability::Eventual,
                    deadline,
                    |w, after: Option<&Position>| {
                        let (findings, checked, reached, done, now) = step(&w.as_read(), after);
                        let findings = findings?;
                        for finding in &findings {
                            w.fix(finding, now)?;
                        }
                        Ok((reached, done, (findings, checked)))
                    },
                    |(findings, checked)| report.add(&findings, checked),
                )?
            } else {
                loop {
                    let (findings, checked, reached, done, _) =
                        self.read(|r| Ok(step(r, after.as_ref())))?;
                    report.add(&findings?, checked);
                    after = reached;
                    if done {
                        break true;
                    }
                    if self.out_of_time(deadline) {
                        break false;
                    }
                }
            };
        }
        report.incomplete = !complete;
        Ok(report)
    }
}

/// The three walks of the integrity check, in the order it takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The slots of `entries` (records under raw keys).
    Entries,
    /// The slots of `hashed` (buckets).
    Hashed,
    /// The insertion order.
    Order,
}

/// Where a walk of the check has reached: a storage key, or a sequence number.
#[derive(Debug, Clone)]
enum Position {
    Slot(Vec<u8>),
    Seq(u64),
}

/// One thing the integrity check found wrong, and what repairing it does.
#[derive(Debug, Clone)]
enum Finding {
    /// A storage slot whose bytes can't be read: moved to the quarantine database.
    Unreadable {
        hashed: bool,
        slot: Vec<u8>,
        bytes: Vec<u8>,
        reason: record::Damage,
    },
    /// A record's times, stamped by a clock that ran ahead or with the access before the
    /// creation: set to these.
    Times {
        key: Vec<u8>,
        created: u64,
        accessed: u64,
        reason: &'static str,
    },
    /// A record missing from the insertion order: listed at its end.
    Unlisted { key: Vec<u8> },
    /// An insertion-order entry whose record is missing or lists another position: removed.
    Dangling { seq: u64, key: Vec<u8> },
}

/// The most problems an [`IntegrityReport`] lists one by one; its counts go on.
const MOST_PROBLEMS: usize = 10_000;

/// One problem an integrity check found: the entry's encoded key (or, for a storage slot that
/// can't be read, the slot's storage key: the key itself or a digest of it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The encoded key, or the storage key of an unreadable slot.
    pub key: Vec<u8>,
    /// What is wrong, and what a repair does about it.
    pub what: String,
}

impl IntegrityReport {
    fn add(&mut self, findings: &[Finding], checked: u64) {
        self.checked += checked;
        for finding in findings {
            let (key, what) = match finding {
                Finding::Unreadable {
                    hashed,
                    slot,
                    reason,
                    ..
                } => {
                    self.quarantined += 1;
                    let db = if *hashed { "hashed" } else { "entries" };
                    (
                        slot,
                        format!("unreadable slot in `{db}` ({reason}): quarantined"),
                    )
                }
                Finding::Times { key, reason, .. } => {
                    self.repaired += 1;
                    (key, format!("{reason}: times brought back in order"))
                }
                Finding::Unlisted { key } => {
                    self.repaired += 1;
                    (
                        key,
                        "missing from the insertion order: listed again".to_owned(),
                    )
                }
                Finding::Dangling { seq, key } => {
                    self.repaired += 1;
                    (
                        key,
                        format!("insertion-order entry {seq} has no record there: removed"),
                    )
                }
            };
            if self.problems.len() < MOST_PROBLEMS {
                self.problems.push(Problem {
                    key: key.clone(),
                    what,
                });
            }
        }
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

    /// Brings back in order what [`Reader::find_problems`] found.
    fn fix(&mut self, finding: &Finding, now: u64) -> Result<()> {
        match finding {
            Finding::Unreadable {
                hashed,
                slot,
                bytes,
                ..
            } => self.quarantine_slot(*hashed, slot, bytes, now),
            Finding::Times {
                key,
                created,
                accessed,
                ..
            } => {
                self.rewrite(key, |rec| {
                    record::set_created(rec, *created);
                    record::set_accessed(rec, *accessed);
                })?;
                Ok(())
            }
            Finding::Unlisted { key } => {
                self.break_key_order()?;
                let seq = self.next_seq()?;
                self.list(seq, key)?;
                self.rewrite(key, |rec| record::set_seq(rec, seq))?;
                Ok(())
            }
            Finding::Dangling { seq, .. } => {
                let r = self
                    .store
                    .order
                    .delete(&mut self.txn, &seq.to_be_bytes())
                    .map(drop);
                self.check(r)
            }
        }
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
}

impl Reader<'_> {
    /// What is wrong among up to `n` items of `part` after `after`, how many records it
    /// examined, the position reached, and whether the walk reached the end.
    ///
    /// In `entries` and `hashed`: slots that can't be read, times more than
    /// [`FUTURE_TOLERANCE_MS`] later than `now` (a clock that ran ahead; brought back to
    /// `now`), access times before the creation time, records missing from the insertion
    /// order. In the order: entries whose record is missing or lists another position.
    fn find_problems(
        &self,
        part: Part,
        after: Option<&Position>,
        n: usize,
        now: u64,
    ) -> (Result<Vec<Finding>>, u64, Option<Position>, bool) {
        let mut findings = Vec::new();
        let mut checked = 0;
        let walked = match part {
            Part::Order => {
                let after = match after {
                    Some(Position::Seq(seq)) => Some(*seq),
                    _ => None,
                };
                self.find_dangling(after, n, &mut findings)
                    .map(|(reached, done)| (reached.map(Position::Seq), done))
            }
            Part::Entries | Part::Hashed => {
                let after = match after {
                    Some(Position::Slot(slot)) => Some(slot.as_slice()),
                    _ => None,
                };
                self.find_in_slots(
                    part == Part::Hashed,
                    after,
                    n,
                    now,
                    &mut findings,
                    &mut checked,
                )
                .map(|(reached, done)| (reached.map(Position::Slot), done))
            }
        };
        match walked {
            Ok((reached, done)) => (Ok(findings), checked, reached.or(after.cloned()), done),
            Err(e) => (Err(e), checked, after.cloned(), true),
        }
    }

    /// See [`find_problems`](Self::find_problems), for storage slots.
    fn find_in_slots(
        &self,
        hashed: bool,
        after: Option<&[u8]>,
        n: usize,
        now: u64,
        findings: &mut Vec<Finding>,
        checked: &mut u64,
    ) -> Result<(Option<Vec<u8>>, bool)> {
        let store = self.store;
        let db = if hashed { store.hashed } else { store.entries };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut count = 0;
        let mut reached = None;
        for item in db
            .range(self.txn, &(lower, Bound::Unbounded))
            .map_err(storage)?
            .take(n)
        {
            let (slot, bytes) = item.map_err(storage)?;
            count += 1;
            reached = Some(slot);
            let mut records = Vec::new();
            let mut damage = None;
            if hashed {
                for item in record::bucket_records(bytes) {
                    match item {
                        Ok((_, rec)) => records.push((rec.key, rec.header)),
                        Err(reason) => damage = Some(reason),
                    }
                }
            } else {
                match record::decode(bytes) {
                    Ok(rec) => records.push((slot, rec.header)),
                    Err(reason) => damage = Some(reason),
                }
            }
            *checked += records.len() as u64 + u64::from(damage.is_some());
            if let Some(reason) = damage {
                findings.push(Finding::Unreadable {
                    hashed,
                    slot: slot.to_vec(),
                    bytes: bytes.to_vec(),
                    reason,
                });
                continue;
            }
            for (key, header) in records {
                let ahead = now.saturating_add(FUTURE_TOLERANCE_MS);
                if header.created > ahead || header.accessed > ahead {
                    let created = header.created.min(now);
                    findings.push(Finding::Times {
                        key: key.to_vec(),
                        created,
                        accessed: header.accessed.clamp(created, now),
                        reason: "times later than the clock",
                    });
                } else if header.created > header.accessed {
                    findings.push(Finding::Times {
                        key: key.to_vec(),
                        created: header.created,
                        accessed: header.created,
                        reason: "accessed before it was created",
                    });
                }
                let listed = store
                    .order
                    .get(self.txn, &header.seq.to_be_bytes())
                    .map_err(storage)?;
                if listed != Some(key) {
                    findings.push(Finding::Unlisted { key: key.to_vec() });
                }
            }
        }
        Ok((reached.map(<[u8]>::to_vec), count < n))
    }

    /// See [`find_problems`](Self::find_problems), for the insertion order.
    fn find_dangling(
        &self,
        after: Option<u64>,
        n: usize,
        findings: &mut Vec<Finding>,
    ) -> Result<(Option<u64>, bool)> {
        let mut chunk = Vec::new();
        self.store.order_chunk(self.txn, after, n, |seq, key| {
            chunk.push((seq, key.to_vec()));
        })?;
        let done = chunk.len() < n;
        let reached = chunk.last().map(|(seq, _)| *seq);
        for (seq, key) in chunk {
            let stale = match self.store.get(self.txn, &key) {
                Ok(Some(record)) => record.header.seq != seq,
                Ok(None) | Err(_) => true,
            };
            if stale {
                findings.push(Finding::Dangling { seq, key });
            }
        }
        Ok((reached, done))
    }
}

/// An entry's position in insertion order, its key, and its record's header (or why it
/// can't be read).
type OrderedHeader = (u64, Vec<u8>, Result<Option<Header>>);
