//! Unit tests of the store's etcd semantics, one behaviour each.

use super::*;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::*;
use crate::proto::mvccpb::event::EventType;

struct NoLeases;
impl LeaseIndex for NoLeases {
    fn lease_exists(&self, id: i64) -> bool {
        id == 7
    }
}

fn put(s: &mut Store, k: &str, v: &str) -> PutResponse {
    s.put(
        &PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        },
        &NoLeases,
    )
    .unwrap()
    .0
}

fn get(s: &Store, req: RangeRequest) -> RangeResponse {
    s.range(&req).unwrap()
}

fn keys(r: &RangeResponse) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
        .collect()
}

fn prefix(k: &str) -> RangeRequest {
    let mut end = k.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    RangeRequest {
        key: k.into(),
        range_end: end,
        ..Default::default()
    }
}

#[test]
fn fresh_store_is_at_revision_one_and_first_put_makes_two() {
    // Goal: etcd's revision numbering starts at 1; each put bumps it by one.
    let mut s = Store::new();
    assert_eq!(s.revision(), 1);
    put(&mut s, "a", "1");
    assert_eq!(s.revision(), 2);
    let r = get(
        &s,
        RangeRequest {
            key: "a".into(),
            ..Default::default()
        },
    );
    assert_eq!(
        (
            r.kvs[0].create_revision,
            r.kvs[0].mod_revision,
            r.kvs[0].version
        ),
        (2, 2, 1)
    );
}

#[test]
fn identical_put_still_bumps_version_and_delete_resets_it() {
    // Goal: version counts puts since creation; a delete then put starts again at 1.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "a", "1");
    let kv = get(
        &s,
        RangeRequest {
            key: "a".into(),
            ..Default::default()
        },
    )
    .kvs[0]
        .clone();
    assert_eq!((kv.version, kv.create_revision, kv.mod_revision), (2, 2, 3));
    s.delete_range(&DeleteRangeRequest {
        key: "a".into(),
        ..Default::default()
    })
    .unwrap();
    put(&mut s, "a", "2");
    let kv = get(
        &s,
        RangeRequest {
            key: "a".into(),
            ..Default::default()
        },
    )
    .kvs[0]
        .clone();
    assert_eq!((kv.version, kv.create_revision), (1, 5));
}

#[test]
fn deleting_a_missing_key_changes_no_revision() {
    // Goal: no-op mutations leave the revision alone.
    let mut s = Store::new();
    let (r, ev) = s
        .delete_range(&DeleteRangeRequest {
            key: "x".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.deleted, ev.len(), s.revision()), (0, 0, 1));
}

#[test]
fn get_with_limit_reports_more_and_total_count() {
    // Goal: count ignores limit; more says something was cut off.
    let mut s = Store::new();
    for k in ["a1", "a2", "a3", "a4", "a5"] {
        put(&mut s, k, "v");
    }
    let r = get(
        &s,
        RangeRequest {
            limit: 2,
            ..prefix("a")
        },
    );
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["a1".to_string(), "a2".into()], true, 5)
    );
    let r = get(
        &s,
        RangeRequest {
            max_create_revision: 1,
            ..prefix("a")
        },
    );
    assert_eq!((r.kvs.len(), r.count), (0, 5));
}

#[test]
fn range_end_conventions_cover_from_key_all_keys_and_empty_ranges() {
    // Goal: "\0" means from the key on; key "\0" + end "\0" is everything; end <= key is empty.
    let mut s = Store::new();
    for k in ["a", "b", "c"] {
        put(&mut s, k, "v");
    }
    let from_b = get(
        &s,
        RangeRequest {
            key: "b".into(),
            range_end: vec![0],
            ..Default::default()
        },
    );
    assert_eq!(keys(&from_b), vec!["b", "c"]);
    let all = get(
        &s,
        RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        },
    );
    assert_eq!(all.count, 3);
    let empty = get(
        &s,
        RangeRequest {
            key: "c".into(),
            range_end: "a".into(),
            ..Default::default()
        },
    );
    assert_eq!((empty.count, empty.kvs.len()), (0, 0));
}

#[test]
fn sort_by_mod_with_order_none_sorts_ascending_and_descend_reverses() {
    // Goal: etcd sorts ascending when a non-key target is given without an order.
    let mut s = Store::new();
    put(&mut s, "b", "1");
    put(&mut s, "a", "2");
    let all = || RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    let r = get(
        &s,
        RangeRequest {
            sort_target: 3,
            ..all()
        },
    );
    assert_eq!(keys(&r), vec!["b", "a"]);
    let r = get(
        &s,
        RangeRequest {
            sort_target: 0,
            sort_order: 2,
            ..all()
        },
    );
    assert_eq!(keys(&r), vec!["b", "a"]);
}

