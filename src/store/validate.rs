//! Static request checks, done at the API edge before Raft (and again by the store): the ones
//! that need no state. Messages are etcd's.

use super::{KeyRange, StoreError};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

pub fn range(req: &RangeRequest) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
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

/// Op counts (nested txns get the budget left by their parent), keys, then duplicate keys.
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
        None => Ok(()),
    }
}

/// The keys a branch puts and the ranges it deletes, checked for collisions the way etcd's
/// `checkIntervals` does: two puts of one key, or a put inside a deleted range, in any order
/// and across nesting; the then/else branches of one nested txn may repeat a key.
fn intervals(ops: &[RequestOp]) -> Result<(Vec<Vec<u8>>, Vec<KeyRange>), StoreError> {
    let mut dels: Vec<KeyRange> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(KeyRange::new(&d.key, &d.range_end)),
            _ => None,
        })
        .collect();
    let mut puts: Vec<Vec<u8>> = Vec::new();
    let deleted = |dels: &[KeyRange], k: &[u8]| dels.iter().any(|d| d.contains(k));
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.push(k.clone());
        }
        for k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) {
                return Err(StoreError::DuplicateKey);
            }
            if deleted(&dels, k) {
                return Err(StoreError::DuplicateKey);
            }
            if !puts.contains(k) {
                puts.push(k.clone());
            }
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(StoreError::DuplicateKey);
        }
        puts.push(p.key.clone());
    }
    Ok((puts, dels))
}
