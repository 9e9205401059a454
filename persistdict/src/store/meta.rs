//! What a dict remembers about how it was made: the format version and the settings that
//! decide where entries are stored, written at creation and checked at every open; the
//! shapes of the types its values were written as; and the `init_once` flag.

use super::env::{Reader, Store, WriteTxn, corrupt, storage};
use super::table::INFO_KEY_ORDER;
use crate::error::{Error, Result};
use crate::options::MAX_KEY_SIZE_LIMIT;
use crate::types::hex;

/// The on-disk format this crate writes (`docs/format.md`). Format 2 puts a type tag in front
/// of every value; dicts of format 1 (no tags) are still read and written as they are.
const FORMAT_VERSION: u32 = 2;

/// The oldest format this crate reads.
const OLDEST_FORMAT_VERSION: u32 = 1;

/// The info keys of value types: this prefix, then the type's tag in hex.
const INFO_TYPE_PREFIX: &str = "type:";
/// The info keys of key types: this prefix, then the type's tag in hex.
const INFO_KEY_TYPE_PREFIX: &str = "key_type:";
/// The info keys of the functions whose results a `#[memoize]` store holds: this prefix,
/// then the 16-byte namespace of their keys in hex.
const INFO_MEMO_PREFIX: &str = "memo:";
/// How long entries stay without an access, as the last writable handle opened with (`u64`
/// milliseconds, 0 for never): what a tool that sweeps without the program's settings uses.
const INFO_EXPIRE_AFTER: &str = "expire_after";

const INFO_FORMAT: &str = "format_version";
const INFO_KEY_SIZE_LIMIT: &str = "key_size_limit";
const INFO_KEY_CODEC: &str = "key_codec";
const INFO_VALUE_CODEC: &str = "value_codec";
const INFO_INITIALIZED: &str = "initialized";

/// The settings a handle opens a dict with that decide where its entries are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings<'a> {
    /// What the handle asks for; the store's own limit is the first handle's, so a second
    /// handle asking for another is refused here.
    pub(crate) key_size_limit: usize,
    pub(crate) key_codec: &'a str,
    pub(crate) value_codec: &'a str,
    /// The handle reads only: settings missing from an older dict are not stored then.
    pub(crate) read_only: bool,
    /// The tag and stored shape of the type the handle writes values as, recorded if the dict
    /// has no record of it yet (and writes typed values).
    pub(crate) value_type: Option<(&'a [u8], &'a [u8])>,
    /// The same for the type of the handle's keys, so that tools can show keys without the
    /// program's types (recorded in dicts of format 2).
    pub(crate) key_type: Option<(&'a [u8], &'a [u8])>,
    /// Settings that describe the dict without deciding where its entries are (see
    /// [`Note`]): a writable handle stores each one that is missing or differs.
    pub(crate) notes: &'a [Note],
}

/// A setting that describes a dict and is kept current by the handles that open it, never
/// checked: its expiry, the functions a `#[memoize]` store holds.
pub(crate) type Note = (String, Vec<u8>);

/// The note of a dict's expiry (`None`: entries never expire).
pub(crate) fn expiry_note(expire_after_ms: Option<u64>) -> Note {
    (
        INFO_EXPIRE_AFTER.to_owned(),
        expire_after_ms.unwrap_or(0).to_le_bytes().to_vec(),
    )
}

/// The note that keys starting with `namespace` are results of `record` (see
/// `docs/format.md`: a postcard `(function path, version, tracks its source)`).
pub(crate) fn memo_note(namespace: &[u8], record: Vec<u8>) -> Note {
    (format!("{INFO_MEMO_PREFIX}{}", hex(namespace)), record)
}

/// What a dict stores about itself, read without opening it as any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) format_version: u32,
    pub(crate) key_size_limit: u32,
    pub(crate) key_codec: String,
    pub(crate) value_codec: String,
    pub(crate) initialized: bool,
    /// `Some(ms)` as the last writable handle opened it (0: never), `None` if not recorded.
    pub(crate) expire_after_ms: Option<u64>,
    /// The key-order setting (`table.rs`), if stored.
    pub(crate) key_order: Option<bool>,
}

impl Settings<'_> {
    /// What a new dict stores in `info`: the format version, these settings, the key-order
    /// flag of an empty dict, and the value type if there is one.
    pub(crate) fn initial(&self) -> Vec<(String, Vec<u8>)> {
        let mut initial = vec![
            (
                INFO_FORMAT.to_owned(),
                FORMAT_VERSION.to_le_bytes().to_vec(),
            ),
            (
                INFO_KEY_SIZE_LIMIT.to_owned(),
                (self.key_size_limit as u32).to_le_bytes().to_vec(),
            ),
            (
                INFO_KEY_CODEC.to_owned(),
                self.key_codec.as_bytes().to_vec(),
            ),
            (
                INFO_VALUE_CODEC.to_owned(),
                self.value_codec.as_bytes().to_vec(),
            ),
            (INFO_KEY_ORDER.to_owned(), vec![1]),
        ];
        if let Some((tag, shape)) = self.value_type {
            initial.push((type_key(INFO_TYPE_PREFIX, tag), shape.to_vec()));
        }
        if let Some((tag, shape)) = self.key_type {
            initial.push((type_key(INFO_KEY_TYPE_PREFIX, tag), shape.to_vec()));
        }
        initial.extend(self.notes.iter().cloned());
        initial
    }
}

