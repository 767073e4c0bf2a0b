//! Unit tests of the store's etcd semantics (ETCD_SEMANTICS.md 1.4-1.8), one behaviour each.

use super::*;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::*;
use crate::proto::mvccpb::event::EventType;
use crate::proto::mvccpb::{Event, KeyValue};

/// Only lease 7 exists.
struct Leases;
impl LeaseIndex for Leases {
    fn lease_exists(&self, id: i64) -> bool {
        id == 7
    }
}

fn put_req(k: &str, v: &str) -> PutRequest {
    PutRequest {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    }
}

fn put(s: &mut Store, k: &str, v: &str) -> PutResponse {
    s.put(&put_req(k, v), &Leases)
        .expect("a plain put succeeds")
        .0
}

fn del(k: &str, end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: k.into(),
        range_end: end.into(),
        prev_kv: false,
    }
}

fn get_req(k: &str, end: &str) -> RangeRequest {
    RangeRequest {
        key: k.into(),
        range_end: end.into(),
        ..Default::default()
    }
}

fn get(s: &Store, req: RangeRequest) -> RangeResponse {
    s.range(&req).expect("a valid range succeeds")
}

fn one(s: &Store, k: &str) -> Option<KeyValue> {
    get(s, get_req(k, "")).kvs.into_iter().next()
}

fn keys(r: &RangeResponse) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn op(request: Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    op(Request::RequestPut(put_req(k, v)))
}

fn op_del(k: &str, end: &str) -> RequestOp {
    op(Request::RequestDeleteRange(del(k, end)))
}

fn op_get(k: &str) -> RequestOp {
    op(Request::RequestRange(get_req(k, "")))
}

fn op_txn(t: TxnRequest) -> RequestOp {
    op(Request::RequestTxn(t))
}

fn cmp(key: &str, target: CompareTarget, result: CompareResult, u: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.into(),
        range_end: Vec::new(),
        target_union: Some(u),
    }
}

fn txn(success: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare: Vec::new(),
        success,
        failure: Vec::new(),
    }
}

fn run(s: &mut Store, t: &TxnRequest) -> Result<(TxnResponse, Vec<Event>), StoreError> {
    s.txn(t, &Leases)
}

fn header_rev(r: &ResponseOp) -> Option<i64> {
    let h = match r.response.as_ref()? {
        Response::ResponseRange(x) => &x.header,
        Response::ResponsePut(x) => &x.header,
        Response::ResponseDeleteRange(x) => &x.header,
        Response::ResponseTxn(x) => &x.header,
    };
    h.as_ref().map(|h| h.revision)
}

// ---- 1.4 Revision / key-version model ------------------------------------------------------

