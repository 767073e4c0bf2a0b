//! Property test: the store against a naive model of etcd's MVCC, on random operation sequences.
//!
//! The model keeps, per key, the full list of (revision, value-or-deletion) and answers each
//! request by brute force. Every response and every error of the store must equal the model's.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::proto::etcdserverpb::*;

struct AnyLease;
impl LeaseIndex for AnyLease {
    fn lease_exists(&self, _: i64) -> bool {
        true
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8, Option<u8>),
    Get {
        key: u8,
        end: Option<u8>,
        rev_back: i64,
        limit: i64,
        sort: (i32, i32),
    },
    Compact(i64),
    /// If(VALUE(k) == v) Then(Put(k, new), Get(other)) Else(Get(k), Delete(other)).
    CasValue {
        key: u8,
        expect: u8,
        new: u8,
        other: u8,
    },
    /// If(VERSION(k) > n) Then(Put(other, new)) Else(Put(k, new)).
    VersionGate {
        key: u8,
        above: i64,
        new: u8,
        other: u8,
    },
}

const KEYS: &[&str] = &["a", "b", "c", "d"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8, 0..3u8).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0..4u8, prop::option::of(0..5u8)).prop_map(|(k, e)| Op::Delete(k, e)),
        4 => (0..4u8, prop::option::of(0..5u8), 0..6i64, 0..3i64, (0..3i32, 0..5i32))
            .prop_map(|(key, end, rev_back, limit, sort)| Op::Get { key, end, rev_back, limit, sort }),
        1 => (0..8i64).prop_map(Op::Compact),
        2 => (0..4u8, 0..3u8, 0..3u8, 0..4u8)
            .prop_map(|(key, expect, new, other)| Op::CasValue { key, expect, new, other }),
        2 => (0..4u8, 0..3i64, 0..3u8, 0..4u8)
            .prop_map(|(key, above, new, other)| Op::VersionGate { key, above, new, other }),
    ]
}

fn end_key(e: Option<u8>) -> Vec<u8> {
    match e {
        None => Vec::new(),
        Some(4) => vec![0],
        Some(i) => KEYS[i as usize].into(),
    }
}

/// Each write ever made to one key: (revision, value or `None` for a delete).
type KeyHistory = Vec<(i64, Option<Vec<u8>>)>;

/// The naive model: every write ever made, per key.
#[derive(Default)]
struct Model {
    rev: i64,
    compacted: i64,
    hist: BTreeMap<Vec<u8>, KeyHistory>,
}

impl Model {
    fn at(&self, k: &[u8], rev: i64) -> Option<mvccpb::KeyValue> {
        let h = self.hist.get(k)?;
        let upto: Vec<_> = h.iter().filter(|(r, _)| *r <= rev).collect();
        let (mod_rev, v) = upto.last()?;
        let v = v.as_ref()?;
        // Creation: the first put after the last delete.
        let mut create = *mod_rev;
        let mut version = 0;
        for (r, val) in upto.iter().rev() {
            if val.is_none() {
                break;
            }
            create = *r;
            version += 1;
        }
        Some(mvccpb::KeyValue {
            key: k.to_vec(),
            create_revision: create,
            mod_revision: *mod_rev,
            version,
            value: v.clone(),
            lease: 0,
        })
    }

    fn in_range(k: &[u8], key: &[u8], end: &[u8]) -> bool {
        if end.is_empty() {
            k == key
        } else if end == [0] {
            k >= key
        } else {
            k >= key && k < end
        }
    }

    fn live(&self, key: &[u8], end: &[u8], rev: i64) -> Vec<mvccpb::KeyValue> {
        self.hist
            .keys()
            .filter(|k| Self::in_range(k, key, end))
            .filter_map(|k| self.at(k, rev))
            .collect()
    }
}

use crate::proto::mvccpb;

fn k(i: u8) -> Vec<u8> {
    KEYS[i as usize].into()
}

fn put_op(key: Vec<u8>, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

fn get_op(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key,
            ..Default::default()
        })),
    }
}

fn delete_op(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key,
                ..Default::default()
            },
        )),
    }
}

impl Model {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.hist
            .entry(key)
            .or_default()
            .push((self.rev, Some(value)));
    }

    fn delete(&mut self, key: Vec<u8>) -> bool {
        if self.at(&key, self.rev).is_none() {
            return false;
        }
        self.hist.entry(key).or_default().push((self.rev, None));
        true
    }

    /// The kvs a txn's Get sees: model state including the txn's own earlier writes.
    fn get(&self, key: &[u8]) -> Vec<mvccpb::KeyValue> {
        self.at(key, self.rev).into_iter().collect()
    }
}

