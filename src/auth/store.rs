//! The auth store: users, roles, whether auth is on, and its revision. Replicated: it lives in
//! the applied state, changes only by applying a command, and is snapshotted with the rest.
//!
//! Invariant: every method is a pure function of the store and its arguments (no clock, no
//! RNG); password hashes arrive already made, at the API edge. Every successful change moves
//! `revision` by one, so a request whose caller was resolved against an older store is refused
//! with "revision of auth store is old" instead of being judged by rules its client never saw.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::perm::{permits, Access, KeyPermission};
use super::AuthInfo;

/// The user and role that may do anything, and without which auth cannot be enabled.
pub const ROOT: &str = "root";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// A bcrypt hash; empty for a user added with `no_password`, who can never authenticate
    /// by password (only by client certificate).
    pub password_hash: String,
    pub roles: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Sorted by (key, range_end), one entry per pair: granting the same pair again replaces
    /// its type, as etcd does.
    pub permissions: Vec<KeyPermission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStore {
    enabled: bool,
    /// etcd's authRevision: 1 on a new cluster.
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
}

impl Default for AuthStore {
    fn default() -> Self {
        AuthStore {
            enabled: false,
            revision: 1,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }
}

impl AuthStore {
    /// A store as a snapshot carries it (etcd's auth buckets).
    pub fn from_parts(
        enabled: bool,
        revision: u64,
        users: BTreeMap<String, User>,
        roles: BTreeMap<String, Role>,
    ) -> AuthStore {
        AuthStore {
            enabled,
            revision,
            users,
            roles,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    pub fn user_names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    fn bump(&mut self) {
        self.revision += 1;
    }

    pub fn enable(&mut self) -> Result<(), AuthError> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(AuthError::RootUserNotExist)?;
        if !root.roles.contains(ROOT) {
            return Err(AuthError::RootRoleNotExist);
        }
        self.enabled = true;
        self.bump();
        Ok(())
    }

    pub fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.bump();
        }
    }

    pub fn user_add(&mut self, name: &str, password_hash: String) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        if self.users.contains_key(name) {
            return Err(AuthError::UserAlreadyExists);
        }
        let user = User {
            password_hash,
            roles: BTreeSet::new(),
        };
        self.users.insert(name.to_string(), user);
        self.bump();
        Ok(())
    }

    pub fn user_delete(&mut self, name: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(AuthError::UserNotFound)?;
        self.bump();
        Ok(())
    }

    pub fn user_change_password(&mut self, name: &str, hash: String) -> Result<(), AuthError> {
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        user.password_hash = hash;
        self.bump();
        Ok(())
    }

    /// Granting `root` needs no role of that name to exist (etcd's rule); granting a role
    /// the user already holds changes nothing.
    pub fn user_grant_role(&mut self, user: &str, role: &str) -> Result<(), AuthError> {
        if !self.users.contains_key(user) {
            return Err(AuthError::UserNotFound);
        }
        if role != ROOT && !self.roles.contains_key(role) {
            return Err(AuthError::RoleNotFound);
        }
        let u = self.users.get_mut(user).ok_or(AuthError::UserNotFound)?;
        if u.roles.insert(role.to_string()) {
            self.bump();
        }
        Ok(())
    }

    pub fn user_revoke_role(&mut self, user: &str, role: &str) -> Result<(), AuthError> {
        if self.enabled && user == ROOT && role == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let u = self.users.get_mut(user).ok_or(AuthError::UserNotFound)?;
        if !u.roles.remove(role) {
            return Err(AuthError::RoleNotGranted);
        }
        self.bump();
        Ok(())
    }

    pub fn role_add(&mut self, name: &str) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(AuthError::RoleAlreadyExists);
        }
        self.roles.insert(name.to_string(), Role::default());
        self.bump();
        Ok(())
    }

    /// Deleting a role takes it from every user that held it.
    pub fn role_delete(&mut self, name: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(AuthError::RoleNotFound)?;
        for user in self.users.values_mut() {
            user.roles.remove(name);
        }
        self.bump();
        Ok(())
    }

    pub fn role_grant_permission(
        &mut self,
        name: &str,
        perm: KeyPermission,
    ) -> Result<(), AuthError> {
        let role = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
        let slot = role
            .permissions
            .binary_search_by(|p| (&p.key, &p.range_end).cmp(&(&perm.key, &perm.range_end)));
        match slot {
            Ok(i) => role.permissions[i] = perm,
            Err(i) => role.permissions.insert(i, perm),
        }
        self.bump();
        Ok(())
    }

    pub fn role_revoke_permission(
        &mut self,
        name: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), AuthError> {
        let role = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
        let before = role.permissions.len();
        role.permissions
            .retain(|p| !(p.key == key && p.range_end == range_end));
        if role.permissions.len() == before {
            return Err(AuthError::PermissionNotGranted);
        }
        self.bump();
        Ok(())
    }

    fn has_root_role(user: &User) -> bool {
        user.roles.contains(ROOT)
    }

    /// Whether `who` may touch `key`..`range_end` for `access`. Anything goes while auth is off.
    pub fn check(
        &self,
        who: Option<&AuthInfo>,
        access: Access,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let who = who
            .filter(|w| !w.user.is_empty())
            .ok_or(AuthError::UserEmpty)?;
        if who.revision < self.revision {
            return Err(AuthError::OldRevision);
        }
        let user = self
            .users
            .get(&who.user)
            .ok_or(AuthError::PermissionDenied)?;
        if Self::has_root_role(user) {
            return Ok(());
        }
        let perms = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|r| r.permissions.iter());
        if permits(perms, access, key, range_end) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Whether `who` may manage auth (holds the root role). Anything goes while auth is off.
    pub fn check_admin(&self, who: Option<&AuthInfo>) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let who = who
            .filter(|w| !w.user.is_empty())
            .ok_or(AuthError::UserEmpty)?;
        let user = self.users.get(&who.user).ok_or(AuthError::UserNotFound)?;
        if Self::has_root_role(user) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// UserGet: an admin, or the user asking about itself.
    pub fn check_user_get(&self, who: Option<&AuthInfo>, name: &str) -> Result<(), AuthError> {
        if self.enabled && who.is_some_and(|w| w.user == name && self.users.contains_key(name)) {
            return Ok(());
        }
        self.check_admin(who)
    }

    /// RoleGet: an admin, or a user holding that role.
    pub fn check_role_get(&self, who: Option<&AuthInfo>, role: &str) -> Result<(), AuthError> {
        let holds = who
            .and_then(|w| self.users.get(&w.user))
            .is_some_and(|u| u.roles.contains(role));
        if self.enabled && holds {
            return Ok(());
        }
        self.check_admin(who)
    }
}
