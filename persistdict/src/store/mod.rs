//! Storage: the only folder that names LMDB (heed). What lies above it sees this module's
//! crate-private API and nothing else.
//!
//! The seam, in full:
//! - [`Store`]: one per directory per process (the registry in `shared.rs` keeps that true). [`Store::open`] with a [`StoreConfig`]; [`Store::check_settings`] at every open;
//!   [`Store::read`] / [`Store::read_at`] run a closure over a [`Reader`] (one snapshot);
//!   [`Store::write_as`] runs a closure over a [`WriteTxn`] and commits it, replaying it if
//!   the map had to grow, and returns the commit's id for the caches; [`Store::last_txn_id`]
//!   tells whether anyone committed since (the cache's coherence check); access times
//!   ([`Store::touch`], [`Store::pending_atime`], [`Store::flush_atimes`]); maintenance
//!   ([`Store::sweep`], [`Store::check`], [`Store::clear_stale_readers`], [`Store::sync`]).
//! - [`Reader`]: records by encoded key, the number of entries, the quarantine's size.
//! - [`WriteTxn`]: put, delete, clear, the `init_once` flag, and reads through it.
//! - [`Walk`]: a walk through the insertion order, chunk by chunk, each chunk in a short read
//!   transaction of its own or all of them in one snapshot (`Store::snapshot`).
//!
//! Keys and values cross the seam encoded (`&[u8]`), and times as milliseconds since the Unix
//! epoch; no LMDB type does. A second backend sits beside this folder by offering the same
//! items. Durability is a parameter of each commit ([`Store::write_as`]), so that handles
//! with different durability share a store.
//!
//! Inside: `env.rs` opens and closes, runs transactions, grows the map; `open.rs` opens
//! LMDB's environment and databases, tells the errors of opening apart, and counts forks;
//! `snapshot.rs` keeps a read transaction for a whole walk; `table.rs` reads and
//! writes records, the insertion order and the key-order flag; `meta.rs` the settings;
//! `atime.rs` pending access times; `repair.rs` expiry and the integrity check; `walk.rs`
//! walks; `files.rs` what is done to a directory's files before LMDB opens them (a creation
//! cut short, the lock file's space); `record.rs` the byte layouts of records, buckets and quarantined slots; `slot.rs`
//! where a key is stored (raw or under a digest); `lease.rs` which process computes a
//! `#[memoize]` result now; `survey.rs` what tools ask (sizes, buckets, entries with their
//! headers, writes with given times); `compact.rs` the compacting copy put in place.

mod atime;
mod compact;
mod env;
mod files;
mod lease;
mod meta;
mod open;
mod pool;
mod record;
mod repair;
mod slot;
mod snapshot;
mod survey;
mod table;
mod walk;

pub(crate) use compact::{Compacted, compact};
pub(crate) use env::{Reader, Store, StoreConfig, WriteTxn};
pub(crate) use lease::Claim;
pub(crate) use meta::{Note, Settings, Stored, expiry_note, memo_note};
pub(crate) use open::{fork_count, io_error};
pub use repair::{IntegrityReport, Problem};
pub(crate) use survey::{Listed, Survey};
pub(crate) use walk::Walk;
