//! What Maintenance reports of this member (Raft status, sizes, hashes, a snapshot of its
//! applied state) and leader transfer.

use openraft::async_runtime::WatchReceiver;

use super::Server;
use crate::error::{Error, Result};
use crate::raft::NodeId;

/// This member's Raft, as etcd's Status reports it.
pub struct RaftStatus {
    /// The leader this member can vouch for: none once it has stopped hearing one, as etcd's
    /// raft clears its leader (a cut-off openraft member keeps naming its old one).
    pub leader: Option<NodeId>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
}

/// HashKV's answer: the hash of the key space at `revision`.
pub struct KvHash {
    pub hash: u32,
    pub compact_revision: i64,
    pub revision: i64,
}

impl Server {
    pub fn raft_status(&self) -> RaftStatus {
        let m = self.raft.metrics().borrow_watched().clone();
        RaftStatus {
            leader: m.current_leader.filter(|_| self.has_leader()),
            term: m.current_term,
            commit_index: m.local_committed.map(|l| l.index).unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
        }
    }

    /// (bytes the member holds on disk, bytes the key space needs). As with etcd's bbolt file,
    /// the total is never below what is in use (the key space lives in memory and in
    /// snapshots here, so the files alone can be smaller).
    pub fn db_size_bytes(&self) -> (u64, u64) {
        let on_disk = self.storage.log.size_bytes() + self.storage.snapshots.size_bytes();
        let in_use = self.db_in_use_bytes();
        (on_disk.max(in_use), in_use)
    }

    /// Bytes the key space needs, history included; cheap (kept as it changes).
    pub fn db_in_use_bytes(&self) -> u64 {
        self.sm.read().store.approximate_size_bytes() as u64
    }

    pub fn kv_hash(&self) -> KvHash {
        let s = self.sm.read();
        KvHash {
            hash: s.store.hash(),
            compact_revision: s.store.compact_revision(),
            revision: s.store.revision(),
        }
    }

    /// A consistent copy of the applied state as etcd 3.4's backend database (a bbolt file),
    /// which `etcdctl snapshot status` and `restore` read. The buckets are gathered under the
    /// read lock; the pages are laid out after it is released.
    pub fn snapshot_db(&self) -> Result<Vec<u8>> {
        let buckets = crate::snapshot::etcd_db::encode(&self.sm.read());
        crate::snapshot::bolt::write(&buckets).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Hands leadership to `target` and waits until it leads. Only the leader can.
    pub async fn move_leader(&self, target: NodeId) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader);
        }
        let known = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .voter_ids()
            .any(|id| id == target);
        if !known {
            return Err(Error::BadLeaderTransferee);
        }
        if target == self.id {
            return Ok(());
        }
        self.raft
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|_| Error::Stopped)?;
        let wait = self.raft.wait(Some(self.request_timeout));
        wait.current_leader(target, "move leader")
            .await
            .map_err(|_| Error::Timeout)?;
        Ok(())
    }
}