fn range_kvs(r: &ResponseOp) -> Vec<mvccpb::KeyValue> {
    match &r.response {
        Some(response_op::Response::ResponseRange(rr)) => rr.kvs.clone(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut s = Store::new();
        let mut m = Model { rev: 1, ..Default::default() };
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let key: Vec<u8> = KEYS[k as usize].into();
                    let value = vec![b'0' + v];
                    let prev = m.at(&key, m.rev);
                    let (resp, _) = s.put(&PutRequest { key: key.clone(), value: value.clone(), prev_kv: true, ..Default::default() }, &AnyLease).unwrap();
                    prop_assert_eq!(resp.prev_kv, prev);
                    m.rev += 1;
                    m.hist.entry(key).or_default().push((m.rev, Some(value)));
                }
                Op::Delete(k, e) => {
                    let key: Vec<u8> = KEYS[k as usize].into();
                    let end = end_key(e);
                    let doomed = m.live(&key, &end, m.rev);
                    let (resp, _) = s.delete_range(&DeleteRangeRequest { key: key.clone(), range_end: end, prev_kv: true }).unwrap();
                    prop_assert_eq!(&resp.prev_kvs, &doomed);
                    if !doomed.is_empty() {
                        m.rev += 1;
                        for kv in doomed {
                            m.hist.entry(kv.key).or_default().push((m.rev, None));
                        }
                    }
                }
                Op::Get { key, end, rev_back, limit, sort } => {
                    let key: Vec<u8> = KEYS[key as usize].into();
                    let end = end_key(end);
                    let rev = if rev_back == 0 { 0 } else { m.rev - rev_back + 1 };
                    let req = RangeRequest { key: key.clone(), range_end: end.clone(), revision: rev, limit, sort_order: sort.0, sort_target: sort.1, ..Default::default() };
                    let got = s.range(&req);
                    let at = if rev <= 0 { m.rev } else { rev };
                    if rev > m.rev {
                        prop_assert_eq!(got, Err(StoreError::FutureRevision));
                    } else if rev > 0 && rev < m.compacted {
                        prop_assert_eq!(got, Err(StoreError::Compacted));
                    } else {
                        let mut kvs = m.live(&key, &end, at);
                        let count = kvs.len() as i64;
                        let target = |kv: &mvccpb::KeyValue| -> Vec<u8> {
                            match sort.1 {
                                1 => kv.version.to_be_bytes().to_vec(),
                                2 => kv.create_revision.to_be_bytes().to_vec(),
                                3 => kv.mod_revision.to_be_bytes().to_vec(),
                                4 => kv.value.clone(),
                                _ => kv.key.clone(),
                            }
                        };
                        let order = if sort.0 == 0 && sort.1 != 0 { 1 } else { sort.0 };
                        if order == 1 { kvs.sort_by_key(|kv| target(kv)); }
                        if order == 2 { kvs.sort_by_key(|kv| std::cmp::Reverse(target(kv))); }
                        let more = limit > 0 && kvs.len() as i64 > limit;
                        if more { kvs.truncate(limit as usize); }
                        let got = got.unwrap();
                        // Ties in the sort target may legitimately come in either order.
                        let mut g: Vec<_> = got.kvs.iter().map(target).collect();
                        let mut w: Vec<_> = kvs.iter().map(target).collect();
                        prop_assert_eq!(&g, &w);
                        g.clear(); w.clear();
                        prop_assert_eq!((got.count, got.more), (count, more));
                        if sort.1 == 0 || order == 0 {
                            prop_assert_eq!(got.kvs, kvs);
                        }
                    }
                }
                Op::Compact(back) => {
                    let rev = m.rev - back;
                    let got = s.compact(rev);
                    if rev <= m.compacted {
                        prop_assert_eq!(got, Err(StoreError::Compacted));
                    } else if rev > m.rev {
                        prop_assert_eq!(got, Err(StoreError::FutureRevision));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        m.compacted = rev;
                    }
                }
                Op::CasValue { key, expect, new, other } => {
                    let want = vec![b'0' + expect];
                    let holds = m.at(&k(key), m.rev).is_some_and(|kv| kv.value == want);
                    let req = TxnRequest {
                        compare: vec![Compare {
                            key: k(key),
                            target: compare::CompareTarget::Value as i32,
                            result: compare::CompareResult::Equal as i32,
                            target_union: Some(compare::TargetUnion::Value(want)),
                            range_end: Vec::new(),
                        }],
                        success: vec![put_op(k(key), vec![b'0' + new]), get_op(k(other))],
                        failure: vec![get_op(k(key)), delete_op(k(other))],
                    };
                    let (resp, _) = s.txn(&req, &AnyLease).unwrap();
                    prop_assert_eq!(resp.succeeded, holds);
                    // Every write of the txn lands at the next revision, reads see earlier ones.
                    m.rev += 1;
                    let wrote = if holds {
                        m.put(k(key), vec![b'0' + new]);
                        prop_assert_eq!(range_kvs(&resp.responses[1]), m.get(&k(other)));
                        true
                    } else {
                        prop_assert_eq!(range_kvs(&resp.responses[0]), m.get(&k(key)));
                        m.delete(k(other))
                    };
                    if !wrote {
                        m.rev -= 1;
                    }
                }
                Op::VersionGate { key, above, new, other } => {
                    let version = m.at(&k(key), m.rev).map_or(0, |kv| kv.version);
                    let holds = version > above;
                    let req = TxnRequest {
                        compare: vec![Compare {
                            key: k(key),
                            target: compare::CompareTarget::Version as i32,
                            result: compare::CompareResult::Greater as i32,
                            target_union: Some(compare::TargetUnion::Version(above)),
                            range_end: Vec::new(),
                        }],
                        success: vec![put_op(k(other), vec![b'0' + new])],
                        failure: vec![put_op(k(key), vec![b'0' + new])],
                    };
                    let (resp, _) = s.txn(&req, &AnyLease).unwrap();
                    prop_assert_eq!(resp.succeeded, holds);
                    m.rev += 1;
                    if holds {
                        m.put(k(other), vec![b'0' + new]);
                    } else {
                        m.put(k(key), vec![b'0' + new]);
                    }
                }
            }
            prop_assert_eq!(s.revision(), m.rev);
        }
    }
}
