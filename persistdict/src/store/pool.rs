//! Read transactions kept between reads, one per stripe of threads (`stripe.rs`).
//!
//! In heed's `WithoutTls` mode, which the store uses so that a thread may hold several
//! transactions, beginning a read transaction takes LMDB's reader-table mutex, shared by
//! every thread of every process: uncached reads from several threads wait for each other
//! there. A read transaction whose snapshot is still the last commit (its id equals
//! `last_txn_id`) reads exactly what a new one would, so a thread keeps its transaction for
//! its next read while nobody commits, and only a commit makes it begin another.
//!
//! Invariants:
//! - A kept transaction is not in use, and holds a reader slot: it pins its snapshot, so
//!   pages freed after it can't be reused. Our own commits therefore end every kept
//!   transaction, and the worker's ticks end those that other processes' commits made old;
//!   transactions are kept only once a worker runs ([`Pool::enable`]), so that no thread that
//!   stopped reading pins a snapshot for longer than a tick.
//! - A stripe that holds a transaction has its bit set in `marked`. A thread sets the bit
//!   after storing into an empty stripe, seeing it clear; [`Pool::sweep`] clears the bits
//!   first and then empties the stripes, so a transaction stored meanwhile keeps its bit.
//!   Reads write the bits only after a commit, never on a read that reuses its transaction.
//! - A kept transaction is ended only by an explicit abort, never by a drop: in a forked
//!   child, aborting would free a reader slot that belongs to the parent.
//! - The map is resized only with every stripe empty: [`Pool::sweep`] with `all`, while
//!   `resize` is held exclusively.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use heed::{RoTxn, WithoutTls};

use crate::stripe::{self, STRIPES, Striped};

const _: () = assert!(STRIPES <= 32, "a stripe's bit is in a u32");

/// A kept transaction; see the module docs for why it is never dropped.
struct Kept(ManuallyDrop<RoTxn<'static, WithoutTls>>);

/// The kept transactions of one store.
pub(super) struct Pool {
    stripes: Striped<Mutex<Option<Kept>>>,
    marked: AtomicU32,
    enabled: AtomicBool,
}

impl Pool {
    pub(super) fn new() -> Self {
        Pool {
            stripes: Striped::default(),
            marked: AtomicU32::new(0),
            enabled: AtomicBool::new(false),
        }
    }

    /// Starts keeping transactions: a worker now ends old ones at every tick.
    pub(super) fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// The calling thread's kept transaction, if its snapshot is `last` (older ones are
    /// ended here).
    pub(super) fn take(&self, last: u64) -> Option<RoTxn<'static, WithoutTls>> {
        // Busy: another thread of the stripe is taking or giving back.
        let mut stripe = self.stripes.mine().try_lock().ok()?;
        let Kept(txn) = stripe.take()?;
        let txn = ManuallyDrop::into_inner(txn);
        if txn.id() as u64 == last {
            Some(txn)
        } else {
            drop(stripe);
            drop(txn);
            None
        }
    }

    /// Keeps `txn` for the calling thread's next read, unless its stripe holds one already.
    pub(super) fn give_back(&self, txn: RoTxn<'static, WithoutTls>) {
        if !self.enabled.load(Ordering::Relaxed) {
            return drop(txn);
        }
        let Ok(mut stripe) = self.stripes.mine().try_lock() else {
            return drop(txn);
        };
        if stripe.is_some() {
            return drop(txn);
        }
        *stripe = Some(Kept(ManuallyDrop::new(txn)));
        let bit = 1 << stripe::index();
        if self.marked.load(Ordering::Relaxed) & bit == 0 {
            self.marked.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Ends the kept transactions whose snapshot is not `last`, or all with `all`; a stripe
    /// busy now is left for the next sweep. Only the process that opened the store may call
    /// this.
    pub(super) fn sweep(&self, last: u64, all: bool) {
        let marked = self.marked.swap(0, Ordering::Relaxed);
        if marked == 0 {
            return;
        }
        for (i, stripe) in self.stripes.all().enumerate() {
            if marked & (1 << i) == 0 {
                continue;
            }
            let taken = if all {
                // While `resize` is held exclusively nobody is between taking and giving
                // back, so the lock is free or about to be.
                Some(stripe.lock().unwrap_or_else(PoisonError::into_inner))
            } else {
                stripe.try_lock().ok()
            };
            let Some(mut held) = taken else {
                self.marked.fetch_or(1 << i, Ordering::Relaxed);
                continue;
            };
            match held.take() {
                Some(Kept(txn)) if !all && txn.id() as u64 == last => {
                    *held = Some(Kept(txn));
                    self.marked.fetch_or(1 << i, Ordering::Relaxed);
                }
                Some(Kept(txn)) => drop(ManuallyDrop::into_inner(txn)),
                None => {}
            }
        }
    }
}
