//! Leases: which process computes a key now. A `#[memoize]` call that misses takes the key's
//! lease before it computes, so that the processes of one machine that make the same call
//! compute it once and the others wait for the result.
//!
//! A lease names its holder: its process id, the time the process started (from
//! `/proc/<pid>/stat`, where there is one) and a token of the process. Another process takes
//! the lease over as soon as the holder is gone: no process with that id, a zombie, or a
//! process of that id started at another time (the id was reused). So a holder killed with
//! `kill -9` is taken over at once, and a live holder is never taken over: a waiter that
//! waits too long computes without the lease (the caller bounds the wait).
//!
//! Layout of a lease in the `leases` database, under the first 16 bytes of the blake3 digest
//! of the key: pid (`u32`), the process's start (`u64`, 0 if not known), the token (`u64`),
//! the time it was taken (`u64` ms), all little-endian.

use std::sync::OnceLock;

use super::env::{Store, WriteTxn, storage};
use crate::error::Result;
use crate::options::Durability;

const LEASE_LEN: usize = 28;

/// What [`Store::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The key has a value (not past `cutoff`): nothing to compute.
    Stored,
    /// This process holds the lease now: it computes.
    Taken,
    /// A live process holds it.
    Held,
}

/// A process that holds a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holder {
    pid: u32,
    start: u64,
    token: u64,
}

impl Holder {
    /// This process.
    fn me() -> Holder {
        static ME: OnceLock<(u32, u64, u64)> = OnceLock::new();
        // A fork has its own pid: the cell is keyed by it.
        let pid = std::process::id();
        let &(cached, start, token) = ME.get_or_init(|| (pid, start_of(pid), new_token()));
        if cached == pid {
            Holder { pid, start, token }
        } else {
            Holder {
                pid,
                start: start_of(pid),
                token: new_token(),
            }
        }
    }

    fn encode(&self, now: u64) -> [u8; LEASE_LEN] {
        let mut out = [0; LEASE_LEN];
        out[..4].copy_from_slice(&self.pid.to_le_bytes());
        out[4..12].copy_from_slice(&self.start.to_le_bytes());
        out[12..20].copy_from_slice(&self.token.to_le_bytes());
        out[20..].copy_from_slice(&now.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Holder> {
        let bytes: &[u8; LEASE_LEN] = bytes.try_into().ok()?;
        Some(Holder {
            pid: u32::from_le_bytes(bytes[..4].try_into().ok()?),
            start: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
            token: u64::from_le_bytes(bytes[12..20].try_into().ok()?),
        })
    }

    /// Whether the holder's process still runs.
    fn alive(&self) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !exists {
            return false;
        }
        match proc_stat(self.pid) {
            // Where the process table can be read: not a zombie, and the same process.
            Some((state, start)) => state != 'Z' && (self.start == 0 || start == self.start),
            None => true,
        }
    }
}

/// A token for this process, told apart from any earlier process of the same id.
fn new_token() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&now.as_nanos().to_le_bytes());
    let digest = hasher.finalize();
    let mut token = [0; 8];
    token.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(token)
}

/// When process `pid` started, in the kernel's clock ticks since boot; 0 if not known.
fn start_of(pid: u32) -> u64 {
    proc_stat(pid).map_or(0, |(_, start)| start)
}

/// The state and start time of process `pid`, from `/proc/<pid>/stat` (Linux).
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: the fields that follow are counted
    // from its closing one. After it: state (field 3), ..., starttime (field 22).
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The storage key of the lease of `key`.
fn slot(key: &[u8]) -> [u8; 16] {
    let mut slot = [0; 16];
    slot.copy_from_slice(&blake3::hash(key).as_bytes()[..16]);
    slot
}

impl Store {
    /// Takes the lease of encoded `key` for this process unless the key has a value (one
    /// whose access time is not before `cutoff`) or a live process holds it. A commit that
    /// changes no value: it is not synced, and caches take no notice of it.
    pub(crate) fn claim(&self, key: &[u8], now: u64, cutoff: Option<u64>) -> Result<Claim> {
        let Some(leases) = self.leases else {
            return Ok(Claim::Taken);
        };
        let me = Holder::me();
        let (claim, id) = self.write_as(Durability::Eventual, |w| {
            let stored = w.as_read().get(key)?.is_some_and(|record| {
                cutoff.is_none_or(|cutoff| !self.expired(key, record.header.accessed, cutoff))
            });
            if stored {
                return Ok(Claim::Stored);
            }
            let slot = slot(key);
            let holder = leases
                .get(&w.txn, &slot)
                .map_err(storage)?
                .and_then(Holder::decode);
            match holder {
                Some(holder) if holder.token == me.token => Ok(Claim::Taken),
                Some(holder) if holder.alive() => Ok(Claim::Held),
                _ => {
                    let r = leases.put(&mut w.txn, &slot, &me.encode(now));
                    w.check(r)?;
                    Ok(Claim::Taken)
                }
            }
        })?;
        if id != 0 {
            self.quiet_commits().record(id);
        }
        Ok(claim)
    }

    /// Gives up this process's lease of encoded `key`, if it holds it. A commit that changes
    /// no value, as for [`claim`](Self::claim).
    pub(crate) fn release(&self, key: &[u8]) -> Result<()> {
        let ((), id) = self.write_as(Durability::Eventual, |w| w.release_lease(key))?;
        if id != 0 {
            self.quiet_commits().record(id);
        }
        Ok(())
    }
}

impl WriteTxn<'_> {
    /// Gives up this process's lease of encoded `key`, if it holds it, in this transaction.
    pub(crate) fn release_lease(&mut self, key: &[u8]) -> Result<()> {
        let Some(leases) = self.store.leases else {
            return Ok(());
        };
        let slot = slot(key);
        let mine = leases
            .get(&self.txn, &slot)
            .map_err(storage)?
            .and_then(Holder::decode)
            .is_some_and(|holder| holder.token == Holder::me().token);
        if mine {
            let r = leases.delete(&mut self.txn, &slot).map(drop);
            self.check(r)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_names_this_process_and_reads_back() {
        let me = Holder::me();
        assert_eq!(me.pid, std::process::id());
        assert!(me.alive());
        assert_eq!(Holder::decode(&me.encode(7)), Some(me));
        assert_eq!(Holder::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn a_holder_whose_process_is_gone_or_another_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Holder {
            pid,
            start: 0,
            token: 1,
        };
        assert!(!gone.alive());
        let reused = Holder {
            start: Holder::me().start + 1,
            ..Holder::me()
        };
        assert_eq!(reused.alive(), Holder::me().start == 0);
    }
}
