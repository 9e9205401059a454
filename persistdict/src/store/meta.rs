//! What a dict remembers about how it was made: the format version and the settings that
//! decide where entries are stored, written at creation and checked at every open; and the
//! `init_once` flag.

use super::env::{Reader, Store, WriteTxn, corrupt, storage};
use crate::error::{Error, Result};

/// The on-disk format this crate writes and reads (`docs/format.md`).
pub(crate) const FORMAT_VERSION: u32 = 1;

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
}

impl Store {
    /// Stores `settings` (and the format version) if the dict has none yet; otherwise checks
    /// that they are the stored ones.
    pub(crate) fn check_settings(&self, settings: Settings<'_>) -> Result<()> {
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
        // Whether the settings are stored (and match), read through `get`.
        let check = |get: &dyn Fn(&str) -> Result<Option<Vec<u8>>>| -> Result<bool> {
            let Some(format) = get(INFO_FORMAT)? else {
                return Ok(false);
            };
            let found = <[u8; 4]>::try_from(format.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| corrupt(INFO_FORMAT.as_bytes(), "format version is not 4 bytes"))?;
            if found != FORMAT_VERSION {
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
            Ok(true)
        };
        if self.read(|r| check(&|name| r.info_get(name)))? || settings.read_only {
            // A dict opened read-only is read as it is, even one that never stored settings.
            return Ok(());
        }
        self.write(|w| {
            if check(&|name| w.as_read().info_get(name))? {
                return Ok(());
            }
            w.info_put(INFO_FORMAT, &FORMAT_VERSION.to_le_bytes())?;
            for (info_key, _, value) in expected {
                w.info_put(info_key, value)?;
            }
            if w.len()? == 0 {
                w.start_key_order()?;
            }
            Ok(())
        })
    }
}

impl Reader<'_> {
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

    /// Whether [`mark_initialized`](Self::mark_initialized) ran in this dict.
    pub(crate) fn initialized(&self) -> Result<bool> {
        Ok(self.as_read().info_get(INFO_INITIALIZED)?.is_some())
    }

    /// Records that `init_once` filled the dict.
    pub(crate) fn mark_initialized(&mut self) -> Result<()> {
        self.info_put(INFO_INITIALIZED, &[1])
    }
}
