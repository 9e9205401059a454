//! The one error type of the crate.

use std::fmt;
use std::path::PathBuf;

/// A boxed error from a codec (serde format, compression, encryption, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a [`PersistDict`](crate::PersistDict).
///
/// Each variant names what the caller can act on. `Display` is one lowercase sentence that
/// ends with the underlying cause, where there is one (so a log line of it says what
/// happened); the cause is also reachable through [`source()`](std::error::Error::source).
/// Keys are shown as the program wrote them where their type can be read back (`"alpha"`,
/// `(7, "beta")`), and as escaped bytes otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stored value could not be decoded as the dict's value type (for example because the
    /// type changed since it was written). Nothing was deleted.
    #[error("cannot decode the value stored under key {key} as `{type_name}`: {source}")]
    Decode {
        /// The key, as its encoded bytes.
        key: KeyBytes,
        /// The Rust type the value was decoded as.
        type_name: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },
    /// The value stored under a key was written as another type than the one it is read as,
    /// one it can't be read as without changing its meaning (an `i32` read as a `u32`, a
    /// struct whose fields changed). Each value carries a tag of its type's structure, traced
    /// from its serde impl; see the README's "When a value's type changed". Nothing was
    /// deleted; with [`Builder::undecodable_as_missing`](crate::Builder::undecodable_as_missing)
    /// such values read as missing instead.
    #[error(
        "the value stored under key {key} was written as `{stored}`, which can't be read as \
         `{requested}`"
    )]
    TypeChanged {
        /// The key, as its encoded bytes.
        key: KeyBytes,
        /// The structure of the type the value was written as.
        stored: String,
        /// The structure of the type it was read as.
        requested: String,
    },
    /// A field of a `#[persistent]` struct could not be decoded as the field's type (for
    /// example because the field's type changed since it was written). Nothing was deleted:
    /// the handle's `set_<field>` overwrites the stored value and `reset_<field>` removes it,
    /// after which the field reads as its default.
    #[error("cannot decode the stored field `{field}` as `{type_name}`: {source}")]
    Field {
        /// The field's stored name.
        field: &'static str,
        /// The field's Rust type.
        type_name: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },
    /// A stored key could not be decoded as the dict's key type.
    #[error("cannot decode the stored key {key} as `{type_name}`: {source}")]
    DecodeKey {
        /// The key, as its encoded bytes.
        key: KeyBytes,
        /// The Rust type the key was decoded as.
        type_name: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },
    /// A key or value could not be encoded by its codec.
    #[error("cannot encode the {what} as `{type_name}`: {source}")]
    Encode {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The Rust type that was encoded.
        type_name: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },
    /// A stored record is damaged: its header or framing can't be read. The integrity check
    /// moves such records to quarantine.
    #[error("corrupt record under key {key}: {reason}")]
    Corrupt {
        /// The storage key of the damaged record, as bytes.
        key: KeyBytes,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path can't be used for a dict (it is a regular file, can't be created, ...).
    #[error("cannot use {} as a dict directory: {source}", path.display())]
    Io {
        /// The path that was opened.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds a file that is not an LMDB environment (or one LMDB can't read).
    #[error("{} does not hold a readable dict: {source}", path.display())]
    NotADict {
        /// The directory that was opened.
        path: PathBuf,
        /// What the storage engine reported.
        #[source]
        source: BoxError,
    },
    /// The dict was created with settings that differ from the ones it is opened with, and
    /// opening it anyway would make its entries unreachable.
    #[error(
        "the dict at {} was created with {setting} = {stored}, but is opened with {requested}",
        path.display()
    )]
    SettingsMismatch {
        /// The dict's directory.
        path: PathBuf,
        /// The setting that differs.
        setting: &'static str,
        /// The value stored at creation.
        stored: String,
        /// The value it was opened with.
        requested: String,
    },
    /// The dict was written by a newer version of this crate, in a format this one can't read.
    #[error(
        "the dict at {} has format version {found}; this version reads format {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The dict's directory.
        path: PathBuf,
        /// The format version found on disk.
        found: u32,
        /// The format version this crate writes and reads.
        supported: u32,
    },
    /// [`init_once`](crate::PersistDict::init_once) ran before and the dict is not empty.
    #[error("the dict was already initialised and is not empty")]
    AlreadyInitialized,
    /// An option has a value that can't work.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// A dict method that writes was called while this thread is inside a write transaction
    /// on the same store; it would wait for itself forever. Use the transaction handle.
    #[error(
        "a write was started inside a write transaction on the same dict; use the transaction handle"
    )]
    NestedTransaction,
    /// A key and value too large for one record: a record holds at most 4 GiB. Nothing was
    /// written.
    #[error("the record of key {key} would hold {size} bytes; a record holds at most 4 GiB")]
    RecordTooLarge {
        /// The key, as its encoded bytes.
        key: KeyBytes,
        /// Bytes of the encoded key and value together.
        size: u64,
    },
    /// The memory map could not grow: its size would pass the largest the address space
    /// allows. Nothing was written.
    #[error("the map of {} cannot grow: the address space is exhausted", path.display())]
    MapExhausted {
        /// The dict's directory.
        path: PathBuf,
    },
    /// The background worker's thread could not be started (reported in
    /// [`Stats::last_worker_error`](crate::Stats::last_worker_error); the dict works without
    /// it).
    #[error("cannot start the background worker of {}: {source}", path.display())]
    WorkerStart {
        /// The dict's directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The process may not read or write the dict's files (their owner and mode, a read-only
    /// filesystem). Nothing was changed.
    #[error(
        "permission denied at {}: {source}; check the owner and mode of the directory and its \
         files, or open it with `Builder::read_only`",
        path.display()
    )]
    PermissionDenied {
        /// The dict's directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The dict's memory map could not be reserved: the process is out of address space
    /// (many dicts open at once, or a 32-bit process). Lower
    /// [`Builder::map_size`](crate::Builder::map_size); the map grows by itself when the dict
    /// needs more.
    #[error(
        "cannot map {map_size} bytes for {}: out of address space; lower `map_size`",
        path.display()
    )]
    AddressSpace {
        /// The dict's directory.
        path: PathBuf,
        /// The map size asked for, in bytes.
        map_size: u64,
    },
    /// The disk holding the dict is full. The write that met it was not made; what was
    /// committed before is intact.
    #[error("no space left on the device holding {}; free some space", path.display())]
    NoSpace {
        /// The dict's directory.
        path: PathBuf,
    },
    /// The handle was opened before this process was forked: LMDB forbids using it in the
    /// child. Open the dict again in the child; the inherited handle may just be dropped.
    #[error(
        "the dict at {} was opened before this process forked; open it again in this process",
        path.display()
    )]
    Forked {
        /// The dict's directory.
        path: PathBuf,
    },
    /// A write through a handle opened with [`Builder::read_only`](crate::Builder::read_only).
    #[error("the dict at {} is open read-only", path.display())]
    ReadOnly {
        /// The dict's directory.
        path: PathBuf,
    },
    /// A dict can't be compacted ([`compact`](crate::inspect::compact)) while it is open: by
    /// another process, or by a handle of this one. Nothing was changed.
    #[error("the dict at {} is open {by}; close it there first", path.display())]
    InUse {
        /// The dict's directory.
        path: PathBuf,
        /// Who has it open: `"in another process"` or `"in this process"`.
        by: &'static str,
    },
    /// A read-only open of a directory that holds no dict.
    #[error("there is no dict at {} to open read-only", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The map must grow (or adopt the size another process gave it) while a snapshot walk
    /// ([`PersistDict::iter_snapshot`](crate::PersistDict::iter_snapshot)) is open in this
    /// process, which LMDB forbids. Nothing was written; finish or drop the walk and retry.
    #[error(
        "the map of {} must change size, but a snapshot walk is open in this process",
        path.display()
    )]
    SnapshotOpen {
        /// The dict's directory.
        path: PathBuf,
    },
    /// An error of the storage engine (LMDB).
    #[error("storage error: {source}")]
    Storage {
        /// The engine's error.
        #[source]
        source: BoxError,
    },
}

