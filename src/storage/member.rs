//! Where one member keeps its bytes: Raft's log and vote in the WAL (`<data-dir>/wal`),
//! state-machine snapshots in sled (`<data-dir>/sled`), as etcd keeps a WAL beside its bbolt
//! backend. The simulator hands both roles to one memory backend.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Backend, Batch, SharedBackend, SledBackend, Tree, WalBackend};

#[derive(Clone)]
pub struct MemberStorage {
    /// Raft's log and metadata (`Tree::Log`, `Tree::RaftMeta`).
    pub log: SharedBackend,
    /// State-machine snapshots (`Tree::Snapshot`).
    pub snapshots: SharedBackend,
}

impl MemberStorage {
    /// One backend in both roles.
    pub fn single(backend: SharedBackend) -> Self {
        MemberStorage {
            log: backend.clone(),
            snapshots: backend,
        }
    }

    /// Nothing stored at all: no vote, no log, no snapshot. A new member, or a lost disk.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.log.last(Tree::Log)?.is_none()
            && self.log.last(Tree::RaftMeta)?.is_none()
            && self.snapshots.last(Tree::Snapshot)?.is_none())
    }

    /// Opens a member's data directory, moving a log kept in sled by an earlier version into
    /// the WAL first.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let snapshots = SledBackend::open(data_dir)?;
        let log = WalBackend::open(&data_dir.join("wal"))?;
        if log.created() {
            migrate_log(&snapshots, &log)?;
        }
        Ok(MemberStorage {
            log: Arc::new(log),
            snapshots: Arc::new(snapshots),
        })
    }
}

/// Copies Raft's trees from sled into a new WAL, syncs, and only then clears them in sled: a
/// crash in between leaves the WAL in charge with everything.
fn migrate_log(from: &SledBackend, to: &WalBackend) -> io::Result<()> {
    let mut copy = Batch::default();
    let mut clear = Batch::default();
    for tree in [Tree::Log, Tree::RaftMeta] {
        let rows = from.scan(tree, b"", None, usize::MAX)?;
        if !rows.is_empty() {
            clear.delete_range(tree, Vec::new(), None);
        }
        for (k, v) in rows {
            copy.put(tree, k, v);
        }
    }
    if copy.is_empty() {
        return Ok(());
    }
    tracing::info!("moving the Raft log from sled into the WAL");
    to.write(copy)?;
    to.sync()?;
    from.write(clear)?;
    from.sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_kept_in_sled_moves_into_the_wal_once() {
        // Goal: a data dir written before the WAL existed restarts with its log and vote.
        let dir = tempfile::tempdir().unwrap();
        {
            let sled = SledBackend::open(dir.path()).unwrap();
            let mut b = Batch::default();
            b.put(Tree::Log, 1u64.to_be_bytes(), b"entry".to_vec());
            b.put(Tree::RaftMeta, b"vote".to_vec(), b"v".to_vec());
            b.put(Tree::Snapshot, b"meta".to_vec(), b"s".to_vec());
            sled.write(b).unwrap();
            sled.sync().unwrap();
        }
        let storage = MemberStorage::open(dir.path()).unwrap();
        assert_eq!(
            storage.log.get(Tree::Log, &1u64.to_be_bytes()).unwrap(),
            Some(b"entry".to_vec())
        );
        assert_eq!(
            storage.log.get(Tree::RaftMeta, b"vote").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(storage.snapshots.last(Tree::Log).unwrap(), None);
        assert_eq!(
            storage.snapshots.get(Tree::Snapshot, b"meta").unwrap(),
            Some(b"s".to_vec())
        );
        drop(storage);
        let storage = MemberStorage::open(dir.path()).unwrap();
        assert_eq!(
            storage.log.get(Tree::RaftMeta, b"vote").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
