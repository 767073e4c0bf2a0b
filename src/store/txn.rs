//! Txn: compares, then one branch of ops, all at one revision.
//!
//! As etcd does, in three steps: (1) evaluate every compare on the way, nested txns' included,
//! against the state before the txn, fixing the branch each txn takes; (2) check the chosen
//! ops against that same state: every put first (the key its `ignore_*` flags need, then its
//! lease), then every range's revision; (3) execute, which cannot fail half way. Reads inside
//! the txn see its earlier writes.
//!
//! Headers, as etcd 3.4 fills them: the outer one is left `None` for the caller. Nested put
//! responses carry only `revision` = the txn's revision; nested deletes the txn's revision if
//! the txn has written by then (this delete included), else the pre-txn revision; nested
//! ranges the revision they read at (the txn's own once it has written). A nested txn response
//! carries an empty, present header (`Some(default)`), byte for byte what etcd sends.

use super::write::Batch;
use super::{validate, LeaseIndex, Store, StoreError, MAX_TXN_OPS};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::{RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse};
use crate::proto::mvccpb::Event;

/// The branch a txn takes and, per op of that branch, the path of a nested txn.
struct Path {
    succeeded: bool,
    nested: Vec<Option<Path>>,
}

fn branch(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

fn only_revision(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Store {
    pub fn txn(
        &mut self,
        req: &TxnRequest,
        leases: &dyn LeaseIndex,
    ) -> Result<(TxnResponse, Vec<Event>), StoreError> {
        validate::txn(req, MAX_TXN_OPS)?;
        let path = self.path(req);
        self.check_puts(req, &path, leases)?;
        self.check_ranges(req, &path)?;
        let mut batch = self.begin();
        let mut resp = self.execute(&mut batch, req, &path);
        resp.header = None;
        Ok((resp, self.commit(batch)))
    }

    fn path(&self, req: &TxnRequest) -> Path {
        let succeeded = req
            .compare
            .iter()
            .all(|c| self.compare_holds(c, self.revision));
        let nested = branch(req, succeeded)
            .iter()
            .map(|op| match &op.request {
                Some(Request::RequestTxn(t)) => Some(self.path(t)),
                _ => None,
            })
            .collect();
        Path { succeeded, nested }
    }

    fn check_puts(
        &self,
        req: &TxnRequest,
        path: &Path,
        leases: &dyn LeaseIndex,
    ) -> Result<(), StoreError> {
        for (op, nested) in branch(req, path.succeeded).iter().zip(&path.nested) {
            match (&op.request, nested) {
                (Some(Request::RequestPut(p)), _) => {
                    self.check_previous(p)?;
                    Self::check_lease(p, leases)?;
                }
                (Some(Request::RequestTxn(t)), Some(n)) => self.check_puts(t, n, leases)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn check_ranges(&self, req: &TxnRequest, path: &Path) -> Result<(), StoreError> {
        // etcd's store starts with compact revision -1, so before any compaction a txn range at
        // revision -1 passes and -2 is "compacted". Odd, but observable; we keep it.
        let first = if self.compact_revision == 0 {
            -1
        } else {
            self.compact_revision
        };
        for (op, nested) in branch(req, path.succeeded).iter().zip(&path.nested) {
            match (&op.request, nested) {
                (Some(Request::RequestRange(r)), _) => {
                    if r.revision == 0 {
                        continue;
                    }
                    if r.revision > self.revision {
                        return Err(StoreError::FutureRevision);
                    }
                    if r.revision < first {
                        return Err(StoreError::Compacted);
                    }
                }
                (Some(Request::RequestTxn(t)), Some(n)) => self.check_ranges(t, n)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn execute(&mut self, batch: &mut Batch, req: &TxnRequest, path: &Path) -> TxnResponse {
        let ops = branch(req, path.succeeded);
        let mut responses = Vec::with_capacity(ops.len());
        for (op, nested) in ops.iter().zip(&path.nested) {
            let response = match (&op.request, nested) {
                (Some(Request::RequestRange(r)), _) => {
                    let current = batch.read_revision();
                    let mut resp = self
                        .range_at(r, current)
                        .expect("a txn's range was validated and its revision checked");
                    resp.header = only_revision(current);
                    Some(Response::ResponseRange(resp))
                }
                (Some(Request::RequestPut(p)), _) => {
                    let mut resp = self.put_in(batch, p);
                    resp.header = only_revision(batch.revision());
                    Some(Response::ResponsePut(resp))
                }
                (Some(Request::RequestDeleteRange(d)), _) => {
                    let mut resp = self.delete_in(batch, d);
                    resp.header = only_revision(batch.read_revision());
                    Some(Response::ResponseDeleteRange(resp))
                }
                (Some(Request::RequestTxn(t)), Some(n)) => {
                    Some(Response::ResponseTxn(self.execute(batch, t, n)))
                }
                // Validation rejects empty ops ("key not found") before we get here.
                _ => None,
            };
            responses.push(ResponseOp { response });
        }
        TxnResponse {
            header: Some(ResponseHeader::default()),
            succeeded: path.succeeded,
            responses,
        }
    }
}
