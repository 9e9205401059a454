//! Buffers that hold encoded keys in memory: the thread's scratch buffer for encoding a key,
//! and the inline key of the cache and the pending access times.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

/// An encoded key held in memory (the cache, the pending access times): up to 32 bytes
/// inline, so a lookup compares the key without following a pointer.
pub(crate) type KeyBuf = smallvec::SmallVec<[u8; 32]>;

thread_local! {
    /// The buffer [`Scratch::take`] hands out.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A scratch buffer larger than this is freed rather than kept for reuse.
const SCRATCH_KEPT: usize = 1024;

/// A buffer to encode a key in, reused by the thread's reads and memoized calls, so that they
/// allocate nothing for their key. It goes back to the thread that drops it. The buffer is
/// taken out while in use: a key encoded meanwhile (by a read inside a codec, or by a nested
/// memoized call) gets a buffer of its own.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    /// The thread's buffer, empty.
    pub(crate) fn take() -> Scratch {
        let mut buf = SCRATCH.try_with(Cell::take).unwrap_or_default();
        buf.clear();
        Scratch(buf)
    }
}

impl Deref for Scratch {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.capacity() <= SCRATCH_KEPT {
            let buf = std::mem::take(&mut self.0);
            // During the thread's exit the buffer is simply freed.
            let _ = SCRATCH.try_with(|cell| cell.set(buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_buffer_is_reused_and_one_taken_while_it_is_out_starts_empty() {
        let mut outer = Scratch::take();
        outer.extend_from_slice(b"outer key");
        let inner = Scratch::take();
        assert!(inner.is_empty());
        drop(inner);
        assert_eq!(&outer[..], b"outer key");
        let capacity = outer.capacity();
        let pointer = outer.as_ptr();
        drop(outer);
        let again = Scratch::take();
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (pointer, capacity));
    }

    #[test]
    fn a_large_scratch_buffer_is_not_kept() {
        let mut large = Scratch::take();
        large.resize(SCRATCH_KEPT + 1, 0);
        drop(large);
        assert!(Scratch::take().capacity() <= SCRATCH_KEPT);
    }
}
