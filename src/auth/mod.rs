//! Auth as etcd 3.4 does it: users with bcrypt passwords, roles granting READ / WRITE /
//! READWRITE on key ranges, `auth enable` guarded by a root user with the root role, simple
//! tokens from Authenticate, and a permission check on every KV, Watch and Lease request.
//!
//! `store` (users, roles, revision) is replicated state, changed only by applying a `change`;
//! `check` says what each command needs and runs at apply time; `perm` answers whether granted
//! intervals cover a range; `token` is each member's table of issued tokens; `error` is etcd's
//! wording. Nothing here knows tonic, Raft or a clock beyond the instants `token` is handed.

mod change;
mod check;
mod error;
mod perm;
mod store;
mod token;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use change::{AuthChange, AuthOutcome};
pub use check::check_command;
pub use error::AuthError;
pub use perm::{permits, Access, KeyPermission, PermType};
pub use store::{AuthStore, Role, User, ROOT};
pub use token::TokenTable;

/// Who sent a request, as resolved at the edge: the user its token (or client certificate)
/// names, and the auth revision it was resolved at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    pub user: String,
    pub revision: u64,
}

/// What a request carries to say who sent it, before it is resolved: the `token` metadata and
/// the common name of a verified client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub token: Option<String>,
    pub cert_cn: Option<String>,
}
