//! The memory backend: for tests and the simulator.
//!
//! It keeps two copies of every tree: what readers see (`live`) and what survived the last
//! `sync` (`durable`), plus the batches written since. `sync` replays those batches onto the
//! durable copy (cost proportional to what was written, not to everything stored: Raft syncs
//! after every append); `power_loss` throws away the live copy, which is how the simulator
//! models a crash that loses unsynced writes. Everything is `BTreeMap`, so iteration order is
//! fixed.

use std::io;
use std::sync::Mutex;

use super::trees::Trees;
use super::{Backend, Batch, Tree};

#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    live: Trees,
    durable: Trees,
    unsynced: Vec<Batch>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every write since the last `sync`, as a power cut would.
    pub fn power_loss(&self) {
        let mut state = self.lock();
        state.live = state.durable.clone();
        state.unsynced.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic mid-write in this process; the data is still consistent
        // per batch because batches are applied under the lock without early returns.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().live.get(tree, key))
    }

    fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.lock().live.scan(tree, from, to, limit))
    }

    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.lock().live.last(tree))
    }

    fn write(&self, batch: Batch) -> io::Result<()> {
        let mut state = self.lock();
        state.live.apply(&batch.ops);
        state.unsynced.push(batch);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        let State {
            durable, unsynced, ..
        } = &mut *state;
        for batch in unsynced.drain(..) {
            durable.apply(&batch.ops);
        }
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.lock().live.size_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_loss_drops_unsynced_writes_only() {
        // Goal: the simulator's crash model keeps synced data and loses the rest.
        let b = MemoryBackend::new();
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"a".to_vec(), b"1".to_vec());
        b.write(batch).unwrap();
        b.sync().unwrap();
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"b".to_vec(), b"2".to_vec());
        b.write(batch).unwrap();
        assert!(b.get(Tree::Log, b"b").unwrap().is_some());
        b.power_loss();
        assert!(b.get(Tree::Log, b"a").unwrap().is_some());
        assert!(b.get(Tree::Log, b"b").unwrap().is_none());
    }

    #[test]
    fn sync_replays_every_batch_in_order_deletes_included() {
        // Goal: the durable copy after `sync` equals what readers saw, whatever the batches did.
        let b = MemoryBackend::new();
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"a".to_vec(), b"1".to_vec());
        batch.put(Tree::Log, b"b".to_vec(), b"1".to_vec());
        b.write(batch).unwrap();
        let mut batch = Batch::default();
        batch.delete(Tree::Log, b"a".to_vec());
        batch.put(Tree::Log, b"b".to_vec(), b"2".to_vec());
        b.write(batch).unwrap();
        b.sync().unwrap();
        let before = b.scan(Tree::Log, b"", None, 10).unwrap();
        b.power_loss();
        assert_eq!(b.scan(Tree::Log, b"", None, 10).unwrap(), before);
        assert_eq!(before, vec![(b"b".to_vec(), b"2".to_vec())]);
    }

    #[test]
    fn delete_range_is_half_open() {
        // Goal: `DeleteRange` removes [from, to) and leaves `to` itself.
        let b = MemoryBackend::new();
        let mut batch = Batch::default();
        for k in [b"a", b"b", b"c"] {
            batch.put(Tree::Log, k.to_vec(), b"x".to_vec());
        }
        batch.delete_range(Tree::Log, b"a".to_vec(), Some(b"c".to_vec()));
        b.write(batch).unwrap();
        let left: Vec<_> = b.scan(Tree::Log, b"", None, 10).unwrap();
        assert_eq!(left, vec![(b"c".to_vec(), b"x".to_vec())]);
    }
}