#[test]
fn fresh_store_is_at_revision_one_and_first_put_makes_two() {
    // Goal: etcd's numbering: a fresh store is at 1, the first write creates revision 2.
    let mut s = Store::new();
    assert_eq!((s.revision(), s.compact_revision()), (1, 0));
    assert_eq!(Store::default(), s);
    put(&mut s, "a", "1");
    let kv = one(&s, "a").expect("just put");
    assert_eq!(
        (
            s.revision(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (2, 2, 2, 1)
    );
}

#[test]
fn one_request_bumps_the_revision_by_one_however_many_keys_it_writes() {
    // Goal: a 128-put txn and a 3-key delete each consume exactly one revision.
    let mut s = Store::new();
    let ops = (0..MAX_TXN_OPS)
        .map(|i| op_put(&format!("k{i:03}"), "v"))
        .collect();
    let (_, events) = run(&mut s, &txn(ops)).expect("128 ops are allowed");
    assert_eq!((s.revision(), events.len()), (2, 128));
    let (r, events) = s.delete_range(&del("k000", "k003")).expect("valid");
    assert_eq!((s.revision(), r.deleted, events.len()), (3, 3, 3));
}

#[test]
fn requests_that_change_nothing_keep_the_revision() {
    // Goal: deleting nothing, read-only txns, no-op deletes in txns and revoking dead keys do
    // not create a revision.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    let (r, ev) = s.delete_range(&del("x", "")).expect("valid");
    assert_eq!((r.deleted, ev.len(), s.revision()), (0, 0, 2));
    let (r, ev) = run(&mut s, &txn(vec![op_get("a"), op_del("zz", "")])).expect("valid");
    assert!(r.succeeded && ev.is_empty());
    assert!(s.delete_keys(&[b"nope".to_vec()]).is_empty());
    assert_eq!(s.revision(), 2);
}

#[test]
fn identical_put_still_bumps_version_and_recreate_starts_over() {
    // Goal: version counts puts since creation; a delete then put gives version 1 and a new
    // create_revision.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "a", "1");
    let kv = one(&s, "a").expect("live");
    assert_eq!((kv.version, kv.create_revision, kv.mod_revision), (2, 2, 3));
    s.delete_range(&del("a", "")).expect("valid");
    put(&mut s, "a", "2");
    let kv = one(&s, "a").expect("live");
    assert_eq!((kv.version, kv.create_revision, kv.mod_revision), (1, 5, 5));
}

#[test]
fn txn_writes_share_one_mod_revision_and_events_keep_op_order() {
    // Goal: every key of a txn gets the same mod_revision; events come in op order, not key
    // order.
    let mut s = Store::new();
    put(&mut s, "m", "0");
    let (_, events) = run(
        &mut s,
        &txn(vec![op_put("z", "1"), op_del("m", ""), op_put("a", "1")]),
    )
    .expect("valid");
    let seen: Vec<(i32, Vec<u8>, i64)> = events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref().expect("events carry a kv");
            (e.r#type, kv.key.clone(), kv.mod_revision)
        })
        .collect();
    let (p, d) = (EventType::Put as i32, EventType::Delete as i32);
    assert_eq!(
        seen,
        vec![
            (p, b"z".to_vec(), 3),
            (d, b"m".to_vec(), 3),
            (p, b"a".to_vec(), 3)
        ]
    );
}

#[test]
fn delete_events_carry_only_key_and_mod_revision_and_the_previous_value() {
    // Goal: a DELETE event's kv is zero but for key and mod_revision; prev_kv is filled.
    let mut s = Store::new();
    s.put(
        &PutRequest {
            lease: 7,
            ..put_req("a", "1")
        },
        &Leases,
    )
    .expect("lease 7 exists");
    let (_, events) = s.delete_range(&del("a", "")).expect("valid");
    let e = &events[0];
    assert_eq!(e.r#type, EventType::Delete as i32);
    assert_eq!(
        e.kv,
        Some(KeyValue {
            key: b"a".to_vec(),
            mod_revision: 3,
            ..Default::default()
        })
    );
    assert_eq!(
        e.prev_kv.as_ref().map(|kv| (kv.lease, kv.version)),
        Some((7, 1))
    );
}

#[test]
fn put_events_have_prev_kv_except_on_create() {
    // Goal: a write's PUT event carries the previous value, a create carries none.
    let mut s = Store::new();
    let (_, ev) = s.put(&put_req("a", "1"), &Leases).expect("valid");
    assert_eq!(ev[0].prev_kv, None);
    let (_, ev) = s.put(&put_req("a", "2"), &Leases).expect("valid");
    assert_eq!(
        ev[0].prev_kv.as_ref().map(|kv| kv.value.clone()),
        Some(b"1".to_vec())
    );
}

// ---- 1.5 Range -----------------------------------------------------------------------------

#[test]
fn an_empty_key_is_rejected_by_every_request() {
    // Goal: "key is not provided" for Range, Put, DeleteRange and a Compare.
    let mut s = Store::new();
    assert_eq!(s.range(&get_req("", "")), Err(StoreError::EmptyKey));
    assert_eq!(s.put(&put_req("", "v"), &Leases), Err(StoreError::EmptyKey));
    assert_eq!(s.delete_range(&del("", "")), Err(StoreError::EmptyKey));
    let t = TxnRequest {
        compare: vec![cmp(
            "",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0),
        )],
        ..Default::default()
    };
    assert_eq!(run(&mut s, &t), Err(StoreError::EmptyKey));
    assert_eq!(
        StoreError::EmptyKey.to_string(),
        "etcdserver: key is not provided"
    );
}

#[test]
fn range_end_conventions_cover_single_key_from_key_prefix_and_everything() {
    // Goal: "" = one key, "\0" = from key on, key+1 = prefix, "\0"/"\0" = all, end<=key = none.
    let mut s = Store::new();
    for k in ["a", "b", "b1", "c"] {
        put(&mut s, k, "v");
    }
    assert_eq!(keys(&get(&s, get_req("b", ""))), ["b"]);
    assert_eq!(keys(&get(&s, get_req("b", "\0"))), ["b", "b1", "c"]);
    assert_eq!(keys(&get(&s, get_req("b", "c"))), ["b", "b1"]);
    assert_eq!(keys(&get(&s, get_req("\0", "\0"))), ["a", "b", "b1", "c"]);
    let r = get(&s, get_req("c", "a"));
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 0, false));
}

#[test]
fn limit_sets_more_and_count_ignores_limit_and_filters() {
    // Goal: count is every key in range at that revision; more says the limit cut something.
    let mut s = Store::new();
    for k in ["a1", "a2", "a3", "a4", "a5"] {
        put(&mut s, k, "v");
    }
    let r = get(
        &s,
        RangeRequest {
            limit: 2,
            ..get_req("a", "b")
        },
    );
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["a1".into(), "a2".into()], true, 5)
    );
    let r = get(
        &s,
        RangeRequest {
            limit: 5,
            ..get_req("a", "b")
        },
    );
    assert_eq!((r.kvs.len(), r.more), (5, false));
    let r = get(
        &s,
        RangeRequest {
            min_mod_revision: 4,
            limit: 1,
            ..get_req("a", "b")
        },
    );
    assert_eq!((keys(&r), r.more, r.count), (vec!["a3".into()], true, 5));
    let r = get(
        &s,
        RangeRequest {
            max_create_revision: 1,
            ..get_req("a", "b")
        },
    );
    assert_eq!((r.kvs.len(), r.more, r.count), (0, false, 5));
}

