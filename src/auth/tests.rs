//! The auth state machine: changes, enabling, and the per-command checks, applied as the log
//! would apply them.

use super::*;
use crate::command::Command;
use crate::proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};

fn apply(store: &mut AuthStore, change: AuthChange) -> Result<AuthOutcome, AuthError> {
    change.apply(store, 7)
}

fn user(name: &str) -> AuthChange {
    AuthChange::UserAdd {
        name: name.into(),
        password_hash: "hash".into(),
    }
}

fn grant(user: &str, role: &str) -> AuthChange {
    AuthChange::UserGrantRole {
        user: user.into(),
        role: role.into(),
    }
}

fn role(name: &str) -> AuthChange {
    AuthChange::RoleAdd { name: name.into() }
}

fn perm(role: &str, t: PermType, key: &str, end: &str) -> AuthChange {
    AuthChange::RoleGrantPermission {
        name: role.into(),
        perm: KeyPermission {
            perm_type: t,
            key: key.into(),
            range_end: end.into(),
        },
    }
}

/// Root with the root role, `alice` with READWRITE on `foo` and READ on [x, y), auth on.
fn enabled_store() -> AuthStore {
    let mut s = AuthStore::default();
    for c in [
        user("root"),
        grant("root", "root"),
        user("alice"),
        role("app"),
        perm("app", PermType::ReadWrite, "foo", ""),
        perm("app", PermType::Read, "x", "y"),
        grant("alice", "app"),
        AuthChange::Enable,
    ] {
        apply(&mut s, c).expect("setup change applies");
    }
    s
}

fn who(s: &AuthStore, name: &str) -> AuthInfo {
    AuthInfo {
        user: name.into(),
        revision: s.revision(),
    }
}

fn put(key: &str) -> Command {
    Command::Put(PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        ..Default::default()
    })
}

fn no_leases(_: i64) -> Vec<Vec<u8>> {
    Vec::new()
}

#[test]
fn enabling_needs_root_user_with_root_role() {
    // Goal: etcd's two refusals, in order, then success; a new store is at revision 1.
    let mut s = AuthStore::default();
    assert_eq!(s.revision(), 1);
    assert_eq!(
        apply(&mut s, AuthChange::Enable),
        Err(AuthError::RootUserNotExist)
    );
    apply(&mut s, user("root")).unwrap();
    assert_eq!(
        apply(&mut s, AuthChange::Enable),
        Err(AuthError::RootRoleNotExist)
    );
    // Granting root needs no role named root to exist.
    apply(&mut s, grant("root", "root")).unwrap();
    apply(&mut s, AuthChange::Enable).unwrap();
    assert!(s.enabled());
    assert_eq!(s.revision(), 4);
}

#[test]
fn user_and_role_changes_report_etcds_errors() {
    // Goal: duplicates, missing names and root protection while enabled.
    let mut s = enabled_store();
    assert_eq!(
        apply(&mut s, user("alice")),
        Err(AuthError::UserAlreadyExists)
    );
    assert_eq!(apply(&mut s, user("")), Err(AuthError::UserEmpty));
    assert_eq!(
        apply(&mut s, role("app")),
        Err(AuthError::RoleAlreadyExists)
    );
    assert_eq!(apply(&mut s, role("")), Err(AuthError::RoleEmpty));
    assert_eq!(
        apply(&mut s, grant("bob", "app")),
        Err(AuthError::UserNotFound)
    );
    assert_eq!(
        apply(&mut s, grant("alice", "nope")),
        Err(AuthError::RoleNotFound)
    );
    let revoke = |u: &str, r: &str| AuthChange::UserRevokeRole {
        user: u.into(),
        role: r.into(),
    };
    assert_eq!(
        apply(&mut s, revoke("alice", "root")),
        Err(AuthError::RoleNotGranted)
    );
    assert_eq!(
        apply(&mut s, revoke("root", "root")),
        Err(AuthError::InvalidAuthMgmt)
    );
    let del = AuthChange::UserDelete {
        name: "root".into(),
    };
    assert_eq!(apply(&mut s, del), Err(AuthError::InvalidAuthMgmt));
    let revoke_perm = AuthChange::RoleRevokePermission {
        name: "app".into(),
        key: b"nope".to_vec(),
        range_end: Vec::new(),
    };
    assert_eq!(
        apply(&mut s, revoke_perm),
        Err(AuthError::PermissionNotGranted)
    );
    // Deleting a role takes it from its users.
    apply(&mut s, AuthChange::RoleDelete { name: "app".into() }).unwrap();
    assert!(s.user("alice").unwrap().roles.is_empty());
}