impl Store {
    /// Stores `settings` (and the format version) if the dict has none yet; otherwise checks
    /// that they are the stored ones. Returns whether values carry type tags (format 2).
    pub(crate) fn check_settings(&self, settings: Settings<'_>) -> Result<bool> {
        let limit = (settings.key_size_limit as u32).to_le_bytes();
        let expected: [(&str, &'static str, &[u8]); 3] = [
            (INFO_KEY_SIZE_LIMIT, "key_size_limit", &limit),
            (INFO_KEY_CODEC, "key codec", settings.key_codec.as_bytes()),
            (
                INFO_VALUE_CODEC,
                "value codec",
                settings.value_codec.as_bytes(),
            ),
        ];
        let type_keys: Vec<String> = [
            settings
                .value_type
                .map(|(tag, _)| type_key(INFO_TYPE_PREFIX, tag)),
            settings
                .key_type
                .map(|(tag, _)| type_key(INFO_KEY_TYPE_PREFIX, tag)),
        ]
        .into_iter()
        .flatten()
        .collect();
        // The stored format if the settings are stored (and match), read through `get`.
        let check = |get: &dyn Fn(&str) -> Result<Option<Vec<u8>>>| -> Result<Option<u32>> {
            let Some(format) = get(INFO_FORMAT)? else {
                return Ok(None);
            };
            let found = <[u8; 4]>::try_from(format.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| corrupt(INFO_FORMAT.as_bytes(), "format version is not 4 bytes"))?;
            if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
                return Err(Error::UnsupportedFormat {
                    path: self.path().to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            for (info_key, setting, want) in expected {
                let stored = get(info_key)?.unwrap_or_default();
                if stored != want {
                    let show = |b: &[u8]| {
                        if info_key == INFO_KEY_SIZE_LIMIT {
                            <[u8; 4]>::try_from(b).map_or_else(
                                |_| format!("{b:?}"),
                                |b| u32::from_le_bytes(b).to_string(),
                            )
                        } else {
                            String::from_utf8_lossy(b).into_owned()
                        }
                    };
                    return Err(Error::SettingsMismatch {
                        path: self.path().to_path_buf(),
                        setting,
                        stored: show(&stored),
                        requested: show(want),
                    });
                }
            }
            Ok(Some(found))
        };
        // Whether the handle has something to record in a dict of format `format`: its key or
        // value type, a note that is missing or differs.
        let to_record = |format: u32, get: &dyn Fn(&str) -> Result<Option<Vec<u8>>>| {
            for key in &type_keys {
                if format >= 2 && get(key)?.is_none() {
                    return Ok::<_, Error>(true);
                }
            }
            for (name, value) in settings.notes {
                if get(name)?.as_ref() != Some(value) {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        let stored = self.read(|r| {
            let get = |name: &str| r.info_get(name);
            Ok(match check(&get)? {
                Some(format) => Some((format, to_record(format, &get)?)),
                None => None,
            })
        })?;
        match stored {
            Some((format, false)) => return Ok(format >= 2),
            // A dict opened read-only is read as it is, even one that never stored settings.
            _ if settings.read_only => return Ok(stored.is_some_and(|(f, _)| f >= 2)),
            _ => {}
        }
        self.write(|w| {
            // A dict created by this process has its settings from the commit that created
            // its databases; this is for one that has none.
            let format = if let Some(format) = check(&|name| w.as_read().info_get(name))? {
                format
            } else {
                let empty = w.len()? == 0;
                for (name, value) in settings.initial() {
                    if name != INFO_KEY_ORDER || empty {
                        w.info_put(&name, &value)?;
                    }
                }
                FORMAT_VERSION
            };
            w.record_described(&settings, format)?;
            Ok(format >= 2)
        })
    }

    /// The value types recorded in the dict: each tag with its stored shape.
    pub(crate) fn value_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        // A closure, not the method path: the method is not generic over the lifetime.
        #[allow(clippy::redundant_closure_for_method_calls)]
        self.read(|r| r.value_types())
    }

    /// The key types recorded in the dict: each tag with its stored shape.
    pub(crate) fn key_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.read(|r| r.by_hex_suffix(INFO_KEY_TYPE_PREFIX))
    }

    /// The functions recorded in a `#[memoize]` store: each namespace with its record.
    pub(crate) fn memo_functions(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.read(|r| r.by_hex_suffix(INFO_MEMO_PREFIX))
    }

    /// What the dict stores about itself, or `None` for a dict that never stored its
    /// settings (made before they existed, or not set up yet); an error for a format this
    /// version can't read.
    pub(crate) fn stored(&self) -> Result<Option<Stored>> {
        self.read(|r| {
            let Some(format) = r.info_get(INFO_FORMAT)? else {
                return Ok(None);
            };
            let u32_of = |name: &'static str, bytes: Option<Vec<u8>>| {
                bytes
                    .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
                    .map(u32::from_le_bytes)
                    .ok_or_else(|| corrupt(name.as_bytes(), "setting is not 4 bytes"))
            };
            let text = |name: &str| -> Result<String> {
                Ok(String::from_utf8_lossy(&r.info_get(name)?.unwrap_or_default()).into_owned())
            };
            let expire_after_ms = r
                .info_get(INFO_EXPIRE_AFTER)?
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_le_bytes);
            let format_version = u32_of(INFO_FORMAT, Some(format))?;
            if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&format_version) {
                return Err(Error::UnsupportedFormat {
                    path: self.path().to_path_buf(),
                    found: format_version,
                    supported: FORMAT_VERSION,
                });
            }
            let key_size_limit = u32_of(INFO_KEY_SIZE_LIMIT, r.info_get(INFO_KEY_SIZE_LIMIT)?)?;
            if !(1..=MAX_KEY_SIZE_LIMIT as u32).contains(&key_size_limit) {
                return Err(corrupt(
                    INFO_KEY_SIZE_LIMIT.as_bytes(),
                    "key size limit out of range",
                ));
            }
            Ok(Some(Stored {
                format_version,
                key_size_limit,
                key_codec: text(INFO_KEY_CODEC)?,
                value_codec: text(INFO_VALUE_CODEC)?,
                initialized: r.info_get(INFO_INITIALIZED)?.is_some(),
                expire_after_ms,
                key_order: r.info_get(INFO_KEY_ORDER)?.map(|b| b == [1]),
            }))
        })
    }
}

/// The info key of the type tagged `tag` among those under `prefix` (values' or keys').
fn type_key(prefix: &str, tag: &[u8]) -> String {
    format!("{prefix}{}", hex(tag))
}

impl Reader<'_> {
    /// The value types recorded in the dict; see [`Store::value_types`].
    pub(crate) fn value_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.by_hex_suffix(INFO_TYPE_PREFIX)
    }

    /// The settings named `prefix` then bytes in hex: each such bytes with the setting's
    /// value.
    fn by_hex_suffix(&self, prefix: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries = self
            .store
            .info
            .prefix_iter(self.txn, prefix)
            .map_err(storage)?;
        let mut found = Vec::new();
        for entry in entries {
            let (key, value) = entry.map_err(storage)?;
            let hex = &key[prefix.len()..];
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            // A key that isn't one of ours is left alone.
            if let Some(bytes) = bytes {
                found.push((bytes, value.to_vec()));
            }
        }
        Ok(found)
    }

    /// Reads a setting.
    pub(super) fn info_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .store
            .info
            .get(self.txn, name)
            .map_err(storage)?
            .map(<[u8]>::to_vec))
    }
}

