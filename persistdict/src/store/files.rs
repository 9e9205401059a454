//! What is done to a directory's files before LMDB opens them: a data file whose creation was
//! cut short is started afresh, and the lock file's space is allocated, so that a full disk
//! is an error at open and never a `SIGBUS` when LMDB first touches the lock file through its
//! memory map.
//!
//! Every process that has an environment open holds a shared `fcntl` lock on the first byte
//! of `lock.mdb` (LMDB's liveness lock; `mdb_env_excl_lock` in LMDB). Whoever can take that
//! byte exclusively knows that no live process has the dict open.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long an opener waits for a live process that has a dict open while its data file
/// holds no committed page yet (a creation in progress) before giving up.
const CREATOR_WAIT: Duration = Duration::from_secs(10);

/// What the data file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    /// No data file: LMDB creates it.
    Missing,
    /// Less than the two meta pages LMDB writes at creation, and only what a creation cut
    /// short leaves (nothing, zeros, or the start of the first, initial meta page).
    CutShort,
    /// Anything else: LMDB decides whether it can read it.
    Written,
}

/// Prepares `dir` (which exists) for LMDB to open it with `max_readers` reader slots; a
/// data file whose creation was cut short is removed only with `start_afresh`.
///
/// # Errors
///
/// [`Error::NoSpace`] when the lock file's space can't be allocated;
/// [`Error::PermissionDenied`] when the lock file can't be opened for writing;
/// [`Error::NotADict`] when a live process keeps a dict whose creation never finished.
pub(super) fn prepare(dir: &Path, max_readers: u32, start_afresh: bool) -> Result<()> {
    let io = |source: std::io::Error| super::open::io_error(dir, source);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(dir.join("lock.mdb"))
        .map_err(io)?;
    let deadline = Instant::now() + CREATOR_WAIT;
    loop {
        let alone = try_lock_exclusive(&lock).map_err(io)?;
        let data = data_state(dir).map_err(io)?;
        let len = lock.metadata().map_err(io)?.len();
        if alone {
            if data == Data::CutShort && start_afresh {
                tracing::warn!(
                    path = %dir.display(),
                    "the data file holds no committed page (its creation was cut short); \
                     starting a new dict"
                );
                std::fs::remove_file(dir.join("data.mdb")).map_err(io)?;
            }
            // LMDB sizes a new lock file to this (`mdb_env_setup_locks`), and keeps a larger one.
            allocate(&lock, len.max(lock_file_size(max_readers))).map_err(io)?;
            // Closing the file drops the exclusive lock (and no other lock of this process is
            // on it: the registry opens a directory once per process).
            return Ok(());
        }
        if data != Data::CutShort {
            // Pages of the lock file that no process touched yet are holes until allocated.
            allocate(&lock, len).map_err(io)?;
            return Ok(());
        }
        // A live process has the dict open and its data file holds no page yet: a creation in
        // progress, which is waited for.
        if Instant::now() >= deadline {
            return Err(Error::NotADict {
                path: dir.to_path_buf(),
                source: format!(
                    "a live process has held this dict open for {CREATOR_WAIT:?} while its data \
                     file holds no committed page"
                )
                .into(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the data file of `dir` holds what a creation cut short leaves, when opening
/// read-only (which can't start it afresh).
pub(super) fn creation_cut_short(dir: &Path) -> bool {
    data_state(dir).is_ok_and(|d| d == Data::CutShort)
}

/// Takes LMDB's liveness byte exclusively, without waiting; `false` if a live process holds it.
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    // SAFETY: `flock` is a plain C struct, valid all zero.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as _;
    range.l_whence = libc::SEEK_SET as _;
    range.l_start = 0;
    range.l_len = 1;
    loop {
        // SAFETY: a valid descriptor and a pointer to a valid `flock`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &range) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EACCES | libc::EAGAIN) => return Ok(false),
            _ => return Err(error),
        }
    }
}

/// Allocates the first `len` bytes of `file` (extending it if shorter), so that writing them
/// through a memory map never faults on a full disk. A filesystem that can't allocate ahead
/// is left as it is.
fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    let Ok(len) = libc::off_t::try_from(len) else {
        return Ok(());
    };
    if len == 0 {
        return Ok(());
    }
    loop {
        // SAFETY: a valid descriptor; mode 0 only allocates (and extends), never shrinks.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EOPNOTSUPP | libc::ENOSYS) => return Ok(()),
            _ => return Err(error),
        }
    }
}

/// The size LMDB gives a new lock file for `max_readers` readers on 64-bit Linux: a 192-byte
/// header and a 64-byte slot per reader beyond the first (`MDB_txninfo`, `MDB_reader`).
fn lock_file_size(max_readers: u32) -> u64 {
    u64::from(max_readers.max(1) - 1) * 64 + 192
}

/// LMDB's page size: the system's.
fn page_size() -> u64 {
    // SAFETY: a plain query.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Offsets in LMDB's first meta page (`MDB_page` then `MDB_meta`, 64-bit).
const META_FLAGS: usize = 10;
const P_META: u16 = 0x08;
const META_MAGIC: usize = 16;
const MDB_MAGIC: u32 = 0xBEEF_C0DE;
const META_TXNID: usize = 144;

fn data_state(dir: &Path) -> std::io::Result<Data> {
    let mut file = match File::open(dir.join("data.mdb")) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Data::Missing),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len >= 2 * page_size() {
        return Ok(Data::Written);
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let initial_meta = bytes.len() >= META_TXNID + 8
        && u16::from_le_bytes([bytes[META_FLAGS], bytes[META_FLAGS + 1]]) & P_META != 0
        && bytes[META_MAGIC..META_MAGIC + 4] == MDB_MAGIC.to_le_bytes()
        && bytes[META_TXNID..META_TXNID + 8] == [0; 8];
    Ok(if initial_meta || bytes.iter().all(|&b| b == 0) {
        Data::CutShort
    } else {
        Data::Written
    })
}
