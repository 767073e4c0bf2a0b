//! Which permissions each client command needs, as etcd 3.4's auth applier asks for them.
//!
//! Checked when the command is applied, against the auth store at that point of the log, so
//! every member judges a request alike and a permission revoked just before a write is
//! honoured. Reads (Range, Watch creation, the auth store's own reads) are checked where they
//! are served, after their read barrier.
//!
//! The rules: Put needs WRITE on its key, READ too when it asks for the previous value, and
//! WRITE on every key already attached to its lease (a user who could not revoke that lease
//! must not attach to it). DeleteRange needs WRITE on its range, READ too with prev_kv. Txn
//! needs READ on every compare's range and, for the operations of both branches, READ for a
//! Range, WRITE for a Put, WRITE (and READ with prev_kv) for a DeleteRange; as in etcd 3.4,
//! a Put inside a txn is not checked for prev_kv or its lease, and nested txns are not checked.
//! LeaseRevoke needs WRITE on every attached key. Auth changes need the root role. Compact and
//! LeaseGrant need nothing beyond a valid token, which the edge has already resolved.

use super::error::AuthError;
use super::perm::Access;
use super::store::AuthStore;
use super::AuthInfo;
use crate::command::Command;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::{PutRequest, RequestOp};

/// Whether `who` may have `cmd` applied; `lease_keys` lists the keys attached to a lease now.
pub fn check_command(
    auth: &AuthStore,
    who: Option<&AuthInfo>,
    cmd: &Command,
    lease_keys: impl Fn(i64) -> Vec<Vec<u8>>,
) -> Result<(), AuthError> {
    if !auth.enabled() {
        return Ok(());
    }
    match cmd {
        Command::Put(r) => check_put(auth, who, r, &lease_keys),
        Command::DeleteRange(r) => {
            auth.check(who, Access::Write, &r.key, &r.range_end)?;
            if r.prev_kv {
                auth.check(who, Access::Read, &r.key, &r.range_end)?;
            }
            Ok(())
        }
        Command::Txn(t) => {
            for c in &t.compare {
                auth.check(who, Access::Read, &c.key, &c.range_end)?;
            }
            check_ops(auth, who, &t.success)?;
            check_ops(auth, who, &t.failure)
        }
        Command::LeaseRevoke { id } => lease_keys(*id)
            .iter()
            .try_for_each(|k| auth.check(who, Access::Write, k, &[])),
        Command::Compact(_) | Command::LeaseGrant { .. } => Ok(()),
        Command::Auth(change) if change.needs_admin() => auth.check_admin(who),
        Command::Auth(_) => Ok(()),
        // etcd lets only an admin raise or clear alarms.
        Command::Alarm { .. } => auth.check_admin(who),
        // Only members propose these, never wrapped for a client; refuse rather than guess.
        Command::PublishMember { .. } | Command::As { .. } => Err(AuthError::PermissionDenied),
    }
}

fn check_put(
    auth: &AuthStore,
    who: Option<&AuthInfo>,
    r: &PutRequest,
    lease_keys: &impl Fn(i64) -> Vec<Vec<u8>>,
) -> Result<(), AuthError> {
    auth.check(who, Access::Write, &r.key, &[])?;
    if r.lease != 0 {
        for k in lease_keys(r.lease) {
            auth.check(who, Access::Write, &k, &[])?;
        }
    }
    if r.prev_kv {
        auth.check(who, Access::Read, &r.key, &[])?;
    }
    Ok(())
}

fn check_ops(auth: &AuthStore, who: Option<&AuthInfo>, ops: &[RequestOp]) -> Result<(), AuthError> {
    for op in ops {
        match &op.request {
            Some(Request::RequestRange(r)) => {
                auth.check(who, Access::Read, &r.key, &r.range_end)?
            }
            Some(Request::RequestPut(r)) => auth.check(who, Access::Write, &r.key, &[])?,
            Some(Request::RequestDeleteRange(r)) => {
                if r.prev_kv {
                    auth.check(who, Access::Read, &r.key, &r.range_end)?;
                }
                auth.check(who, Access::Write, &r.key, &r.range_end)?;
            }
            Some(Request::RequestTxn(_)) | None => {}
        }
    }
    Ok(())
}