#[test]
fn min_and_max_filters_bound_mod_and_create_revisions() {
    // Goal: each of the four filters keeps only kvs within its bound (0 = no bound).
    let mut s = Store::new();
    for k in ["a", "b", "c"] {
        put(&mut s, k, "v"); // created at 2, 3, 4
    }
    put(&mut s, "a", "w"); // a: create 2, mod 5
    let all = get_req("a", "\0");
    let f = |r: RangeRequest| keys(&get(&s, r));
    assert_eq!(
        f(RangeRequest {
            min_mod_revision: 4,
            ..all.clone()
        }),
        ["a", "c"]
    );
    assert_eq!(
        f(RangeRequest {
            max_mod_revision: 3,
            ..all.clone()
        }),
        ["b"]
    );
    assert_eq!(
        f(RangeRequest {
            min_create_revision: 3,
            ..all.clone()
        }),
        ["b", "c"]
    );
    assert_eq!(
        f(RangeRequest {
            max_create_revision: 3,
            ..all
        }),
        ["a", "b"]
    );
}

#[test]
fn sort_target_with_order_none_sorts_ascending_and_descend_reverses() {
    // Goal: etcd sorts ascending by a non-key target even when order is NONE.
    let mut s = Store::new();
    for k in ["c", "a", "b"] {
        put(&mut s, k, "v");
    }
    let by_mod = RangeRequest {
        sort_target: SortTarget::Mod as i32,
        ..get_req("a", "\0")
    };
    assert_eq!(keys(&get(&s, by_mod.clone())), ["c", "a", "b"]);
    let desc = RangeRequest {
        sort_order: SortOrder::Descend as i32,
        ..by_mod
    };
    assert_eq!(keys(&get(&s, desc)), ["b", "a", "c"]);
    let key_desc = RangeRequest {
        sort_order: SortOrder::Descend as i32,
        ..get_req("a", "\0")
    };
    assert_eq!(keys(&get(&s, key_desc)), ["c", "b", "a"]);
}

#[test]
fn sort_with_order_none_and_a_limit_sorts_only_the_first_limit_plus_one_keys() {
    // Goal: etcd's quirk: order NONE fetches limit+1 keys in key order before sorting them.
    let mut s = Store::new();
    for k in ["d", "c", "b", "a"] {
        put(&mut s, k, "v"); // mod: d=2, c=3, b=4, a=5
    }
    let none = RangeRequest {
        sort_target: SortTarget::Mod as i32,
        limit: 1,
        ..get_req("a", "\0")
    };
    // Fetched a, b; sorted by mod: b(4), a(5); truncated to b, not the global lowest d.
    let r = get(&s, none.clone());
    assert_eq!((keys(&r), r.more, r.count), (vec!["b".into()], true, 4));
    let asc = RangeRequest {
        sort_order: SortOrder::Ascend as i32,
        ..none
    };
    assert_eq!(keys(&get(&s, asc)), ["d"]);
}

#[test]
fn unknown_sort_target_is_rejected_and_unknown_sort_order_sorts_nothing() {
    // Goal: 3.5's "invalid sort option" for a target etcd has no sorter for; 3.4's silence for
    // an unknown order.
    let mut s = Store::new();
    for k in ["b", "a"] {
        put(&mut s, k, "v");
    }
    let bad_target = RangeRequest {
        sort_target: 9,
        ..get_req("a", "\0")
    };
    assert_eq!(s.range(&bad_target), Err(StoreError::InvalidSortOption));
    assert_eq!(
        StoreError::InvalidSortOption.to_string(),
        "etcdserver: invalid sort option"
    );
    let odd_order = RangeRequest {
        sort_order: 7,
        sort_target: SortTarget::Mod as i32,
        ..get_req("a", "\0")
    };
    assert_eq!(keys(&get(&s, odd_order)), ["a", "b"]);
}

#[test]
fn keys_only_drops_values_and_count_only_drops_kvs() {
    // Goal: keys_only keeps all metadata but the value; count_only returns only the count.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "b", "2");
    let r = get(
        &s,
        RangeRequest {
            keys_only: true,
            ..get_req("a", "\0")
        },
    );
    assert!(r
        .kvs
        .iter()
        .all(|kv| kv.value.is_empty() && kv.version == 1));
    let r = get(
        &s,
        RangeRequest {
            count_only: true,
            limit: 1,
            ..get_req("a", "\0")
        },
    );
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 2, false));
}

#[test]
fn reads_at_old_revisions_respect_compaction_and_future() {
    // Goal: point-in-time reads; the compact revision itself is readable, below it is not,
    // above the current revision is a future revision.
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "a", "3"); // 4
    let at = |s: &Store, rev| {
        s.range(&RangeRequest {
            revision: rev,
            ..get_req("a", "")
        })
    };
    let value = |r: Result<RangeResponse, StoreError>| r.map(|r| r.kvs[0].value.clone());
    assert_eq!(value(at(&s, 2)), Ok(b"1".to_vec()));
    assert_eq!(at(&s, 1).map(|r| r.count), Ok(0));
    assert_eq!(at(&s, 5), Err(StoreError::FutureRevision));
    s.compact(3).expect("3 <= current");
    assert_eq!(at(&s, 2), Err(StoreError::Compacted));
    assert_eq!(value(at(&s, 3)), Ok(b"2".to_vec()));
    assert_eq!(value(at(&s, -1)), Ok(b"3".to_vec()));
    assert_eq!(
        StoreError::FutureRevision.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
}

// ---- 1.6 Put / DeleteRange -----------------------------------------------------------------

