//! Which peers this member has heard a Raft answer from, kept on disk.
//!
//! A member whose data dir is lost forgets its vote and its log. If it came back under its old
//! id it could vote twice in one term, or help elect a leader that lacks writes it had
//! acknowledged. Raft's answer is that such a member must rejoin as a new one; this record is
//! how its peers recognise it (see `rejoin`). An answer is recorded, and synced, before Raft
//! sees it, so any vote or acknowledgement a leader ever counted is on that leader's disk.
//! A member's record is dropped once its removal from the cluster is applied, so removing and
//! re-adding it (the runbook) lets it start afresh.

use std::collections::BTreeSet;
use std::io;
use std::sync::Mutex;

use crate::raft::NodeId;
use crate::storage::{blocking, Batch, SharedBackend, Tree};

const PREFIX: &[u8] = b"heard/";

pub struct HeardFrom {
    backend: SharedBackend,
    ids: Mutex<BTreeSet<NodeId>>,
}

fn key(id: NodeId) -> Vec<u8> {
    [PREFIX, &id.to_be_bytes()].concat()
}

impl HeardFrom {
    pub fn open(backend: SharedBackend) -> io::Result<HeardFrom> {
        let end = [PREFIX, &[0xff; 9]].concat();
        let ids = backend
            .scan(Tree::RaftMeta, PREFIX, Some(&end), usize::MAX)?
            .into_iter()
            .filter_map(|(k, _)| Some(NodeId::from_be_bytes(k[PREFIX.len()..].try_into().ok()?)))
            .collect();
        Ok(HeardFrom {
            backend,
            ids: Mutex::new(ids),
        })
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.lock().contains(&id)
    }

    /// Records `id` durably; only the first answer from a peer costs a write and a sync.
    pub fn note(&self, id: NodeId) -> io::Result<()> {
        if self.contains(id) {
            return Ok(());
        }
        blocking(|| {
            let mut batch = Batch::default();
            batch.put(Tree::RaftMeta, key(id), Vec::new());
            self.backend.write(batch)?;
            self.backend.sync()
        })?;
        self.lock().insert(id);
        Ok(())
    }

    /// Drops every record but those of `members` (the applied membership's voters and
    /// learners).
    pub fn keep_only(&self, members: &BTreeSet<NodeId>) -> io::Result<()> {
        let gone: Vec<NodeId> = self.lock().difference(members).copied().collect();
        if gone.is_empty() {
            return Ok(());
        }
        blocking(|| {
            let mut batch = Batch::default();
            for id in &gone {
                batch.delete(Tree::RaftMeta, key(*id));
            }
            self.backend.write(batch)?;
            self.backend.sync()
        })?;
        let mut ids = self.lock();
        gone.iter().for_each(|id| {
            ids.remove(id);
        });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<NodeId>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::MemoryBackend;

    #[test]
    fn a_noted_peer_survives_power_loss_until_its_removal_is_applied() {
        // Goal: the record is synced before `note` returns (a power cut keeps it), and
        // `keep_only` forgets removed members durably.
        let disk = Arc::new(MemoryBackend::new());
        let heard = HeardFrom::open(disk.clone()).unwrap();
        heard.note(7).unwrap();
        heard.note(u64::MAX).unwrap();
        disk.power_loss();
        let heard = HeardFrom::open(disk.clone()).unwrap();
        assert!(heard.contains(7) && heard.contains(u64::MAX) && !heard.contains(8));
        heard.keep_only(&BTreeSet::from([u64::MAX, 9])).unwrap();
        disk.power_loss();
        let heard = HeardFrom::open(disk).unwrap();
        assert!(!heard.contains(7) && heard.contains(u64::MAX));
    }
}
