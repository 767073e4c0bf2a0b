//! The MVCC store: etcd's revisioned key space, pure and deterministic. It is the Raft state
//! machine's data and, serialized, its snapshot.
//!
//! Every key keeps its versions in revision order ([`key_history::KeyHistory`]): live values and
//! tombstones. A read at revision R sees, for each key, its last version with
//! `mod_revision <= R`. Each mutating request bumps the store revision by exactly one, however
//! many keys it touches; requests that change nothing leave it alone. Inside one revision,
//! versions carry a sub-revision in op order so the events of a transaction keep their order.
//!
//! **Invariant:** `0 <= compact_revision <= revision`; a key's versions are strictly ordered by
//! `(mod_revision, sub)`; compaction never removes what a read at or after the compact revision
//! can see. **Boundary:** no clocks, no network, no I/O, no hash-map iteration (every walk is in
//! key order, so every member computes the same bytes); leases are known only through
//! [`LeaseIndex`]. Headers are left `None` for the caller, who knows the cluster and the term.

mod bulk_load;
mod compact;
mod compare;
mod encoding;
mod error;
mod events;
mod hash;
mod key_history;
mod key_range;
mod range;
mod revisions;
mod stored_key;
mod txn;
pub mod validate;
mod write;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use imbl::OrdMap;
use stored_key::StoredKey;

use serde::{Deserialize, Serialize};

pub use error::StoreError;
pub use key_range::KeyRange;
pub use revisions::RevisionEntry;

use key_history::{KeyHistory, Live};

/// etcd's `--max-txn-ops` default: the most compares, or ops of one branch, a txn may carry.
/// It bounds the work (and the single revision's size) one request can put into the log.
pub const MAX_TXN_OPS: usize = 128;

/// Bytes counted per stored version on top of its key and value: the revisions, version,
/// lease and vector bookkeeping, roughly. Only feeds `approximate_size_bytes`.
const VERSION_OVERHEAD_BYTES: usize = 48;

/// What one stored version of `key` counts toward `approximate_size_bytes`.
fn version_bytes(key: &[u8], live: Option<&Live>) -> usize {
    VERSION_OVERHEAD_BYTES + key.len() + live.map_or(0, |l| l.value.len())
}

/// What the lessor tells the store: only whether a lease exists. The store never learns more
/// about leases, the way etcd's mvcc package sees the lessor through a narrow interface.
pub trait LeaseIndex {
    fn lease_exists(&self, id: i64) -> bool;
}

/// The whole MVCC state. `Default` is the fresh store, like [`Store::new`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Store {
    /// The revision of the last write; 1 in a fresh store, as in a fresh etcd cluster.
    revision: i64,
    /// Reads below this revision answer `Compacted`; 0 until the first compaction.
    compact_revision: i64,
    /// Every key with at least one stored version, tombstones included, in key order. A
    /// persistent map: cloning the store is O(1) and shares every node until one is written,
    /// so a snapshot is taken from a clone without holding up the writes that follow.
    #[serde(
        serialize_with = "encoding::serialize_keys",
        deserialize_with = "encoding::deserialize_keys"
    )]
    keys: OrdMap<StoredKey, KeyHistory>,
    /// `approximate_size_bytes`, kept as versions come and go: the quota check reads it on
    /// every write, so it must not walk the store.
    size_bytes: usize,
    /// The planted `etcd-19179` bug (compaction as etcd 3.4.23 did it); never serialized, so a
    /// member sets it again on every state it loads.
    #[serde(skip)]
    planted_compaction_drops_tombstone: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// A fresh store: revision 1, nothing compacted.
    pub fn new() -> Self {
        Store {
            revision: 1,
            compact_revision: 0,
            keys: OrdMap::new(),
            size_bytes: 0,
            planted_compaction_drops_tombstone: false,
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Plants `plant::Plants::etcd_19179`: compaction drops a DELETE at the compact revision.
    pub fn plant_compaction_drops_tombstone(&mut self, on: bool) {
        self.planted_compaction_drops_tombstone = on;
    }

    /// Plants `plant::Plants::etcd_17780`: the revision as etcd's backend gave it, its newest
    /// stored version, where a compaction had already dropped tombstones up to the compact
    /// revision (this store keeps the one at the compact revision for watchers; etcd's backend
    /// did not).
    pub fn plant_revision_from_versions(&mut self) {
        let compacted = self.compact_revision;
        let stored = self.keys.values().flat_map(|h| h.versions());
        let in_backend = stored.filter(|v| v.live.is_some() || v.mod_revision > compacted);
        self.revision = in_backend.map(|v| v.mod_revision).max().unwrap_or(1);
    }

    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Number of keys live at the current revision.
    pub fn key_count(&self) -> usize {
        self.keys
            .values()
            .filter(|h| h.at(self.revision).is_some())
            .count()
    }

    /// A rough size of everything stored, history included (etcd's "db size in use").
    pub fn approximate_size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// `approximate_size_bytes` counted from scratch: for a store built whole, and to check
    /// the running count against.
    pub(crate) fn recounted_size_bytes(&self) -> usize {
        self.keys
            .iter()
            .flat_map(|(key, h)| {
                h.versions()
                    .iter()
                    .map(|v| version_bytes(key, v.live.as_ref()))
            })
            .sum()
    }
}
