//! The calls that look after a dict rather than read or write entries: flushing, metadata,
//! statistics, expiry and the integrity check.

use std::borrow::Borrow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PersistDict;
use super::walk::{Undecodable, Walk};
use crate::codec::Codec;
use crate::error::Result;
use crate::raw::{Metadata, Stats};
use crate::store::IntegrityReport;

impl<K, V, C, KC> PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    /// Stores the access times recorded in memory and syncs committed writes to disk (the
    /// sync matters only with [`Durability::Eventual`](crate::Durability)).
    pub fn flush(&self) -> Result<()> {
        self.inner.raw.flush()
    }

    /// The creation time, access time and stored size of `key`'s entry. Looking is not an
    /// access.
    ///
    /// The access time includes reads of this process not yet stored; reads by other
    /// processes count once their worker stores them (every `flush_interval`, 10 s by
    /// default) or they close the dict.
    pub fn metadata<Q>(&self, key: &Q) -> Result<Option<Metadata>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.keyed(self.with_key(key, |key| self.inner.raw.metadata(key)))
    }

    /// Counters of the cache and the background worker, and sizes.
    pub fn stats(&self) -> Result<Stats> {
        self.inner.raw.stats()
    }

    /// Removes now every entry not accessed for the dict's `expire_after`, and returns how
    /// many. Does nothing (returns 0) when the dict has no expiry.
    pub fn expire_now(&self) -> Result<u64> {
        self.inner.raw.expire_now()
    }

    /// Walks every record: moves records that can't be read at all into quarantine (nothing
    /// is deleted), repairs inconsistent times and insertion order, and reports values that
    /// don't decode as `V` (they stay as they are). The worker runs the same check, without
    /// the value decoding, at open.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        let mut report = self.inner.raw.check(true)?;
        let undecodable = Walk::<_, _, _, _, Undecodable>::new(self.clone(), false);
        report
            .undecodable
            .extend(undecodable.filter_map(|item| item.ok().flatten()));
        Ok(report)
    }
}
