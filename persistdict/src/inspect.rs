//! Looking inside a dict without the program's types: what the `persistdict` command-line
//! tool is built on, and what a program of your own can use to list, check, export or repair
//! any dict, `#[persistent]` store or `#[memoize]` store.
//!
//! An [`Inspector`] opens a dict as it was made (its stored codecs and key size limit; no
//! settings are checked) and sees its entries as bytes: the key as its codec wrote it, the
//! value's codec bytes and the tag of the type it was written as, the creation and access
//! times. Where the dict recorded the [`Shape`] of its key and value types (dicts of format
//! 2), postcard bytes can be read through it without the types.
//!
//! ```
//! use persistdict::{PersistDict, inspect::Inspector};
//!
//! # fn main() -> persistdict::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let d: PersistDict<String, u32> = PersistDict::open(dir.path())?;
//! d.insert("ada".into(), 3)?;
//! drop(d);
//!
//! let dict = Inspector::open(dir.path())?; // reads only: no access times, no worker
//! assert_eq!(dict.settings().value_codec, "postcard");
//! for entry in dict.entries() {
//!     let entry = entry?;
//!     assert_eq!(entry.key, postcard::to_stdvec("ada").unwrap());
//!     assert!(dict.value_shape(&entry).is_some()); // u32
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::clock::{from_ms, to_ms};
use crate::error::{Error, Result};
use crate::memo::{FunctionRecord, namespace_of, split_key};
use crate::options::{Background, Builder, Config};
use crate::raw::RawDict;
use crate::store::{Settings, Stored, memo_note};
use crate::types::{TAG_LEN, UNTYPED};

pub use crate::store::{IntegrityReport, Problem};
pub use crate::types::{Shape, Variant};

/// The tag in front of each value of a dict of format 2: the first 8 bytes of a digest of the
/// shape of the type it was written as (`docs/format.md`).
pub type TypeTag = [u8; TAG_LEN];

/// Entries per read or write transaction of a walk or an import.
const CHUNK: usize = 1_000;

/// What a dict stores about how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSettings {
    /// The on-disk format (`docs/format.md`): 1, or 2 with type tags.
    pub format_version: u32,
    /// Keys whose encoding is longer are stored under a digest.
    pub key_size_limit: u32,
    /// The key codec's name (`postcard`, `json`, `bincode2`, or a codec of the program's).
    pub key_codec: String,
    /// The value codec's name.
    pub value_codec: String,
    /// Whether `init_once` filled the dict.
    pub initialized: bool,
    /// Expiry as the last writable handle opened the dict with.
    pub expiry: Expiry,
}

/// How long entries of a dict stay without an access, as recorded by the handles that open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiry {
    /// Not recorded (a dict last opened for writing by an older version).
    Unknown,
    /// Entries never expire.
    Never,
    /// Entries not accessed for this long are removed.
    After(Duration),
}

/// The functions whose results a `#[memoize]` store holds: one per namespace of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoFunction {
    /// The 16 bytes every key of the function's results starts with (after the key's length
    /// prefix).
    pub namespace: [u8; 16],
    /// The function's module path and name.
    pub function: String,
    /// Its `version` option.
    pub version: u32,
    /// Whether its code is part of the namespace (`invalidate_on_change`, the default).
    pub tracks_source: bool,
}

impl MemoFunction {
    /// A function to [`record`](Inspector::record_memo_functions).
    #[must_use]
    pub fn new(namespace: [u8; 16], function: String, version: u32, tracks_source: bool) -> Self {
        MemoFunction {
            namespace,
            function,
            version,
            tracks_source,
        }
    }
}

/// One entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The key, as the key codec encoded it.
    pub key: Vec<u8>,
    /// The value, as the value codec encoded it (without the type tag).
    pub value: Vec<u8>,
    /// The tag of the type the value was written as; `None` in a dict of format 1 and for a
    /// type that has no shape (whose values are read unchecked).
    pub tag: Option<TypeTag>,
    /// When the key was first inserted (millisecond resolution).
    pub created: SystemTime,
    /// When the entry was last read or written, as stored (reads of open handles are stored
    /// in batches).
    pub accessed: SystemTime,
    /// Whether the key is stored under a digest (empty, or longer than the key size limit).
    pub hashed: bool,
}

