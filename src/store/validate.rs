//! Static request checks: the ones that need no state, done at the API edge before Raft and
//! again by the store on apply (cheap, and it keeps the store safe on its own). Order and
//! messages are etcd's (`api/v3rpc/key.go`).
//!
//! Sort options: etcd 3.4 accepts any `sort_order` (an unknown one sorts nothing; observed) but
//! has no answer for an unknown `sort_target` (its apply path would sort with no sorter), so
//! an unknown target gets 3.5's "invalid sort option" and an unknown order is let through.

use std::collections::BTreeSet;

use super::StoreError;
use crate::proto::etcdserverpb::range_request::SortTarget;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

pub fn range(req: &RangeRequest) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if SortTarget::try_from(req.sort_target).is_err() {
        return Err(StoreError::InvalidSortOption);
    }
    Ok(())
}

pub fn put(req: &PutRequest) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

pub fn delete_range(req: &DeleteRangeRequest) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    Ok(())
}

/// Op counts (a nested txn gets the budget its parent leaves), keys and flags of every op,
/// then duplicate keys of each branch.
pub fn txn(req: &TxnRequest, max_ops: usize) -> Result<(), StoreError> {
    check_txn(req, max_ops as i64)?;
    intervals(&req.success)?;
    intervals(&req.failure)?;
    Ok(())
}

fn check_txn(req: &TxnRequest, max_ops: i64) -> Result<(), StoreError> {
    let ops = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len()) as i64;
    if ops > max_ops {
        return Err(StoreError::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(StoreError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        check_op(op, max_ops - ops)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_ops: i64) -> Result<(), StoreError> {
    match &op.request {
        Some(Request::RequestRange(r)) => range(r),
        Some(Request::RequestPut(p)) => put(p),
        Some(Request::RequestDeleteRange(d)) => delete_range(d),
        Some(Request::RequestTxn(t)) => check_txn(t, max_ops),
        // etcd answers an empty op with this message.
        None => Err(StoreError::KeyNotFound),
    }
}

/// A delete's span as etcd's duplicate check reads it, which is *not* the range convention:
/// an empty end is the key alone, any other end is taken literally, so `"\0"` (and any end
/// `<= key`) spans nothing and never collides with a put.
struct Span<'a> {
    start: &'a [u8],
    end: &'a [u8],
}

impl Span<'_> {
    fn covers(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            k == self.start
        } else {
            self.start <= k && k < self.end
        }
    }
}

fn covered(dels: &[Span<'_>], k: &[u8]) -> bool {
    dels.iter().any(|d| d.covers(k))
}

/// etcd's `checkIntervals`: returns the keys a branch puts and the spans it deletes, failing on
/// two puts of a key, or a put inside a deleted span, within one branch and across nesting.
/// The then/else branches of one nested txn may put the same key. Like etcd, a nested txn's
/// puts are checked against this level's deletes and earlier nested txns' deletes only.
fn intervals(ops: &[RequestOp]) -> Result<(BTreeSet<&[u8]>, Vec<Span<'_>>), StoreError> {
    let mut dels: Vec<Span<'_>> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(Span {
                start: &d.key,
                end: &d.range_end,
            }),
            _ => None,
        })
        .collect();
    let mut puts: BTreeSet<&[u8]> = BTreeSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || covered(&dels, k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k);
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || covered(&dels, k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(p.key.as_slice()) || covered(&dels, &p.key) {
            return Err(StoreError::DuplicateKey);
        }
        puts.insert(&p.key);
    }
    Ok((puts, dels))
}
