//! The MVCC store: etcd's revisioned key space, pure and deterministic.
//!
//! Every key keeps its versions in revision order: live values and tombstones. A read at
//! revision R sees, for each key, its last version with `mod_revision <= R`. Each mutating
//! request bumps the store revision by exactly one, however many keys it touches; requests that
//! change nothing leave it alone. Within one revision, versions carry a sub-revision in op order
//! so watch events of a transaction keep their order.
//!
//! Invariants: `compact_revision <= revision`; a key's versions are strictly ordered by
//! `(mod_revision, sub)`; compaction never removes the latest version <= the compact revision of
//! a live key. This module knows no clocks, no network and no leases beyond `LeaseIndex`.

mod compact;
mod error;
mod history;
mod key_range;
mod range;
mod txn;
pub mod validate;
mod write;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::StoreError;
pub use key_range::KeyRange;

use crate::proto::mvccpb::KeyValue;

/// etcd's `--max-txn-ops` default.
pub const MAX_TXN_OPS: usize = 128;

/// What the lessor tells the store: only whether a lease exists.
pub trait LeaseIndex {
    fn lease_exists(&self, id: i64) -> bool;
}

/// One version of a key: a live value or a tombstone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Version {
    pub mod_revision: i64,
    /// Order inside the revision (op order within a txn).
    pub sub: u32,
    /// `None` is a tombstone.
    pub kv: Option<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    revision: i64,
    compact_revision: i64,
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
    /// Sub-revision counter of the revision being written.
    #[serde(skip)]
    next_sub: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// A fresh store is at revision 1, as a fresh etcd cluster is.
    pub fn new() -> Self {
        Store {
            revision: 1,
            compact_revision: 0,
            keys: BTreeMap::new(),
            next_sub: 0,
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// The live version of `key` at `revision`.
    pub(crate) fn get_at(&self, key: &[u8], revision: i64) -> Option<&KeyValue> {
        let versions = self.keys.get(key)?;
        live_at(versions, revision)
    }

    pub fn key_count(&self) -> usize {
        self.keys
            .values()
            .filter(|v| v.last().is_some_and(|v| v.kv.is_some()))
            .count()
    }

    pub fn approximate_size_bytes(&self) -> usize {
        self.keys
            .iter()
            .map(|(k, vs)| {
                k.len()
                    + vs.iter()
                        .map(|v| 32 + v.kv.as_ref().map_or(0, |kv| kv.key.len() + kv.value.len()))
                        .sum::<usize>()
            })
            .sum()
    }

    /// FNV-1a over every version in key order: equal on members that applied the same log.
    pub fn hash(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u32;
                h = h.wrapping_mul(0x0100_0193);
            }
        };
        feed(&self.revision.to_be_bytes());
        feed(&self.compact_revision.to_be_bytes());
        for (k, versions) in &self.keys {
            feed(k);
            for v in versions {
                feed(&v.mod_revision.to_be_bytes());
                feed(&v.sub.to_be_bytes());
                if let Some(kv) = &v.kv {
                    feed(&kv.create_revision.to_be_bytes());
                    feed(&kv.version.to_be_bytes());
                    feed(&kv.lease.to_be_bytes());
                    feed(&kv.value);
                }
            }
        }
        h
    }
}

pub(crate) fn live_at(versions: &[Version], revision: i64) -> Option<&KeyValue> {
    let idx = versions.partition_point(|v| v.mod_revision <= revision);
    if idx == 0 {
        return None;
    }
    versions[idx - 1].kv.as_ref()
}