impl Entry {
    /// An entry to [`import`](Inspector::import).
    #[must_use]
    pub fn new(
        key: Vec<u8>,
        value: Vec<u8>,
        tag: Option<TypeTag>,
        created: SystemTime,
        accessed: SystemTime,
    ) -> Self {
        Entry {
            key,
            value,
            tag,
            created,
            accessed,
            hashed: false,
        }
    }
}

/// Sizes and counts of a dict's storage; see [`Inspector::storage`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageReport {
    /// Entries.
    pub entries: u64,
    /// Bytes the data file takes on disk.
    pub disk_bytes: u64,
    /// Bytes of the file up to its last used page.
    pub file_bytes: u64,
    /// Bytes of pages that hold data; the rest of `file_bytes` is free pages, which
    /// [`compact`] removes.
    pub used_bytes: u64,
    /// LMDB's page size.
    pub page_size: u64,
    /// Address space mapped for the dict.
    pub map_size: u64,
    /// Reader slots of the lock file that processes have taken since it was set up (LMDB
    /// counts the most ever in use at once, not those in use now), and their number.
    pub readers: u32,
    /// See `readers`.
    pub max_readers: u32,
    /// Keys stored under a digest, in how many buckets, and buckets shared by keys whose
    /// digests collide.
    pub hashed_keys: u64,
    /// See `hashed_keys`.
    pub buckets: u64,
    /// See `hashed_keys`.
    pub shared_buckets: u64,
    /// Records the integrity check moved aside.
    pub quarantined: u64,
    /// The id of the last committed transaction.
    pub last_txn_id: u64,
}

/// What [`compact`] did: the data file's size before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compaction {
    /// Bytes of the data file before.
    pub before: u64,
    /// Bytes of the data file after.
    pub after: u64,
}

/// A dict opened without its program's types; see the [module docs](self).
pub struct Inspector {
    raw: RawDict<()>,
    settings: StoredSettings,
    value_types: HashMap<TypeTag, Shape>,
    key_types: Vec<Shape>,
    memo: Vec<MemoFunction>,
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("path", &self.raw.path())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The configuration tools open with: no worker, no cache.
fn tool_config(read_only: bool) -> Config {
    let mut config = Builder::<(), ()>::default().config;
    config.read_only = read_only;
    config.background = Background::Disabled;
    config.cache_capacity = 0;
    config
}

impl Inspector {
    /// Opens the dict in `path` for reading: nothing is written, no access time is recorded,
    /// no worker runs, and a missing dict is not created.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when `path` holds no dict; [`Error::NotADict`] when it never
    /// stored its settings; [`Error::UnsupportedFormat`]; the errors of opening.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), true)
    }

