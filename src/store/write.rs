//! Put, DeleteRange and the lease-revoke delete: the store's mutations.
//!
//! Each mutation is written at an explicit revision and sub-revision so a transaction can run
//! several at one revision; the public entry points open and close a revision around one op.

use super::{KeyRange, LeaseIndex, Store, StoreError, Version};
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
};
use crate::proto::mvccpb::{event::EventType, Event, KeyValue};

impl Store {
    /// State-dependent checks of a put, against the current state.
    pub(crate) fn check_put(
        &self,
        req: &PutRequest,
        leases: &dyn LeaseIndex,
    ) -> Result<(), StoreError> {
        if (req.ignore_value || req.ignore_lease) && self.get_at(&req.key, self.revision).is_none()
        {
            return Err(StoreError::KeyNotFound);
        }
        if req.lease != 0 && !leases.lease_exists(req.lease) {
            return Err(StoreError::LeaseNotFound);
        }
        Ok(())
    }

    fn push_version(&mut self, key: &[u8], rev: i64, kv: Option<KeyValue>) {
        let sub = self.next_sub;
        self.next_sub += 1;
        self.keys.entry(key.to_vec()).or_default().push(Version {
            mod_revision: rev,
            sub,
            kv,
        });
    }

    /// Writes a put at revision `rev` (already validated).
    pub(crate) fn put_at(&mut self, req: &PutRequest, rev: i64) -> (PutResponse, Event) {
        let prev = self.get_at(&req.key, rev).cloned();
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: match (&prev, req.ignore_value) {
                (Some(p), true) => p.value.clone(),
                _ => req.value.clone(),
            },
            lease: match (&prev, req.ignore_lease) {
                (Some(p), true) => p.lease,
                _ => req.lease,
            },
        };
        self.push_version(&req.key, rev, Some(kv.clone()));
        let resp = PutResponse {
            header: None,
            prev_kv: if req.prev_kv { prev.clone() } else { None },
        };
        let event = Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: prev,
        };
        (resp, event)
    }

    /// Deletes every live key of the range at revision `rev`.
    pub(crate) fn delete_at(
        &mut self,
        req: &DeleteRangeRequest,
        rev: i64,
    ) -> (DeleteRangeResponse, Vec<Event>) {
        let range = KeyRange::new(&req.key, &req.range_end);
        let doomed = self.scan_at(&range, rev);
        let events = self.tombstone(doomed, rev);
        let resp = DeleteRangeResponse {
            header: None,
            deleted: events.len() as i64,
            prev_kvs: if req.prev_kv {
                events.iter().filter_map(|e| e.prev_kv.clone()).collect()
            } else {
                Vec::new()
            },
        };
        (resp, events)
    }

    fn tombstone(&mut self, doomed: Vec<KeyValue>, rev: i64) -> Vec<Event> {
        doomed
            .into_iter()
            .map(|prev| {
                self.push_version(&prev.key, rev, None);
                Event {
                    r#type: EventType::Delete as i32,
                    kv: Some(KeyValue {
                        key: prev.key.clone(),
                        mod_revision: rev,
                        ..Default::default()
                    }),
                    prev_kv: Some(prev),
                }
            })
            .collect()
    }

    /// Opens the next revision for writing.
    pub(crate) fn begin(&mut self) -> i64 {
        self.next_sub = 0;
        self.revision + 1
    }

    /// Closes a revision: it exists only if something was written at it.
    pub(crate) fn finish(&mut self, rev: i64, wrote: bool) {
        if wrote {
            self.revision = rev;
        }
        self.next_sub = 0;
    }

    pub fn put(
        &mut self,
        req: &PutRequest,
        leases: &dyn LeaseIndex,
    ) -> Result<(PutResponse, Vec<Event>), StoreError> {
        super::validate::put(req)?;
        self.check_put(req, leases)?;
        let rev = self.begin();
        let (resp, event) = self.put_at(req, rev);
        self.finish(rev, true);
        Ok((resp, vec![event]))
    }

    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, Vec<Event>), StoreError> {
        super::validate::delete_range(req)?;
        let rev = self.begin();
        let (resp, events) = self.delete_at(req, rev);
        self.finish(rev, !events.is_empty());
        Ok((resp, events))
    }

    /// Lease revoke: deletes the live keys among `keys` in one revision (none if none live).
    pub fn delete_keys(&mut self, keys: &[Vec<u8>]) -> Vec<Event> {
        let rev = self.begin();
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let doomed: Vec<KeyValue> = sorted
            .into_iter()
            .filter_map(|k| self.get_at(k, rev).cloned())
            .collect();
        let events = self.tombstone(doomed, rev);
        self.finish(rev, !events.is_empty());
        events
    }
}
