//! One key's life: its stored versions, oldest first, each a live value or a tombstone.
//!
//! **Invariant:** versions are strictly ordered by `(mod_revision, sub)`, so the state at a
//! revision is a binary search away. A key usually gets at most one version per revision, but
//! not always: etcd's duplicate-key check lets one txn put a key and delete it through a
//! `range_end = "\0"` delete, so a revision may hold a put and a tombstone of the same key, and
//! the later `sub` is the one that counts.

use serde::{Deserialize, Serialize};

use crate::proto::mvccpb::KeyValue;

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Version {
    pub mod_revision: i64,
    /// Position inside the revision: the op order of a txn, so its events replay in order.
    pub sub: u32,
    /// `None` is a tombstone (the key was deleted at `mod_revision`).
    pub kv: Option<KeyValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyHistory {
    versions: Vec<Version>,
}

impl KeyHistory {
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The live value at `revision`, if the key existed then.
    pub fn at(&self, revision: i64) -> Option<&KeyValue> {
        let idx = self
            .versions
            .partition_point(|v| v.mod_revision <= revision);
        self.versions.get(idx.checked_sub(1)?)?.kv.as_ref()
    }

    /// Index of the first version with `mod_revision >= revision`.
    pub fn first_from(&self, revision: i64) -> usize {
        self.versions.partition_point(|v| v.mod_revision < revision)
    }

    pub fn push(&mut self, version: Version) {
        if let Some(last) = self.versions.last() {
            assert!(
                (last.mod_revision, last.sub) < (version.mod_revision, version.sub),
                "versions of a key must be appended in (revision, sub) order"
            );
        }
        self.versions.push(version);
    }

    /// Forgets what no read at `revision` or later can see: every version before the latest one
    /// `<= revision`, and that one too if it is a tombstone older than `revision`. A tombstone
    /// at exactly `revision` stays (until a later compaction), because a watch may start at the
    /// compact revision and must see that DELETE (etcd #18089, #19179); `drop_tombstone_at`
    /// forgets it as etcd 3.4.23 did. Returns whether anything is left, and what was forgotten.
    pub fn compact(&mut self, revision: i64, drop_tombstone_at: bool) -> (bool, Vec<Version>) {
        let forgotten = self.compactable(revision, drop_tombstone_at);
        let dropped = self.versions.drain(..forgotten).collect();
        (!self.versions.is_empty(), dropped)
    }

    /// How many of the oldest versions `compact` at `revision` would forget.
    pub fn compactable(&self, revision: i64, drop_tombstone_at: bool) -> usize {
        let idx = self
            .versions
            .partition_point(|v| v.mod_revision <= revision);
        let Some(latest) = idx.checked_sub(1).map(|i| &self.versions[i]) else {
            return 0;
        };
        let kept = latest.kv.is_some() || latest.mod_revision == revision && !drop_tombstone_at;
        if kept {
            idx - 1
        } else {
            idx
        }
    }
}
