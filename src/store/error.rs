//! Errors the MVCC store and the lease table answer with when a command is checked or applied.
//! Expected conditions, so values, never panics; the texts are etcd's byte for byte (clients
//! match on them), and `api::status` picks the gRPC codes.

use serde::{Deserialize, Serialize};

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    /// A grant with an id the lease table already holds.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A write while the NOSPACE alarm is raised (or one that would pass the quota).
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
}
