//! Compaction: forget versions superseded at or before a revision.

use super::{Store, StoreError};

impl Store {
    pub fn compact(&mut self, revision: i64) -> Result<(), StoreError> {
        if revision <= self.compact_revision {
            return Err(StoreError::Compacted);
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision);
        }
        self.keys.retain(|_, versions| {
            let idx = versions.partition_point(|v| v.mod_revision <= revision);
            if idx == 0 {
                return true;
            }
            // Keep the latest version <= revision only if it is live; a tombstone goes with
            // everything before it.
            let keep_from = if versions[idx - 1].kv.is_some() {
                idx - 1
            } else {
                idx
            };
            versions.drain(..keep_from);
            !versions.is_empty()
        });
        self.compact_revision = revision;
        Ok(())
    }
}
