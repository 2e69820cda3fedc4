//! A window's slots, allocated a chunk at a time on first write: a large window's memory
//! grows with the calls it has seen, instead of being taken whole when the breaker is built.
//! The first chunk is allocated at once, so a window that fits in it (the usual case) is one
//! flat array and its accesses take no extra branch beyond a bounds compare.

use std::sync::OnceLock;

/// `len` slots of `T`, chunk by chunk.
pub(crate) struct Slots<T> {
    first: Box<[T]>,
    rest: Box<[OnceLock<Box<[T]>>]>,
    chunk: usize,
    len: usize,
}

impl<T: Default> Slots<T> {
    /// `len` slots in chunks of `chunk` (both at least 1).
    pub(crate) fn new(len: usize, chunk: usize) -> Self {
        let len = len.max(1);
        let chunk = chunk.max(1);
        let first_len = len.min(chunk);
        let chunks = len.div_ceil(chunk);
        Self {
            first: (0..first_len).map(|_| T::default()).collect(),
            rest: (1..chunks).map(|_| OnceLock::new()).collect(),
            chunk,
            len,
        }
    }

    /// The slot at `index`, allocating its chunk if this is its first use.
    #[inline]
    pub(crate) fn get_or_alloc(&self, index: usize) -> &T {
        match self.first.get(index) {
            Some(slot) => slot,
            None => self.later(index),
        }
    }

    #[cold]
    fn later(&self, index: usize) -> &T {
        let number = index / self.chunk;
        let start = number * self.chunk;
        let size = self.chunk.min(self.len - start);
        let block = self.rest[number - 1].get_or_init(|| (0..size).map(|_| T::default()).collect());
        &block[index - start]
    }

    /// The slot at `index`, if its chunk was ever written (an unwritten slot holds the
    /// default value).
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        match self.first.get(index) {
            Some(slot) => Some(slot),
            None => {
                let number = index / self.chunk;
                let block = self.rest.get(number.checked_sub(1)?)?.get()?;
                block.get(index - number * self.chunk)
            }
        }
    }

    /// Every slot that has been allocated.
    pub(crate) fn allocated(&self) -> impl Iterator<Item = &T> {
        self.first
            .iter()
            .chain(self.rest.iter().filter_map(OnceLock::get).flatten())
    }

    /// How many slots there are, allocated or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many slots are allocated now.
    #[cfg(test)]
    pub(crate) fn allocated_len(&self) -> usize {
        self.allocated().count()
    }
}

impl<T> std::fmt::Debug for Slots<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("len", &self.len)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::*;

    #[test]
    fn only_the_first_chunk_exists_until_a_later_slot_is_written() {
        let slots = Slots::<AtomicU8>::new(10_000, 4_096);
        assert_eq!(slots.allocated_len(), 4_096);
        assert!(slots.get(5_000).is_none(), "never written");
        slots.get_or_alloc(5_000).store(7, Ordering::Relaxed);
        assert_eq!(slots.allocated_len(), 8_192);
        assert_eq!(slots.get(5_000).unwrap().load(Ordering::Relaxed), 7);
        assert_eq!(slots.get(4_096).unwrap().load(Ordering::Relaxed), 0);
        slots.get_or_alloc(9_999).store(9, Ordering::Relaxed);
        assert_eq!(slots.allocated_len(), 10_000, "the last chunk is partial");
        assert!(slots.get(10_000).is_none(), "past the end");
    }

    #[test]
    fn a_window_that_fits_in_one_chunk_is_allocated_whole_at_once() {
        let slots = Slots::<AtomicU8>::new(100, 4_096);
        assert_eq!(slots.allocated_len(), 100);
        slots.get_or_alloc(99).store(1, Ordering::Relaxed);
        assert_eq!(
            slots
                .allocated()
                .map(|s| s.load(Ordering::Relaxed))
                .sum::<u8>(),
            1
        );
    }
}
