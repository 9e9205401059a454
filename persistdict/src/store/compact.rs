//! Compaction: the data file rewritten without its free pages (LMDB's compacting copy), put
//! in place of the old one only while no process has the dict open.
//!
//! Invariants:
//! - Nothing is changed unless this process takes LMDB's liveness byte exclusively (see
//!   `files.rs`), which proves that no process has the dict open. While it is held, every
//!   other process that opens the dict waits in LMDB's open (`mdb_env_excl_lock` waits for a
//!   shared lock), so none can open the old file and write to it.
//! - The copy is read with `NO_LOCK`, so LMDB never touches the lock file (closing a
//!   descriptor of it would drop this process's lock), and it is synced before it replaces the
//!   old file by a rename in the same directory: a crash leaves the old file or the new one,
//!   never part of either.
//! - The lock file describes the old file's transactions. Before the rename it is emptied,
//!   so that an opener that got in after a crash in between fails instead of reading the new
//!   file through the old header; after it, the dict is opened once with its lock while the
//!   byte is still held, so that LMDB, finding itself first, sets the lock file up afresh,
//!   and only then lets the waiting openers in.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use heed::{CompactionOption, EnvFlags};

use super::env::{StoreConfig, storage};
use super::files;
use super::open::{io_error, open_env};
use crate::error::{Error, Result};

/// Sizes of a dict's data file before and after [`compact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub(crate) before: u64,
    pub(crate) after: u64,
}

/// The name the compacted copy is written under, beside the data file.
const COPY_NAME: &str = "data.mdb.compacting";

/// Rewrites the data file of the dict in `dir` (canonical) without free pages. The caller
/// makes sure that this process has no environment open on it.
///
/// # Errors
///
/// [`Error::InUse`] when another process has the dict open; [`Error::NotFound`] when there is
/// no dict; I/O and storage errors of the copy, after which the dict is as it was.
pub(crate) fn compact(dir: &Path, config: &StoreConfig) -> Result<Compacted> {
    let io = |source| io_error(dir, source);
    let data = dir.join("data.mdb");
    let meta = match std::fs::metadata(&data) {
        Ok(meta) if meta.is_file() => meta,
        _ => {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
            });
        }
    };
    let lock = files::open_lock_file(dir).map_err(io)?;
    if !files::try_lock_exclusive(&lock).map_err(io)? {
        return Err(Error::InUse {
            path: dir.to_path_buf(),
            by: "in another process",
        });
    }
    let copy = dir.join(COPY_NAME);
    let copied = write_copy(dir, config, &copy, &meta);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&copy);
        return Err(e);
    }
    // From here on the old header must not describe the new file (see the module's docs).
    lock.set_len(0).map_err(io)?;
    // Allocated now, so that LMDB's first touch of it through its map can't fault on a full
    // disk; all zeros, it still reads as no header.
    files::allocate(&lock, files::lock_file_size(config.max_readers)).map_err(io)?;
    std::fs::rename(&copy, &data).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    let after = std::fs::metadata(&data).map_err(io)?.len();
    // Opened with its lock while this process holds the liveness byte: LMDB takes itself as
    // the first opener and sets the lock file up; closing it releases the byte.
    let env = open_env(dir, config, EnvFlags::empty())?;
    env.prepare_for_closing().wait();
    drop(lock);
    Ok(Compacted {
        before: meta.len(),
        after,
    })
}

/// Writes the compacted copy of the dict in `dir` to `copy`, synced, with the data file's
/// permissions and owner.
fn write_copy(
    dir: &Path,
    config: &StoreConfig,
    copy: &Path,
    data: &std::fs::Metadata,
) -> Result<()> {
    let io = |source| io_error(dir, source);
    let env = open_env(dir, config, EnvFlags::READ_ONLY | EnvFlags::NO_LOCK)?;
    let file = env
        .copy_to_path(copy, CompactionOption::Enabled)
        .map_err(|e| match e {
            heed::Error::Io(source) => io(source),
            other => storage(other),
        })?;
    env.prepare_for_closing().wait();
    file.set_permissions(std::fs::Permissions::from_mode(data.mode()))
        .map_err(io)?;
    // Only the owner or root may change it; a copy made by its owner has it already.
    if file.metadata().map_err(io)?.uid() != data.uid() {
        std::os::unix::fs::fchown(&file, Some(data.uid()), Some(data.gid())).map_err(io)?;
    }
    file.sync_all().map_err(io)
}
