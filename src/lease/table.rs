//! The replicated lease table: lease id -> granted TTL and attached keys.
//!
//! Invariant: a key is attached to at most one lease, the one in its latest live version's
//! `lease` field; `observe` keeps that true by following every applied event.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::proto::mvccpb::{event::EventType, Event};
use crate::store::LeaseIndex;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub ttl_secs: i64,
    pub keys: BTreeSet<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseTable {
    leases: BTreeMap<i64, LeaseRecord>,
}

impl LeaseIndex for LeaseTable {
    fn lease_exists(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }
}

impl LeaseTable {
    pub fn get(&self, id: i64) -> Option<&LeaseRecord> {
        self.leases.get(&id)
    }

    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.leases.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &LeaseRecord)> + '_ {
        self.leases.iter().map(|(id, r)| (*id, r))
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Returns false when the id is taken.
    pub fn grant(&mut self, id: i64, ttl_secs: i64) -> bool {
        if self.leases.contains_key(&id) {
            return false;
        }
        self.leases.insert(
            id,
            LeaseRecord {
                ttl_secs,
                keys: BTreeSet::new(),
            },
        );
        true
    }

    /// Attaches `key` to lease `id`, if the lease exists; for rebuilding the table from a
    /// snapshot in etcd's format, which stores leases without their keys.
    pub fn attach(&mut self, id: i64, key: &[u8]) -> bool {
        match self.leases.get_mut(&id) {
            Some(r) => {
                r.keys.insert(key.to_vec());
                true
            }
            None => false,
        }
    }

    pub fn revoke(&mut self, id: i64) -> Option<LeaseRecord> {
        self.leases.remove(&id)
    }

    /// Follows applied events so each lease knows its keys: a put moves the key to the lease
    /// named in the new version (or none), a delete detaches it.
    pub fn observe(&mut self, events: &[Event]) {
        for ev in events {
            let Some(kv) = ev.kv.as_ref() else { continue };
            if let Some(prev) = ev.prev_kv.as_ref() {
                if prev.lease != 0 {
                    if let Some(r) = self.leases.get_mut(&prev.lease) {
                        r.keys.remove(&kv.key);
                    }
                }
            }
            if ev.r#type == EventType::Put as i32 && kv.lease != 0 {
                if let Some(r) = self.leases.get_mut(&kv.lease) {
                    r.keys.insert(kv.key.clone());
                }
            }
        }
    }
}
