//! History reads for watchers catching up: events in revision order from stored versions.
//!
//! This walks every key of the range; that is linear in the range's history, which is fine for
//! catch-up (rare, bounded by compaction) but not meant for the hot path.

use super::{KeyRange, Store, StoreError};
use crate::proto::mvccpb::{event::EventType, Event, KeyValue};

impl Store {
    /// Events with `start <= mod_revision <= end` for keys in the range, ordered by revision and
    /// then op order, each with its previous live version when still stored.
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
        let mut out: Vec<(i64, u32, Event)> = Vec::new();
        for (k, versions) in self.keys.range(range.bounds()) {
            for (i, v) in versions.iter().enumerate() {
                if v.mod_revision < start_revision || v.mod_revision > end_revision {
                    continue;
                }
                let prev = if i > 0 {
                    versions[i - 1].kv.clone()
                } else {
                    None
                };
                let event = match &v.kv {
                    Some(kv) => Event {
                        r#type: EventType::Put as i32,
                        kv: Some(kv.clone()),
                        prev_kv: prev,
                    },
                    None => Event {
                        r#type: EventType::Delete as i32,
                        kv: Some(KeyValue {
                            key: k.clone(),
                            mod_revision: v.mod_revision,
                            ..Default::default()
                        }),
                        prev_kv: prev,
                    },
                };
                out.push((v.mod_revision, v.sub, event));
            }
        }
        out.sort_by_key(|(rev, sub, _)| (*rev, *sub));
        Ok(out.into_iter().map(|(_, _, e)| e).collect())
    }
}
