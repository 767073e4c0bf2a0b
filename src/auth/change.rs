//! The auth commands the log carries, and applying one to the auth store.
//!
//! Everything random or slow is done at the API edge before proposing: bcrypt hashes, the
//! random half of a token. Applying is then deterministic, and the token's other half is the
//! log index, as in etcd's simple tokens (`<16 letters>.<raft index>`).

use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::perm::KeyPermission;
use super::store::AuthStore;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthChange {
    Enable,
    Disable,
    /// The password was checked at the edge against the store at `auth_revision`; applying
    /// refuses if the store has changed since, so a password changed meanwhile cannot mint a
    /// token for the old one.
    Authenticate {
        name: String,
        random: String,
        auth_revision: u64,
    },
    UserAdd {
        name: String,
        /// Empty for a user with no password.
        password_hash: String,
    },
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        password_hash: String,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        user: String,
        role: String,
    },
    RoleAdd {
        name: String,
    },
    RoleDelete {
        name: String,
    },
    RoleGrantPermission {
        name: String,
        perm: KeyPermission,
    },
    RoleRevokePermission {
        name: String,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

/// What an applied auth change means for the member's token table (which is not replicated
/// state: each member keeps its own, fed by these outcomes in log order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    Done,
    /// A token now names `user`.
    Token {
        user: String,
        token: String,
    },
    /// The user was deleted or its password changed: its tokens are void.
    UserTokensVoid(String),
    /// Auth was turned off: every token is void.
    AllTokensVoid,
}

impl AuthChange {
    /// Applies the change at log `index`.
    pub fn apply(self, store: &mut AuthStore, index: u64) -> Result<AuthOutcome, AuthError> {
        match self {
            AuthChange::Enable => store.enable().map(|()| AuthOutcome::Done),
            AuthChange::Disable => {
                store.disable();
                Ok(AuthOutcome::AllTokensVoid)
            }
            AuthChange::Authenticate {
                name,
                random,
                auth_revision,
            } => {
                if !store.enabled() {
                    return Err(AuthError::NotEnabled);
                }
                if store.revision() != auth_revision {
                    return Err(AuthError::OldRevision);
                }
                if store.user(&name).is_none() {
                    return Err(AuthError::AuthFailed);
                }
                Ok(AuthOutcome::Token {
                    user: name,
                    token: format!("{random}.{index}"),
                })
            }
            AuthChange::UserAdd {
                name,
                password_hash,
            } => store
                .user_add(&name, password_hash)
                .map(|()| AuthOutcome::Done),
            AuthChange::UserDelete { name } => store
                .user_delete(&name)
                .map(|()| AuthOutcome::UserTokensVoid(name)),
            AuthChange::UserChangePassword {
                name,
                password_hash,
            } => store
                .user_change_password(&name, password_hash)
                .map(|()| AuthOutcome::UserTokensVoid(name)),
            AuthChange::UserGrantRole { user, role } => store
                .user_grant_role(&user, &role)
                .map(|()| AuthOutcome::Done),
            AuthChange::UserRevokeRole { user, role } => store
                .user_revoke_role(&user, &role)
                .map(|()| AuthOutcome::Done),
            AuthChange::RoleAdd { name } => store.role_add(&name).map(|()| AuthOutcome::Done),
            AuthChange::RoleDelete { name } => store.role_delete(&name).map(|()| AuthOutcome::Done),
            AuthChange::RoleGrantPermission { name, perm } => store
                .role_grant_permission(&name, perm)
                .map(|()| AuthOutcome::Done),
            AuthChange::RoleRevokePermission {
                name,
                key,
                range_end,
            } => store
                .role_revoke_permission(&name, &key, &range_end)
                .map(|()| AuthOutcome::Done),
        }
    }

    /// The change's kind, for logs: no names of secrets, no hashes.
    pub fn name(&self) -> &'static str {
        match self {
            AuthChange::Enable => "enable",
            AuthChange::Disable => "disable",
            AuthChange::Authenticate { .. } => "authenticate",
            AuthChange::UserAdd { .. } => "user add",
            AuthChange::UserDelete { .. } => "user delete",
            AuthChange::UserChangePassword { .. } => "user change password",
            AuthChange::UserGrantRole { .. } => "user grant role",
            AuthChange::UserRevokeRole { .. } => "user revoke role",
            AuthChange::RoleAdd { .. } => "role add",
            AuthChange::RoleDelete { .. } => "role delete",
            AuthChange::RoleGrantPermission { .. } => "role grant permission",
            AuthChange::RoleRevokePermission { .. } => "role revoke permission",
        }
    }

    /// Authenticate is the one change anyone may ask for (it is how one becomes someone);
    /// every other needs the root role once auth is on.
    pub fn needs_admin(&self) -> bool {
        !matches!(self, AuthChange::Authenticate { .. })
    }
}