    /// Opens the dict in `path` for changes ([`remove`](Self::remove),
    /// [`check`](Self::check) with repairs, [`expire`](Self::expire),
    /// [`import`](Self::import)); still no worker and no access times, and a missing dict is
    /// not created.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`Error::PermissionDenied`] when the files can't be written.
    pub fn open_writable(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), false)
    }

    /// Creates a new, empty dict in `path` with these settings, as a program would with
    /// codecs of these names, and opens it for changes: the target of an
    /// [`import`](Self::import). An existing dict is opened instead if its settings are these.
    ///
    /// # Errors
    ///
    /// [`Error::SettingsMismatch`] when `path` holds a dict made with other settings;
    /// [`Error::InvalidOption`] for a key size limit outside 1 to 511; the errors of opening.
    pub fn create(
        path: impl AsRef<Path>,
        key_size_limit: u32,
        key_codec: &str,
        value_codec: &str,
        expiry: Expiry,
    ) -> Result<Self> {
        let mut config = tool_config(false);
        config.key_size_limit = key_size_limit as usize;
        if let Expiry::After(after) = expiry {
            config.expire_after = Some(after);
        }
        config.validate()?;
        let settings = Settings {
            key_size_limit: config.key_size_limit,
            key_codec,
            value_codec,
            read_only: false,
            value_type: None,
            key_type: None,
            notes: &[],
        };
        // Opened once the settings are stored, to read the dict as every tool does.
        drop(RawDict::<()>::open(path.as_ref(), &config, settings)?);
        Self::open_with(path.as_ref(), false)
    }

    fn open_with(path: &Path, read_only: bool) -> Result<Self> {
        let (raw, stored) = RawDict::open_stored(path, &tool_config(read_only))?;
        let Stored {
            format_version,
            key_size_limit,
            key_codec,
            value_codec,
            initialized,
            expire_after_ms,
            ..
        } = stored;
        let expiry = match expire_after_ms {
            None => Expiry::Unknown,
            Some(0) => Expiry::Never,
            Some(ms) => Expiry::After(Duration::from_millis(ms)),
        };
        let shapes = |types: Vec<(Vec<u8>, Vec<u8>)>| {
            types.into_iter().filter_map(|(tag, shape)| {
                Some((TypeTag::try_from(tag).ok()?, Shape::from_bytes(&shape)?))
            })
        };
        let value_types = shapes(raw.value_types()?).collect();
        let key_types = shapes(raw.key_types()?).map(|(_, shape)| shape).collect();
        let memo = raw
            .memo_functions()?
            .into_iter()
            .filter_map(|(namespace, record)| {
                let record = FunctionRecord::from_bytes(&record)?;
                Some(MemoFunction {
                    namespace: namespace.try_into().ok()?,
                    function: record.function,
                    version: record.version,
                    tracks_source: record.tracks_source,
                })
            })
            .collect();
        Ok(Inspector {
            raw,
            settings: StoredSettings {
                format_version,
                key_size_limit,
                key_codec,
                value_codec,
                initialized,
                expiry,
            },
            value_types,
            key_types,
            memo,
        })
    }

    /// The dict's directory, canonicalized.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.raw.path()
    }

    /// How the dict was made.
    #[must_use]
    pub fn settings(&self) -> &StoredSettings {
        &self.settings
    }

    /// The shapes of the types the dict's values were written as, by tag.
    #[must_use]
    pub fn value_types(&self) -> &HashMap<TypeTag, Shape> {
        &self.value_types
    }

    /// The shape of the type `entry`'s value was written as, if recorded.
    #[must_use]
    pub fn value_shape(&self, entry: &Entry) -> Option<&Shape> {
        entry.tag.and_then(|tag| self.value_types.get(&tag))
    }

    /// The shapes of the key types the dict was opened with (usually one; none for a dict of
    /// format 1, one not opened since this version recorded them, or keys of a
    /// self-describing codec).
    #[must_use]
    pub fn key_types(&self) -> &[Shape] {
        &self.key_types
    }

    /// The functions of a `#[memoize]` store, as each recorded itself when it first opened
    /// the store (empty for any other dict).
    #[must_use]
    pub fn memo_functions(&self) -> &[MemoFunction] {
        &self.memo
    }

    /// The namespace a key of a `#[memoize]` store starts with (see
    /// [`MemoFunction::namespace`]), or `None` for a key too short to hold one.
    #[must_use]
    pub fn memo_namespace(key: &[u8]) -> Option<[u8; 16]> {
        namespace_of(key)
    }

    /// The encoded arguments of a key of a `#[memoize]` store (after its namespace), or
    /// `None` for a key too short to hold a namespace.
    #[must_use]
    pub fn memo_arguments(key: &[u8]) -> Option<&[u8]> {
        split_key(key).map(|(_, args)| args)
    }

    /// The number of entries.
    pub fn len(&self) -> Result<u64> {
        self.raw.len()
    }

    /// Whether the dict has no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every entry, in insertion order, read in chunks of short read transactions (so a walk
    /// over a large dict never holds old pages; an entry written during the walk may or may
    /// not be seen). An entry that can't be read is an error item, and the walk goes on.
    /// Entries past their expiry are listed too, until a sweep removes them.
    #[must_use]
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            dict: self,
            chunk: Vec::new().into_iter(),
            after: None,
            done: false,
        }
    }

    /// The entry of encoded `key`, if there is one. Not an access.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let found = self
            .raw
            .read(|r| Ok(r.record(key)?.map(|(c, a, v)| (c, a, v.to_vec()))))?;
        found
            .map(|(created, accessed, value)| self.entry(key.to_vec(), created, accessed, value))
            .transpose()
    }

    /// Removes the entry of encoded `key`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] unless opened with [`open_writable`](Self::open_writable).
    pub fn remove(&self, key: &[u8]) -> Result<bool> {
        self.raw.write(|mut w| w.delete(key))
    }

    /// Removes the entries of these encoded keys, a thousand per transaction; returns how
    /// many were there.
    pub fn remove_all(&self, keys: &[Vec<u8>]) -> Result<u64> {
        let mut removed = 0;
        for chunk in keys.chunks(CHUNK) {
            removed += self.raw.write(|mut w| {
                let mut n = 0;
                for key in chunk {
                    n += u64::from(w.delete(key)?);
                }
                Ok::<_, Error>(n)
            })?;
        }
        Ok(removed)
    }

    /// Sizes, reader slots and buckets. Reads every bucket (not every entry).
    pub fn storage(&self) -> Result<StorageReport> {
        let survey = self.raw.survey()?;
        Ok(StorageReport {
            entries: self.len()?,
            disk_bytes: self.raw.stats()?.disk_bytes,
            file_bytes: survey.high_water,
            used_bytes: survey.in_use,
            page_size: survey.page_size,
            map_size: survey.map_size,
            readers: survey.readers,
            max_readers: survey.max_readers,
            hashed_keys: survey.hashed_records,
            buckets: survey.hashed_slots,
            shared_buckets: survey.shared_slots,
            quarantined: survey.quarantined,
            last_txn_id: survey.last_txn_id,
        })
    }

    /// The integrity check: what can't be read, times out of order, records missing from or
    /// dangling in the insertion order. With `repair`, unreadable slots are moved to the
    /// quarantine database (never deleted) and the rest is brought back in order; without, it
    /// only reports, through read transactions.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] for `repair` unless opened with
    /// [`open_writable`](Self::open_writable).
    pub fn check(&self, repair: bool) -> Result<IntegrityReport> {
        self.raw.check(repair)
    }

    /// Removes the entries not accessed for `idle` (as stored: reads of handles open now that
    /// are not yet stored don't count); returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] unless opened with [`open_writable`](Self::open_writable).
    pub fn expire(&self, idle: Duration) -> Result<u64> {
        self.raw.expire_idle(idle)
    }

    /// Records the shapes of value types (by tag) and key types, as a program that opens the
    /// dict with them would.
    pub fn record_types(&self, values: &[(TypeTag, Shape)], keys: &[Shape]) -> Result<()> {
        self.raw.write(|mut w| {
            for (tag, shape) in values {
                w.record_value_type(tag, &shape.to_bytes())?;
            }
            for shape in keys {
                w.record_key_type(&shape.tag(), &shape.to_bytes())?;
            }
            Ok::<_, Error>(())
        })
    }

    /// Records the functions of a `#[memoize]` store, as each function does when it opens it.
    pub fn record_memo_functions(&self, functions: &[MemoFunction]) -> Result<()> {
        self.raw.write(|mut w| {
            for f in functions {
                let record = FunctionRecord {
                    function: f.function.clone(),
                    version: f.version,
                    tracks_source: f.tracks_source,
                };
                w.put_note(&memo_note(&f.namespace, record.to_bytes()))?;
            }
            Ok::<_, Error>(())
        })
    }

    /// Records that `init_once` filled the dict, as it does when it runs.
    pub fn mark_initialized(&self) -> Result<()> {
        self.raw.write(|mut w| w.mark_initialized())
    }

    /// Stores `entries` with their times, in their order, a thousand per transaction: a new
    /// key goes to the end of the insertion order, an existing one keeps its place and takes
    /// the entry's value and times. Returns how many entries were stored. `progress` is told
    /// after each transaction how many were stored so far.
    ///
    /// # Errors
    ///
    /// An error of an entry's iterator item stops the import; the transactions before stay
    /// committed.
    pub fn import<I, E>(&self, entries: I, mut progress: impl FnMut(u64)) -> Result<u64, E>
    where
        I: IntoIterator<Item = Result<Entry, E>>,
        E: From<Error>,
    {
        let typed = self.raw.typed();
        let mut stored = 0;
        let mut entries = entries.into_iter().peekable();
        let mut chunk = Vec::with_capacity(CHUNK);
        while entries.peek().is_some() {
            chunk.clear();
            for entry in entries.by_ref().take(CHUNK) {
                let entry = entry?;
                let mut value = Vec::with_capacity(TAG_LEN + entry.value.len());
                if typed {
                    value.extend_from_slice(&entry.tag.unwrap_or(UNTYPED));
                }
                value.extend_from_slice(&entry.value);
                chunk.push((
                    entry.key,
                    value,
                    to_ms(entry.created),
                    to_ms(entry.accessed),
                ));
            }
            self.raw.write(|mut w| {
                for (key, value, created, accessed) in &chunk {
                    w.put_with_times(key, value, *created, *accessed)?;
                }
                Ok::<_, Error>(())
            })?;
            stored += chunk.len() as u64;
            progress(stored);
        }
        Ok(stored)
    }

    /// An entry from a stored record's parts.
    fn entry(&self, key: Vec<u8>, created: u64, accessed: u64, stored: Vec<u8>) -> Result<Entry> {
        let (tag, value) = if self.raw.typed() {
            if stored.len() < TAG_LEN {
                return Err(Error::Corrupt {
                    key: crate::KeyBytes::new(&key),
                    reason: "value shorter than its type tag",
                });
            }
            let mut tag = UNTYPED;
            tag.copy_from_slice(&stored[..TAG_LEN]);
            ((tag != UNTYPED).then_some(tag), stored[TAG_LEN..].to_vec())
        } else {
            (None, stored)
        };
        let hashed = self.raw.hashed(&key);
        Ok(Entry {
            key,
            value,
            tag,
            created: from_ms(created),
            accessed: from_ms(accessed),
            hashed,
        })
    }
}

