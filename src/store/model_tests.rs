//! Property test: the store against a naive model of etcd's MVCC, on random request sequences.
//!
//! The model keeps every write ever made, per key, and answers each request by brute force
//! (linear scans, no compaction of its own, errors decided up front). Random sequences of
//! put / delete / range / txn (nested, with random compares) / compact / lease-revoke deletes /
//! watch catch-up over four keys must give, request by request, the same response or error,
//! the same events, and the same revisions.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{LeaseIndex, Store, StoreError};
use crate::proto::etcdserverpb::compare::TargetUnion;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::proto::mvccpb::{event::EventType, Event, KeyValue};

/// Leases 1 and 2 exist, 3 does not.
struct Leases;
impl LeaseIndex for Leases {
    fn lease_exists(&self, id: i64) -> bool {
        id == 1 || id == 2
    }
}

// ---------------------------------------------------------------------------------------------
// Generators: proto requests over keys a..d, with every option. Two keys are longer than the
// 15 bytes a key map's node holds inline, so both of a key's forms meet in one map.

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(|k| k.as_bytes().to_vec()),
        4 => prop::sample::select(vec!["b-longer-than-inline", "c-longer-than-inline"])
            .prop_map(|k| k.as_bytes().to_vec()),
        1 => Just(Vec::new()),
    ]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["", "", "", "\0", "a", "b", "c", "d", "e"])
        .prop_map(|e| e.as_bytes().to_vec())
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["", "0", "1", "2"]).prop_map(|v| v.as_bytes().to_vec())
}

fn put_req() -> impl Strategy<Value = PutRequest> {
    (
        key(),
        value(),
        prop::sample::select(vec![0i64, 0, 1, 2, 3]),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(key, value, lease, prev_kv, ignore_value, ignore_lease)| PutRequest {
                key,
                value,
                lease,
                prev_kv,
                ignore_value,
                ignore_lease,
            },
        )
}

fn delete_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

/// `revision` is drawn small; the test maps it relative to the current revision.
fn range_req() -> impl Strategy<Value = RangeRequest> {
    let filters = prop::sample::select(vec![0i64, 0, 0, 2, 4, 6]);
    // Mostly multi-key ranges: limits, sorts and filters need several keys to matter.
    let end = prop::sample::select(vec!["", "\0", "\0", "c", "d", "e", "e"])
        .prop_map(|e| e.as_bytes().to_vec());
    (
        (key(), end, 0..4i64, -1..6i64),
        (
            0..4i32,
            0..6i32,
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.1),
        ),
        (filters.clone(), filters.clone(), filters.clone(), filters),
    )
        .prop_map(
            |(
                (key, range_end, limit, revision),
                (sort_order, sort_target, keys_only, count_only),
                (min_mod_revision, max_mod_revision, min_create_revision, max_create_revision),
            )| RangeRequest {
                key,
                range_end,
                limit,
                revision,
                sort_order,
                sort_target,
                serializable: false,
                keys_only,
                count_only,
                min_mod_revision,
                max_mod_revision,
                min_create_revision,
                max_create_revision,
            },
        )
}

fn compare() -> impl Strategy<Value = Compare> {
    let small = 0..5i64;
    let union = prop_oneof![
        1 => Just(None),
        2 => small.clone().prop_map(|v| Some(TargetUnion::Version(v))),
        2 => small.clone().prop_map(|v| Some(TargetUnion::CreateRevision(v))),
        2 => small.clone().prop_map(|v| Some(TargetUnion::ModRevision(v))),
        2 => value().prop_map(|v| Some(TargetUnion::Value(v))),
        1 => (0..3i64).prop_map(|v| Some(TargetUnion::Lease(v))),
    ];
    (
        key(),
        prop::sample::select(vec!["", "", "", "\0", "c", "e"]),
        0..6i32,
        0..5i32,
        union,
    )
        .prop_map(|(key, range_end, target, result, target_union)| Compare {
            result,
            target,
            key,
            range_end: range_end.as_bytes().to_vec(),
            target_union,
        })
}

