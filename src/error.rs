//! The server layer's error: everything a request can fail with below the gRPC edge.
//!
//! Expected conditions are values here; `api::status` is the one place that turns them into
//! etcd's gRPC codes and messages.

use crate::command::ApplyError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("{0} is not implemented by quorum yet")]
    Unimplemented(&'static str),
    #[error("{0}")]
    Internal(String),
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Store(s) => Error::Store(s),
            ApplyError::LeaseNotFound => Error::LeaseNotFound,
            ApplyError::LeaseExists => Error::LeaseExists,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