#[test]
fn put_with_a_missing_lease_fails_and_put_without_lease_detaches() {
    // Goal: unknown lease -> "requested lease not found"; a later plain put clears the lease.
    let mut s = Store::new();
    let r = s.put(
        &PutRequest {
            lease: 3,
            ..put_req("a", "1")
        },
        &Leases,
    );
    assert_eq!(r, Err(StoreError::LeaseNotFound));
    assert_eq!(
        StoreError::LeaseNotFound.to_string(),
        "etcdserver: requested lease not found"
    );
    assert_eq!(s.revision(), 1);
    s.put(
        &PutRequest {
            lease: 7,
            ..put_req("a", "1")
        },
        &Leases,
    )
    .expect("lease 7 exists");
    assert_eq!(one(&s, "a").map(|kv| kv.lease), Some(7));
    put(&mut s, "a", "2");
    assert_eq!(one(&s, "a").map(|kv| kv.lease), Some(0));
}

#[test]
fn prev_kv_is_returned_only_when_asked() {
    // Goal: PutResponse.prev_kv and DeleteRangeResponse.prev_kvs follow the request flag.
    let mut s = Store::new();
    let r = s
        .put(
            &PutRequest {
                prev_kv: true,
                ..put_req("a", "1")
            },
            &Leases,
        )
        .expect("ok");
    assert_eq!(r.0.prev_kv, None);
    let r = s
        .put(
            &PutRequest {
                prev_kv: true,
                ..put_req("a", "2")
            },
            &Leases,
        )
        .expect("ok");
    assert_eq!(r.0.prev_kv.map(|kv| kv.value), Some(b"1".to_vec()));
    assert_eq!(put(&mut s, "a", "3").prev_kv, None);
    put(&mut s, "b", "1");
    let (r, _) = s
        .delete_range(&DeleteRangeRequest {
            prev_kv: true,
            ..del("a", "c")
        })
        .expect("ok");
    assert_eq!((r.deleted, r.prev_kvs.len()), (2, 2));
    put(&mut s, "a", "4");
    let (r, _) = s.delete_range(&del("a", "")).expect("ok");
    assert_eq!((r.deleted, r.prev_kvs.len()), (1, 0));
}

#[test]
fn ignore_value_and_ignore_lease_keep_the_current_ones_and_fail_with_etcds_messages() {
    // Goal: flags with a value/lease are rejected, on a missing key they are "key not found",
    // on a live key they keep its value or lease.
    let mut s = Store::new();
    let iv = PutRequest {
        ignore_value: true,
        ..put_req("a", "")
    };
    let il = PutRequest {
        ignore_lease: true,
        ..put_req("a", "x")
    };
    assert_eq!(
        s.put(
            &PutRequest {
                value: b"v".to_vec(),
                ..iv.clone()
            },
            &Leases
        ),
        Err(StoreError::ValueProvided)
    );
    assert_eq!(
        s.put(
            &PutRequest {
                lease: 7,
                ..il.clone()
            },
            &Leases
        ),
        Err(StoreError::LeaseProvided)
    );
    assert_eq!(s.put(&iv, &Leases), Err(StoreError::KeyNotFound));
    assert_eq!(s.put(&il, &Leases), Err(StoreError::KeyNotFound));
    assert_eq!(
        StoreError::ValueProvided.to_string(),
        "etcdserver: value is provided"
    );
    assert_eq!(
        StoreError::LeaseProvided.to_string(),
        "etcdserver: lease is provided"
    );
    assert_eq!(
        StoreError::KeyNotFound.to_string(),
        "etcdserver: key not found"
    );
    s.put(
        &PutRequest {
            lease: 7,
            ..put_req("a", "1")
        },
        &Leases,
    )
    .expect("ok");
    s.put(&iv, &Leases).expect("key is live");
    let kv = one(&s, "a").expect("live");
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"1"[..], 0, 2)
    );
    s.put(
        &PutRequest {
            lease: 7,
            ..put_req("a", "1")
        },
        &Leases,
    )
    .expect("ok");
    s.put(&il, &Leases).expect("key is live");
    let kv = one(&s, "a").expect("live");
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"x"[..], 7));
}

#[test]
fn a_plain_put_checks_its_lease_before_the_key_its_flags_need() {
    // Goal: etcd's order for a put outside a txn: lease not found wins over key not found.
    let mut s = Store::new();
    let req = PutRequest {
        ignore_value: true,
        lease: 3,
        ..put_req("a", "")
    };
    assert_eq!(s.put(&req, &Leases), Err(StoreError::LeaseNotFound));
    // Inside a txn etcd checks the key first.
    assert_eq!(
        run(&mut s, &txn(vec![op(Request::RequestPut(req))])),
        Err(StoreError::KeyNotFound)
    );
}

// ---- 1.7 Txn -------------------------------------------------------------------------------

#[test]
fn an_empty_txn_succeeds_without_a_revision() {
    // Goal: no compares means true; no ops means no write and no revision.
    let mut s = Store::new();
    let (r, ev) = run(&mut s, &TxnRequest::default()).expect("valid");
    assert!(r.succeeded && r.responses.is_empty() && ev.is_empty() && r.header.is_none());
    assert_eq!(s.revision(), 1);
}

