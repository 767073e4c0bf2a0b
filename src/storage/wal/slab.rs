//! Raft's log entries, packed into large shared buffers while the WAL holds them in memory.
//!
//! An entry lives from its append until the purge that follows the next snapshot: at a
//! 1M-key state, up to ~80,000 of them (see `raft::snapshot_pace`). Each used to be an
//! allocation of its own, a few hundred bytes among the key space's values and keys, so a purge
//! left holes scattered through pages that still held live keys: memory malloc counts as free
//! but cannot give back. Packed together, entries appended one after another share a buffer
//! that is freed whole once the purge has passed all of them (entries are purged in index
//! order), and `malloc_trim` after the purge returns its pages.

use bytes::{Bytes, BytesMut};

use crate::storage::Tree;

/// Size of one shared buffer: ~800 entries of a put with a 256-byte value.
const SLAB_BYTES: usize = 256 * 1024;

#[derive(Default)]
pub(super) struct Slab {
    /// The unused tail of the current buffer; what was split off lives on in the entries.
    free: BytesMut,
}

impl Slab {
    /// Where a put's value in `tree` is kept: Raft's log in the slab, the rest as it came.
    pub fn place_in(&mut self, tree: Tree, value: Vec<u8>) -> Bytes {
        match tree {
            Tree::Log => self.place(&value),
            _ => value.into(),
        }
    }

    /// A copy of `entry` in the current buffer, or in a new one when it does not fit.
    fn place(&mut self, entry: &[u8]) -> Bytes {
        if self.free.capacity() < entry.len() {
            self.free = BytesMut::with_capacity(SLAB_BYTES.max(entry.len()));
        }
        self.free.extend_from_slice(entry);
        self.free.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_share_a_buffer_until_it_is_full_and_keep_their_bytes() {
        let mut slab = Slab::default();
        let a = slab.place(b"first");
        let b = slab.place(b"second");
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        // Consecutive entries sit side by side in one allocation.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());

        let big = vec![7u8; SLAB_BYTES];
        let c = slab.place(&big);
        assert_eq!(c.len(), SLAB_BYTES);
        assert!(c.iter().all(|&x| x == 7));
        let d = slab.place(b"next");
        assert_eq!(&d[..], b"next");
        assert_ne!(
            c.as_ptr().wrapping_add(c.len()),
            d.as_ptr(),
            "a full buffer is not reused"
        );
        drop((a, b));
        assert_eq!(
            &d[..],
            b"next",
            "freeing earlier entries leaves later ones intact"
        );
    }
}
