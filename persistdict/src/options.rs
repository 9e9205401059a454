//! The builder that opens a [`PersistDict`] with non-default settings.

use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::background::Background;
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
    pub(crate) settings: Settings,
    pub(crate) value_codec: C,
    pub(crate) key_codec: KC,
    marker: PhantomData<fn(K) -> V>,
}

/// The settings of a [`Builder`] that don't depend on its types.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: Option<String>,
    pub(crate) key_size_limit: usize,
    pub(crate) durability: Durability,
    pub(crate) map_size: usize,
    pub(crate) max_readers: u32,
    pub(crate) clock: Clock,
    pub(crate) cache_capacity: usize,
    pub(crate) expire_after: Option<Duration>,
    pub(crate) background: Background,
    pub(crate) background_timeout: Duration,
    pub(crate) sweep_interval: Duration,
    pub(crate) flush_interval: Duration,
}

impl<K, V> Default for Builder<K, V> {
    fn default() -> Self {
        Builder {
            settings: Settings {
                name: None,
                key_size_limit: MAX_KEY_SIZE_LIMIT,
                durability: Durability::Immediate,
                map_size: DEFAULT_MAP_SIZE,
                max_readers: 1022,
                clock: Clock::system(),
                cache_capacity: 128,
                expire_after: None,
                background: Background::Thread,
                background_timeout: Duration::from_secs(10),
                sweep_interval: Duration::from_secs(3600),
                flush_interval: Duration::from_secs(10),
            },
            value_codec: Postcard,
            key_codec: Postcard,
            marker: PhantomData,
        }
    }
}

impl<K, V, C: Codec, KC: Codec> Builder<K, V, C, KC> {
    /// A label for the dict, used in log events. Defaults to the directory's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = Some(name.into());
        self
    }

    /// Keys whose encoding is longer than this many bytes (1 to 511; default 511) are stored
    /// under a digest of at most 32 bytes, with the full key kept in the record.
    pub fn key_size_limit(mut self, limit: usize) -> Self {
        self.settings.key_size_limit = limit;
        self
    }

    /// When commits reach the disk (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.settings.durability = durability;
        self
    }

    /// Address space reserved for the memory map, in bytes (default 1 TiB). The file on disk
    /// only takes what is written, and the map grows by itself when it fills up, so this
    /// matters only on systems short of virtual address space.
    pub fn map_size(mut self, bytes: usize) -> Self {
        self.settings.map_size = bytes;
        self
    }

    /// The most concurrent read transactions over all processes (default 1022).
    pub fn max_readers(mut self, readers: u32) -> Self {
        self.settings.max_readers = readers;
        self
    }

    /// The time source for creation and access times and expiry (default
    /// [`Clock::system`]); a [`Clock::manual`] lets tests move time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.settings.clock = clock;
        self
    }

    /// How many decoded values the in-memory cache keeps (default 128; 0 turns it off).
    /// The cache is coherent across processes: a value another process wrote is never
    /// served stale.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.settings.cache_capacity = entries;
        self
    }

    /// Entries not read or written for `days` days are removed (0, the default: never).
    pub fn expire_days(self, days: u32) -> Self {
        let after = (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400));
        self.expire_after(after)
    }

    /// Entries not read or written for this long are removed (`None`, the default: never).
    ///
    /// Access times are stored by the worker every `flush_interval`; reads by another
    /// process that were not stored yet count for a sweep in that process only, so the
    /// expiry of an entry read only elsewhere may come up to `flush_interval` early.
    pub fn expire_after(mut self, after: Option<Duration>) -> Self {
        self.settings.expire_after = after.filter(|d| !d.is_zero());
        self
    }

    /// When the integrity check and expiry sweeps run (default [`Background::Thread`]).
    /// One worker serves every handle on a directory in a process: the first handle that
    /// opens it decides its settings.
    pub fn background(mut self, mode: Background) -> Self {
        self.settings.background = mode;
        self
    }

    /// The most time the work at open (integrity check, first sweep) may take (default
    /// 10 s); what is left is done by the next periodic sweep.
    pub fn background_timeout(mut self, timeout: Duration) -> Self {
        self.settings.background_timeout = timeout;
        self
    }

    /// How often the worker sweeps expired entries (default 1 hour).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.settings.sweep_interval = interval;
        self
    }

    /// How often the worker stores the access times that reads recorded in memory, and
    /// syncs in [`Durability::Eventual`] mode (default 10 s). This is the resolution of
    /// stored access times.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.flush_interval = interval;
        self
    }

    /// The codec of values (default [`Postcard`]).
    pub fn value_codec<C2: Codec>(self, codec: C2) -> Builder<K, V, C2, KC> {
        Builder {
            settings: self.settings,
            value_codec: codec,
            key_codec: self.key_codec,
            marker: PhantomData,
        }
    }

    /// The codec of keys (default [`Postcard`]). It must be deterministic.
    pub fn key_codec<KC2: Codec>(self, codec: KC2) -> Builder<K, V, C, KC2> {
        Builder {
            settings: self.settings,
            key_codec: codec,
            value_codec: self.value_codec,
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
        V: Serialize + DeserializeOwned + Clone,
    {
        if !(1..=MAX_KEY_SIZE_LIMIT).contains(&self.settings.key_size_limit) {
            return Err(Error::InvalidOption {
                option: "key_size_limit",
                reason: format!("{} is not in 1..=511", self.settings.key_size_limit),
            });
        }
        if self.settings.map_size == 0 || self.settings.max_readers == 0 {
            let option = if self.settings.map_size == 0 {
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
                .settings
                .map_size
                .div_ceil(MAP_SIZE_GRANULE)
                .saturating_mul(MAP_SIZE_GRANULE),
            durability: self.settings.durability,
            max_readers: self.settings.max_readers,
        };
        PersistDict::from_builder(self, path.as_ref(), &store_options)
    }
}