#[test]
fn compares_on_a_missing_key_see_a_zero_kv_but_value_compares_are_false() {
    // Goal: CREATE/MOD/VERSION == 0 test absence; any VALUE compare on no key fails, even !=.
    let mut s = Store::new();
    let holds = |s: &mut Store, c: Compare| {
        run(
            s,
            &TxnRequest {
                compare: vec![c],
                ..Default::default()
            },
        )
        .expect("valid")
        .0
        .succeeded
    };
    use CompareResult::*;
    use CompareTarget::*;
    assert!(holds(
        &mut s,
        cmp("x", Create, Equal, TargetUnion::CreateRevision(0))
    ));
    assert!(holds(
        &mut s,
        cmp("x", Mod, Equal, TargetUnion::ModRevision(0))
    ));
    assert!(holds(
        &mut s,
        cmp("x", Version, Equal, TargetUnion::Version(0))
    ));
    assert!(holds(&mut s, cmp("x", Lease, Equal, TargetUnion::Lease(0))));
    assert!(!holds(
        &mut s,
        cmp("x", Value, NotEqual, TargetUnion::Value(b"v".to_vec()))
    ));
    assert!(!holds(
        &mut s,
        cmp("x", Value, Equal, TargetUnion::Value(Vec::new()))
    ));
    put(&mut s, "x", "v");
    assert!(holds(
        &mut s,
        cmp("x", Value, Equal, TargetUnion::Value(b"v".to_vec()))
    ));
    assert!(holds(
        &mut s,
        cmp("x", Value, Greater, TargetUnion::Value(b"u".to_vec()))
    ));
    assert!(holds(
        &mut s,
        cmp("x", Version, Less, TargetUnion::Version(2))
    ));
}

#[test]
fn a_compare_over_a_range_holds_only_if_every_key_satisfies_it() {
    // Goal: range compares AND over keys; an empty range compares the zero kv.
    let mut s = Store::new();
    put(&mut s, "m1", "x");
    put(&mut s, "m2", "y");
    let over = |c: Compare, end: &str| Compare {
        range_end: end.into(),
        ..c
    };
    let holds = |s: &mut Store, c: Compare| {
        run(
            s,
            &TxnRequest {
                compare: vec![c],
                ..Default::default()
            },
        )
        .expect("valid")
        .0
        .succeeded
    };
    use CompareResult::*;
    use CompareTarget::*;
    assert!(!holds(
        &mut s,
        over(
            cmp("m", Value, Equal, TargetUnion::Value(b"x".to_vec())),
            "n"
        )
    ));
    assert!(holds(
        &mut s,
        over(cmp("m", Version, Equal, TargetUnion::Version(1)), "n")
    ));
    assert!(holds(
        &mut s,
        over(cmp("m", Version, Equal, TargetUnion::Version(1)), "\0")
    ));
    assert!(holds(
        &mut s,
        over(cmp("q", Create, Equal, TargetUnion::CreateRevision(0)), "r")
    ));
    assert!(!holds(
        &mut s,
        over(
            cmp("q", Value, NotEqual, TargetUnion::Value(Vec::new())),
            "r"
        )
    ));
}

#[test]
fn a_compare_reads_only_the_operand_matching_its_target() {
    // Goal: like etcd, a MOD compare carrying a `version` operand (or none) compares with 0.
    let mut s = Store::new();
    put(&mut s, "a", "v");
    let mismatched = cmp(
        "a",
        CompareTarget::Mod,
        CompareResult::Greater,
        TargetUnion::Version(99),
    );
    let t = TxnRequest {
        compare: vec![mismatched.clone()],
        ..Default::default()
    };
    assert!(run(&mut s, &t).expect("valid").0.succeeded);
    let none = Compare {
        target_union: None,
        ..mismatched
    };
    let t = TxnRequest {
        compare: vec![none],
        ..Default::default()
    };
    assert!(run(&mut s, &t).expect("valid").0.succeeded);
}

#[test]
fn nested_txn_compares_see_the_state_before_the_outer_txn() {
    // Goal: outer put n=1 then nested compare value(n)=="1" takes the failure branch.
    let mut s = Store::new();
    let nested = TxnRequest {
        compare: vec![cmp(
            "n",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value(b"1".to_vec()),
        )],
        success: vec![op_put("then", "x")],
        failure: vec![op_put("else", "x")],
    };
    let (r, _) = run(&mut s, &txn(vec![op_put("n", "1"), op_txn(nested)])).expect("valid");
    match &r.responses[1].response {
        Some(Response::ResponseTxn(t)) => assert!(!t.succeeded),
        other => panic!("expected a nested txn response, got {other:?}"),
    }
    assert!(one(&s, "else").is_some() && one(&s, "then").is_none());
}

#[test]
fn reads_inside_a_txn_see_its_earlier_writes() {
    // Goal: a range after a put in the same txn returns the new value at the txn's revision.
    let mut s = Store::new();
    let (r, _) = run(
        &mut s,
        &txn(vec![op_get("a"), op_put("a", "1"), op_get("a")]),
    )
    .expect("ok");
    let kvs = |i: usize| match &r.responses[i].response {
        Some(Response::ResponseRange(rr)) => rr.kvs.clone(),
        other => panic!("expected a range response, got {other:?}"),
    };
    assert!(kvs(0).is_empty());
    assert_eq!(kvs(2).first().map(|kv| kv.mod_revision), Some(2));
}

