//! The builder that opens a [`PersistDict`] with non-default settings.

use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::codec::{Codec, Postcard};
use crate::dict::PersistDict;
use crate::env::{Durability, StoreOptions};
use crate::error::{Error, Result};

/// LMDB's largest key with its default build (`MDB_MAXKEYSIZE`).
pub(crate) const MAX_KEY_SIZE_LIMIT: usize = 511;
/// Address space reserved for the map by default: 1 TiB. The file only takes what is written.
pub(crate) const DEFAULT_MAP_SIZE: usize = 1 << 40;
/// Map sizes are rounded up to this, a multiple of every common page size.
const MAP_SIZE_GRANULE: usize = 1 << 16;

/// Settings for opening a [`PersistDict`]; created by [`PersistDict::builder`].
///
/// Settings that decide where entries are stored (`key_size_limit` and the codecs' names) are
/// saved when the dict is created, and opening it later with other ones is an error
/// ([`Error::SettingsMismatch`]) instead of a dict that can't see its own entries.
///
/// # Examples
///
/// ```
/// use persistdict::{Durability, PersistDict};
///
/// # fn main() -> persistdict::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let d: PersistDict<String, u32> = PersistDict::builder()
///     .name("scores")
///     .durability(Durability::Eventual)
///     .open(dir.path().join("scores"))?;
/// d.insert("ada".to_string(), 3)?;
/// d.flush()?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `open` is called"]
pub struct Builder<K, V, C = Postcard, KC = Postcard> {
    pub(crate) name: Option<String>,
    pub(crate) key_size_limit: usize,
    pub(crate) durability: Durability,
    pub(crate) map_size: usize,
    pub(crate) max_readers: u32,
    pub(crate) value_codec: C,
    pub(crate) key_codec: KC,
    pub(crate) clock: Clock,
    marker: PhantomData<fn(K) -> V>,
}

impl<K, V> Default for Builder<K, V> {
    fn default() -> Self {
        Builder {
            name: None,
            key_size_limit: MAX_KEY_SIZE_LIMIT,
            durability: Durability::Immediate,
            map_size: DEFAULT_MAP_SIZE,
            max_readers: 1022,
            value_codec: Postcard,
            key_codec: Postcard,
            clock: Clock::system(),
            marker: PhantomData,
        }
    }
}

impl<K, V, C: Codec, KC: Codec> Builder<K, V, C, KC> {
    /// A label for the dict, used in log events. Defaults to the directory's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Keys whose encoding is longer than this many bytes (1 to 511; default 511) are stored
    /// under a digest of at most 32 bytes, with the full key kept in the record.
    pub fn key_size_limit(mut self, limit: usize) -> Self {
        self.key_size_limit = limit;
        self
    }

    /// When commits reach the disk (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Address space reserved for the memory map, in bytes (default 1 TiB). The file on disk
    /// only takes what is written, and the map grows by itself when it fills up, so this
    /// matters only on systems short of virtual address space.
    pub fn map_size(mut self, bytes: usize) -> Self {
        self.map_size = bytes;
        self
    }

    /// The most concurrent read transactions over all processes (default 1022).
    pub fn max_readers(mut self, readers: u32) -> Self {
        self.max_readers = readers;
        self
    }

    /// The time source for creation and access times and expiry (default
    /// [`Clock::system`]); a [`Clock::manual`] lets tests move time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The codec of values (default [`Postcard`]).
    pub fn value_codec<C2: Codec>(self, codec: C2) -> Builder<K, V, C2, KC> {
        Builder {
            name: self.name,
            key_size_limit: self.key_size_limit,
            durability: self.durability,
            map_size: self.map_size,
            max_readers: self.max_readers,
            value_codec: codec,
            key_codec: self.key_codec,
            clock: self.clock,
            marker: PhantomData,
        }
    }

    /// The codec of keys (default [`Postcard`]). It must be deterministic.
    pub fn key_codec<KC2: Codec>(self, codec: KC2) -> Builder<K, V, C, KC2> {
        Builder {
            name: self.name,
            key_size_limit: self.key_size_limit,
            durability: self.durability,
            map_size: self.map_size,
            max_readers: self.max_readers,
            value_codec: self.value_codec,
            key_codec: codec,
            clock: self.clock,
            marker: PhantomData,
        }
    }

    /// Opens the dict in directory `path`, creating the directory (and its parents) and the
    /// dict if missing.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidOption`] for an option out of range, or a durability other than the
    ///   one the same directory is already open with in this process.
    /// - [`Error::Io`] when `path` is a regular file or can't be created.
    /// - [`Error::NotADict`] when the directory holds a data file LMDB can't read.
    /// - [`Error::SettingsMismatch`] / [`Error::UnsupportedFormat`] when the dict was created
    ///   with other settings or by a newer version.
    pub fn open(self, path: impl AsRef<Path>) -> Result<PersistDict<K, V, C, KC>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        if !(1..=MAX_KEY_SIZE_LIMIT).contains(&self.key_size_limit) {
            return Err(Error::InvalidOption {
                option: "key_size_limit",
                reason: format!("{} is not in 1..=511", self.key_size_limit),
            });
        }
        if self.map_size == 0 || self.max_readers == 0 {
            let option = if self.map_size == 0 {
                "map_size"
            } else {
                "max_readers"
            };
            return Err(Error::InvalidOption {
                option,
                reason: "must not be 0".into(),
            });
        }
        let store_options = StoreOptions {
            map_size: self
                .map_size
                .div_ceil(MAP_SIZE_GRANULE)
                .saturating_mul(MAP_SIZE_GRANULE),
            durability: self.durability,
            max_readers: self.max_readers,
        };
        PersistDict::from_builder(self, path.as_ref(), &store_options)
    }
}