#[test]
fn reads_at_old_revisions_respect_compaction_and_future() {
    // Goal: point-in-time reads; compacted and future revisions fail with etcd's errors.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    let old = get(
        &s,
        RangeRequest {
            key: "a".into(),
            revision: 2,
            ..Default::default()
        },
    );
    assert_eq!(old.kvs[0].value, b"1");
    assert_eq!(
        s.range(&RangeRequest {
            key: "a".into(),
            revision: 9,
            ..Default::default()
        }),
        Err(StoreError::FutureRevision)
    );
    s.compact(3).unwrap();
    assert_eq!(
        s.range(&RangeRequest {
            key: "a".into(),
            revision: 2,
            ..Default::default()
        }),
        Err(StoreError::Compacted)
    );
    assert!(s
        .range(&RangeRequest {
            key: "a".into(),
            revision: 3,
            ..Default::default()
        })
        .is_ok());
    assert_eq!(s.compact(3), Err(StoreError::Compacted));
    assert_eq!(s.compact(9), Err(StoreError::FutureRevision));
}

#[test]
fn compaction_drops_deleted_keys_and_keeps_latest_live_version() {
    // Goal: a key deleted before the compact revision vanishes with its tombstone.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "b", "1");
    s.delete_range(&DeleteRangeRequest {
        key: "a".into(),
        ..Default::default()
    })
    .unwrap();
    s.compact(4).unwrap();
    let ev = s.events_between(&[0], &[0], 4, 4).unwrap();
    assert!(
        ev.is_empty(),
        "the tombstone at the compact revision is gone"
    );
    assert_eq!(
        get(
            &s,
            RangeRequest {
                key: "b".into(),
                revision: 4,
                ..Default::default()
            }
        )
        .count,
        1
    );
}

#[test]
fn put_flags_fail_with_etcds_messages() {
    // Goal: ignore_value/ignore_lease need an existing key; leases must exist.
    let mut s = Store::new();
    let e = s.put(
        &PutRequest {
            key: "a".into(),
            ignore_value: true,
            ..Default::default()
        },
        &NoLeases,
    );
    assert_eq!(e.unwrap_err(), StoreError::KeyNotFound);
    let e = s.put(
        &PutRequest {
            key: "a".into(),
            lease: 3,
            ..Default::default()
        },
        &NoLeases,
    );
    assert_eq!(
        e.unwrap_err().to_string(),
        "etcdserver: requested lease not found"
    );
    let e = s.put(
        &PutRequest {
            key: "a".into(),
            value: "v".into(),
            ignore_value: true,
            ..Default::default()
        },
        &NoLeases,
    );
    assert_eq!(e.unwrap_err().to_string(), "etcdserver: value is provided");
    s.put(
        &PutRequest {
            key: "a".into(),
            value: "v".into(),
            lease: 7,
            ..Default::default()
        },
        &NoLeases,
    )
    .unwrap();
    s.put(
        &PutRequest {
            key: "a".into(),
            value: "w".into(),
            ignore_lease: true,
            ..Default::default()
        },
        &NoLeases,
    )
    .unwrap();
    assert_eq!(
        get(
            &s,
            RangeRequest {
                key: "a".into(),
                ..Default::default()
            }
        )
        .kvs[0]
            .lease,
        7
    );
}

fn cmp(key: &str, target: CompareTarget, result: CompareResult, u: TargetUnion) -> Compare {
    Compare {
        key: key.into(),
        target: target as i32,
        result: result as i32,
        target_union: Some(u),
        range_end: Vec::new(),
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        })),
    }
}

#[test]
fn txn_value_compare_on_missing_key_is_false_even_for_not_equal() {
    // Goal: VALUE compares never hold for an absent key.
    let mut s = Store::new();
    let c = cmp(
        "nope",
        CompareTarget::Value,
        CompareResult::NotEqual,
        TargetUnion::Value("x".into()),
    );
    let (r, _) = s
        .txn(
            &TxnRequest {
                compare: vec![c],
                ..Default::default()
            },
            &NoLeases,
        )
        .unwrap();
    assert!(!r.succeeded);
    let c = cmp(
        "nope",
        CompareTarget::Create,
        CompareResult::Equal,
        TargetUnion::CreateRevision(0),
    );
    let (r, _) = s
        .txn(
            &TxnRequest {
                compare: vec![c],
                ..Default::default()
            },
            &NoLeases,
        )
        .unwrap();
    assert!(r.succeeded);
}