#[test]
fn nested_response_headers_carry_only_the_revision_as_etcd_fills_them() {
    // Goal: 1.3: put -> txn revision; range/delete -> revision seen so far; nested txn ->
    // an empty header; outer header left for the caller.
    let mut s = Store::new();
    put(&mut s, "a", "0"); // revision 2
    let ops = vec![
        op_get("a"),
        op_del("missing", ""),
        op_put("b", "1"),
        op_get("a"),
        op_del("missing2", ""),
        op_txn(TxnRequest::default()),
    ];
    let (r, _) = run(&mut s, &txn(ops)).expect("valid");
    let revs: Vec<Option<i64>> = r.responses.iter().map(header_rev).collect();
    assert_eq!(revs, [Some(2), Some(2), Some(3), Some(3), Some(3), Some(0)]);
    match &r.responses[5].response {
        Some(Response::ResponseTxn(t)) => assert_eq!(t.header, Some(ResponseHeader::default())),
        other => panic!("expected a nested txn response, got {other:?}"),
    }
    assert_eq!(r.header, None);
}

#[test]
fn txn_op_limits_apply_to_compares_branches_and_nested_budgets() {
    // Goal: 128 ops pass, 129 puts or compares fail; a nested txn gets the budget left over.
    let mut s = Store::new();
    let puts = |n: usize| {
        (0..n)
            .map(|i| op_put(&format!("k{i}"), "v"))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&mut s, &txn(puts(129))), Err(StoreError::TooManyOps));
    let c = cmp(
        "a",
        CompareTarget::Version,
        CompareResult::Equal,
        TargetUnion::Version(0),
    );
    let t = TxnRequest {
        compare: vec![c; 129],
        ..Default::default()
    };
    assert_eq!(run(&mut s, &t), Err(StoreError::TooManyOps));
    let mut outer = puts(100);
    outer.push(op_txn(txn(puts(28))));
    assert_eq!(run(&mut s, &txn(outer)), Err(StoreError::TooManyOps));
    let mut outer = puts(100);
    outer.push(op_txn(txn((0..27)
        .map(|i| op_put(&format!("n{i}"), "v"))
        .collect())));
    assert!(run(&mut s, &txn(outer)).is_ok());
    assert_eq!(
        StoreError::TooManyOps.to_string(),
        "etcdserver: too many operations in txn request"
    );
}

#[test]
fn duplicate_keys_follow_etcds_check_intervals() {
    // Goal: each rule of 1.7: rejected and allowed combinations, nesting included.
    let mut s = Store::new();
    let dup = Err(StoreError::DuplicateKey);
    let nested = |then: Vec<RequestOp>, els: Vec<RequestOp>| {
        op_txn(TxnRequest {
            compare: Vec::new(),
            success: then,
            failure: els,
        })
    };
    let check = |ops: Vec<RequestOp>| validate::txn(&txn(ops), MAX_TXN_OPS);
    assert_eq!(check(vec![op_put("a", "1"), op_put("a", "2")]), dup);
    assert_eq!(check(vec![op_put("b", "1"), op_del("a", "c")]), dup);
    assert_eq!(check(vec![op_del("a", "c"), op_put("b", "1")]), dup);
    assert_eq!(check(vec![op_del("a", ""), op_put("a", "1")]), dup);
    assert_eq!(
        check(vec![
            op_put("a", "1"),
            nested(vec![op_put("a", "2")], vec![])
        ]),
        dup
    );
    assert_eq!(
        check(vec![
            op_del("a", "c"),
            nested(vec![], vec![op_put("b", "2")])
        ]),
        dup
    );
    assert_eq!(
        check(vec![
            nested(vec![op_del("a", "c")], vec![]),
            op_put("b", "1")
        ]),
        dup
    );
    assert_eq!(check(vec![op_del("a", "c"), op_del("b", "d")]), Ok(()));
    assert_eq!(check(vec![op_get("a"), op_put("a", "1")]), Ok(()));
    assert_eq!(
        check(vec![nested(vec![op_put("a", "1")], vec![op_put("a", "2")])]),
        Ok(())
    );
    // etcd reads a delete's end literally here: "\0" spans nothing, so this passes.
    assert_eq!(check(vec![op_del("a", "\0"), op_put("b", "1")]), Ok(()));
    let both = TxnRequest {
        compare: Vec::new(),
        success: vec![op_put("a", "1")],
        failure: vec![op_put("a", "2")],
    };
    assert!(run(&mut s, &both).is_ok());
    assert_eq!(
        StoreError::DuplicateKey.to_string(),
        "etcdserver: duplicate key given in txn request"
    );
}

#[test]
fn a_txn_that_deletes_from_a_key_on_and_puts_inside_keeps_op_order() {
    // Goal: the "\0" delete etcd lets through: the later op wins, in one revision.
    let mut s = Store::new();
    put(&mut s, "b", "0");
    let (_, ev) = run(&mut s, &txn(vec![op_del("a", "\0"), op_put("b", "1")])).expect("valid");
    assert_eq!(ev.len(), 2);
    let kv = one(&s, "b").expect("put after the delete");
    assert_eq!((kv.version, kv.create_revision, s.revision()), (1, 3, 3));
    assert_eq!(ev[1].prev_kv, None, "a create has no prev_kv");
}

