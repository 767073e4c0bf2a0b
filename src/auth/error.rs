//! What auth can refuse, in etcd's own words: the messages clients match on (clientv3 retries
//! on some of them, etcdctl prints them). `api::status` gives each its gRPC code.
//!
//! These are values, decided the same on every member when they come from applying a command.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AuthError {
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    /// Auth is on and the request carries no user (no token, no client certificate).
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    /// Authenticate while auth is off; clientv3 treats exactly this as "go on without a token".
    #[error("etcdserver: authentication is not enabled")]
    NotEnabled,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExists,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExists,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// RoleGrantPermission without a permission, or with a type that is not one of etcd's.
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    /// What would lock everyone out while auth is on: deleting root, or taking its role.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// The auth store changed between the token check and the apply; clientv3 re-authenticates.
    #[error("etcdserver: revision of auth store is old")]
    OldRevision,
}
