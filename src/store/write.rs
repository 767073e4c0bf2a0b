//! Put, DeleteRange and the lease-revoke delete: the store's mutations, and the `Batch` that
//! gathers the writes of one revision.
//!
//! A request opens a batch at `revision + 1`, applies its ops in order (a txn applies many), and
//! commits: the store moves to the batch's revision only if something was written. Ops inside a
//! batch see the batch's earlier writes, as etcd's write txn does.
//!
//! Events: a PUT carries the new kv; a DELETE carries only `key` and `mod_revision`. `prev_kv`
//! is, as etcd's watch defines it, the key's value at `mod_revision - 1`, and none for a create.

use super::key_history::{Live, Version, Visible};
use super::{validate, KeyRange, LeaseIndex, Store, StoreError};
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
};
use crate::proto::mvccpb::{event::EventType, Event, KeyValue};

/// The writes of one revision in progress.
pub(crate) struct Batch {
    /// The revision being written: the store's revision + 1.
    revision: i64,
    next_sub: u32,
    /// One per version written, in op order.
    events: Vec<Event>,
}

impl Batch {
    /// The revision reads inside the batch see: its own once it has written, the store's before.
    pub fn read_revision(&self) -> i64 {
        if self.events.is_empty() {
            self.revision - 1
        } else {
            self.revision
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }
}

impl Store {
    pub(crate) fn begin(&self) -> Batch {
        Batch {
            revision: self.revision + 1,
            next_sub: 0,
            events: Vec::new(),
        }
    }

    /// Ends a batch: the revision exists only if something was written at it.
    pub(crate) fn commit(&mut self, batch: Batch) -> Vec<Event> {
        if !batch.events.is_empty() {
            self.revision = batch.revision;
        }
        batch.events
    }

    /// The live value of `key` at `revision`.
    pub(crate) fn get_at(&self, key: &[u8], revision: i64) -> Option<Visible<'_>> {
        self.keys.get(key)?.at(revision)
    }

    /// etcd checks a plain put's lease first, then the key its `ignore_*` flags need.
    pub(crate) fn check_lease(req: &PutRequest, leases: &dyn LeaseIndex) -> Result<(), StoreError> {
        if req.lease != 0 && !leases.lease_exists(req.lease) {
            return Err(StoreError::LeaseNotFound);
        }
        Ok(())
    }

    /// `ignore_value` / `ignore_lease` take from the current value, so the key must be live.
    pub(crate) fn check_previous(&self, req: &PutRequest) -> Result<(), StoreError> {
        if (req.ignore_value || req.ignore_lease) && self.get_at(&req.key, self.revision).is_none()
        {
            return Err(StoreError::KeyNotFound);
        }
        Ok(())
    }

    fn push_version(&mut self, batch: &mut Batch, key: &[u8], live: Option<Live>) {
        let version = Version {
            mod_revision: batch.revision,
            sub: batch.next_sub,
            live,
        };
        batch.next_sub += 1;
        self.size_bytes += super::version_bytes(key, version.live.as_ref());
        self.keys.entry(key.into()).or_default().push(version);
    }

    /// Writes an already checked put into `batch`.
    pub(crate) fn put_in(&mut self, batch: &mut Batch, req: &PutRequest) -> PutResponse {
        let rev = batch.revision;
        let prev = self.get_at(&req.key, rev);
        let live = Live {
            create_revision: prev.map_or(rev, |p| p.live.create_revision),
            version: prev.map_or(1, |p| p.live.version + 1),
            value: match (prev, req.ignore_value) {
                (Some(p), true) => p.live.value.clone(),
                _ => req.value.as_slice().into(),
            },
            lease: match (prev, req.ignore_lease) {
                (Some(p), true) => p.live.lease,
                _ => req.lease,
            },
        };
        let prev_kv = match prev {
            Some(p) if req.prev_kv => Some(p.to_kv(&req.key)),
            _ => None,
        };
        // A create has no previous value for watchers, even if the key lived before the txn.
        let event_prev = match prev {
            Some(_) => self.get_at(&req.key, rev - 1).map(|p| p.to_kv(&req.key)),
            None => None,
        };
        let kv = Visible {
            mod_revision: rev,
            live: &live,
        }
        .to_kv(&req.key);
        self.push_version(batch, &req.key, Some(live));
        batch.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: event_prev,
        });
        PutResponse {
            header: None,
            prev_kv,
        }
    }

    /// Deletes, in `batch`, every key of the range live as the batch sees it.
    pub(crate) fn delete_in(
        &mut self,
        batch: &mut Batch,
        req: &DeleteRangeRequest,
    ) -> DeleteRangeResponse {
        let range = KeyRange::new(&req.key, &req.range_end);
        // Values are copied out only when the caller asked for them.
        let mut doomed = Vec::new();
        let mut prev_kvs = Vec::new();
        for (key, visible) in self.live_at(&range, batch.revision) {
            if req.prev_kv {
                prev_kvs.push(visible.to_kv(key));
            }
            doomed.push(key.to_vec());
        }
        let deleted = doomed.len() as i64;
        for key in &doomed {
            self.tombstone(batch, key);
        }
        DeleteRangeResponse {
            header: None,
            deleted,
            prev_kvs,
        }
    }

    fn tombstone(&mut self, batch: &mut Batch, key: &[u8]) {
        let rev = batch.revision;
        let event_prev = self.get_at(key, rev - 1).map(|p| p.to_kv(key));
        self.push_version(batch, key, None);
        batch.events.push(Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key: key.to_vec(),
                mod_revision: rev,
                ..Default::default()
            }),
            prev_kv: event_prev,
        });
    }

    pub fn put(
        &mut self,
        req: &PutRequest,
        leases: &dyn LeaseIndex,
    ) -> Result<(PutResponse, Vec<Event>), StoreError> {
        validate::put(req)?;
        Self::check_lease(req, leases)?;
        self.check_previous(req)?;
        let mut batch = self.begin();
        let resp = self.put_in(&mut batch, req);
        Ok((resp, self.commit(batch)))
    }

    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, Vec<Event>), StoreError> {
        validate::delete_range(req)?;
        let mut batch = self.begin();
        let resp = self.delete_in(&mut batch, req);
        Ok((resp, self.commit(batch)))
    }

    /// Lease revoke or expiry: deletes the live keys among `keys`, in key order (as etcd sorts
    /// them so every member deletes alike), in one revision; none if no key is live.
    pub fn delete_keys(&mut self, keys: &[Vec<u8>]) -> Vec<Event> {
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut batch = self.begin();
        for key in sorted {
            if self.get_at(key, batch.revision).is_some() {
                self.tombstone(&mut batch, key);
            }
        }
        self.commit(batch)
    }
}