#[test]
fn an_empty_request_op_is_key_not_found() {
    // Goal: etcd answers an op with no request set with "key not found".
    let mut s = Store::new();
    let t = txn(vec![RequestOp { request: None }]);
    assert_eq!(run(&mut s, &t), Err(StoreError::KeyNotFound));
}

#[test]
fn a_failing_txn_check_writes_nothing_and_puts_are_checked_before_ranges() {
    // Goal: errors found while checking the chosen branch leave the store untouched; etcd
    // checks every put before any range.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    let future = op(Request::RequestRange(RangeRequest {
        revision: 9,
        ..get_req("a", "")
    }));
    let lease = op(Request::RequestPut(PutRequest {
        lease: 3,
        ..put_req("b", "1")
    }));
    let before = s.clone();
    assert_eq!(
        run(&mut s, &txn(vec![op_put("c", "1"), future.clone()])),
        Err(StoreError::FutureRevision)
    );
    assert_eq!(
        run(&mut s, &txn(vec![future, lease])),
        Err(StoreError::LeaseNotFound)
    );
    assert_eq!(s, before);
}

#[test]
fn a_txn_range_at_a_negative_revision_follows_etcds_first_revision() {
    // Goal: etcd's store starts at compact revision -1: -1 passes until a compaction, -2 never.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    let at = |rev| {
        txn(vec![op(Request::RequestRange(RangeRequest {
            revision: rev,
            ..get_req("a", "")
        }))])
    };
    assert!(run(&mut s, &at(-1)).is_ok());
    assert_eq!(run(&mut s, &at(-2)), Err(StoreError::Compacted));
    s.compact(2).expect("valid");
    assert_eq!(run(&mut s, &at(-1)), Err(StoreError::Compacted));
}

// ---- 1.8 Compaction ------------------------------------------------------------------------

#[test]
fn compaction_keeps_the_latest_live_version_and_drops_deleted_keys() {
    // Goal: reads at or after the compact revision are unchanged; deleted keys vanish.
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "b", "1"); // 4
    s.delete_range(&del("b", "")).expect("valid"); // 5
    put(&mut s, "a", "3"); // 6
    let size_before = s.approximate_size_bytes();
    s.compact(5).expect("valid");
    assert_eq!(s.compact_revision(), 5);
    let at5 = get(
        &s,
        RangeRequest {
            revision: 5,
            ..get_req("a", "\0")
        },
    );
    assert_eq!(
        (keys(&at5), at5.kvs[0].value.clone()),
        (vec!["a".into()], b"2".to_vec())
    );
    assert_eq!(
        one(&s, "a").map(|kv| (kv.version, kv.create_revision)),
        Some((3, 2))
    );
    assert!(s.approximate_size_bytes() < size_before);
    assert_eq!(s.key_count(), 1);
}

#[test]
fn compacting_at_or_below_the_compact_revision_or_in_the_future_fails() {
    // Goal: 1.8's two errors, and a failed compaction changes nothing.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    assert_eq!(s.compact(4), Err(StoreError::FutureRevision));
    s.compact(2).expect("valid");
    assert_eq!(s.compact(2), Err(StoreError::Compacted));
    assert_eq!(s.compact(1), Err(StoreError::Compacted));
    assert_eq!(s.compact_revision(), 2);
    s.compact(3).expect("the current revision may be compacted");
}

// ---- Watch history, lease revoke, hash, snapshot -------------------------------------------

#[test]
fn history_replays_events_in_revision_and_op_order_with_prev_kv() {
    // Goal: events_between returns what the writes returned, for the window and range asked.
    let mut s = Store::new();
    let mut written = Vec::new();
    written.extend(s.put(&put_req("b", "1"), &Leases).expect("ok").1);
    written.extend(
        run(&mut s, &txn(vec![op_put("c", "1"), op_put("a", "1")]))
            .expect("ok")
            .1,
    );
    written.extend(s.delete_range(&del("a", "\0")).expect("ok").1);
    written.extend(s.put(&put_req("b", "2"), &Leases).expect("ok").1);
    assert_eq!(
        s.events_between(b"\0", b"\0", 1, s.revision()),
        Ok(written.clone())
    );
    let window = s.events_between(b"a", b"c", 3, 4).expect("not compacted");
    let want: Vec<Event> = written
        .into_iter()
        .filter(|e| {
            let kv = e.kv.as_ref().expect("kv");
            (3..=4).contains(&kv.mod_revision) && kv.key.as_slice() < b"c".as_slice()
        })
        .collect();
    assert_eq!(window, want);
}

