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
    /// A failed disk: every write and sync answers EIO until `repair_disk`.
    failed: bool,
    /// How long each log sync takes (a slow disk), on the member's clock.
    sync_delay: std::time::Duration,
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

    /// A power cut in the middle of writing: the unsynced batches reached the disk only in
    /// part, so the first half of them (rounded up) survives and the rest is lost. (The WAL
    /// drops a torn frame, so what survives is always whole batches, in order.)
    pub fn torn_power_loss(&self) {
        let mut state = self.lock();
        let keep = state.unsynced.len().div_ceil(2);
        let State {
            durable, unsynced, ..
        } = &mut *state;
        for batch in unsynced.drain(..keep) {
            durable.apply(batch.ops);
        }
        drop(state);
        self.power_loss();
    }

    /// The data dir is lost (a replaced machine, an `rm -rf`): everything, synced or not, is
    /// gone, and what is left is a new, healthy, empty disk.
    pub fn wipe(&self) {
        *self.lock() = State::default();
    }

    /// From now on every write and sync fails with EIO (a dying disk).
    pub fn fail_disk(&self) {
        self.lock().failed = true;
    }

    /// A replaced cable or disk: IO works again, with what was durable.
    pub fn repair_disk(&self) {
        self.lock().failed = false;
    }

    /// Each log sync takes `delay` from now on (zero: a healthy disk).
    pub fn slow_disk(&self, delay: std::time::Duration) {
        self.lock().sync_delay = delay;
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

    fn scan_values(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<bytes::Bytes>> {
        Ok(self.lock().live.values(tree, from, to, limit))
    }

    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.lock().live.last(tree))
    }

    fn write(&self, batch: Batch) -> io::Result<()> {
        let mut state = self.lock();
        if state.failed {
            return Err(eio());
        }
        state.live.apply(batch.ops.iter().cloned());
        state.unsynced.push(batch);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        if state.failed {
            return Err(eio());
        }
        let State {
            durable, unsynced, ..
        } = &mut *state;
        for batch in unsynced.drain(..) {
            durable.apply(batch.ops);
        }
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.lock().live.size_bytes()
    }

    fn sync_delay(&self) -> std::time::Duration {
        self.lock().sync_delay
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_loses_synced_and_unsynced_writes_and_heals_the_disk() {
        // Goal: a lost data dir leaves nothing, not even what was synced, and a working disk.
        let b = MemoryBackend::new();
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"a".to_vec(), b"1".to_vec());
        b.write(batch).unwrap();
        b.sync().unwrap();
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"b".to_vec(), b"2".to_vec());
        b.write(batch).unwrap();
        b.fail_disk();
        b.wipe();
        assert_eq!(b.get(Tree::Log, b"a").unwrap(), None);
        assert_eq!(b.get(Tree::Log, b"b").unwrap(), None);
        b.power_loss();
        assert_eq!(
            b.get(Tree::Log, b"a").unwrap(),
            None,
            "nothing durable is left"
        );
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"c".to_vec(), b"3".to_vec());
        b.write(batch).expect("the new disk works");
    }

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
    fn a_torn_power_loss_keeps_the_first_half_of_the_unsynced_batches() {
        // Goal: the simulator's torn write keeps whole batches, in order, never a later one
        // without the earlier ones.
        let b = MemoryBackend::new();
        for k in [b"a", b"b", b"c"] {
            let mut batch = Batch::default();
            batch.put(Tree::Log, k.to_vec(), b"1".to_vec());
            b.write(batch).unwrap();
        }
        b.torn_power_loss();
        let left: Vec<_> = b.scan(Tree::Log, b"", None, 10).unwrap();
        assert_eq!(
            left,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"1".to_vec())
            ]
        );
    }

    #[test]
    fn a_failed_disk_refuses_writes_and_syncs_until_repaired() {
        // Goal: EIO reaches the caller (so Raft stops) and nothing is half-written.
        let b = MemoryBackend::new();
        b.fail_disk();
        let mut batch = Batch::default();
        batch.put(Tree::Log, b"a".to_vec(), b"1".to_vec());
        assert_eq!(b.write(batch.clone()).unwrap_err().raw_os_error(), Some(5));
        assert!(b.sync().is_err());
        assert_eq!(b.get(Tree::Log, b"a").unwrap(), None);
        b.repair_disk();
        b.write(batch).unwrap();
        b.sync().unwrap();
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
