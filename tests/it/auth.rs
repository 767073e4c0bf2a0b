//! Auth through etcdctl, differentially: users, roles, permissions, `auth enable`, allowed and
//! denied reads and writes, a wrong password, admin-only commands and `auth disable`, run
//! against etcd 3.4 and Quorum, every output and exit status compared.

use super::differential::{compare_script, step, streaming, with_stdin, Step};

/// bcrypt's cheapest cost on both sides: each `--user` call verifies a password.
const FLAGS: &[&str] = &["--bcrypt-cost=4"];

fn as_alice(cmd: &str) -> Step {
    step(&format!("--user=alice:alicepw {cmd}"))
}

fn as_root(cmd: &str) -> Step {
    step(&format!("--user=root:rootpw {cmd}"))
}

fn script() -> Vec<Step> {
    vec![
        // Before enabling: nothing to enable with, unknown names, duplicates.
        step("auth enable"),
        step("user add root:rootpw"),
        step("user add root:again"),
        step("user get nope"),
        step("role get nope"),
        step("role add app"),
        step("role add app"),
        step("role grant-permission app readwrite foo"),
        step("role grant-permission app read --prefix /pub/"),
        step("role grant-permission app write w1 w3"),
        step("role grant-permission nope read x"),
        step("user add alice:alicepw"),
        step("user grant-role alice app"),
        step("user grant-role alice nope"),
        step("user grant-role bob app"),
        step("user get alice"),
        step("role get app"),
        step("user list"),
        step("role list"),
        // --user while auth is off: the client carries on without a token.
        as_root("put early 1"),
        // etcdctl adds the root role and grants it, then enables.
        step("auth enable"),
        step("role list --user=root:rootpw"),
        step("put foo 1"),
        step("get foo"),
        as_alice("put foo bar"),
        as_alice("get foo"),
        as_alice("get foo -w json"),
        as_alice("put bar 1"),
        as_alice("get bar"),
        as_alice("get foo --prefix"),
        as_alice("put w2 1"),
        as_alice("put w1 1 --prev-kv"),
        as_alice("get w1 w3"),
        step("--user=alice:wrong get foo"),
        step("--user=nobody:pw get foo"),
        as_root("put /pub/x 1"),
        as_alice("get /pub/ --prefix"),
        as_alice("put /pub/x 2"),
        as_alice("del foo --prev-kv"),
        as_alice("del w1 w3"),
        with_stdin(
            "--user=alice:alicepw txn",
            "value(\"foo\") = \"bar\"\n\nput foo 2\n\nput bar 2\n\n",
        ),
        with_stdin(
            "--user=alice:alicepw txn",
            "value(\"/pub/x\") = \"1\"\n\nget /pub/x\n\nput foo 3\n\n",
        ),
        as_alice("lease grant 60"),
        as_alice("put foo leased --lease=$LEASE"),
        as_alice("lease revoke $LEASE"),
        streaming("--user=alice:alicepw watch bar", 1000),
        as_alice("user list"),
        as_alice("user get alice"),
        as_alice("user get root"),
        as_alice("role get app"),
        as_alice("role add r2"),
        as_alice("auth disable"),
        as_root("user list"),
        as_root("user delete root"),
        as_root("user revoke-role root root"),
        as_root("role delete root"),
        as_root("user revoke-role alice nope"),
        as_root("role revoke-permission app nope"),
        as_root("role revoke-permission app foo"),
        as_alice("get foo"),
        with_stdin(
            "--user=root:rootpw user passwd alice --interactive=false",
            "newpw\n",
        ),
        step("--user=alice:newpw get /pub/x"),
        as_alice("get /pub/x"),
        as_root("auth enable"),
        step("auth disable"),
        as_root("auth disable"),
        step("put foo 9"),
        step("get foo"),
        as_root("get foo"),
        step("user delete alice"),
        step("user delete alice"),
        step("role delete app"),
        step("role delete root"),
        step("user list"),
        step("role list"),
    ]
}

#[test]
fn auth_through_etcdctl_matches_etcd_on_a_single_member() {
    // Goal: etcdctl's auth session prints and exits the same against etcd 3.4 and Quorum.
    compare_script(1, FLAGS, &script());
}

#[test]
fn auth_through_etcdctl_matches_etcd_on_three_members() {
    // Goal: the same where changes and logins reach a follower and are forwarded, and tokens
    // are issued on every member as it applies the login.
    compare_script(3, FLAGS, &script());
}
