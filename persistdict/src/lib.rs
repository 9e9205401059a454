//! A persistent, typed dictionary on LMDB: a map of serde keys to serde values that lives on
//! disk, shared safely by threads and processes, with insertion-ordered iteration, atomic
//! read-modify-write, per-entry creation and access times, expiry of entries not used for N
//! days, and an in-memory cache that is never stale across processes.
//!
//! ```toml
//! [dependencies]
//! persistdict = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! # Three ways to use it
//!
//! **A typed map**, [`PersistDict`]:
//!
//! ```
//! use persistdict::PersistDict;
//!
//! # fn main() -> persistdict::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let scores: PersistDict<String, u32> = PersistDict::open(dir.path().join("scores"))?;
//! scores.insert("ada".to_string(), 3)?;
//! scores.update("ada", |n| n.map(|n| n + 1))?; // atomic, across processes
//! assert_eq!(scores.get("ada")?, Some(4));
//! for entry in &scores {
//!     let (name, score) = entry?; // insertion order
//!     println!("{name}: {score}");
//! }
//! # Ok(()) }
//! ```
//!
//! **An app's state or settings**, with [`#[persistent]`](persistent) on a struct: typed
//! accessors per field, each field its own entry.
//!
//! ```
//! use persistdict::persistent;
//! use serde::{Deserialize, Serialize};
//!
//! #[persistent(path = "state/app")]
//! #[derive(Serialize, Deserialize, Default)]
//! struct AppState {
//!     runs: u64,
//! }
//!
//! # fn main() -> persistdict::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let state = AppState::open_at(dir.path())?; // `AppState::open()` uses `state/app`
//! state.update_runs(|n| *n += 1)?;
//! assert_eq!(state.runs()?, 1);
//! # Ok(()) }
//! ```
//!
//! **A function's results**, with [`#[memoize]`](memoize): computed once, read back in this
//! process and every later one.
//!
//! ```
//! #[persistdict::memoize(path = "target/doc-cache/crate-docs")]
//! fn slow_square(x: u64) -> u64 {
//!     x * x
//! }
//! assert_eq!(slow_square(12), 144);
//! ```
//!
//! # What to read next
//!
//! - [`Builder`] for every setting: expiry, cache size, [`Durability`], codecs, the worker.
//! - [`Codec`] to store values as JSON ([`Json`], feature `json`), with bincode
//!   ([`Bincode`], feature `bincode`), or compressed and encrypted by a codec of your own.
//! - [`Error`] for what can go wrong; nothing is deleted when a value no longer decodes.
//! - [`inspect`] to look inside any dict without its program's types (what the
//!   `persistdict` command-line tool uses).
//! - The [README](https://github.com/persistdict/persistdict#readme) for guarantees,
//!   performance figures and the on-disk format.
//!
//! # Cargo features
//!
//! - `derive` (default): the [`persistent`] and [`memoize`] attributes.
//! - `json`: the [`Json`] codec.
//! - `bincode`: the [`Bincode`] codec (bincode is unmaintained; for existing data).
//!
//! # Layout, for maintainers
//!
//! Modules, each importing only those listed before it:
//!
//! 1. `error`, `clock`, `codec`, `types` (the shapes and tags of value types), `key` (key
//!    buffers), `commits` (our commits that changed no value), `options` (the builder,
//!    `Durability`, `Background`).
//! 2. `store/`: the only folder that names LMDB; `store/mod.rs` is its seam. A record is
//!    encoded in `store/record.rs`; insertion order lives in `store/table.rs` (the `order`
//!    B-tree and the key-order flag); settings in `store/meta.rs`.
//! 3. `cache`: decoded values, coherent across processes.
//! 4. `background`: the worker; `shared`: one store, worker and counters per directory per
//!    process.
//! 5. `raw`: the untyped middle, where every write is committed and the cache told about it
//!    (`RawDict::write`).
//! 6. `dict/`: [`PersistDict`], codecs over `raw`.
//! 7. `attrs`, `fields`, `memo`: the runtime halves of the attributes, over `raw` (and, for
//!    `memo`'s public [`Memo::dict`], `dict`); `private` re-exports them for generated code.
//! 8. [`inspect`]: any dict as bytes, for tools, over `raw` (and `memo`'s key layout).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod attrs;
mod background;
mod cache;
mod clock;
mod codec;
mod commits;
mod dict;
mod error;
mod fields;
pub mod inspect;
mod key;
mod memo;
mod options;
mod raw;
mod shared;
mod store;
mod stripe;
mod types;

