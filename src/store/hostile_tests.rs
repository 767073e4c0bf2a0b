//! Hostile input at the store's door: arbitrary bytes decoded as etcd's requests (as a client
//! could send them), checked by `validate`, and, when accepted, applied. Nothing may panic, and
//! whatever is refused is refused with one of etcd's errors, never half-applied.

use proptest::prelude::*;
use prost::Message;

use super::{validate, LeaseIndex, Store, MAX_TXN_OPS};
use crate::proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest};

struct NoLeases;

impl LeaseIndex for NoLeases {
    fn lease_exists(&self, _id: i64) -> bool {
        false
    }
}

/// A store with a little history and a compaction, so reads and txns meet real data.
fn seeded() -> Store {
    let mut s = Store::new();
    for (k, v) in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")] {
        let req = PutRequest {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        };
        s.put(&req, &NoLeases).expect("a plain put applies");
    }
    s.compact(2).expect("compacting below the head");
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_requests_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut s = seeded();
        let revision = s.revision();
        if let Ok(req) = RangeRequest::decode(bytes.as_slice()) {
            if validate::range(&req).is_ok() {
                let _ = s.range(&req);
            }
        }
        if let Ok(req) = PutRequest::decode(bytes.as_slice()) {
            if validate::put(&req).is_ok() {
                let _ = s.put(&req, &NoLeases);
            }
        }
        if let Ok(req) = DeleteRangeRequest::decode(bytes.as_slice()) {
            if validate::delete_range(&req).is_ok() {
                let _ = s.delete_range(&req);
            }
        }
        if let Ok(req) = TxnRequest::decode(bytes.as_slice()) {
            if validate::txn(&req, MAX_TXN_OPS).is_ok() {
                let before = s.revision();
                if s.txn(&req, &NoLeases).is_err() {
                    prop_assert_eq!(s.revision(), before, "a refused txn changes nothing");
                }
            }
        }
        // Each applied write moves the revision by at most one.
        prop_assert!(s.revision() <= revision + 3);
        prop_assert_eq!(s.approximate_size_bytes(), s.recounted_size_bytes());
    }
}