#[test]
fn regranting_a_permission_replaces_its_type() {
    // Goal: one entry per (key, range_end), kept sorted, as RoleGet shows them.
    let mut s = AuthStore::default();
    apply(&mut s, role("r")).unwrap();
    apply(&mut s, perm("r", PermType::Read, "b", "")).unwrap();
    apply(&mut s, perm("r", PermType::Read, "a", "")).unwrap();
    apply(&mut s, perm("r", PermType::Write, "b", "")).unwrap();
    let perms = &s.role("r").unwrap().permissions;
    assert_eq!(perms.len(), 2);
    assert_eq!(
        (perms[0].key.as_slice(), perms[1].perm_type),
        (&b"a"[..], PermType::Write)
    );
}

#[test]
fn authenticate_names_its_token_by_log_index_and_checks_the_revision() {
    // Goal: `<random>.<index>`; refused while off, for a stale revision or unknown user.
    let mut off = AuthStore::default();
    let auth = |name: &str, rev: u64| AuthChange::Authenticate {
        name: name.into(),
        random: "AbCdEfGhIjKlMnOp".into(),
        auth_revision: rev,
    };
    assert_eq!(apply(&mut off, auth("root", 1)), Err(AuthError::NotEnabled));
    let mut s = enabled_store();
    let rev = s.revision();
    assert_eq!(
        apply(&mut s, auth("alice", rev)),
        Ok(AuthOutcome::Token {
            user: "alice".into(),
            token: "AbCdEfGhIjKlMnOp.7".into()
        })
    );
    assert_eq!(
        apply(&mut s, auth("alice", rev - 1)),
        Err(AuthError::OldRevision)
    );
    assert_eq!(apply(&mut s, auth("bob", rev)), Err(AuthError::AuthFailed));
}

#[test]
fn kv_commands_need_their_permissions_once_enabled() {
    // Goal: the apply-time checks: allowed, denied, no user, stale revision, root, auth off.
    let s = enabled_store();
    let alice = who(&s, "alice");
    let check = |w: Option<&AuthInfo>, c: &Command| check_command(&s, w, c, no_leases);
    assert_eq!(check(Some(&alice), &put("foo")), Ok(()));
    assert_eq!(
        check(Some(&alice), &put("bar")),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(check(None, &put("foo")), Err(AuthError::UserEmpty));
    let stale = AuthInfo {
        revision: s.revision() - 1,
        ..alice.clone()
    };
    assert_eq!(
        check(Some(&stale), &put("foo")),
        Err(AuthError::OldRevision)
    );
    assert_eq!(check(Some(&who(&s, "root")), &put("anything")), Ok(()));
    assert_eq!(
        check(Some(&who(&s, "ghost")), &put("foo")),
        Err(AuthError::PermissionDenied)
    );
    // READ alone does not let a user delete, nor read-back with prev_kv on a write it may do.
    let del = |key: &str, prev_kv: bool| {
        Command::DeleteRange(DeleteRangeRequest {
            key: key.into(),
            prev_kv,
            ..Default::default()
        })
    };
    assert_eq!(
        check(Some(&alice), &del("x", false)),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(check(Some(&alice), &del("foo", true)), Ok(()));
    let off = AuthStore::default();
    assert_eq!(check_command(&off, None, &put("bar"), no_leases), Ok(()));
}

#[test]
fn txn_checks_compares_and_both_branches() {
    // Goal: a txn is denied when any compare or any op of either branch is.
    let s = enabled_store();
    let alice = who(&s, "alice");
    let op_put = |k: &str| RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: k.into(),
            ..Default::default()
        })),
    };
    let op_get = |k: &str, end: &str| RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: k.into(),
            range_end: end.into(),
            ..Default::default()
        })),
    };
    let cmp = |k: &str| Compare {
        key: k.into(),
        target: compare::CompareTarget::Version as i32,
        ..Default::default()
    };
    let txn = |compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>| {
        Command::Txn(TxnRequest {
            compare,
            success,
            failure,
        })
    };
    let check = |c: &Command| check_command(&s, Some(&alice), c, no_leases);
    assert_eq!(
        check(&txn(
            vec![cmp("x1")],
            vec![op_put("foo")],
            vec![op_get("x", "y")]
        )),
        Ok(())
    );
    let denied = Err(AuthError::PermissionDenied);
    assert_eq!(check(&txn(vec![cmp("z")], vec![], vec![])), denied);
    assert_eq!(
        check(&txn(vec![], vec![op_put("foo")], vec![op_put("x")])),
        denied
    );
    assert_eq!(check(&txn(vec![], vec![op_get("x", "z")], vec![])), denied);
}