/// What the macros' generated code calls. Not public API: no semver guarantee.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use attrs::DIR_VAR;
pub use clock::Clock;
#[cfg(feature = "bincode")]
pub use codec::Bincode;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, Postcard};
pub use dict::{
    Iter, Keys, Metadata, PersistDict, Stats, Transaction, TransactionError, TransactionIter,
    Values,
};
pub use error::{BoxError, Error, KeyBytes, Result};
pub use memo::Memo;
pub use options::{Background, Builder, Durability};
pub use store::{IntegrityReport, Problem};

// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// Makes a struct of typed fields, or a map type, persistent.
///
/// # On a struct with named fields
///
/// The struct stays a plain data type; the macro adds a handle type named after it with
/// `Store` appended (`AppState` gets `AppStateStore`; the `handle` option picks another name)
/// with typed accessors. Each field is stored as its own entry, so processes that change
/// different fields never overwrite each other.
///
/// ```
/// use persistdict::persistent;
/// use serde::{Deserialize, Serialize};
///
/// #[persistent(path = "state/app", expire_days = 30)]
/// #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
/// struct AppState {
///     counter: u64,
///     last_user: Option<String>,
///     #[persistent(default = vec!["welcome".to_string()])]
///     recent: Vec<String>,
/// }
///
/// # fn main() -> persistdict::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let s = AppState::open_at(dir.path())?;      // or `AppState::open()` at `state/app`
/// assert_eq!(s.counter()?, 0);                  // never stored: the default
/// s.set_counter(3)?;
/// s.update_counter(|c| *c += 1)?;               // atomic, across processes
/// s.modify(|st| {                               // several fields, one transaction
///     st.last_user = Some("ada".into());
///     st.recent.push("x".into());
/// })?;
/// let snapshot: AppState = s.load()?;           // every field from one snapshot
/// assert_eq!(snapshot.counter, 4);
/// assert_eq!(snapshot.recent, ["welcome", "x"]);
/// s.save(&AppState::default())?;
/// # Ok(()) }
/// ```
///
/// Per field, the handle has `field()`, `set_field(value)`, `update_field(|v| ..)` (atomic;
/// returns the new value) and `reset_field()` (removes the stored value, so that it reads as
/// its default). For the whole struct it has `load()`, `save(&state)`, `modify(|state| ..)`,
/// `flush()` and `path()`, and `open()` / `open_at(path)` exist on both the struct and the
/// handle. The accessors have the field's visibility; the rest has the struct's.
///
/// A field that was never stored reads as its `#[persistent(default = expr)]`, or else as
/// that field of the struct's `Default` (so the struct needs `Default` unless every field
/// has its own). A field added to the struct later reads as its default until set; the
/// stored value of a removed field is ignored. When a field's stored value no longer
/// decodes as its type, reading it fails with [`Error::Field`] naming the field (or, with
/// `undecodable = "missing"`, reads as its default); its `set_field` overwrites and
/// `reset_field` removes the value without decoding it.
///
/// # On a map type
///
/// ```
/// use std::collections::HashMap;
///
/// #[persistdict::persistent(path = "cache/embeddings", expire_days = 30)]
/// type Embeddings = HashMap<String, Vec<f32>>;
///
/// # fn main() -> persistdict::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let e = Embeddings::open_at(dir.path())?;
/// e.insert("hello".into(), vec![0.1, 0.2])?;     // a PersistDict<String, Vec<f32>>
/// assert_eq!(e.get("hello")?, Some(vec![0.1, 0.2]));
/// # Ok(()) }
/// ```
///
/// `HashMap<K, V>`, `BTreeMap<K, V>` and `IndexMap<K, V>` are recognized, as a type alias or
/// as the one field of a tuple struct. The result is a struct that dereferences to
/// [`PersistDict<K, V>`](PersistDict) and has `open()`, `open_at(path)` and `into_inner()`.
/// Iteration follows insertion order, whatever the map type was.
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `path = "dir"` | required: the directory (see [Where the store lives](#where-the-store-lives)) |
/// | `expire_days = N` | remove entries not accessed for `N` days (see [`Builder::expire_days`]) |
/// | `name = "..."` | the label in log events |
/// | `cache = N` | in-memory cache capacity, 0 for none (default 128) |
/// | `codec = "path::To::Codec"` | the value codec, a [`Codec`] that implements `Default` |
/// | `durability = "immediate"` or `"eventual"` | see [`Durability`] |
/// | `map_size = N` | bytes of address space for the map (see [`Builder::map_size`]) |
/// | `crate = "path"` | where to find this crate, if it was renamed |
/// | `handle = "Name"` | the handle type's name (structs) |
/// | `undecodable = "missing"` | a stored value that no longer decodes reads as missing (a field: as its default) instead of an error; see [`Builder::undecodable_as_missing`] |
///
/// Put `#[persistent]` above `#[derive(...)]`. Field options: `default = expr`, and
/// `rename = "name"` to store a field under another name (to keep its data when renaming
/// it).
///
/// # Serde attributes on fields
///
/// Each field is stored as its own entry, so a field's `#[serde(...)]` attributes are given
/// their meaning for that entry:
///
/// | attribute | effect |
/// |---|---|
/// | `skip`, `skip_serializing`, `skip_deserializing` | the field is not stored and gets no accessors; `load` gives its default, `save` and `modify` leave it out; its type needn't be serializable |
/// | `rename = "name"` | the entry's name, as `#[persistent(rename)]` |
/// | `default`, `default = "path"` | the value of a field never stored, as `#[persistent(default)]` |
/// | `with`, `serialize_with`, `deserialize_with` | how the entry's value is encoded and decoded |
/// | `flatten`, `skip_serializing_if`, `alias`, `borrow`, `bound`, `getter` | refused at compile time, with the reason and what to use |
///
/// A field added to a *nested* struct with `#[serde(default)]` gets that default: each value
/// is stored with its type's shape, and a value of an older shape is read by field and
/// variant name, as a self-describing format would be. A change that doesn't fit that way
/// (a field added without a default, a number of another type) is an [`Error::Field`] (or,
/// with `undecodable = "missing"`, the field's default), never a guess.
///
/// # Where the store lives
///
/// `path` is resolved when the store is first opened, not at compile time, so the same
/// binary finds the same store from any working directory:
/// - an absolute path is used as it is, and `~/` at its start is the home directory;
/// - a relative path is under `$PERSISTDICT_DIR/<package>` when the environment variable
///   [`PERSISTDICT_DIR`](DIR_VAR) is set (and not empty), else under
///   `<data directory>/<package>`: `$XDG_DATA_HOME` or `~/.local/share` on Linux,
///   `~/Library/Application Support` on macOS, `%APPDATA%` on Windows (the directories of
///   the [`dirs`](https://docs.rs/dirs) crate). `<package>` is the name of the Cargo package
///   whose code holds the attribute, so the library and binaries of one package share it.
///
/// `open_at(path)` takes a path as it is. Tests and scripts point every store elsewhere with
/// `PERSISTDICT_DIR`.
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use persistdict_derive::persistent;

/// Stores a function's results on disk, keyed by its arguments.
///
/// ```
/// use persistdict::memoize;
///
/// #[memoize(path = "doc-cache/square")]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// assert_eq!(square(12), 144);      // computed, and stored
/// assert_eq!(square(12), 144);      // read back, in this process or any later one
/// square_invalidate(12).unwrap();   // forget that one result
/// ```
///
/// # Keys
///
/// The key is the function's arguments, serialized with postcard (so they must be
/// `Serialize`; `&str`, `&[T]` and other references work), and hashed by the dict when long.
/// Different arguments never share an entry. `ignore(arg, ...)` leaves arguments out of the
/// key.
///
/// Each function has its own namespace: its path in the crate, a digest of its signature and
/// body, and its `version = N`. Changing the function's code therefore makes its old results
/// unreachable; expiry (`expire_days`) removes them eventually. With
/// `invalidate_on_change = false` only the name and `version` count: results survive edits
/// that don't change what the function computes (a refactoring, a new log line), but then
/// raising `version` by hand is the only way to drop results an edit made wrong.
///
/// Only the function's own tokens count: editing a function it calls, a constant it reads or
/// a type it returns keeps the old results. Raise `version` when such a change alters what
/// the function computes.
///
/// # Where results live
///
/// As for [`persistent`](macro@persistent#where-the-store-lives), except that a relative
/// `path` is under the platform's cache directory when `PERSISTDICT_DIR` is not set:
/// `$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%`
/// on Windows, in a folder named after the package.
///
/// # Re-entry
///
/// A call that reaches the same call again on its own thread (recursion, a retry whose
/// counter is `ignore`d, a cycle through other memoized functions; for `async fn`, within one
/// poll of the outer call) computes without waiting for itself, and only the outermost call
/// stores its result.
///
/// # What is stored
///
/// A plain `T` is stored. For `Result<T, E>` (including aliases such as `io::Result<T>`) only
/// `Ok` values are stored: errors are returned and not cached. For `Option<T>` only `Some`
/// is stored. `store_all = true` stores every result, errors and `None` included (the whole
/// return type must then be serializable). A stored value written as another return type
/// (each value carries a tag of its type's shape), or that no longer decodes, is a miss, and
/// is overwritten: never a result of another type read as this one.
///
/// # Failures and concurrency
///
/// A cache failure never breaks the function: if the store can't be opened, read or
/// written, the function runs and its result is returned; the failure is logged with
/// `tracing`. Identical calls running at the same time in one process compute once; the
/// others wait for that result (if it is not stored, for example an `Err`, they compute in
/// turn). Processes share the results through the directory, and identical calls in several
/// processes of one machine compute once too: the first to miss takes the call's lease in
/// the store, and the others wait for its result. A lease whose process is gone (killed
/// with `kill -9`, say) is taken over at once; a call waits at most two minutes for a live
/// process computing the same call, then computes too (in an `async fn`, the wait awaits).
///
/// Results default to [`Durability::Eventual`]: a process crash loses nothing, and a power
/// cut may lose the last results written, which are then computed again (LMDB keeps the file
/// consistent on filesystems that preserve write order; see [`Durability`]). Set
/// `durability = "immediate"` for results that are expensive enough to be worth an fsync each.
///
/// # `async fn`, methods and companions
///
/// `async fn` works with any executor: waiting for an identical call in flight awaits
/// without blocking the thread. Associated functions work; a `self` receiver must be left
/// out with `ignore(self)` (the result then must not depend on `self`). Generic functions
/// can't be memoized.
///
/// Next to `f`, the macro defines `f_invalidate(args...)` (the same arguments minus ignored
/// ones; removes that call's result) and `f_memo()`, the [`Memo`] with `clear()` and
/// `dict()`.
///
/// # Options
///
/// `path` (required), `expire_days`, `name`, `cache`, `codec`, `durability`, `map_size` and `crate` as
/// for [`persistent`], plus `version = N`, `invalidate_on_change = false`,
/// `ignore(arg, ...)` and `store_all = true`.
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use persistdict_derive::memoize;
