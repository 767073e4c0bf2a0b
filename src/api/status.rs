//! The one map from internal errors to etcd's gRPC status codes and messages.
//!
//! Clients match on the message text and retry by code, so both must be etcd's exactly.

use tonic::{Code, Status};

use crate::auth::AuthError;
use crate::error::Error;
use crate::store::StoreError;

pub fn to_status(e: Error) -> Status {
    let code = match &e {
        Error::Store(s) => match s {
            StoreError::Compacted | StoreError::FutureRevision => Code::OutOfRange,
            StoreError::LeaseNotFound => Code::NotFound,
            StoreError::LeaseExists => Code::FailedPrecondition,
            StoreError::NoSpace => Code::ResourceExhausted,
            StoreError::EmptyKey
            | StoreError::KeyNotFound
            | StoreError::ValueProvided
            | StoreError::LeaseProvided
            | StoreError::TooManyOps
            | StoreError::DuplicateKey
            | StoreError::InvalidSortOption => Code::InvalidArgument,
        },
        Error::MaintenanceAuth(_) => Code::Unknown,
        Error::Auth(a) => match a {
            AuthError::PermissionDenied => Code::PermissionDenied,
            AuthError::InvalidAuthToken => Code::Unauthenticated,
            AuthError::UserEmpty
            | AuthError::RoleEmpty
            | AuthError::AuthFailed
            | AuthError::PermissionNotGiven
            | AuthError::InvalidAuthMgmt
            | AuthError::OldRevision => Code::InvalidArgument,
            AuthError::NotEnabled
            | AuthError::RootUserNotExist
            | AuthError::RootRoleNotExist
            | AuthError::UserAlreadyExists
            | AuthError::UserNotFound
            | AuthError::RoleAlreadyExists
            | AuthError::RoleNotFound
            | AuthError::RoleNotGranted
            | AuthError::PermissionNotGranted => Code::FailedPrecondition,
        },
        Error::MemberNotFound => Code::NotFound,
        Error::NotLeader
        | Error::BadLeaderTransferee
        | Error::PeerUrlExists
        | Error::NotLearner
        | Error::LearnerNotReady
        | Error::Reconfiguration(_) => Code::FailedPrecondition,
        Error::LeaseTtlTooLarge => Code::OutOfRange,
        Error::RequestTooLarge | Error::InvalidPeerUrls | Error::PeerMessage(_) => {
            Code::InvalidArgument
        }
        Error::NoLeader
        | Error::LeaderChanged
        | Error::Timeout
        | Error::Stopped
        | Error::Unreachable(_) => Code::Unavailable,
        Error::SnapshotTooLarge => Code::ResourceExhausted,
        Error::Unimplemented(_) => Code::Unimplemented,
        // v3election answers its own errors with no code of their own, as gRPC's Unknown.
        Error::ElectionNotLeader | Error::ElectionNoLeader | Error::Internal(_) => Code::Unknown,
    };
    Status::new(code, e.to_string())
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        to_status(e)
    }
}

/// How Go's gRPC prints a status (`rpc error: code = X desc = msg`): etcd puts this text, not
/// the bare message, in some fields clients show verbatim, such as a watch's cancel reason.
pub fn go_status_text(e: Error) -> String {
    let status = to_status(e);
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

/// An RPC quorum does not serve yet: `Unimplemented`, naming it, never an empty message.
pub fn unimplemented(rpc: &'static str) -> Status {
    to_status(Error::Unimplemented(rpc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_etcds_codes_and_messages() {
        // Goal: spot-check the table against etcd's rpctypes.
        let s = to_status(Error::Store(StoreError::Compacted));
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let s = to_status(Error::Store(StoreError::EmptyKey));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "etcdserver: key is not provided");
        let s = to_status(Error::Store(StoreError::LeaseNotFound));
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "etcdserver: requested lease not found")
        );
        let s = to_status(Error::NoLeader);
        assert_eq!(
            (s.code(), s.message()),
            (Code::Unavailable, "etcdserver: no leader")
        );
        assert!(!unimplemented("KV.RangeStream").message().is_empty());
    }

    #[test]
    fn auth_errors_carry_etcds_codes_and_messages() {
        // Goal: the codes clientv3 retries and etcdctl exits on, as seen against etcd 3.4.23.
        let cases = [
            (
                AuthError::PermissionDenied,
                Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            (
                AuthError::UserEmpty,
                Code::InvalidArgument,
                "etcdserver: user name is empty",
            ),
            (
                AuthError::AuthFailed,
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            (
                AuthError::InvalidAuthToken,
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
            ),
            (
                AuthError::NotEnabled,
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            (
                AuthError::RootUserNotExist,
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            (
                AuthError::RootRoleNotExist,
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
            ),
            (
                AuthError::UserAlreadyExists,
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
            ),
            (
                AuthError::UserNotFound,
                Code::FailedPrecondition,
                "etcdserver: user name not found",
            ),
            (
                AuthError::RoleAlreadyExists,
                Code::FailedPrecondition,
                "etcdserver: role name already exists",
            ),
            (
                AuthError::RoleNotFound,
                Code::FailedPrecondition,
                "etcdserver: role name not found",
            ),
            (
                AuthError::OldRevision,
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
        ];
        for (e, code, msg) in cases {
            let s = to_status(Error::Auth(e));
            assert_eq!((s.code(), s.message()), (code, msg));
        }
        assert_eq!(
            go_status_text(Error::Auth(AuthError::PermissionDenied)),
            "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
        );
    }
}
