//! What tools ask of a store besides entries by key: its sizes and reader slots, its buckets,
//! records in insertion order with their headers, and records written with given times (an
//! import).

use super::env::{Store, WriteTxn, storage};
use super::record::{self, Header};
use crate::error::Result;

/// Sizes and counts of a store, as of one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Survey {
    pub(crate) page_size: u64,
    /// Bytes of address space mapped.
    pub(crate) map_size: u64,
    /// Bytes of the file up to its last used page (free pages inside included).
    pub(crate) high_water: u64,
    /// Bytes of pages that hold data: every database's branch, leaf and overflow pages and
    /// the two meta pages. The rest of `high_water` is free pages, which a compacting copy
    /// leaves out.
    pub(crate) in_use: u64,
    pub(crate) last_txn_id: u64,
    pub(crate) readers: u32,
    pub(crate) max_readers: u32,
    /// Storage slots of `hashed`, the records in them, and the slots that hold more than
    /// one record (keys whose digests collide).
    pub(crate) hashed_slots: u64,
    pub(crate) hashed_records: u64,
    pub(crate) shared_slots: u64,
    pub(crate) quarantined: u64,
}

/// One entry in insertion order, as a tool sees it.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) seq: u64,
    /// The full encoded key.
    pub(crate) key: Vec<u8>,
    /// The record's header and stored value bytes, `None` when the order lists a key that
    /// has no record, or why the record can't be read.
    pub(crate) record: Result<Option<(Header, Vec<u8>)>>,
}

impl Store {
    /// Sizes, readers and buckets as of one snapshot. Reads every bucket.
    pub(crate) fn survey(&self) -> Result<Survey> {
        let info = self.env()?.info();
        self.read(|r| {
            let txn = r.txn;
            let mut survey = Survey {
                map_size: info.map_size as u64,
                last_txn_id: info.last_txn_id as u64,
                readers: info.number_of_readers,
                max_readers: info.maximum_number_of_readers,
                ..Survey::default()
            };
            let main = self.env()?.unnamed_database_stat();
            let page_size = u64::from(main.page_size);
            let mut pages = 2 + main.branch_pages + main.leaf_pages + main.overflow_pages;
            let dbs = [self.entries, self.hashed, self.order, self.quarantine];
            for db in dbs.into_iter().chain(self.leases) {
                let stat = db.stat(txn).map_err(storage)?;
                pages += stat.branch_pages + stat.leaf_pages + stat.overflow_pages;
            }
            let stat = self.info.stat(txn).map_err(storage)?;
            pages += stat.branch_pages + stat.leaf_pages + stat.overflow_pages;
            survey.page_size = page_size;
            survey.in_use = pages as u64 * page_size;
            survey.high_water = (info.last_page_number as u64 + 1) * page_size;
            survey.quarantined = self.quarantine.len(txn).map_err(storage)?;
            for item in self.hashed.iter(txn).map_err(storage)? {
                let (_, bucket) = item.map_err(storage)?;
                survey.hashed_slots += 1;
                let mut records = 0;
                // A damaged frame ends the count; the integrity check reports the bucket.
                for rec in record::bucket_records(bucket) {
                    if rec.is_err() {
                        break;
                    }
                    records += 1;
                }
                survey.hashed_records += records;
                survey.shared_slots += u64::from(records > 1);
            }
            Ok(survey)
        })
    }

    /// Up to `n` entries in insertion order after sequence number `after`, in one read
    /// transaction.
    pub(crate) fn listed_after(&self, after: Option<u64>, n: usize) -> Result<Vec<Listed>> {
        self.read(|r| {
            let mut keys = Vec::new();
            self.order_chunk(r.txn, after, n, |seq, key| keys.push((seq, key.to_vec())))?;
            Ok(keys
                .into_iter()
                .map(|(seq, key)| {
                    let record = r
                        .get(&key)
                        .map(|rec| rec.map(|rec| (rec.header, rec.value.to_vec())));
                    Listed { seq, key, record }
                })
                .collect())
        })
    }
}

impl WriteTxn<'_> {
    /// Stores `value` under `key` with the given creation and access times (ms), as an import
    /// does: a new key goes to the end of the insertion order, an existing one keeps its place
    /// and takes these times. Returns whether the key was new.
    pub(crate) fn put_with_times(
        &mut self,
        key: &[u8],
        value: &[u8],
        created: u64,
        accessed: u64,
    ) -> Result<bool> {
        let new = self.put(key, value, accessed)?;
        self.rewrite(key, |rec| {
            record::set_created(rec, created);
            record::set_accessed(rec, accessed);
        })?;
        Ok(new)
    }
}