impl WriteTxn<'_> {
    /// Writes a setting.
    pub(super) fn info_put(&mut self, name: &str, value: &[u8]) -> Result<()> {
        let r = self.store.info.put(&mut self.txn, name, value);
        self.check(r)
    }

    /// Records the shape of the value type tagged `tag`, unless it is recorded already.
    pub(crate) fn record_value_type(&mut self, tag: &[u8], shape: &[u8]) -> Result<()> {
        self.record_type(INFO_TYPE_PREFIX, tag, shape)
    }

    /// Records what `settings` describe in a dict of format `format`: the key and value types
    /// (format 2) unless recorded, the notes that are missing or differ.
    fn record_described(&mut self, settings: &Settings<'_>, format: u32) -> Result<()> {
        if format >= 2 {
            if let Some((tag, shape)) = settings.value_type {
                self.record_value_type(tag, shape)?;
            }
            if let Some((tag, shape)) = settings.key_type {
                self.record_key_type(tag, shape)?;
            }
        }
        for note in settings.notes {
            if self.as_read().info_get(&note.0)?.as_ref() != Some(&note.1) {
                self.put_note(note)?;
            }
        }
        Ok(())
    }

    /// Records the shape of the key type tagged `tag`, unless it is recorded already.
    pub(crate) fn record_key_type(&mut self, tag: &[u8], shape: &[u8]) -> Result<()> {
        self.record_type(INFO_KEY_TYPE_PREFIX, tag, shape)
    }

    /// Stores a note about the dict.
    pub(crate) fn put_note(&mut self, (name, value): &Note) -> Result<()> {
        self.info_put(name, value)
    }

    /// Records the shape of the type tagged `tag` under `prefix`, unless it is recorded.
    fn record_type(&mut self, prefix: &str, tag: &[u8], shape: &[u8]) -> Result<()> {
        let key = type_key(prefix, tag);
        if self.as_read().info_get(&key)?.is_none() {
            self.info_put(&key, shape)?;
        }
        Ok(())
    }

    /// Whether [`mark_initialized`](Self::mark_initialized) ran in this dict.
    pub(crate) fn initialized(&self) -> Result<bool> {
        Ok(self.as_read().info_get(INFO_INITIALIZED)?.is_some())
    }

    /// Records that `init_once` filled the dict.
    pub(crate) fn mark_initialized(&mut self) -> Result<()> {
        self.info_put(INFO_INITIALIZED, &[1])
    }
}