/// Rewrites the data file of the dict in `path` without its free pages (LMDB's compacting
/// copy), and puts it in place of the old one. Refused while any process has the dict open:
/// a process that opens it meanwhile waits until it is done. A crash leaves the old file or
/// the new one in place, never part of either.
///
/// A reader that opened the dict without its lock file (read-only, on files it may not
/// write) can't be seen; don't compact while one runs.
///
/// # Errors
///
/// [`Error::InUse`] when a process (this one included) has the dict open; [`Error::NotFound`]
/// when `path` holds no dict; the errors of the copy, after which the dict is as it was.
pub fn compact(path: impl AsRef<Path>) -> Result<Compaction> {
    let done = crate::raw::compact(path.as_ref(), &tool_config(true))?;
    Ok(Compaction {
        before: done.before,
        after: done.after,
    })
}

/// The entries of a dict in insertion order; see [`Inspector::entries`].
pub struct Entries<'d> {
    dict: &'d Inspector,
    chunk: std::vec::IntoIter<crate::store::Listed>,
    after: Option<u64>,
    done: bool,
}

impl fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entries")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if let Some(listed) = self.chunk.next() {
                self.after = Some(listed.seq);
                return match listed.record {
                    Ok(Some((header, value))) => {
                        Some(
                            self.dict
                                .entry(listed.key, header.created, header.accessed, value),
                        )
                    }
                    // Listed without a record: the integrity check's business.
                    Ok(None) => continue,
                    Err(e) => Some(Err(e)),
                };
            }
            if self.done {
                return None;
            }
            match self.dict.raw.listed_after(self.after, CHUNK) {
                Ok(chunk) => {
                    self.done = chunk.len() < CHUNK;
                    self.chunk = chunk.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
