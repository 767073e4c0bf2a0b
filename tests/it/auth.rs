//! Auth through etcdctl, differentially: users, roles, permissions, `auth enable`, allowed and
//! denied reads and writes, a wrong password, admin-only commands and `auth disable`, run
//! against etcd 3.4 and Quorum, every output and exit status compared.

use super::differential::{compare_script, step, streaming, with_stdin, Step};
use super::procs::{etcd_available, etcdctl, ProcCluster, Program};
use quorum::tls::TestPki;

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
        // Maintenance that reads the whole key space is for admins only.
        as_alice("endpoint hashkv"),
        as_alice("defrag"),
        as_root("defrag"),
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

#[test]
fn a_client_certificate_names_the_user_when_no_token_is_sent() {
    // Goal: with client-certificate auth, the certificate's CN stands for the user (the test
    // PKI's client is CN=root), and a token, when sent, wins over it. Method: the same etcdctl
    // steps over https against etcd 3.4 and Quorum, outputs and exit codes compared.
    if !etcd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate().unwrap().write_to(dir.path()).unwrap();
    let steps: &[&[&str]] = &[
        &["user", "add", "root:rootpw"],
        &["user", "add", "alice:alicepw"],
        &["auth", "enable"],
        &["put", "k", "by-cn"],
        &["get", "k", "--print-value-only"],
        &["user", "list"],
        &["--user=alice:alicepw", "put", "k", "by-alice"],
        &["--user=alice:alicepw", "user", "list"],
        &["auth", "disable"],
    ];
    let mut outputs = Vec::new();
    for program in [Program::Etcd, Program::Quorum] {
        let c = ProcCluster::start_with_args(program, 1, Some(&pki), FLAGS);
        let m = &c.members[0];
        let run: Vec<String> = steps
            .iter()
            .map(|args| {
                let all: Vec<&str> = m
                    .etcdctl_tls
                    .iter()
                    .map(String::as_str)
                    .chain(args.iter().copied())
                    .collect();
                let out = etcdctl(&m.client_url, &all, None);
                let stderr = String::from_utf8_lossy(&out.stderr);
                // clientv3's retry log lines carry timestamps; the rest must match.
                let stderr: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('{')).collect();
                format!(
                    "$ {}\nexit={:?}\n{}{}",
                    args.join(" "),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    stderr.join("\n")
                )
            })
            .collect();
        outputs.push(run);
    }
    assert!(outputs[0][3].contains("exit=Some(0)"), "{}", outputs[0][3]);
    for (e, q) in outputs[0].iter().zip(&outputs[1]) {
        assert_eq!(e, q, "etcd 3.4 (left) and Quorum (right) differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_survives_a_restart_from_a_snapshot() {
    // Goal: users, roles, permissions and the enabled flag are replicated state, kept by
    // snapshots and replay. Method: one in-process member snapshotting every 5 entries; set
    // auth up through the etcd-client crate, write past a snapshot, restart, then check that
    // alice's login and her allowed and denied writes behave as before.
    use etcd_client::{Client, ConnectOptions, Permission};
    use quorum::cluster::{ClusterSpec, LocalCluster};

    let ports = super::procs::free_ports(2);
    let mut spec = ClusterSpec::new(1);
    spec.ports = vec![(ports[0], ports[1])];
    spec.heartbeat_interval_ms = 50;
    spec.election_timeout_ms = 500;
    spec.snapshot_every_entries = 5;
    spec.auth.bcrypt_cost = 4;
    let mut c = LocalCluster::start(spec).await.expect("member starts");
    let ep = c.endpoints()[0].clone();
    let connect = |user: Option<(&str, &str)>| {
        let ep = ep.clone();
        let opts = user.map(|(u, p)| ConnectOptions::new().with_user(u, p));
        async move {
            for _ in 0..100 {
                if let Ok(cli) = Client::connect([ep.as_str()], opts.clone()).await {
                    return cli;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("could not connect to {ep}");
        }
    };
    let mut admin = connect(None).await;
    for _ in 0..100 {
        if admin.put("ready", "", None).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    admin.user_add("root", "rootpw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.role_add("app").await.unwrap();
    let perm = Permission::read_write("app/").with_prefix();
    admin.role_grant_permission("app", perm).await.unwrap();
    admin.user_add("alice", "alicepw", None).await.unwrap();
    admin.user_grant_role("alice", "app").await.unwrap();
    admin.auth_enable().await.unwrap();
    let mut root = connect(Some(("root", "rootpw"))).await;
    for i in 0..10 {
        root.put(format!("app/{i}"), "v", None).await.unwrap();
    }
    let server = c.node(0).expect("member runs").server.clone();
    for _ in 0..100 {
        if server.metrics().snapshot.is_some_and(|s| s.index > 15) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        server.metrics().snapshot.is_some_and(|s| s.index > 15),
        "a snapshot after auth setup"
    );
    // The member's storage stays locked while anything holds its server.
    drop(server);

    c.restart(0).await.expect("member restarts");
    let mut alice = connect(Some(("alice", "alicepw"))).await;
    alice
        .put("app/x", "1", None)
        .await
        .expect("alice may write app/");
    let denied = alice.put("other", "1", None).await.unwrap_err();
    assert!(
        denied.to_string().contains("etcdserver: permission denied"),
        "{denied}"
    );
    let mut anonymous = connect(None).await;
    let empty = anonymous.put("app/y", "1", None).await.unwrap_err();
    assert!(
        empty.to_string().contains("etcdserver: user name is empty"),
        "{empty}"
    );
    c.shutdown().await;
}
