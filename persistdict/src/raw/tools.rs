//! What tools need of the untyped middle (`crate::inspect`): a dict opened as it was made,
//! without a settings check; what the store records about itself; sizes and entries with
//! their headers; writes with given times; compaction.

use std::path::Path;
use std::sync::Arc;

use super::{RawDict, RawWrite, store_config};
use crate::cache::{Cache, Change};
use crate::error::{Error, Result};
use crate::key::KeyBuf;
use crate::options::Config;
use crate::shared::Shared;
use crate::store::{Compacted, Listed, Note, Settings, Stored, Survey};

impl<V: Clone> RawDict<V> {
    /// Opens the dict in `path` as it was made, without checking any setting: for tools,
    /// which read it without the program's types. No worker is started.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when `path` holds no dict (nothing is created), [`Error::NotADict`]
    /// when it never stored its settings, [`Error::UnsupportedFormat`] for a format this
    /// version can't read, and the errors of opening.
    pub(crate) fn open_stored(path: &Path, config: &Config) -> Result<(Self, Stored)> {
        if !path.join("data.mdb").is_file() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let limit_unknown = no_settings(config);
        let mut config = config.clone();
        let read_only = config.read_only;
        config.read_only = true;
        let shared = Shared::open(path, &store_config(&config, &limit_unknown))?;
        let stored = shared.stored()?.ok_or_else(|| Error::NotADict {
            path: path.to_path_buf(),
            source: "it stores no settings".into(),
        })?;
        // Opened again with the dict's own key size limit, which finds its keys (and, when
        // asked, writable): the first open only read the settings.
        drop(shared);
        config.read_only = read_only;
        config.key_size_limit = stored.key_size_limit as usize;
        let shared = Shared::open(path, &store_config(&config, &limit_unknown))?;
        let name = config.name.clone().unwrap_or_default();
        let cache = Cache::new(0, Arc::clone(shared.quiet_commits()), None);
        cache.committed_unknown(shared.last_txn_id());
        let raw = RawDict {
            shared,
            cache,
            name,
            clock: config.clock.clone(),
            expire_after: None,
            durability: config.durability,
            read_only: config.read_only,
            typed: stored.format_version >= 2,
        };
        Ok((raw, stored))
    }

    /// Whether encoded `key` is stored under a digest.
    pub(crate) fn hashed(&self, key: &[u8]) -> bool {
        self.shared.hashed(key)
    }

    /// The key types recorded in the dict: each tag with its stored shape.
    pub(crate) fn key_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.shared.key_types()
    }

    /// The functions recorded in a `#[memoize]` store: each namespace with its record.
    pub(crate) fn memo_functions(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.shared.memo_functions()
    }

    /// Sizes, readers and buckets.
    pub(crate) fn survey(&self) -> Result<Survey> {
        self.shared.survey()
    }

    /// Up to `n` entries in insertion order after sequence number `after`, with their
    /// records, whatever their access times.
    pub(crate) fn listed_after(&self, after: Option<u64>, n: usize) -> Result<Vec<Listed>> {
        self.shared.listed_after(after, n)
    }
}

impl<V> RawWrite<'_, '_, V> {
    /// Stores `bytes` under `key` with the given creation and access times (ms), as an import
    /// does; see [`WriteTxn::put_with_times`]. Returns whether the key was new.
    pub(crate) fn put_with_times(
        &mut self,
        key: &[u8],
        bytes: &[u8],
        created: u64,
        accessed: u64,
    ) -> Result<bool> {
        let new = self.txn.put_with_times(key, bytes, created, accessed)?;
        self.changes.push((KeyBuf::from_slice(key), Change::Forget));
        Ok(new)
    }

    /// Gives up this process's lease of `key` (see [`RawDict::claim`]), if it holds it.
    pub(crate) fn release_lease(&mut self, key: &[u8]) -> Result<()> {
        self.txn.release_lease(key)
    }

    /// Records the shape of the key type tagged `tag` unless it is recorded already.
    pub(crate) fn record_key_type(&mut self, tag: &[u8], shape: &[u8]) -> Result<()> {
        self.txn.record_key_type(tag, shape)
    }

    /// Stores a note about the dict (`store::Note`).
    pub(crate) fn put_note(&mut self, note: &Note) -> Result<()> {
        self.txn.put_note(note)
    }
}

/// Settings that ask for nothing: for a store opened without a settings check.
fn no_settings(config: &Config) -> Settings<'static> {
    Settings {
        key_size_limit: config.key_size_limit,
        key_codec: "",
        value_codec: "",
        read_only: true,
        value_type: None,
        key_type: None,
        notes: &[],
    }
}

/// Compacts the dict in `path`; see [`Shared::compact`].
pub(crate) fn compact(path: &Path, config: &Config) -> Result<Compacted> {
    Shared::compact(path, &store_config(config, &no_settings(config)))
}