#[test]
fn txn_writes_share_one_revision_and_reads_see_earlier_writes() {
    // Goal: a txn is one revision; its later ops read its earlier writes.
    let mut s = Store::new();
    let get_a = RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: "a".into(),
            ..Default::default()
        })),
    };
    let t = TxnRequest {
        success: vec![op_put("a", "1"), op_put("b", "2"), get_a],
        ..Default::default()
    };
    let (r, ev) = s.txn(&t, &NoLeases).unwrap();
    assert_eq!((s.revision(), ev.len()), (2, 2));
    match &r.responses[2].response {
        Some(Response::ResponseRange(rr)) => {
            assert_eq!(rr.kvs[0].value, b"1");
            assert_eq!(rr.header.as_ref().unwrap().revision, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ev[0].r#type, EventType::Put as i32);
}

#[test]
fn nested_txn_compares_see_the_state_before_the_outer_txn() {
    // Goal: etcd evaluates nested compares against the pre-txn state.
    let mut s = Store::new();
    let inner = TxnRequest {
        compare: vec![cmp(
            "n",
            CompareTarget::Value,
            CompareResult::Equal,
            TargetUnion::Value("1".into()),
        )],
        success: vec![op_put("x", "then")],
        failure: vec![op_put("x", "else")],
    };
    let outer = TxnRequest {
        success: vec![
            op_put("n", "1"),
            RequestOp {
                request: Some(Request::RequestTxn(inner)),
            },
        ],
        ..Default::default()
    };
    s.txn(&outer, &NoLeases).unwrap();
    assert_eq!(
        get(
            &s,
            RangeRequest {
                key: "x".into(),
                ..Default::default()
            }
        )
        .kvs[0]
            .value,
        b"else"
    );
}

#[test]
fn txn_limits_and_duplicate_keys_are_rejected() {
    // Goal: 128 ops pass, 129 fail; duplicate puts and put-inside-delete fail; then/else may repeat.
    let ok = TxnRequest {
        success: (0..128).map(|i| op_put(&format!("k{i}"), "v")).collect(),
        ..Default::default()
    };
    assert!(validate::txn(&ok, MAX_TXN_OPS).is_ok());
    let too_many = TxnRequest {
        success: (0..129).map(|i| op_put(&format!("k{i}"), "v")).collect(),
        ..Default::default()
    };
    assert_eq!(
        validate::txn(&too_many, MAX_TXN_OPS),
        Err(StoreError::TooManyOps)
    );
    let dup = TxnRequest {
        success: vec![op_put("a", "1"), op_put("a", "2")],
        ..Default::default()
    };
    assert_eq!(
        validate::txn(&dup, MAX_TXN_OPS),
        Err(StoreError::DuplicateKey)
    );
    let del = RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: "a".into(),
            range_end: "b".into(),
            ..Default::default()
        })),
    };
    let put_in_del = TxnRequest {
        success: vec![del, op_put("a1", "x")],
        ..Default::default()
    };
    assert_eq!(
        validate::txn(&put_in_del, MAX_TXN_OPS),
        Err(StoreError::DuplicateKey)
    );
    let nested = TxnRequest {
        success: vec![op_put("a", "1")],
        failure: vec![op_put("a", "2")],
        ..Default::default()
    };
    let fine = TxnRequest {
        success: vec![RequestOp {
            request: Some(Request::RequestTxn(nested)),
        }],
        ..Default::default()
    };
    assert!(validate::txn(&fine, MAX_TXN_OPS).is_ok());
}

#[test]
fn history_replays_events_in_revision_and_op_order_with_prev_kv() {
    // Goal: watch catch-up sees every event once, ordered, with the previous value.
    let mut s = Store::new();
    put(&mut s, "a", "1");
    let t = TxnRequest {
        success: vec![op_put("b", "x"), op_put("a", "2")],
        ..Default::default()
    };
    s.txn(&t, &NoLeases).unwrap();
    s.delete_range(&DeleteRangeRequest {
        key: "a".into(),
        ..Default::default()
    })
    .unwrap();
    let ev = s.events_between(&[0], &[0], 2, 10).unwrap();
    let summary: Vec<(String, i64)> = ev
        .iter()
        .map(|e| {
            (
                String::from_utf8(e.kv.as_ref().unwrap().key.clone()).unwrap(),
                e.kv.as_ref().unwrap().mod_revision,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".into(), 2),
            ("b".into(), 3),
            ("a".into(), 3),
            ("a".into(), 4)
        ]
    );
    assert_eq!(ev[2].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(ev[3].r#type, EventType::Delete as i32);
}
