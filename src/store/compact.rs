//! Compaction: forget the history no read at or after a revision can see.
//!
//! For each key, the latest version `<=` the compact revision survives if it is live, with
//! everything after it; a key whose latest such version is a tombstone loses it too, and
//! vanishes if nothing newer exists. So a DELETE at exactly the compact revision is gone from
//! history, which is what etcd 3.4 does to a watch starting there.

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
            let (left, dropped) = history.compact(revision);
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