fn leaf_op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        3 => put_req().prop_map(Request::RequestPut),
        2 => delete_req().prop_map(Request::RequestDeleteRange),
        2 => range_req().prop_map(|mut r| {
            // Inside a txn, mostly current reads: point-in-time ones are covered by Range.
            r.revision = r.revision.min(0);
            Request::RequestRange(r)
        }),
    ]
    .prop_map(|request| RequestOp {
        request: Some(request),
    })
}

fn txn_req(depth: u32) -> BoxedStrategy<TxnRequest> {
    let op = if depth == 0 {
        leaf_op().boxed()
    } else {
        prop_oneof![
            4 => leaf_op(),
            1 => txn_req(depth - 1).prop_map(|t| RequestOp { request: Some(Request::RequestTxn(t)) }),
        ]
        .boxed()
    };
    (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(op.clone(), 0..4),
        prop::collection::vec(op, 0..4),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum Op {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Range(RangeRequest),
    Txn(TxnRequest),
    /// Compact at `revision - back`.
    Compact(i64),
    DeleteKeys(Vec<Vec<u8>>),
    /// events_between(key, end, revision - back, revision).
    Events(Vec<u8>, Vec<u8>, i64),
    /// The store replaced by its snapshot, encoded and decoded (a restart, a catch-up).
    Restore,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => put_req().prop_map(Op::Put),
        2 => delete_req().prop_map(Op::Delete),
        4 => range_req().prop_map(Op::Range),
        4 => txn_req(1).prop_map(Op::Txn),
        1 => (-1..8i64).prop_map(Op::Compact),
        1 => prop::collection::vec(key(), 0..4).prop_map(Op::DeleteKeys),
        2 => (key(), range_end(), 0..10i64).prop_map(|(k, e, b)| Op::Events(k, e, b)),
        1 => Just(Op::Restore),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model.

/// One write to a key: its revision and the value and lease put, or `None` for a delete.
#[derive(Debug, Clone)]
struct Write {
    rev: i64,
    value: Option<(Vec<u8>, i64)>,
}

#[derive(Default)]
struct Model {
    rev: i64,
    compacted: i64,
    writes: BTreeMap<Vec<u8>, Vec<Write>>,
    /// Every event ever produced, in order.
    log: Vec<Event>,
}

/// The key-range convention, written out.
fn in_range(k: &[u8], key: &[u8], end: &[u8]) -> bool {
    match end {
        [] => k == key,
        [0] => k >= key,
        _ => k >= key && k < end,
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Model {
    /// The key's value at `rev`, derived from scratch from its writes.
    fn at(&self, k: &[u8], rev: i64) -> Option<KeyValue> {
        let upto: Vec<&Write> = self
            .writes
            .get(k)?
            .iter()
            .filter(|w| w.rev <= rev)
            .collect();
        let last = upto.last()?;
        let (value, lease) = last.value.clone()?;
        let run: Vec<&&Write> = upto
            .iter()
            .rev()
            .take_while(|w| w.value.is_some())
            .collect();
        Some(KeyValue {
            key: k.to_vec(),
            create_revision: run.last().map_or(0, |w| w.rev),
            mod_revision: last.rev,
            version: run.len() as i64,
            value,
            lease,
        })
    }

    fn live(&self, key: &[u8], end: &[u8], rev: i64) -> Vec<KeyValue> {
        self.writes
            .keys()
            .filter(|k| in_range(k, key, end))
            .filter_map(|k| self.at(k, rev))
            .collect()
    }

    fn write(
        &mut self,
        k: &[u8],
        rev: i64,
        value: Option<(Vec<u8>, i64)>,
        events: &mut Vec<Event>,
    ) {
        let before = self.at(k, rev);
        self.writes
            .entry(k.to_vec())
            .or_default()
            .push(Write { rev, value });
        let event = match self.at(k, rev) {
            Some(kv) => Event {
                r#type: EventType::Put as i32,
                prev_kv: if kv.version == 1 {
                    None
                } else {
                    self.at(k, rev - 1)
                },
                kv: Some(kv),
            },
            None => {
                assert!(before.is_some(), "the model deletes only live keys");
                Event {
                    r#type: EventType::Delete as i32,
                    kv: Some(KeyValue {
                        key: k.to_vec(),
                        mod_revision: rev,
                        ..Default::default()
                    }),
                    prev_kv: self.at(k, rev - 1),
                }
            }
        };
        events.push(event);
    }

    fn check_put(&self, p: &PutRequest, lease_first: bool) -> Result<(), StoreError> {
        if p.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if p.ignore_value && !p.value.is_empty() {
            return Err(StoreError::ValueProvided);
        }
        if p.ignore_lease && p.lease != 0 {
            return Err(StoreError::LeaseProvided);
        }
        let lease_missing = p.lease != 0 && !Leases.lease_exists(p.lease);
        let key_missing = (p.ignore_value || p.ignore_lease) && self.at(&p.key, self.rev).is_none();
        match (lease_first, lease_missing, key_missing) {
            (true, true, _) | (false, true, false) => Err(StoreError::LeaseNotFound),
            (_, _, true) => Err(StoreError::KeyNotFound),
            _ => Ok(()),
        }
    }

    /// A put at `rev` (the batch's revision).
    fn put(&mut self, p: &PutRequest, rev: i64, events: &mut Vec<Event>) -> PutResponse {
        let prev = self.at(&p.key, rev);
        let value = match (&prev, p.ignore_value) {
            (Some(kv), true) => kv.value.clone(),
            _ => p.value.clone(),
        };
        let lease = match (&prev, p.ignore_lease) {
            (Some(kv), true) => kv.lease,
            _ => p.lease,
        };
        self.write(&p.key, rev, Some((value, lease)), events);
        PutResponse {
            header: None,
            prev_kv: prev.filter(|_| p.prev_kv),
        }
    }

    fn delete(
        &mut self,
        d: &DeleteRangeRequest,
        rev: i64,
        events: &mut Vec<Event>,
    ) -> DeleteRangeResponse {
        let doomed = self.live(&d.key, &d.range_end, rev);
        for kv in &doomed {
            self.write(&kv.key, rev, None, events);
        }
        DeleteRangeResponse {
            header: None,
            deleted: doomed.len() as i64,
            prev_kvs: if d.prev_kv { doomed } else { Vec::new() },
        }
    }

    fn range(&self, r: &RangeRequest, current: i64) -> Result<RangeResponse, StoreError> {
        if r.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if !(0..=4).contains(&r.sort_target) {
            return Err(StoreError::InvalidSortOption);
        }
        if r.revision > current {
            return Err(StoreError::FutureRevision);
        }
        let rev = if r.revision <= 0 { current } else { r.revision };
        if rev < self.compacted {
            return Err(StoreError::Compacted);
        }
        let all = self.live(&r.key, &r.range_end, rev);
        let count = all.len() as i64;
        if r.count_only {
            return Ok(RangeResponse {
                header: None,
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        let filtered = r.min_mod_revision != 0
            || r.max_mod_revision != 0
            || r.min_create_revision != 0
            || r.max_create_revision != 0;
        // etcd fetches only limit+1 keys (in key order) unless it sorts or filters.
        let mut kvs: Vec<KeyValue> = if r.sort_order == 0 && !filtered && r.limit > 0 {
            all.into_iter().take(r.limit as usize + 1).collect()
        } else {
            all
        };
        kvs.retain(|kv| {
            !(r.min_mod_revision != 0 && kv.mod_revision < r.min_mod_revision
                || r.max_mod_revision != 0 && kv.mod_revision > r.max_mod_revision
                || r.min_create_revision != 0 && kv.create_revision < r.min_create_revision
                || r.max_create_revision != 0 && kv.create_revision > r.max_create_revision)
        });
        let order = if r.sort_order == 0 && r.sort_target != 0 {
            1
        } else {
            r.sort_order
        };
        let target = |kv: &KeyValue| -> (Vec<u8>, i64) {
            match r.sort_target {
                1 => (Vec::new(), kv.version),
                2 => (Vec::new(), kv.create_revision),
                3 => (Vec::new(), kv.mod_revision),
                4 => (kv.value.clone(), 0),
                _ => (kv.key.clone(), 0),
            }
        };
        // Stable sorts: ties stay in key order.
        if order == 1 {
            kvs.sort_by_key(target);
        } else if order == 2 {
            kvs.sort_by_key(|kv| std::cmp::Reverse(target(kv)));
        }
        let more = r.limit > 0 && kvs.len() as i64 > r.limit;
        if more {
            kvs.truncate(r.limit as usize);
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        Ok(RangeResponse {
            header: None,
            kvs,
            more,
            count,
        })
    }

    fn compare(&self, c: &Compare) -> bool {
        let kvs = self.live(&c.key, &c.range_end, self.rev);
        if kvs.is_empty() && c.target == 3 {
            return false;
        }
        let zero = [KeyValue::default()];
        let kvs: &[KeyValue] = if kvs.is_empty() { &zero } else { &kvs };
        kvs.iter().all(|kv| {
            let u = c.target_union.clone();
            let ord = match c.target {
                0 => kv.version.cmp(&if let Some(TargetUnion::Version(v)) = u {
                    v
                } else {
                    0
                }),
                1 => kv
                    .create_revision
                    .cmp(&if let Some(TargetUnion::CreateRevision(v)) = u {
                        v
                    } else {
                        0
                    }),
                2 => kv
                    .mod_revision
                    .cmp(&if let Some(TargetUnion::ModRevision(v)) = u {
                        v
                    } else {
                        0
                    }),
                3 => kv.value.cmp(&if let Some(TargetUnion::Value(v)) = u {
                    v
                } else {
                    Vec::new()
                }),
                4 => kv.lease.cmp(&if let Some(TargetUnion::Lease(v)) = u {
                    v
                } else {
                    0
                }),
                _ => std::cmp::Ordering::Equal,
            };
            match c.result {
                0 => ord.is_eq(),
                1 => ord.is_gt(),
                2 => ord.is_lt(),
                3 => ord.is_ne(),
                _ => true,
            }
        })
    }

    /// Static txn checks: counts are never exceeded here; keys, put flags, empty ops.
    fn check_static(&self, t: &TxnRequest) -> Result<(), StoreError> {
        if t.compare.iter().any(|c| c.key.is_empty()) {
            return Err(StoreError::EmptyKey);
        }
        for op in t.success.iter().chain(&t.failure) {
            match &op.request {
                Some(Request::RequestPut(p)) => {
                    if p.key.is_empty() {
                        return Err(StoreError::EmptyKey);
                    }
                    if p.ignore_value && !p.value.is_empty() {
                        return Err(StoreError::ValueProvided);
                    }
                    if p.ignore_lease && p.lease != 0 {
                        return Err(StoreError::LeaseProvided);
                    }
                }
                Some(Request::RequestDeleteRange(d)) if d.key.is_empty() => {
                    return Err(StoreError::EmptyKey)
                }
                Some(Request::RequestRange(r)) => {
                    if r.key.is_empty() {
                        return Err(StoreError::EmptyKey);
                    }
                    if !(0..=4).contains(&r.sort_target) {
                        return Err(StoreError::InvalidSortOption);
                    }
                }
                Some(Request::RequestTxn(n)) => self.check_static(n)?,
                None => return Err(StoreError::KeyNotFound),
                _ => {}
            }
        }
        Ok(())
    }

    /// The duplicate-key rule, as sets: returns (puts, deleted spans) of a branch.
    #[allow(clippy::type_complexity)]
    fn duplicates(
        ops: &[RequestOp],
    ) -> Result<(Vec<Vec<u8>>, Vec<(Vec<u8>, Vec<u8>)>), StoreError> {
        // A deleted span as etcd's check reads it: an end is literal, so "\0" spans nothing.
        let covers = |dels: &[(Vec<u8>, Vec<u8>)], k: &[u8]| {
            dels.iter().any(|(s, e)| {
                if e.is_empty() {
                    k == s.as_slice()
                } else {
                    s.as_slice() <= k && k < e.as_slice()
                }
            })
        };
        let mut dels: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for op in ops {
            if let Some(Request::RequestDeleteRange(d)) = &op.request {
                dels.push((d.key.clone(), d.range_end.clone()));
            }
        }
        let mut puts: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            if let Some(Request::RequestTxn(t)) = &op.request {
                let (then_puts, then_dels) = Self::duplicates(&t.success)?;
                let (else_puts, else_dels) = Self::duplicates(&t.failure)?;
                let earlier = puts.clone();
                for k in &then_puts {
                    if earlier.contains(k) || covers(&dels, k) {
                        return Err(StoreError::DuplicateKey);
                    }
                }
                for k in &else_puts {
                    if earlier.contains(k) || covers(&dels, k) {
                        return Err(StoreError::DuplicateKey);
                    }
                }
                puts.extend(then_puts);
                puts.extend(else_puts);
                dels.extend(then_dels);
                dels.extend(else_dels);
            }
        }
        for op in ops {
            if let Some(Request::RequestPut(p)) = &op.request {
                if puts.contains(&p.key) || covers(&dels, &p.key) {
                    return Err(StoreError::DuplicateKey);
                }
                puts.push(p.key.clone());
            }
        }
        Ok((puts, dels))
    }

    /// Branch choice of every txn on the way, against the pre-txn state; then the checks.
    fn plan(&self, t: &TxnRequest, puts: &mut Vec<PutRequest>, ranges: &mut Vec<i64>) -> bool {
        let ok = t.compare.iter().all(|c| self.compare(c));
        for op in if ok { &t.success } else { &t.failure } {
            match &op.request {
                Some(Request::RequestPut(p)) => puts.push(p.clone()),
                Some(Request::RequestRange(r)) => ranges.push(r.revision),
                Some(Request::RequestTxn(n)) => {
                    self.plan(n, puts, ranges);
                }
                _ => {}
            }
        }
        ok
    }

    fn txn(&mut self, t: &TxnRequest) -> Result<(TxnResponse, Vec<Event>), StoreError> {
        self.check_static(t)?;
        Self::duplicates(&t.success)?;
        Self::duplicates(&t.failure)?;
        let (mut puts, mut ranges) = (Vec::new(), Vec::new());
        self.plan(t, &mut puts, &mut ranges);
        for p in &puts {
            self.check_put(p, false)?;
        }
        for r in ranges {
            if r > self.rev {
                return Err(StoreError::FutureRevision);
            }
            // etcd's store starts at compact revision -1, not 0.
            let first = if self.compacted == 0 {
                -1
            } else {
                self.compacted
            };
            if r != 0 && r < first {
                return Err(StoreError::Compacted);
            }
        }
        // Compares must all see the pre-txn state: answer them from a frozen copy.
        let frozen = Model {
            rev: self.rev,
            compacted: self.compacted,
            writes: self.writes.clone(),
            log: Vec::new(),
        };
        let mut events = Vec::new();
        let mut resp = self.execute(&frozen, t, self.rev + 1, &mut events);
        resp.header = None;
        self.commit(events.clone());
        Ok((resp, events))
    }

    fn execute(
        &mut self,
        frozen: &Model,
        t: &TxnRequest,
        rev: i64,
        events: &mut Vec<Event>,
    ) -> TxnResponse {
        let ok = t.compare.iter().all(|c| frozen.compare(c));
        let mut responses = Vec::new();
        for op in if ok { &t.success } else { &t.failure } {
            // What reads see so far: the txn's revision once it has written.
            let seen = |events: &Vec<Event>| if events.is_empty() { rev - 1 } else { rev };
            let response = match &op.request {
                Some(Request::RequestRange(r)) => {
                    let mut resp = self
                        .range(r, seen(events))
                        .expect("checked before executing");
                    resp.header = header(seen(events));
                    Response::ResponseRange(resp)
                }
                Some(Request::RequestPut(p)) => {
                    let mut resp = self.put(p, rev, events);
                    resp.header = header(rev);
                    Response::ResponsePut(resp)
                }
                Some(Request::RequestDeleteRange(d)) => {
                    let mut resp = self.delete(d, rev, events);
                    resp.header = header(seen(events));
                    Response::ResponseDeleteRange(resp)
                }
                Some(Request::RequestTxn(n)) => {
                    Response::ResponseTxn(self.execute(frozen, n, rev, events))
                }
                None => unreachable!("rejected by the static checks"),
            };
            responses.push(ResponseOp {
                response: Some(response),
            });
        }
        TxnResponse {
            header: Some(ResponseHeader::default()),
            succeeded: ok,
            responses,
        }
    }

    fn commit(&mut self, events: Vec<Event>) {
        if !events.is_empty() {
            self.rev += 1;
            self.log.extend(events);
        }
    }

    fn events_between(
        &self,
        key: &[u8],
        end: &[u8],
        start: i64,
        last: i64,
    ) -> Result<Vec<Event>, StoreError> {
        if start < self.compacted {
            return Err(StoreError::Compacted);
        }
        let c = self.compacted;
        let key_of = |e: &Event| e.kv.as_ref().expect("events carry a kv").key.clone();
        // At the compact revision only what compaction kept: each key's last version there,
        // a DELETE included (etcd #19179).
        let last_at_c = |i: usize| {
            let k = key_of(&self.log[i]);
            !self.log[i + 1..].iter().any(|later| {
                later
                    .kv
                    .as_ref()
                    .is_some_and(|kv| kv.mod_revision == c && kv.key == k)
            })
        };
        Ok(self
            .log
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                let kv = e.kv.as_ref().expect("events carry a kv");
                let rev = kv.mod_revision;
                in_range(&kv.key, key, end)
                    && start <= rev
                    && rev <= last
                    && (rev > c || last_at_c(*i))
            })
            .map(|(_, e)| {
                let mut e = e.clone();
                if e.kv.as_ref().is_some_and(|kv| kv.mod_revision - 1 < c) {
                    e.prev_kv = None;
                }
                e
            })
            .collect())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..60)) {
        // Goal: every response, error, event and revision of the store equals the model's.
        let mut s = Store::new();
        let mut m = Model { rev: 1, ..Default::default() };
        for op in ops {
            match op {
                Op::Put(p) => {
                    let want = m.check_put(&p, true).map(|()| {
                        let mut events = Vec::new();
                        let resp = m.put(&p, m.rev + 1, &mut events);
                        m.commit(events.clone());
                        (resp, events)
                    });
                    prop_assert_eq!(s.put(&p, &Leases), want);
                }
                Op::Delete(d) => {
                    let want = if d.key.is_empty() {
                        Err(StoreError::EmptyKey)
                    } else {
                        let mut events = Vec::new();
                        let resp = m.delete(&d, m.rev + 1, &mut events);
                        m.commit(events.clone());
                        Ok((resp, events))
                    };
                    prop_assert_eq!(s.delete_range(&d), want);
                }
                Op::Range(mut r) => {
                    // -1: a negative revision (current); 0: current; 1: one ahead (future);
                    // n > 1: n - 2 revisions back.
                    r.revision = match r.revision {
                        ..=0 => r.revision,
                        1 => m.rev + 1,
                        n => m.rev - (n - 2),
                    };
                    prop_assert_eq!(s.range(&r), m.range(&r, m.rev));
                }
                Op::Txn(t) => {
                    let want = m.txn(&t);
                    prop_assert_eq!(s.txn(&t, &Leases), want);
                }
                Op::Compact(back) => {
                    let rev = m.rev - back;
                    let want = if rev <= m.compacted {
                        Err(StoreError::Compacted)
                    } else if rev > m.rev {
                        Err(StoreError::FutureRevision)
                    } else {
                        m.compacted = rev;
                        Ok(())
                    };
                    prop_assert_eq!(s.compact(rev), want);
                }
                Op::DeleteKeys(keys) => {
                    let mut live: Vec<Vec<u8>> =
                        keys.iter().filter(|k| m.at(k, m.rev).is_some()).cloned().collect();
                    live.sort();
                    live.dedup();
                    let mut events = Vec::new();
                    for k in &live {
                        m.write(k, m.rev + 1, None, &mut events);
                    }
                    m.commit(events.clone());
                    prop_assert_eq!(s.delete_keys(&keys), events);
                }
                Op::Events(key, end, back) => {
                    let start = m.rev - back;
                    prop_assert_eq!(
                        s.events_between(&key, &end, start, m.rev),
                        m.events_between(&key, &end, start, m.rev)
                    );
                }
                Op::Restore => {
                    let bytes = bincode::serialize(&s).expect("a store serializes");
                    s = bincode::deserialize(&bytes).expect("and deserializes");
                }
            }
            prop_assert_eq!((s.revision(), s.compact_revision()), (m.rev, m.compacted));
            prop_assert_eq!(s.approximate_size_bytes(), s.recounted_size_bytes());
        }
    }
}