#[test]
fn history_at_the_compact_revision_keeps_puts_and_deletes_and_below_is_compacted() {
    // Goal: etcd cancels only start < compact; a watch from the compact revision sees the
    // DELETE made there (etcd #18089/#19179), a PUT there has no prev_kv (its previous revision
    // is compacted); with the planted 3.4.23 compaction the DELETE is gone.
    let build = |planted: bool| {
        let mut s = Store::new();
        s.plant_compaction_drops_tombstone(planted);
        put(&mut s, "a", "1"); // 2
        run(&mut s, &txn(vec![op_put("a", "2"), op_del("b", "")])).expect("ok"); // 3, b absent
        put(&mut s, "b", "1"); // 4
        run(&mut s, &txn(vec![op_put("a", "3"), op_del("b", "")])).expect("ok"); // 5
        s.compact(5).expect("valid");
        s
    };
    let s = build(false);
    assert_eq!(
        s.events_between(b"a", b"\0", 4, 5),
        Err(StoreError::Compacted)
    );
    let ev = s
        .events_between(b"a", b"\0", 5, 5)
        .expect("start == compact is served");
    let types: Vec<i32> = ev.iter().map(|e| e.r#type).collect();
    assert_eq!(types, [EventType::Put as i32, EventType::Delete as i32]);
    assert_eq!(ev[0].prev_kv, None);
    assert_eq!(ev[1].kv.as_ref().unwrap().key, b"b");
    let planted = build(true)
        .events_between(b"a", b"\0", 5, 5)
        .expect("served");
    assert_eq!(planted.len(), 1);
    assert_eq!(planted[0].r#type, EventType::Put as i32);
}

#[test]
fn delete_keys_removes_the_live_ones_in_one_revision_in_key_order() {
    // Goal: lease revoke: dead or repeated keys are skipped; one revision for all; none if none.
    let mut s = Store::new();
    put(&mut s, "b", "1");
    put(&mut s, "a", "1");
    let ev = s.delete_keys(&[b"b".to_vec(), b"x".to_vec(), b"a".to_vec(), b"b".to_vec()]);
    let deleted: Vec<&[u8]> = ev
        .iter()
        .map(|e| e.kv.as_ref().map_or(&[][..], |kv| &kv.key[..]))
        .collect();
    assert_eq!(deleted, [&b"a"[..], &b"b"[..]]);
    assert_eq!((s.revision(), s.key_count()), (4, 0));
    assert!(s.delete_keys(&[b"a".to_vec()]).is_empty());
    assert_eq!(s.revision(), 4);
}

#[test]
fn equal_histories_hash_alike_and_a_snapshot_round_trips() {
    // Goal: the hash is a function of the MVCC data; bincode (the snapshot encoding) restores
    // an equal store.
    let build = |v: &str| {
        let mut s = Store::new();
        put(&mut s, "a", "1");
        put(&mut s, "ab", v);
        s
    };
    let (s1, s2, s3) = (build("x"), build("x"), build("y"));
    assert_eq!(s1.hash(), s2.hash());
    assert_ne!(s1.hash(), s3.hash());
    let bytes = bincode::serialize(&s1).expect("the store serializes");
    let back: Store = bincode::deserialize(&bytes).expect("and deserializes");
    assert_eq!((back.hash(), &back), (s1.hash(), &s1));
}

#[test]
fn the_store_encodes_as_it_did_when_versions_held_whole_key_values() {
    // Goal: slim in-memory versions and the persistent key map change nothing on disk: a
    // snapshot written by an earlier release (a `BTreeMap` of keys, each version a whole
    // `KeyValue`) decodes to the same store, and a new one is byte for byte the same.
    #[derive(serde::Serialize)]
    struct OldVersion {
        mod_revision: i64,
        sub: u32,
        kv: Option<KeyValue>,
    }
    #[derive(serde::Serialize, Default)]
    struct OldHistory {
        versions: Vec<OldVersion>,
    }
    #[derive(serde::Serialize)]
    struct Before {
        revision: i64,
        compact_revision: i64,
        keys: std::collections::BTreeMap<Vec<u8>, OldHistory>,
        size_bytes: usize,
    }
    let mut s = Store::new();
    put(&mut s, "b", "1");
    put(&mut s, "a", "2");
    put(&mut s, "b", "3");
    s.put(
        &PutRequest {
            key: b"c".to_vec(),
            value: vec![0, 255, 7],
            lease: 7,
            ..Default::default()
        },
        &Leases,
    )
    .unwrap();
    s.delete_range(&del("a", "")).unwrap();
    put(&mut s, "a", "4");
    s.compact(3).unwrap();
    let mut keys = std::collections::BTreeMap::<Vec<u8>, OldHistory>::new();
    for e in s.revisions() {
        keys.entry(e.key).or_default().versions.push(OldVersion {
            mod_revision: e.main,
            sub: u32::try_from(e.sub).unwrap(),
            kv: e.kv,
        });
    }
    assert_eq!(keys.len(), 3, "a, b and c are stored");
    let before = Before {
        revision: s.revision,
        compact_revision: s.compact_revision,
        keys,
        size_bytes: s.size_bytes,
    };
    let old = bincode::serialize(&before).unwrap();
    assert_eq!(bincode::serialize(&s).unwrap(), old);
    let decoded: Store = bincode::deserialize(&old).unwrap();
    assert_eq!((decoded.hash(), &decoded), (s.hash(), &s));
    assert_eq!(one(&decoded, "c").unwrap().value, [0, 255, 7]);
}

#[test]
fn a_clone_taken_before_writes_keeps_the_state_it_was_taken_at() {
    // Goal: a snapshot is built from a clone while writes go on; the clone must not see them.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    let taken = s.clone();
    put(&mut s, "a", "2");
    put(&mut s, "b", "3");
    s.compact(s.revision()).unwrap();
    assert_eq!(taken.revision(), 2);
    assert_eq!(taken.keys.len(), 1);
    assert_eq!(taken.keys.get(b"a".as_slice()).unwrap().versions().len(), 1);
    assert_eq!(s.keys.get(b"a".as_slice()).unwrap().versions().len(), 1);
    assert_eq!(s.key_count(), 2);
}
