//! The server layer's error: everything a request can fail with below the gRPC edge.
//!
//! Expected conditions are values here; `api::status` is the one place that turns them into
//! etcd's gRPC codes and messages.

use crate::auth::AuthError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// What applying (or statically checking) a command found: the store's and the lease
    /// table's errors, decided the same on every member.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Auth's refusals, whether from the edge (a bad token) or from applying (a permission).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// etcd 3.4's maintenance calls (Snapshot, Hash, HashKV, Defragment) hand back the auth
    /// package's own error, unconverted ("auth: permission denied"), which gRPC reports as
    /// Unknown; clients see exactly that.
    #[error("auth: {0}")]
    MaintenanceAuth(String),
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
    #[error("etcdserver: given member URLs are invalid")]
    InvalidPeerUrls,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: re-configuration failed: {0}")]
    Reconfiguration(String),
    /// A deposed election leader tried to act (v3election's own words).
    #[error("election: not leader")]
    ElectionNotLeader,
    #[error("election: no leader")]
    ElectionNoLeader,
    /// A member could not be reached to relay a request to it.
    #[error("{0}")]
    Unreachable(String),
    /// A peer sent bytes this build cannot decode.
    #[error("bad peer message: {0}")]
    PeerMessage(String),
    #[error("snapshot too large")]
    SnapshotTooLarge,
    #[error("{0} is not implemented by quorum yet")]
    Unimplemented(&'static str),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
