//! One key's life: its stored versions, oldest first, each a live value or a tombstone.
//!
//! **Invariant:** versions are strictly ordered by `(mod_revision, sub)`, so the state at a
//! revision is a binary search away. A key usually gets at most one version per revision, but
//! not always: etcd's duplicate-key check lets one txn put a key and delete it through a
//! `range_end = "\0"` delete, so a revision may hold a put and a tombstone of the same key, and
//! the later `sub` is the one that counts.
//!
//! Memory is O(keys × versions kept), so a version holds only what the key and its position do
//! not already say: no copy of the key, no second `mod_revision`. A `KeyValue` is built when a
//! reader asks for one ([`Visible::to_kv`]). On disk a version keeps the shape it always had
//! (see `encoding`).

use serde::Deserialize;
use thin_vec::ThinVec;

use crate::proto::mvccpb::KeyValue;

/// What a put stored: the fields of etcd's `KeyValue` that are not the key or `mod_revision`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Live {
    pub create_revision: i64,
    pub version: i64,
    pub lease: i64,
    pub value: Box<[u8]>,
}

impl From<KeyValue> for Live {
    fn from(kv: KeyValue) -> Self {
        Live {
            create_revision: kv.create_revision,
            version: kv.version,
            lease: kv.lease,
            value: kv.value.into_boxed_slice(),
        }
    }
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "super::encoding::VersionOnDisk")]
pub(crate) struct Version {
    pub mod_revision: i64,
    /// Position inside the revision: the op order of a txn, so its events replay in order.
    pub sub: u32,
    /// `None` is a tombstone (the key was deleted at `mod_revision`).
    pub live: Option<Live>,
}

impl Version {
    /// The value this version shows readers, unless it is a tombstone.
    pub fn visible(&self) -> Option<Visible<'_>> {
        Some(Visible {
            mod_revision: self.mod_revision,
            live: self.live.as_ref()?,
        })
    }
}

/// A live value as a reader sees it: everything of a `KeyValue` but the key, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Visible<'a> {
    pub mod_revision: i64,
    pub live: &'a Live,
}

impl Visible<'_> {
    pub fn to_kv(self, key: &[u8]) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            create_revision: self.live.create_revision,
            mod_revision: self.mod_revision,
            version: self.live.version,
            value: self.live.value.to_vec(),
            lease: self.live.lease,
        }
    }
}

/// Versions stay in a `ThinVec` grown one slot at a time while short: most keys hold one or two
/// versions, and a first allocation of four would triple what a key costs. A `ThinVec` keeps
/// its length and capacity in its allocation, so a key's entry in the map's nodes is a key
/// (16 bytes) and one pointer: the nodes fill only half-way on inserts in key order, and
/// with a `Vec` (24 bytes) each key's share of them cost more than the value's own allocation's
/// overhead.
const EXACT_GROWTH_UP_TO: usize = 4;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct KeyHistory {
    versions: ThinVec<Version>,
}

impl KeyHistory {
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The live value at `revision`, if the key existed then.
    pub fn at(&self, revision: i64) -> Option<Visible<'_>> {
        let idx = self
            .versions
            .partition_point(|v| v.mod_revision <= revision);
        self.versions.get(idx.checked_sub(1)?)?.visible()
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
        if self.versions.len() < EXACT_GROWTH_UP_TO {
            self.versions.reserve_exact(1);
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
        let dropped: Vec<Version> = self.versions.drain(..forgotten).collect();
        // A key written often and then compacted would otherwise keep its peak capacity.
        if self.versions.len() <= self.versions.capacity() / 2 {
            self.versions.shrink_to_fit();
        }
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
        let kept = latest.live.is_some() || latest.mod_revision == revision && !drop_tombstone_at;
        if kept {
            idx - 1
        } else {
            idx
        }
    }
}
