//! What opening a store takes besides the runner: LMDB's environment and databases, the
//! errors of opening told apart by cause, and the fork count a store is opened at.

use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, MdbError, WithoutTls};

use super::env::{Db, StoreConfig, storage};
use crate::error::{Error, Result};

/// How many times this process has forked, as counted in each child (the parent keeps its
/// count). A store opened at another count belongs to an ancestor process.
pub(super) static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_fork() {
    // Async-signal-safe: an atomic increment.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// How many times this process's ancestors forked on the way to it, with the at-fork handler
/// installed (once per process): a value to compare, not a count of anything else.
pub(crate) fn fork_count() -> u64 {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic, in the child.
        let installed = unsafe { libc::pthread_atfork(None, None, Some(count_fork)) };
        if installed != 0 {
            tracing::warn!("cannot watch for fork(); a child must not use inherited dicts");
        }
    });
    FORKS.load(Ordering::Relaxed)
}

/// The operating system's error code behind `error`, if it is one.
pub(super) fn os_code(error: &heed::Error) -> Option<i32> {
    match error {
        heed::Error::Io(e) => e.raw_os_error(),
        heed::Error::Mdb(MdbError::Other(code)) => Some(*code),
        _ => None,
    }
}

/// The error for `source`, met while preparing or opening the files of `dir`: a cause the
/// user can act on gets its own variant.
pub(crate) fn io_error(dir: &Path, source: std::io::Error) -> Error {
    let path = dir.to_path_buf();
    match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => Error::PermissionDenied { path, source },
        Some(libc::ENOSPC | libc::EDQUOT) => Error::NoSpace { path },
        _ => Error::Io { path, source },
    }
}

/// Opens LMDB's environment in `path` for reading only, for a process that may not write the
/// dict's files. A reader that can't write the lock file either (a dict owned by another
/// user, a read-only mount) reads without it: LMDB then can't tell writers which pages this
/// process still reads, which is safe only while no process writes.
pub(super) fn open_read_only(path: &Path, config: &StoreConfig) -> Result<Env<WithoutTls>> {
    match open_env(path, config, EnvFlags::READ_ONLY) {
        Err(Error::PermissionDenied { .. }) => {
            tracing::warn!(
                path = %path.display(),
                "the lock file can't be written; reading without it, which is safe only \
                 while no process writes to this dict"
            );
            open_env(path, config, EnvFlags::READ_ONLY | EnvFlags::NO_LOCK)
        }
        other => other,
    }
}

/// Opens LMDB's environment in `path` with `flags` besides the store's own.
pub(super) fn open_env(
    path: &Path,
    config: &StoreConfig,
    flags: EnvFlags,
) -> Result<Env<WithoutTls>> {
    let mut env_options = EnvOpenOptions::new().read_txn_without_tls();
    env_options
        .map_size(config.map_size)
        .max_dbs(8)
        .max_readers(config.max_readers);
    // SAFETY: plain LMDB flags. NO_LOCK comes only with READ_ONLY, for a lock file this
    // process can't write; `Store::open` says what that costs.
    unsafe { env_options.flags(flags) };
    // SAFETY: LMDB's rules for a memory-mapped file: the registry opens each directory at most
    // once per process, and LMDB's lock file keeps other processes coherent.
    unsafe { env_options.open(path) }.map_err(|error| match os_code(&error) {
        Some(libc::ENOMEM) => Error::AddressSpace {
            path: path.to_path_buf(),
            map_size: config.map_size as u64,
        },
        Some(code @ (libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOSPC | libc::EDQUOT)) => {
            io_error(path, std::io::Error::from_raw_os_error(code))
        }
        _ => Error::NotADict {
            path: path.to_path_buf(),
            source: Box::new(error),
        },
    })
}

/// `entries`, `hashed`, `order`, `info`, `quarantine`, and `leases` (missing from a dict made
/// by an older version and opened read-only).
pub(super) type Databases = (Db, Db, Db, Database<'static, Str, Bytes>, Db, Option<Db>);

/// Creates (or opens) the databases of a dict, in one commit; a dict that has no settings
/// yet gets `initial` in `info` in the same commit.
pub(super) fn create_databases(
    env: &Env<WithoutTls>,
    initial: &[(String, Vec<u8>)],
) -> Result<Databases> {
    let wtxn = env.write_txn().map_err(storage)?;
    env.create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
        let entries = opener.create_database::<Bytes, Bytes>(wtxn, Some("entries"))?;
        let hashed = opener.create_database::<Bytes, Bytes>(wtxn, Some("hashed"))?;
        let order = opener.create_database::<Bytes, Bytes>(wtxn, Some("order"))?;
        let info = opener.create_database::<Str, Bytes>(wtxn, Some("info"))?;
        let quarantine = opener.create_database::<Bytes, Bytes>(wtxn, Some("quarantine"))?;
        let leases = opener.create_database::<Bytes, Bytes>(wtxn, Some("leases"))?;
        // The settings check at open reads the first of them; writing none keeps it.
        if info.is_empty(wtxn)? && order.is_empty(wtxn)? {
            for (name, value) in initial {
                info.put(wtxn, name, value)?;
            }
        }
        Ok(CommitOrAbort::<_, ()>::Commit((
            entries,
            hashed,
            order,
            info,
            quarantine,
            Some(leases),
        )))
    })
    .map_err(storage)
    .map(CommitOrAbort::unwrap_commit)
}

/// Opens the databases of a dict without writing; an error if one is missing.
pub(super) fn open_databases(
    env: &Env<WithoutTls>,
) -> std::result::Result<Databases, crate::BoxError> {
    let rtxn = env.read_txn()?;
    let opened = env
        .open_databases_and_commit(rtxn, |opener, rtxn| -> heed::Result<_> {
            Ok(CommitOrAbort::<_, ()>::Commit((
                opener.open_database::<Bytes, Bytes>(rtxn, Some("entries"))?,
                opener.open_database::<Bytes, Bytes>(rtxn, Some("hashed"))?,
                opener.open_database::<Bytes, Bytes>(rtxn, Some("order"))?,
                opener.open_database::<Str, Bytes>(rtxn, Some("info"))?,
                opener.open_database::<Bytes, Bytes>(rtxn, Some("quarantine"))?,
                opener.open_database::<Bytes, Bytes>(rtxn, Some("leases"))?,
            )))
        })?
        .unwrap_commit();
    match opened {
        (Some(entries), Some(hashed), Some(order), Some(info), Some(quarantine), leases) => {
            Ok((entries, hashed, order, info, quarantine, leases))
        }
        _ => Err("it has none of this crate's databases".into()),
    }
}
