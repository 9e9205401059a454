//! The builder that opens a [`PersistDict`](crate::PersistDict) with non-default settings, and the choices it
//! offers ([`Durability`], [`Background`]).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::clock::Clock;
use crate::codec::{Codec, Postcard};
use crate::error::{Error, Result};

/// LMDB's largest key with its default build (`MDB_MAXKEYSIZE`).
pub(crate) const MAX_KEY_SIZE_LIMIT: usize = 511;
/// Address space reserved for the map by default: 64 GiB, so that about 2,000 dicts fit in
/// the 128 TiB a 64-bit Linux process can map; a dict that outgrows it grows its map by
/// itself. The file only takes what is written.
pub(crate) const DEFAULT_MAP_SIZE: usize = 64 << 30;
/// Map sizes are rounded up to this, a multiple of every common page size.
pub(crate) const MAP_SIZE_GRANULE: usize = 1 << 16;

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is on disk when it returns (LMDB's default: fsync per commit).
    #[default]
    Immediate,
    /// Commits are not synced; the OS writes them out, and [`flush`](crate::PersistDict::flush)
    /// or the background worker syncs. A process crash loses nothing committed; a power loss
    /// or OS crash can lose the last commits (and, on filesystems that reorder writes, LMDB
    /// documents that the file can be damaged). For caches, ~35x faster per write.
    Eventual,
}

/// When the checks and sweeps of a dict run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Background {
    /// A worker thread runs the integrity check and an expiry sweep right after open (which
    /// returns at once), then sweeps and flushes periodically.
    #[default]
    Thread,
    /// `open` runs the integrity check and an expiry sweep before returning (bounded by
    /// `background_timeout`); then the worker thread sweeps and flushes periodically.
    Foreground,
    /// No worker: no checks, no automatic expiry, access times stored only by
    /// [`flush`](crate::PersistDict::flush) and when the last handle closes.
    /// [`expire_now`](crate::PersistDict::expire_now) still works.
    Disabled,
}

/// Settings for opening a [`PersistDict`](crate::PersistDict); created by [`PersistDict::builder`](crate::PersistDict::builder).
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
    pub(crate) config: Config,
    pub(crate) value_codec: C,
    pub(crate) key_codec: KC,
    marker: PhantomData<fn(K) -> V>,
}

impl<K, V, C: fmt::Debug, KC: fmt::Debug> fmt::Debug for Builder<K, V, C, KC> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("value_codec", &self.value_codec)
            .field("key_codec", &self.key_codec)
            .finish()
    }
}

/// The settings of a [`Builder`] that don't depend on its types.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) name: Option<String>,
    pub(crate) key_size_limit: usize,
    pub(crate) durability: Durability,
    pub(crate) map_size: usize,
    pub(crate) max_readers: u32,
    pub(crate) read_only: bool,
    pub(crate) clock: Clock,
    pub(crate) cache_capacity: usize,
    pub(crate) expire_after: Option<Duration>,
    pub(crate) background: Background,
    pub(crate) background_timeout: Duration,
    pub(crate) sweep_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) undecodable_as_missing: bool,
    /// What the dict is told to store about itself (`store::Note`), set by the attributes'
    /// runtime halves.
    pub(crate) notes: Vec<(String, Vec<u8>)>,
}

