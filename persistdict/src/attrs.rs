//! What the attributes' generated code needs besides `fields.rs` and `memo.rs`: the options
//! both attributes share, where a `path` points, opening a map type, and the assertions that
//! put a type error on the user's own tokens.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::dict::PersistDict;
use crate::error::{Error, Result};
use crate::options::{Builder, Durability};

/// The options an attribute sets; `None` keeps the builder's default.
#[derive(Debug, Clone, Copy)]
pub struct AttrOptions {
    /// [`Builder::name`].
    pub name: Option<&'static str>,
    /// [`Builder::expire_days`].
    pub expire_days: Option<u32>,
    /// [`Builder::cache_capacity`].
    pub cache: Option<usize>,
    /// [`Builder::durability`].
    pub durability: Option<Durability>,
    /// [`Builder::map_size`], in bytes.
    pub map_size: Option<u64>,
}

impl AttrOptions {
    /// Applies the options that are set to `builder`.
    pub fn apply<K, V, C: Codec, KC: Codec>(
        &self,
        mut builder: Builder<K, V, C, KC>,
    ) -> Builder<K, V, C, KC> {
        if let Some(name) = self.name {
            builder = builder.name(name);
        }
        if let Some(days) = self.expire_days {
            builder = builder.expire_days(days);
        }
        if let Some(entries) = self.cache {
            builder = builder.cache_capacity(entries);
        }
        if let Some(durability) = self.durability {
            builder = builder.durability(durability);
        }
        if let Some(bytes) = self.map_size {
            // A size past the address space is refused at open (`Error::AddressSpace`).
            builder = builder.map_size(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        builder
    }
}

/// The directory an attribute's `path` names: `~/` at its start stands for the home directory;
/// any other path is used as it is (a relative one is relative to the working directory).
pub fn resolve_path(path: &str) -> Result<PathBuf> {
    let Some(rest) = path.strip_prefix("~/") else {
        return Ok(PathBuf::from(path));
    };
    match std::env::home_dir() {
        Some(home) if !home.as_os_str().is_empty() => Ok(home.join(rest)),
        _ => Err(Error::InvalidOption {
            option: "path",
            reason: format!("`{path}` starts with `~/` but no home directory is known"),
        }),
    }
}

/// Opens the dict of a `#[persistent]` map type.
pub fn open_map<K, V, C>(
    path: &Path,
    options: &AttrOptions,
    codec: C,
) -> Result<PersistDict<K, V, C>>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
{
    options
        .apply(PersistDict::<K, V>::builder().value_codec(codec))
        .open(path)
}

/// Compiles only if `T` can be part of a key. Generated code calls it with the span of the
/// user's type, so that an error points there.
pub const fn assert_key<T: Serialize + ?Sized>() {}

/// Compiles only if `T` can be stored as a value. See [`assert_key`].
pub const fn assert_value<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static>() {}

/// Compiles only if `T` can be a field of a `#[persistent]` struct. See [`assert_key`].
pub const fn assert_field<T: Serialize + DeserializeOwned>() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_without_tilde_is_used_as_it_is() {
        assert_eq!(resolve_path("a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(resolve_path("~x/b").unwrap(), PathBuf::from("~x/b"));
    }

    #[test]
    fn a_tilde_path_starts_at_the_home_directory() {
        let Some(home) = std::env::home_dir() else {
            return;
        };
        assert_eq!(resolve_path("~/a/b").unwrap(), home.join("a/b"));
    }
}
