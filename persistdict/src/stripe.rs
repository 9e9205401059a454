//! State split into stripes, one per thread as far as they go, so that threads doing the same
//! thing (reading, counting, recording access times) each write to memory of their own.
//!
//! A write to a cache line that another core wrote last costs that line's transfer between
//! cores, about as much as a cache hit's whole lookup: a lock or a counter shared by every
//! reader turns a second thread into a loss. A thread takes its stripe on its first use, in
//! turn, so the first [`STRIPES`] threads of a process each have one alone; later threads
//! share, which stays correct, only slower.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes of each striped value.
pub(crate) const STRIPES: usize = 16;

/// The threads that took a stripe so far.
static TAKEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe.
    static MINE: usize = TAKEN.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// The index of the calling thread's stripe.
pub(crate) fn index() -> usize {
    // During the thread's exit the slot may be gone; stripe 0 is as correct as any.
    MINE.try_with(|i| *i).unwrap_or(0)
}

/// A value aligned to two cache lines: the unit the processor's adjacent-line prefetcher
/// fetches, so that neighbouring stripes never share one.
#[repr(align(128))]
struct Padded<T>(T);

/// [`STRIPES`] values of `T`, each on cache lines of its own.
pub(crate) struct Striped<T> {
    stripes: Box<[Padded<T>]>,
}

impl<T> Striped<T> {
    /// Stripes made by `make`.
    pub(crate) fn new(mut make: impl FnMut() -> T) -> Self {
        Striped {
            stripes: (0..STRIPES).map(|_| Padded(make())).collect(),
        }
    }

    /// The calling thread's stripe.
    pub(crate) fn mine(&self) -> &T {
        &self.stripes[index()].0
    }

    /// Every stripe, in a fixed order (the order in which to lock them all).
    pub(crate) fn all(&self) -> impl Iterator<Item = &T> {
        self.stripes.iter().map(|p| &p.0)
    }
}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Striped::new(T::default)
    }
}

/// A counter that threads add to without sharing a cache line.
#[derive(Default)]
pub(crate) struct Counter(Striped<AtomicU64>);

impl Counter {
    /// Adds one.
    pub(crate) fn add_one(&self) {
        self.0.mine().fetch_add(1, Ordering::Relaxed);
    }

    /// The sum of every stripe (exact once the adding threads are done).
    pub(crate) fn sum(&self) -> u64 {
        self.0.all().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_sums_what_every_thread_added() {
        let counter = Counter::default();
        std::thread::scope(|s| {
            for _ in 0..2 * STRIPES {
                s.spawn(|| (0..1_000).for_each(|_| counter.add_one()));
            }
        });
        assert_eq!(counter.sum(), 2_000 * STRIPES as u64);
    }

    #[test]
    fn stripes_sit_on_separate_cache_lines() {
        let striped = Striped::new(|| 0_u8);
        let addresses: Vec<usize> = striped
            .all()
            .map(|b| std::ptr::from_ref(b).addr())
            .collect();
        assert_eq!(addresses.len(), STRIPES);
        assert!(addresses.windows(2).all(|w| w[1] - w[0] >= 128));
    }
}
