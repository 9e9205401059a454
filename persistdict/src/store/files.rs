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

use crate::error::{Error, Result};

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

/// Prepares `dir` (which exists) for LMDB to open it with `max_readers` reader slots.
///
/// Nothing here takes part in LMDB's own locking while other processes may be opening the
/// dict: a process whose LMDB found the liveness byte held by us would take the environment
/// as set up already, and fail. So:
/// - an empty data file is left to LMDB, which starts an empty file afresh itself;
/// - a data file that holds only what a creation cut short leaves (zeros, or the start of the
///   first meta page) is emptied, with `start_afresh`, only while no live process holds the
///   dict, and under LMDB's liveness byte, which is then held for a moment only;
/// - the lock file's holes are allocated without changing its size, and a lock file that
///   LMDB has yet to size is created only where the disk has room for it.
///
/// # Errors
///
/// [`Error::NoSpace`] when the lock file's space can't be allocated or the disk has no room
/// for a new one; [`Error::PermissionDenied`] when the lock file can't be opened for writing.
pub(super) fn prepare(dir: &Path, max_readers: u32, start_afresh: bool) -> Result<()> {
    let io = |source: std::io::Error| super::open::io_error(dir, source);
    let lock = open_lock_file(dir).map_err(io)?;
    let len = lock.metadata().map_err(io)?.len();
    if len > 0 {
        // Pages of the lock file that no process touched yet are holes until allocated.
        allocate(&lock, len).map_err(io)?;
    } else if free_bytes(&lock).is_some_and(|free| free < room_for_a_new_dict(max_readers)) {
        return Err(Error::NoSpace {
            path: dir.to_path_buf(),
        });
    }
    if start_afresh && data_state(dir).map_err(io)? == Data::CutShort && !live_holder(&lock) {
        empty_cut_short_data(dir, &lock).map_err(io)?;
    }
    // Closing `lock` drops the lock `empty_cut_short_data` took, if any (the registry opens a
    // directory once per process, so no other lock of this process is on the file).
    Ok(())
}

/// The lock file of the dict in `dir`, opened for writing (created if missing, as LMDB would).
pub(super) fn open_lock_file(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(dir.join("lock.mdb"))
}

/// Whether the data file of `dir` holds only what a creation cut short leaves, empty or
/// not: LMDB can't read such a file unless it is empty, nor start it afresh unless it is the
/// process that sets the dict up.
pub(super) fn creation_cut_short(dir: &Path) -> bool {
    data_state(dir).is_ok_and(|d| d == Data::CutShort)
}

/// Empties a cut-short data file, while holding LMDB's liveness byte (given up if a process
/// took it meanwhile), so that LMDB starts it afresh.
fn empty_cut_short_data(dir: &Path, lock: &File) -> std::io::Result<()> {
    if !try_lock_exclusive(lock)? {
        return Ok(());
    }
    let data = dir.join("data.mdb");
    let len = std::fs::metadata(&data).map_or(0, |m| m.len());
    if len > 0 && data_state(dir)? == Data::CutShort {
        tracing::warn!(
            path = %dir.display(),
            "the data file holds no committed page (its creation was cut short); starting a \
             new dict"
        );
        OpenOptions::new().write(true).open(&data)?.set_len(0)?;
    }
    Ok(())
}

/// Whether a live process holds LMDB's liveness byte (has the dict open), asked without
/// taking it.
fn live_holder(lock: &File) -> bool {
    // SAFETY: `flock` is a plain C struct, valid all zero.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as _;
    range.l_whence = libc::SEEK_SET as _;
    range.l_len = 1;
    // SAFETY: a valid descriptor and a pointer to a valid `flock`.
    let asked = unsafe { libc::fcntl(lock.as_raw_fd(), libc::F_GETLK, &raw mut range) };
    // Where the question fails, a live holder is assumed: nothing is emptied then.
    asked != 0 || i32::from(range.l_type) != libc::F_UNLCK
}

/// Whether the filesystem of the dict in `dir` has less room than one large write (1 MiB)
/// for an unprivileged writer.
pub(super) fn nearly_full(dir: &Path) -> bool {
    File::open(dir.join("data.mdb"))
        .ok()
        .and_then(|file| free_bytes(&file))
        .is_some_and(|free| free < 1 << 20)
}

/// Bytes free for an unprivileged writer on the filesystem of `file`, if it says.
fn free_bytes(file: &File) -> Option<u64> {
    // SAFETY: `statvfs` is a plain C struct, valid all zero.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a valid `statvfs`.
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &raw mut stats) } != 0 {
        return None;
    }
    // The fields are 32-bit on some targets.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(stats.f_bavail).saturating_mul(u64::from(stats.f_frsize)))
}

/// What a new dict needs before its first commit: its lock file and LMDB's two meta pages.
fn room_for_a_new_dict(max_readers: u32) -> u64 {
    lock_file_size(max_readers) + 2 * page_size()
}

/// Takes LMDB's liveness byte exclusively, without waiting; `false` if a live process holds it.
pub(super) fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
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
pub(super) fn allocate(file: &File, len: u64) -> std::io::Result<()> {
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
pub(super) fn lock_file_size(max_readers: u32) -> u64 {
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
