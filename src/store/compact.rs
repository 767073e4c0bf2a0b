//! Compaction: forget the history no read at or after a revision can see.
//!
//! For each key, the latest version `<=` the compact revision survives if it is live, with
//! everything after it; a key whose latest such version is a tombstone older than the compact
//! revision loses it too, and vanishes if nothing newer exists. A DELETE at exactly the compact
//! revision stays in history, since a watch may start there (etcd's fix for #18089/#19179;
//! 3.4.23 lost it, which the planted `etcd-19179` bug puts back).

use super::stored_key::StoredKey;
use super::{Store, StoreError};

impl Store {
    pub fn compact(&mut self, revision: i64) -> Result<(), StoreError> {
        if revision <= self.compact_revision {
            return Err(StoreError::Compacted);
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision);
        }
        let plant = self.planted_compaction_drops_tombstone;
        // Read first, then write only the keys that lose a version: the map is shared with any
        // snapshot being taken, and a write copies the nodes on its path.
        let touched: Vec<StoredKey> = self
            .keys
            .iter()
            .filter(|(_, history)| history.compactable(revision, plant) > 0)
            .map(|(key, _)| key.clone())
            .collect();
        let mut freed = 0;
        for key in touched {
            let Some(history) = self.keys.get_mut(&key) else {
                continue;
            };
            let (left, dropped) = history.compact(revision, plant);
            freed += dropped
                .iter()
                .map(|v| super::version_bytes(&key, v.live.as_ref()))
                .sum::<usize>();
            if !left {
                self.keys.remove(&key);
            }
        }
        self.size_bytes -= freed;
        self.compact_revision = revision;
        Ok(())
    }
}
