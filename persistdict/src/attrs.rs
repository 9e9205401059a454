//! What the attributes' generated code needs besides `fields.rs` and `memo/`: the options
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
    /// [`Builder::undecodable_as_missing`].
    pub undecodable_as_missing: Option<bool>,
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
        if let Some(missing) = self.undecodable_as_missing {
            builder = builder.undecodable_as_missing(missing);
        }
        if let Some(bytes) = self.map_size {
            // A size past the address space is refused at open (`Error::AddressSpace`).
            builder = builder.map_size(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        builder
    }
}

/// `PERSISTDICT_DIR`: the environment variable that, when set and not empty, names the base
/// directory of the relative paths of `#[memoize]` and `#[persistent]`, in place of the
/// platform's cache or data directory. A store with `path = "p"` in package `pkg` is then at
/// `$PERSISTDICT_DIR/pkg/p`. It is read when each store is first opened.
pub const DIR_VAR: &str = "PERSISTDICT_DIR";

/// Which platform directory a relative attribute `path` lives under when [`DIR_VAR`] is not
/// set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseDir {
    /// The cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on
    /// macOS, `{FOLDERID_LocalAppData}` on Windows): results that can be computed again.
    Cache,
    /// The data directory (`$XDG_DATA_HOME` or `~/.local/share` on Linux,
    /// `~/Library/Application Support` on macOS, `{FOLDERID_RoamingAppData}` on Windows).
    Data,
}

/// The directory an attribute's `path` names, resolved when the store is first opened:
/// - an absolute path is used as it is;
/// - `~/` at its start stands for the home directory;
/// - any other path is relative to `$PERSISTDICT_DIR/<package>` when that variable is set and
///   not empty, else to `<platform directory>/<package>`, where `package` is the name of the
///   package whose code holds the attribute.
pub fn resolve_path(path: &str, base: BaseDir, package: Option<&str>) -> Result<PathBuf> {
    if let Some(rest) = path.strip_prefix("~/") {
        return match std::env::home_dir() {
            Some(home) if !home.as_os_str().is_empty() => Ok(home.join(rest)),
            _ => Err(Error::InvalidOption {
                option: "path",
                reason: format!("`{path}` starts with `~/` but no home directory is known"),
            }),
        };
    }
    let relative = Path::new(path);
    if relative.is_absolute() {
        return Ok(relative.to_path_buf());
    }
    let root = match std::env::var_os(DIR_VAR).filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match base {
            BaseDir::Cache => dirs::cache_dir(),
            BaseDir::Data => dirs::data_dir(),
        }
        .ok_or_else(|| Error::InvalidOption {
            option: "path",
            reason: format!(
                "`{path}` is relative and this platform names no {} directory; set {DIR_VAR} \
                 or give an absolute path",
                match base {
                    BaseDir::Cache => "cache",
                    BaseDir::Data => "data",
                }
            ),
        })?,
    };
    // Code built outside Cargo has no package name; its stores share one folder.
    Ok(root.join(package.unwrap_or("persistdict")).join(relative))
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
    fn an_absolute_path_is_used_as_it_is() {
        let absolute = std::env::temp_dir().join("a/b");
        let text = absolute.to_str().unwrap();
        assert_eq!(
            resolve_path(text, BaseDir::Cache, Some("app")).unwrap(),
            absolute
        );
    }

    #[test]
    fn a_tilde_path_starts_at_the_home_directory() {
        let Some(home) = std::env::home_dir() else {
            return;
        };
        assert_eq!(
            resolve_path("~/a/b", BaseDir::Data, Some("app")).unwrap(),
            home.join("a/b")
        );
    }

    #[test]
    fn a_relative_path_lives_in_a_folder_named_after_the_package() {
        let resolved = resolve_path("~x/b", BaseDir::Data, Some("app")).unwrap();
        assert!(resolved.ends_with("app/~x/b"), "{}", resolved.display());
        assert!(resolved.is_absolute() || std::env::var_os(DIR_VAR).is_some());
    }
}
