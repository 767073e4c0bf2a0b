//! The store as a flat list of revisions, the way etcd's backend keeps it: every stored
//! version, live or tombstone, keyed by `(main, sub)` revision. Snapshots in etcd's format are
//! written from [`Store::revisions`] and read back through [`Store::from_revisions`].
//!
//! **Invariant:** `from_revisions` builds only stores that keep the store's invariants (versions
//! of a key strictly ordered, `compact_revision <= revision`); input that would break them is
//! refused with a reason, never a panic, because it comes from a file.

use std::collections::BTreeMap;

use super::key_history::{KeyHistory, Version};
use super::Store;
use crate::proto::mvccpb::KeyValue;

/// One stored version: a put (`kv` is the value) or a tombstone of `key` (`kv` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionEntry {
    pub main: i64,
    pub sub: i64,
    pub key: Vec<u8>,
    pub kv: Option<KeyValue>,
}

impl Store {
    /// Every stored version in `(main, sub)` order: what etcd's `key` bucket would hold after
    /// the same writes and compactions.
    pub fn revisions(&self) -> Vec<RevisionEntry> {
        let mut out: Vec<RevisionEntry> = self
            .keys
            .iter()
            .flat_map(|(key, history)| {
                history.versions().iter().map(|v| RevisionEntry {
                    main: v.mod_revision,
                    sub: i64::from(v.sub),
                    key: key.to_vec(),
                    kv: v.visible().map(|vis| vis.to_kv(key)),
                })
            })
            .collect();
        out.sort_by_key(|e| (e.main, e.sub));
        out
    }

    /// The live key-values at the current revision, in key order, each built as it is read.
    pub fn live(&self) -> impl Iterator<Item = KeyValue> + '_ {
        self.keys
            .iter()
            .filter_map(|(key, h)| Some(h.at(self.revision)?.to_kv(key)))
    }

    /// Rebuilds a store from its revisions (strictly ascending by `(main, sub)`) and the
    /// revision compacted up to. The store's revision is the last one written, or the compact
    /// revision if that is later (its writes may all have been compacted away), as etcd
    /// restores it.
    pub fn from_revisions(
        entries: impl IntoIterator<Item = RevisionEntry>,
        compact_revision: i64,
    ) -> Result<Store, String> {
        if compact_revision < 0 {
            return Err(format!("negative compact revision {compact_revision}"));
        }
        let mut keys: BTreeMap<Vec<u8>, KeyHistory> = BTreeMap::new();
        let mut last: Option<(i64, i64)> = None;
        for e in entries {
            if e.main < 1 {
                return Err(format!("revision {} is below 1", e.main));
            }
            let sub = u32::try_from(e.sub)
                .map_err(|_| format!("revision {}_{}: sub-revision out of range", e.main, e.sub))?;
            if last.is_some_and(|l| l >= (e.main, e.sub)) {
                return Err(format!(
                    "revision {}_{} is not after the one before it",
                    e.main, e.sub
                ));
            }
            last = Some((e.main, e.sub));
            if e.key.is_empty() {
                return Err(format!("revision {}_{}: empty key", e.main, e.sub));
            }
            // Strictly ascending revisions keep each key's versions strictly ordered, which is
            // what `push` asserts.
            keys.entry(e.key).or_default().push(Version {
                mod_revision: e.main,
                sub,
                live: e.kv.map(Into::into),
            });
        }
        let revision = last
            .map_or(1, |(main, _)| main)
            .max(compact_revision)
            .max(1);
        if compact_revision > 0 {
            // Whatever compaction left is kept; this only drops what a partial compaction
            // would have removed, so the history matches the compact revision.
            keys.retain(|_, h| h.compact(compact_revision, false).0);
        }
        let mut store = Store {
            revision,
            compact_revision,
            keys: super::bulk_load::key_map(keys.into_iter().map(|(k, h)| (k.into(), h)).collect()),
            size_bytes: 0,
            planted_compaction_drops_tombstone: false,
        };
        store.size_bytes = store.recounted_size_bytes();
        Ok(store)
    }
}