#[test]
fn lease_revoke_and_lease_puts_need_write_on_attached_keys() {
    // Goal: a user may not revoke, or attach to, a lease holding keys it cannot write.
    let s = enabled_store();
    let alice = who(&s, "alice");
    let keys = |id: i64| match id {
        1 => vec![b"foo".to_vec()],
        _ => vec![b"foo".to_vec(), b"secret".to_vec()],
    };
    let revoke = |id| Command::LeaseRevoke { id };
    assert_eq!(check_command(&s, Some(&alice), &revoke(1), keys), Ok(()));
    assert_eq!(
        check_command(&s, Some(&alice), &revoke(2), keys),
        Err(AuthError::PermissionDenied)
    );
    let put_lease = Command::Put(PutRequest {
        key: b"foo".to_vec(),
        lease: 2,
        ..Default::default()
    });
    assert_eq!(
        check_command(&s, Some(&alice), &put_lease, keys),
        Err(AuthError::PermissionDenied)
    );
}

#[test]
fn auth_changes_need_the_root_role_once_enabled() {
    // Goal: admin-only changes; Authenticate is open to all.
    let s = enabled_store();
    let add = Command::Auth(role("r2"));
    assert_eq!(
        check_command(&s, Some(&who(&s, "root")), &add, no_leases),
        Ok(())
    );
    assert_eq!(
        check_command(&s, Some(&who(&s, "alice")), &add, no_leases),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(
        check_command(&s, None, &add, no_leases),
        Err(AuthError::UserEmpty)
    );
    let login = Command::Auth(AuthChange::Authenticate {
        name: "alice".into(),
        random: String::new(),
        auth_revision: 0,
    });
    assert_eq!(check_command(&s, None, &login, no_leases), Ok(()));
}

#[test]
fn users_may_read_themselves_and_roles_they_hold() {
    // Goal: etcd's two exceptions to admin-only auth reads.
    let s = enabled_store();
    let alice = who(&s, "alice");
    assert_eq!(s.check_user_get(Some(&alice), "alice"), Ok(()));
    assert_eq!(
        s.check_user_get(Some(&alice), "root"),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(s.check_role_get(Some(&alice), "app"), Ok(()));
    assert_eq!(
        s.check_role_get(Some(&alice), "root"),
        Err(AuthError::PermissionDenied)
    );
}

#[test]
fn tokens_expire_unused_and_die_with_their_user() {
    // Goal: TTL counted from last use; forget_user and clear void tokens.
    let t = TokenTable::default();
    let ttl = std::time::Duration::from_secs(300);
    let start = crate::clock::LocalInstant::now();
    t.issue("a.1".into(), "alice".into(), start);
    t.issue("b.2".into(), "bob".into(), start);
    let later = start + std::time::Duration::from_secs(200);
    assert_eq!(t.lookup("a.1", later, ttl).as_deref(), Some("alice"));
    // a.1 was used at +200 s, so it lives past +300 s; b.2 does not.
    let much_later = start + std::time::Duration::from_secs(400);
    assert_eq!(t.lookup("a.1", much_later, ttl).as_deref(), Some("alice"));
    assert_eq!(t.lookup("b.2", much_later, ttl), None);
    t.forget_user("alice");
    assert_eq!(t.lookup("a.1", much_later, ttl), None);
    assert_eq!(t.lookup("nope", start, ttl), None);
}
