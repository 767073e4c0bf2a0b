//! Txn: compares, then one branch of ops, all at one revision.
//!
//! etcd evaluates every compare of the transaction, nested ones included, against the state
//! before the transaction runs, and checks the chosen ops (leases exist, revisions readable)
//! against that same state; only then does it execute, so execution never fails half way.

use super::{KeyRange, LeaseIndex, Store, StoreError};
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::response_op::Response;
use crate::proto::etcdserverpb::{
    Compare, RangeRequest, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::proto::mvccpb::{Event, KeyValue};

/// Which branch each (nested) transaction takes, decided before anything is written.
struct Plan {
    succeeded: bool,
    /// One entry per op of the chosen branch: `Some` for nested txns.
    nested: Vec<Option<Plan>>,
}

impl Store {
    pub fn txn(
        &mut self,
        req: &TxnRequest,
        leases: &dyn LeaseIndex,
    ) -> Result<(TxnResponse, Vec<Event>), StoreError> {
        super::validate::txn(req, super::MAX_TXN_OPS)?;
        let plan = self.plan(req, leases)?;
        let rev = self.begin();
        let mut events = Vec::new();
        let mut resp = self.execute(req, &plan, rev, &mut events);
        let wrote = !events.is_empty();
        self.finish(rev, wrote);
        resp.header = None;
        Ok((resp, events))
    }

    fn plan(&self, req: &TxnRequest, leases: &dyn LeaseIndex) -> Result<Plan, StoreError> {
        let succeeded = req.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = Vec::with_capacity(ops.len());
        for op in ops {
            match &op.request {
                Some(Request::RequestTxn(t)) => nested.push(Some(self.plan(t, leases)?)),
                Some(Request::RequestPut(p)) => {
                    self.check_put(p, leases)?;
                    nested.push(None);
                }
                Some(Request::RequestRange(r)) => {
                    self.read_revision(r.revision)?;
                    nested.push(None);
                }
                _ => nested.push(None),
            }
        }
        Ok(Plan { succeeded, nested })
    }

    fn execute(
        &mut self,
        req: &TxnRequest,
        plan: &Plan,
        rev: i64,
        events: &mut Vec<Event>,
    ) -> TxnResponse {
        let ops: &[RequestOp] = if plan.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut responses = Vec::with_capacity(ops.len());
        for (op, nested) in ops.iter().zip(&plan.nested) {
            let response = match (&op.request, nested) {
                (Some(Request::RequestRange(r)), _) => {
                    // Reads inside a txn see its earlier writes: read at the txn's revision.
                    let read = RangeRequest {
                        revision: if r.revision > 0 { r.revision } else { rev },
                        ..r.clone()
                    };
                    let r = self.range_in_txn(&read);
                    Some(Response::ResponseRange(r))
                }
                (Some(Request::RequestPut(p)), _) => {
                    let (r, e) = self.put_at(p, rev);
                    events.push(e);
                    Some(Response::ResponsePut(r))
                }
                (Some(Request::RequestDeleteRange(d)), _) => {
                    let (r, mut e) = self.delete_at(d, rev);
                    events.append(&mut e);
                    Some(Response::ResponseDeleteRange(r))
                }
                (Some(Request::RequestTxn(t)), Some(p)) => {
                    Some(Response::ResponseTxn(self.execute(t, p, rev, events)))
                }
                _ => None,
            };
            let mut response = ResponseOp { response };
            // etcd stamps each nested response with the revision as of that op: the txn's new
            // revision once anything was written, the old one before.
            let as_of = if events.is_empty() { rev - 1 } else { rev };
            stamp(&mut response, as_of);
            responses.push(response);
        }
        TxnResponse {
            header: None,
            succeeded: plan.succeeded,
            responses,
        }
    }

    /// A range inside a txn: its revision was checked while planning, and the txn's own
    /// revision (not yet committed) must be readable.
    fn range_in_txn(&mut self, req: &RangeRequest) -> crate::proto::etcdserverpb::RangeResponse {
        let saved = self.revision;
        self.revision = self.revision.max(req.revision);
        let r = self.range(req).unwrap_or_default();
        self.revision = saved;
        r
    }

    fn compare(&self, c: &Compare) -> bool {
        let range = KeyRange::new(&c.key, &c.range_end);
        if range.single {
            let zero = KeyValue::default();
            let kv = self.get_at(&c.key, self.revision);
            return compare_one(c, kv.unwrap_or(&zero), kv.is_some());
        }
        let kvs = self.scan_at(&range, self.revision);
        if kvs.is_empty() {
            return compare_one(c, &KeyValue::default(), false);
        }
        kvs.iter().all(|kv| compare_one(c, kv, true))
    }
}

fn compare_one(c: &Compare, kv: &KeyValue, exists: bool) -> bool {
    let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
    let ord = match target {
        CompareTarget::Value => {
            // A value compare against a missing key is false whatever the operator.
            if !exists {
                return false;
            }
            let want: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        _ => {
            let want = match &c.target_union {
                Some(TargetUnion::Version(v))
                | Some(TargetUnion::CreateRevision(v))
                | Some(TargetUnion::ModRevision(v))
                | Some(TargetUnion::Lease(v)) => *v,
                _ => 0,
            };
            let have = match target {
                CompareTarget::Version => kv.version,
                CompareTarget::Create => kv.create_revision,
                CompareTarget::Mod => kv.mod_revision,
                CompareTarget::Lease => kv.lease,
                CompareTarget::Value => unreachable!("handled above"),
            };
            have.cmp(&want)
        }
    };
    match CompareResult::try_from(c.result).unwrap_or(CompareResult::Equal) {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
        CompareResult::NotEqual => ord.is_ne(),
    }
}

/// Nested put/range/delete responses carry only a revision; a nested txn's header stays empty.
fn stamp(op: &mut ResponseOp, revision: i64) {
    let header = Some(ResponseHeader {
        revision,
        ..Default::default()
    });
    match &mut op.response {
        Some(Response::ResponseRange(r)) => r.header = header,
        Some(Response::ResponsePut(r)) => r.header = header,
        Some(Response::ResponseDeleteRange(r)) => r.header = header,
        Some(Response::ResponseTxn(t)) => t.header = None,
        None => {}
    }
}
