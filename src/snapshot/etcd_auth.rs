//! Auth in etcd 3.4's buckets: `auth` (`authEnabled` as one byte, `authRevision` as 8 bytes
//! big-endian), `authUsers` (name → `authpb.User`, the bcrypt hash as the password) and
//! `authRoles` (name → `authpb.Role`). So users, roles and permissions travel with a snapshot
//! both ways, and a team loading production state keeps its access rules.

use std::collections::BTreeMap;

use prost::Message;

use super::bolt::Db;
use super::etcd_db::{layout, LayoutError};
use crate::auth::{AuthStore, KeyPermission, PermType, Role, User};
use crate::proto::authpb;

/// (auth, authRoles, authUsers) bucket entries.
pub type AuthEntries = (
    Vec<(Vec<u8>, Vec<u8>)>,
    Vec<(Vec<u8>, Vec<u8>)>,
    Vec<(Vec<u8>, Vec<u8>)>,
);

pub fn encode(auth: &AuthStore) -> AuthEntries {
    let mut flags = vec![(
        b"authRevision".to_vec(),
        auth.revision().to_be_bytes().to_vec(),
    )];
    // A cluster that never enabled auth has no `authEnabled` key in etcd; absent means off.
    if auth.enabled() {
        flags.insert(0, (b"authEnabled".to_vec(), vec![1]));
    }
    let roles = auth
        .role_names()
        .filter_map(|name| Some((name, auth.role(name)?)))
        .map(|(name, role)| {
            let wire = authpb::Role {
                name: name.as_bytes().to_vec(),
                key_permission: role
                    .permissions
                    .iter()
                    .map(KeyPermission::to_wire)
                    .collect(),
            };
            (name.as_bytes().to_vec(), wire.encode_to_vec())
        })
        .collect();
    let users = auth
        .user_names()
        .filter_map(|name| Some((name, auth.user(name)?)))
        .map(|(name, user)| {
            let wire = authpb::User {
                name: name.as_bytes().to_vec(),
                password: user.password_hash.as_bytes().to_vec(),
                roles: user.roles.iter().cloned().collect(),
                options: Some(authpb::UserAddOptions {
                    no_password: user.password_hash.is_empty(),
                }),
            };
            (name.as_bytes().to_vec(), wire.encode_to_vec())
        })
        .collect();
    (flags, roles, users)
}

/// The auth store a database holds; a database without auth buckets is auth off, revision 1.
pub fn decode(db: &Db) -> Result<AuthStore, LayoutError> {
    let entries = |bucket: &str| {
        db.bucket(bucket.as_bytes())
            .map_or(&[][..], |b| b.entries.as_slice())
            .to_vec()
    };
    let mut enabled = false;
    let mut revision = 1;
    for (k, v) in entries("auth") {
        match k.as_slice() {
            b"authEnabled" => enabled = v.first() == Some(&1),
            b"authRevision" => {
                let bytes: [u8; 8] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| layout("auth", &k, "authRevision is not 8 bytes"))?;
                revision = u64::from_be_bytes(bytes);
            }
            _ => {}
        }
    }
    let mut roles = BTreeMap::new();
    for (k, v) in entries("authRoles") {
        let wire = authpb::Role::decode(v.as_slice())
            .map_err(|e| layout("authRoles", &k, format!("not an authpb.Role: {e}")))?;
        let mut permissions = Vec::new();
        for p in wire.key_permission {
            let perm_type = PermType::from_wire(p.perm_type)
                .ok_or_else(|| layout("authRoles", &k, "unknown permission type"))?;
            permissions.push(KeyPermission {
                perm_type,
                key: p.key,
                range_end: p.range_end,
            });
        }
        permissions.sort_by(|a, b| (&a.key, &a.range_end).cmp(&(&b.key, &b.range_end)));
        roles.insert(utf8("authRoles", &k)?, Role { permissions });
    }
    let mut users = BTreeMap::new();
    for (k, v) in entries("authUsers") {
        let wire = authpb::User::decode(v.as_slice())
            .map_err(|e| layout("authUsers", &k, format!("not an authpb.User: {e}")))?;
        let password_hash = String::from_utf8(wire.password)
            .map_err(|_| layout("authUsers", &k, "the password hash is not text"))?;
        let user = User {
            password_hash,
            roles: wire.roles.into_iter().collect(),
        };
        users.insert(utf8("authUsers", &k)?, user);
    }
    Ok(AuthStore::from_parts(enabled, revision, users, roles))
}

fn utf8(bucket: &'static str, k: &[u8]) -> Result<String, LayoutError> {
    String::from_utf8(k.to_vec()).map_err(|_| layout(bucket, k, "the name is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::bolt;

    #[test]
    fn users_roles_and_the_enabled_flag_round_trip() {
        // Goal: a snapshot carries who may do what, both ways.
        let mut auth = AuthStore::default();
        auth.role_add("root").unwrap();
        auth.role_add("app").unwrap();
        let perm = KeyPermission {
            perm_type: PermType::ReadWrite,
            key: b"/app/".to_vec(),
            range_end: b"/app0".to_vec(),
        };
        auth.role_grant_permission("app", perm).unwrap();
        auth.user_add("root", "$2a$04$abcdefghijklmnopqrstuv".into())
            .unwrap();
        auth.user_grant_role("root", "root").unwrap();
        auth.user_add("alice", "$2a$04$zyxwvutsrqponmlkjihgfe".into())
            .unwrap();
        auth.user_grant_role("alice", "app").unwrap();
        auth.enable().unwrap();
        let (flags, roles, users) = encode(&auth);
        let buckets = vec![
            bolt::Bucket {
                name: b"auth".to_vec(),
                entries: flags,
            },
            bolt::Bucket {
                name: b"authRoles".to_vec(),
                entries: roles,
            },
            bolt::Bucket {
                name: b"authUsers".to_vec(),
                entries: users,
            },
        ];
        let file = bolt::write(&buckets).unwrap();
        let db = bolt::read(&file).unwrap();
        assert_eq!(decode(&db).unwrap(), auth);
    }
}