/// A key in an error: its encoded bytes, and how the program wrote it where that is known.
///
/// `Display` shows the key as the program wrote it (`"alpha"`, `(7, "beta")`) when the dict
/// could read it back as its key type; otherwise at most 64 of its bytes, printable ASCII as
/// is and everything else escaped. Either way at most 64 characters, so an error
/// message stays readable and short whatever the key holds.
#[derive(Clone)]
pub struct KeyBytes {
    bytes: Vec<u8>,
    shown: Option<String>,
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for KeyBytes {}

impl KeyBytes {
    /// A copy of `key`.
    pub(crate) fn new(key: &[u8]) -> Self {
        KeyBytes {
            bytes: key.to_vec(),
            shown: None,
        }
    }

    /// The encoded key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Error {
    /// This error with the key it names shown by `show` (the key as the program wrote it,
    /// if its bytes decode as the key type).
    pub(crate) fn with_key_shown(mut self, show: impl FnOnce(&[u8]) -> Option<String>) -> Self {
        if let Error::Decode { key, .. }
        | Error::TypeChanged { key, .. }
        | Error::Corrupt { key, .. }
        | Error::RecordTooLarge { key, .. } = &mut self
            && key.shown.is_none()
        {
            key.shown = show(&key.bytes);
        }
        self
    }
}

/// The most characters or bytes of a key an error shows.
const KEY_DISPLAY_LIMIT: usize = 64;

impl fmt::Display for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(shown) = &self.shown {
            return match shown.char_indices().nth(KEY_DISPLAY_LIMIT) {
                Some((end, _)) => write!(f, "{}...", &shown[..end]),
                None => f.write_str(shown),
            };
        }
        f.write_str("\"")?;
        for &b in self.bytes.iter().take(KEY_DISPLAY_LIMIT) {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        if self.bytes.len() > KEY_DISPLAY_LIMIT {
            write!(f, "...\" ({} bytes)", self.bytes.len())
        } else {
            f.write_str("\"")
        }
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyBytes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_and_static() {
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }

    #[test]
    fn key_bytes_display_escapes_and_crops() {
        assert_eq!(KeyBytes::new(b"\x05hello").to_string(), "\"\\x05hello\"");
        let long = KeyBytes::new(&[b'a'; 100]);
        assert_eq!(
            long.to_string(),
            format!("\"{}...\" (100 bytes)", "a".repeat(64))
        );
    }
}
