//! The one enum of everything the replicated log carries, and the results of applying it.
//!
//! A `Command` is built at the API edge after validation, proposed through Raft, and applied in
//! log order by every member. Nothing here may depend on the member applying it: the same
//! command on the same state gives the same result everywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth::{AuthChange, AuthError, AuthInfo, AuthOutcome};
use crate::proto::etcdserverpb::{
    AlarmResponse, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutRequest, PutResponse, ResponseHeader, TxnRequest,
    TxnResponse,
};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactionRequest),
    /// `id == 0` lets the state machine choose a fresh id deterministically.
    LeaseGrant {
        id: i64,
        ttl_secs: i64,
    },
    /// A client revoke, or the leader's decision that the lease expired.
    LeaseRevoke {
        id: i64,
    },
    /// Raise or clear an alarm on a member (etcd's `AlarmRequest` ACTIVATE / DEACTIVATE;
    /// `alarm` is an `AlarmType` value).
    Alarm {
        member_id: u64,
        alarm: i32,
        activate: bool,
    },
    /// A member announces its name and client URLs, as etcd members publish their attributes.
    PublishMember {
        id: u64,
        name: String,
        client_urls: Vec<String>,
    },
    /// A client's request with who sent it (`None`: no token), so applying checks its
    /// permissions against the auth store as the log has it at that point, as etcd's auth
    /// applier does. Applies as `cmd` when allowed.
    As {
        caller: Option<AuthInfo>,
        cmd: Box<Command>,
    },
    /// Users, roles, permissions, enabling auth, issuing a token.
    Auth(AuthChange),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Put(r) => write!(f, "put {:?}", String::from_utf8_lossy(&r.key)),
            Command::DeleteRange(r) => write!(f, "delete {:?}", String::from_utf8_lossy(&r.key)),
            Command::Txn(r) => write!(f, "txn ({} compares)", r.compare.len()),
            Command::Compact(r) => write!(f, "compact {}", r.revision),
            Command::LeaseGrant { id, ttl_secs } => write!(f, "lease grant {id:x} ttl {ttl_secs}"),
            Command::LeaseRevoke { id } => write!(f, "lease revoke {id:x}"),
            Command::Alarm {
                member_id,
                alarm,
                activate,
            } => {
                let verb = if *activate { "raise" } else { "clear" };
                write!(f, "{verb} alarm {alarm} on {member_id:x}")
            }
            Command::PublishMember { id, name, .. } => write!(f, "publish member {id:x} {name}"),
            Command::As { caller, cmd } => match caller {
                Some(c) => write!(f, "{cmd} as {:?}", c.user),
                None => write!(f, "{cmd} as nobody"),
            },
            // Never the password hash or the token's random half: logs are not secret.
            Command::Auth(change) => write!(f, "auth {}", change.name()),
        }
    }
}

/// What applying a command produced. Errors that depend on state (a lease that vanished, a
/// compacted revision) are decided here, at apply time, so every member agrees on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    Alarm(AlarmResponse),
    /// A command (or a blank or membership entry) with nothing to report.
    Done,
    Failed(StoreError),
    Auth(AuthOutcome),
    AuthFailed(AuthError),
}

/// A response type that applying a command produces, picked out of `CommandResult` by type,
/// so a caller asks for the response it expects instead of matching every variant.
pub trait Reply: Sized {
    /// The response, or the result back when it is of another kind.
    fn from_result(r: CommandResult) -> Result<Self, CommandResult>;
    fn header_mut(&mut self) -> &mut Option<ResponseHeader>;
}

macro_rules! reply {
    ($($variant:ident => $response:ty),* $(,)?) => {$(
        impl Reply for $response {
            fn from_result(r: CommandResult) -> Result<Self, CommandResult> {
                match r {
                    CommandResult::$variant(resp) => Ok(resp),
                    other => Err(other),
                }
            }

            fn header_mut(&mut self) -> &mut Option<ResponseHeader> {
                &mut self.header
            }
        }
    )*};
}

reply! {
    Put => PutResponse,
    DeleteRange => DeleteRangeResponse,
    Txn => TxnResponse,
    Compact => CompactionResponse,
    LeaseGrant => LeaseGrantResponse,
    LeaseRevoke => LeaseRevokeResponse,
    Alarm => AlarmResponse,
}
