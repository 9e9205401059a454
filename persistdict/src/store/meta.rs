//! What a dict remembers about how it was made: the format version and the settings that
//! decide where entries are stored, written at creation and checked at every open; the
//! shapes of the types its values were written as; and the `init_once` flag.

use super::env::{Reader, Store, WriteTxn, corrupt, storage};
use super::table::INFO_KEY_ORDER;
use crate::error::{Error, Result};
use crate::types::hex;

/// The on-disk format this crate writes (`docs/format.md`). Format 2 puts a type tag in front
/// of every value; dicts of format 1 (no tags) are still read and written as they are.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// The oldest format this crate reads.
const OLDEST_FORMAT_VERSION: u32 = 1;

/// The info keys of value types: this prefix, then the type's tag in hex.
const INFO_TYPE_PREFIX: &str = "type:";

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
            initial.push((type_key(tag), shape.to_vec()));
        }
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
        let type_key = settings.value_type.map(|(tag, _)| type_key(tag));
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
        // Whether the handle's value type must be recorded in a dict of format `format`.
        let type_missing = |format: u32, get: &dyn Fn(&str) -> Result<Option<Vec<u8>>>| {
            Ok::<_, Error>(match &type_key {
                Some(key) if format >= 2 => get(key)?.is_none(),
                _ => false,
            })
        };
        let stored = self.read(|r| {
            let get = |name: &str| r.info_get(name);
            Ok(match check(&get)? {
                Some(format) => Some((format, type_missing(format, &get)?)),
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
            if let Some((tag, shape)) = settings.value_type
                && format >= 2
            {
                w.record_value_type(tag, shape)?;
            }
            Ok(format >= 2)
        })
    }

    /// The value types recorded in the dict: each tag with its stored shape.
    pub(crate) fn value_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        // A closure, not the method path: the method is not generic over the lifetime.
        #[allow(clippy::redundant_closure_for_method_calls)]
        self.read(|r| r.value_types())
    }
}

/// The info key of the value type tagged `tag`.
fn type_key(tag: &[u8]) -> String {
    format!("{INFO_TYPE_PREFIX}{}", hex(tag))
}

impl Reader<'_> {
    /// The value types recorded in the dict; see [`Store::value_types`].
    pub(crate) fn value_types(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries = self
            .store
            .info
            .prefix_iter(self.txn, INFO_TYPE_PREFIX)
            .map_err(storage)?;
        let mut types = Vec::new();
        for entry in entries {
            let (key, shape) = entry.map_err(storage)?;
            let hex = &key[INFO_TYPE_PREFIX.len()..];
            let tag: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            // A key that isn't one of ours is left alone.
            if let Some(tag) = tag {
                types.push((tag, shape.to_vec()));
            }
        }
        Ok(types)
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
        let key = type_key(tag);
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
