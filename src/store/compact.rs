//! Compaction: forget the history no read at or after a revision can see.
//!
//! For each key, the latest version `<=` the compact revision survives if it is live, with
//! everything after it; a key whose latest such version is a tombstone older than the compact
//! revision loses it too, and vanishes if nothing newer exists. A DELETE at exactly the compact
//! revision stays in history, since a watch may start there (etcd's fix for #18089/#19179;
//! 3.4.23 lost it, which the planted `etcd-19179` bug puts back).

use super::{Store, StoreError};

impl Store {
    pub fn compact(&mut self, revision: i64) -> Result<(), StoreError> {
        if revision <= self.compact_revision {
            return Err(StoreError::Compacted);
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision);
        }
        let mut freed = 0;
        self.keys.retain(|key, history| {
            let (left, dropped) =
                history.compact(revision, self.planted_compaction_drops_tombstone);
            freed += dropped
                .iter()
                .map(|v| super::version_bytes(key, v.kv.as_ref()))
                .sum::<usize>();
            left
        });
        self.size_bytes -= freed;
        self.compact_revision = revision;
        Ok(())
    }
}
