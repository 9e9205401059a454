//! Every name the attributes accept, spelled once: the parser, the list of accepted options
//! in error messages and the checks all use these.

/// The attribute on structs, map types and fields.
pub(crate) const PERSISTENT: &str = "persistent";
/// The attribute on functions.
pub(crate) const MEMOIZE: &str = "memoize";

// Options of both attributes on an item.
pub(crate) const PATH: &str = "path";
pub(crate) const EXPIRE_DAYS: &str = "expire_days";
pub(crate) const NAME: &str = "name";
pub(crate) const CACHE: &str = "cache";
pub(crate) const CODEC: &str = "codec";
pub(crate) const DURABILITY: &str = "durability";
pub(crate) const CRATE: &str = "crate";
pub(crate) const MAP_SIZE: &str = "map_size";

// `#[persistent]` on an item only.
pub(crate) const HANDLE: &str = "handle";
pub(crate) const UNDECODABLE: &str = "undecodable";

// `#[persistent]` on a field.
pub(crate) const DEFAULT: &str = "default";
pub(crate) const RENAME: &str = "rename";

// `#[memoize]` only.
pub(crate) const VERSION: &str = "version";
pub(crate) const INVALIDATE_ON_CHANGE: &str = "invalidate_on_change";
pub(crate) const IGNORE: &str = "ignore";
pub(crate) const STORE_ALL: &str = "store_all";

// The values of `durability`.
pub(crate) const IMMEDIATE: &str = "immediate";
pub(crate) const EVENTUAL: &str = "eventual";

// The values of `undecodable`.
pub(crate) const MISSING: &str = "missing";
pub(crate) const ERROR: &str = "error";
