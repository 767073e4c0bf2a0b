//! History replay for watchers catching up: the events of a key range between two revisions,
//! rebuilt from stored versions.
//!
//! Cost: a binary search per key of the range plus the matched events, then a sort of those.
//! Linear in the number of keys of the range, whatever the window: fine for catch-up (rare,
//! and bounded by compaction), not meant for the hot path, which fans out events as they are
//! applied.

use super::{KeyRange, Store, StoreError};
use crate::proto::mvccpb::{event::EventType, Event, KeyValue};

impl Store {
    /// Events with `start_revision <= mod_revision <= end_revision` for keys in the range, in
    /// revision order then op order, each with the key's value at `mod_revision - 1` as
    /// `prev_kv` unless it is a create or that revision is compacted.
    ///
    /// A start below the compact revision is `Compacted`; a start *at* it is served (etcd
    /// cancels only `start < compact`), from what compaction kept: a PUT at the compact
    /// revision is there, a DELETE at it is not.
    pub fn events_between(
        &self,
        key: &[u8],
        range_end: &[u8],
        start_revision: i64,
        end_revision: i64,
    ) -> Result<Vec<Event>, StoreError> {
        if start_revision < self.compact_revision {
            return Err(StoreError::Compacted);
        }
        let range = KeyRange::new(key, range_end);
        let mut found: Vec<(i64, u32, Event)> = Vec::new();
        for (k, history) in self.keys.range::<_, [u8]>(range.bounds()) {
            let versions = history.versions();
            for v in &versions[history.first_from(start_revision)..] {
                if v.mod_revision > end_revision {
                    break;
                }
                let prev = |rev: i64| {
                    if rev - 1 < self.compact_revision {
                        None
                    } else {
                        history.at(rev - 1).map(|p| p.to_kv(k))
                    }
                };
                let event = match v.visible() {
                    Some(visible) => Event {
                        r#type: EventType::Put as i32,
                        kv: Some(visible.to_kv(k)),
                        prev_kv: if visible.live.version == 1 {
                            None
                        } else {
                            prev(v.mod_revision)
                        },
                    },
                    None => Event {
                        r#type: EventType::Delete as i32,
                        kv: Some(KeyValue {
                            key: k.to_vec(),
                            mod_revision: v.mod_revision,
                            ..Default::default()
                        }),
                        prev_kv: prev(v.mod_revision),
                    },
                };
                found.push((v.mod_revision, v.sub, event));
            }
        }
        found.sort_by_key(|(rev, sub, _)| (*rev, *sub));
        Ok(found.into_iter().map(|(_, _, e)| e).collect())
    }
}
