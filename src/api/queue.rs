//! The FIFO queue that Election and Lock share, as etcd's server-side recipes run it.
//!
//! A candidate owns the key `<name>/<lease in hex>`, created with its lease; candidates are
//! ordered by that key's create revision. A candidate holds the election (or lock) once no key
//! under `<name>/` has a smaller create revision: it waits for deletions, never polls the
//! cluster, so there is no thundering herd. If the caller goes away before it is done, its key
//! is deleted, as etcd resigns a cancelled campaign.

use std::sync::Arc;

use crate::command::Command;
use crate::error::Error;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::*;
use crate::proto::mvccpb::KeyValue;
use crate::server::Server;

/// etcd's default session TTL when the caller passes no lease.
pub const SESSION_TTL_SECS: i64 = 60;

pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

pub fn create_revision_is(key: &[u8], rev: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::CreateRevision(rev)),
    }
}

pub fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        })),
    }
}

pub fn delete_op(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
    }
}

pub async fn txn(server: &Server, req: TxnRequest) -> Result<TxnResponse, Error> {
    server.request(Command::Txn(req)).await
}

/// A fresh lease for a caller that passed none.
pub async fn session_lease(server: &Server) -> Result<i64, Error> {
    let grant: LeaseGrantResponse = server
        .request(Command::LeaseGrant {
            id: 0,
            ttl_secs: SESSION_TTL_SECS,
        })
        .await?;
    Ok(grant.id)
}

/// Creates the candidate key if absent; returns it with its create revision and whether it
/// already existed (and its value then).
pub async fn enqueue(
    server: &Server,
    key: &[u8],
    value: &[u8],
    lease: i64,
) -> Result<(i64, Option<KeyValue>), Error> {
    let resp = txn(
        server,
        TxnRequest {
            compare: vec![create_revision_is(key, 0)],
            success: vec![put_op(key, value, lease)],
            failure: vec![RequestOp {
                request: Some(Request::RequestRange(RangeRequest {
                    key: key.to_vec(),
                    ..Default::default()
                })),
            }],
        },
    )
    .await?;
    let revision = resp.header.as_ref().map_or(0, |h| h.revision);
    if resp.succeeded {
        return Ok((revision, None));
    }
    let existing = match resp.responses.first().and_then(|r| r.response.as_ref()) {
        Some(Response::ResponseRange(r)) => r.kvs.first().cloned(),
        _ => None,
    };
    match existing {
        Some(kv) => Ok((kv.create_revision, Some(kv))),
        // Deleted between the compare and now: the caller may retry.
        None => Err(Error::Internal(
            "candidate key vanished while enqueuing".into(),
        )),
    }
}

/// The first candidate under `prefix` by create revision, as read locally after a barrier.
pub async fn first_in_line(server: &Server, prefix: &[u8]) -> Result<Option<KeyValue>, Error> {
    server.read_barrier().await?;
    let req = RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        sort_order: SortOrder::Ascend as i32,
        sort_target: SortTarget::Create as i32,
        limit: 1,
        ..Default::default()
    };
    let resp = server.range_local(&req)?;
    Ok(resp.kvs.into_iter().next())
}

/// Waits until no key under `prefix` was created before `my_rev`. Fails if our own key is
/// gone (its lease expired), since then we will never be first.
pub async fn wait_turn(
    server: &Server,
    prefix: &[u8],
    my_key: &[u8],
    my_rev: i64,
) -> Result<(), Error> {
    let mut revisions = server.subscribe_revision();
    loop {
        // Two reads, not one snapshot: a key created before `my_rev` cannot appear later
        // (create revisions only grow), so a newer second read changes nothing.
        let (ahead, mine) = {
            let ahead = server.range_local(&RangeRequest {
                key: prefix.to_vec(),
                range_end: prefix_end(prefix),
                max_create_revision: my_rev - 1,
                count_only: false,
                limit: 1,
                ..Default::default()
            })?;
            let mine = server.range_local(&RangeRequest {
                key: my_key.to_vec(),
                ..Default::default()
            })?;
            // `count` ignores filters, so look at what survived the max_create filter.
            (
                !ahead.kvs.is_empty(),
                mine.kvs.first().map(|kv| kv.create_revision),
            )
        };
        if mine != Some(my_rev) {
            return Err(Error::Internal(
                "candidate key was deleted (lease expired?)".into(),
            ));
        }
        if !ahead {
            return Ok(());
        }
        if revisions.changed().await.is_err() {
            return Err(Error::Stopped);
        }
    }
}

/// Deletes the candidate key if dropped before `disarm`: a cancelled campaign or lock request
/// leaves no key behind.
pub struct Withdraw {
    server: Arc<Server>,
    key: Option<Vec<u8>>,
}

impl Withdraw {
    pub fn new(server: Arc<Server>, key: Vec<u8>) -> Self {
        Withdraw {
            server,
            key: Some(key),
        }
    }

    pub fn disarm(mut self) {
        self.key = None;
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let server = self.server.clone();
            tokio::spawn(async move {
                let _ = server
                    .write(Command::DeleteRange(DeleteRangeRequest {
                        key,
                        ..Default::default()
                    }))
                    .await;
            });
        }
    }
}