impl<K, V> Default for Builder<K, V> {
    fn default() -> Self {
        Builder {
            config: Config {
                name: None,
                key_size_limit: MAX_KEY_SIZE_LIMIT,
                durability: Durability::Immediate,
                map_size: DEFAULT_MAP_SIZE,
                max_readers: 1022,
                read_only: false,
                clock: Clock::system(),
                cache_capacity: 128,
                expire_after: None,
                background: Background::Thread,
                background_timeout: Duration::from_secs(10),
                sweep_interval: Duration::from_secs(3600),
                flush_interval: Duration::from_secs(10),
                undecodable_as_missing: false,
                notes: Vec::new(),
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
        self.config.name = Some(name.into());
        self
    }

    /// Keys whose encoding is longer than this many bytes (1 to 511; default 511) are stored
    /// under a digest of at most 32 bytes, with the full key kept in the record.
    pub fn key_size_limit(mut self, limit: usize) -> Self {
        self.config.key_size_limit = limit;
        self
    }

    /// When this handle's commits reach the disk (default [`Durability::Immediate`]).
    /// Handles on one directory may differ: each commit gets its own handle's durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// Address space reserved for the memory map, in bytes (default 64 GiB). The file on disk
    /// only takes what is written, and the map doubles by itself when it fills up, so this
    /// matters only for the number of dicts a process can hold open at once: a 64-bit Linux
    /// process maps at most 128 TiB, about 2,000 dicts at the default.
    pub fn map_size(mut self, bytes: usize) -> Self {
        self.config.map_size = bytes;
        self
    }

    /// Opens the dict for reading only: it must exist, nothing is created or written (no
    /// access times, no worker), and every write is [`Error::ReadOnly`]. For a dict shipped
    /// with a program, or owned by another user.
    ///
    /// LMDB's readers register in the lock file (`lock.mdb`), so that writers in other
    /// processes don't reuse pages they still read. When the lock file can't be written (a
    /// read-only filesystem, another user's dict), the dict is read without it, which is safe
    /// only while no process writes to it; a warning is logged.
    pub fn read_only(mut self) -> Self {
        self.config.read_only = true;
        self
    }

    /// The most concurrent read transactions over all processes (default 1022).
    pub fn max_readers(mut self, readers: u32) -> Self {
        self.config.max_readers = readers;
        self
    }

    /// The time source for creation and access times and expiry (default
    /// [`Clock::system`]); a [`Clock::manual`] lets tests move time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.config.clock = clock;
        self
    }

    /// How many decoded values the in-memory cache keeps (default 128; 0 turns it off). The
    /// cache is split into up to 16 shards with locks of their own, so that threads reading
    /// at once rarely wait for each other; they share this capacity, which each may pass by
    /// one entry. The cache is coherent across processes: a value another process wrote is
    /// never served stale.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.config.cache_capacity = entries;
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
        self.config.expire_after = after.filter(|d| !d.is_zero());
        self
    }

    /// When the integrity check and expiry sweeps run (default [`Background::Thread`]).
    /// One worker serves every handle on a directory in a process: the first handle that
    /// opens it decides its settings.
    pub fn background(mut self, mode: Background) -> Self {
        self.config.background = mode;
        self
    }

    /// The most time the work at open (integrity check, first sweep) may take (default
    /// 10 s); what is left is done by the next periodic sweep.
    pub fn background_timeout(mut self, timeout: Duration) -> Self {
        self.config.background_timeout = timeout;
        self
    }

    /// How often the worker sweeps expired entries (default 1 hour).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.config.sweep_interval = interval;
        self
    }

    /// How often the worker stores the access times that reads recorded in memory, and
    /// syncs in [`Durability::Eventual`] mode (default 10 s). This is the resolution of
    /// stored access times.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.config.flush_interval = interval;
        self
    }

    /// Treat a stored value that no longer decodes as `V` (its type changed since it was
    /// written) as missing, instead of returning [`Error::Decode`] (default `false`).
    ///
    /// With it, such an entry reads as absent: `get` and `contains_key` say `None`/`false`,
    /// `get_or_insert_with` and `update` compute a new value and overwrite it, `take` and
    /// `replace` return `None` for it, and `iter`/`values` skip it. `keys()` and `len()`
    /// don't decode values, so they still count it until it is overwritten, removed or
    /// expires. `contains_key` decodes the value it finds.
    ///
    /// The trade-off: a value that fails to decode is given up silently, whatever the
    /// reason: a changed type, but also a bug in a codec, or a newer program that writes the
    /// same dict with another type, which this handle then overwrites. Use it for caches whose
    /// values can be computed again; keep the default for state, where an error is the only
    /// way to notice. `#[memoize]` always works this way; `#[persistent]` map types take
    /// `undecodable = "missing"`.
    pub fn undecodable_as_missing(mut self, missing: bool) -> Self {
        self.config.undecodable_as_missing = missing;
        self
    }

    /// The codec of values (default [`Postcard`]).
    pub fn value_codec<C2: Codec>(self, codec: C2) -> Builder<K, V, C2, KC> {
        Builder {
            config: self.config,
            value_codec: codec,
            key_codec: self.key_codec,
            marker: PhantomData,
        }
    }

    /// The codec of keys (default [`Postcard`]). It must be deterministic.
    pub fn key_codec<KC2: Codec>(self, codec: KC2) -> Builder<K, V, C, KC2> {
        Builder {
            config: self.config,
            key_codec: codec,
            value_codec: self.value_codec,
            marker: PhantomData,
        }
    }
}

impl Config {
    /// Refuses options that can't work.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(1..=MAX_KEY_SIZE_LIMIT).contains(&self.key_size_limit) {
            return Err(Error::InvalidOption {
                option: "key_size_limit",
                reason: format!("{} is not in 1..=511", self.key_size_limit),
            });
        }
        for (option, zero) in [
            ("map_size", self.map_size == 0),
            ("max_readers", self.max_readers == 0),
        ] {
            if zero {
                return Err(Error::InvalidOption {
                    option,
                    reason: "must not be 0".into(),
                });
            }
        }
        Ok(())
    }
}
