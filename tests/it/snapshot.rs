//! Snapshots in etcd 3.4's format, both directions, against Debian's etcd 3.4.23: a Quorum
//! snapshot passes `etcdctl snapshot status` (bbolt's `tx.Check()`) and restores into a real
//! etcd that serves the same keys at the same revisions; a real etcd's snapshot restores into
//! a Quorum member (`quorum snapshot restore` + `quorum serve`) that does the same.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::procs::{etcd_available, etcdctl, free_ports, ProcCluster, Program};

/// Keys written in bulk: enough for many leaf pages under branch pages.
const BULK_KEYS: usize = 2000;
/// Puts per txn (below `--max-txn-ops`), so revisions carry many sub-revisions.
const KEYS_PER_TXN: usize = 100;

/// A server process on a restored data dir, killed when dropped.
struct Server {
    child: Child,
    client_url: String,
    log: std::path::PathBuf,
}

impl Server {
    fn wait_ready(&self) {
        self.wait_ready_as(&[]);
    }

    /// Ready once a read with these etcdctl flags (e.g. `--user=...`) succeeds.
    fn wait_ready_as(&self, flags: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut args = flags.to_vec();
        args.extend(["get", "ready-probe"]);
        while !etcdctl(&self.client_url, &args, None).status.success() {
            assert!(
                Instant::now() < deadline,
                "server on {} not ready:\n{}",
                self.client_url,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quorum(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(args)
        .output()
        .expect("run quorum")
}

/// Writes the same history to any endpoint: bulk keys in txns, an overwrite, a delete, a key on
/// a lease, a value larger than a page, then a compaction. Returns the lease id (hex).
fn write_history(ep: &str) -> String {
    for batch in 0..BULK_KEYS / KEYS_PER_TXN {
        let ops: String = (0..KEYS_PER_TXN)
            .map(|i| {
                format!(
                    "put key-{:05} value-{batch}-{i}\n",
                    batch * KEYS_PER_TXN + i
                )
            })
            .collect();
        ok(etcdctl(ep, &["txn"], Some(&format!("\n{ops}\n\n"))));
    }
    ok(etcdctl(ep, &["put", "key-00001", "overwritten"], None));
    ok(etcdctl(ep, &["del", "key-00002"], None));
    let grant = ok(etcdctl(ep, &["lease", "grant", "600"], None));
    let lease = grant.split_whitespace().nth(1).unwrap().to_string();
    ok(etcdctl(
        ep,
        &["put", "leased", "v", "--lease", &lease],
        None,
    ));
    ok(etcdctl(ep, &["put", "big", &"x".repeat(10_000)], None));
    // Compact at the first txn's revision: every later version of key-00001 stays.
    ok(etcdctl(ep, &["compaction", "2"], None));
    lease
}

/// What a client sees: every live key, the header revision, an old version of key-00001.
fn key_space(ep: &str) -> (Value, Value, Value) {
    let all: Value = serde_json::from_str(&ok(etcdctl(
        ep,
        &["get", "", "--prefix", "-w", "json"],
        None,
    )))
    .unwrap();
    let old: Value = serde_json::from_str(&ok(etcdctl(
        ep,
        &["get", "key-00001", "--rev", "3", "-w", "json"],
        None,
    )))
    .unwrap();
    (
        all["kvs"].clone(),
        all["header"]["revision"].clone(),
        old["kvs"].clone(),
    )
}

#[test]
fn quorum_snapshot_passes_etcdctl_status_and_restores_into_etcd() {
    // Goal: `etcdctl snapshot save` from Quorum gives a file etcd's own tools accept (status
    // runs bbolt's consistency check over thousands of keys) and from which a real etcd 3.4
    // serves the same keys, values, revisions and lease.
    if !etcd_available() {
        return;
    }
    let c = ProcCluster::start(Program::Quorum, 1);
    let ep = &c.members[0].client_url;
    let lease = write_history(ep);
    let (kvs, revision, old) = key_space(ep);
    assert_eq!(kvs.as_array().unwrap().len(), BULK_KEYS - 1 + 2);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quorum.db");
    let file_s = file.to_str().unwrap();
    let started = Instant::now();
    ok(etcdctl(ep, &["snapshot", "save", file_s], None));
    let save_time = started.elapsed();

    let status: Value = serde_json::from_str(&ok(etcdctl(
        "",
        &["snapshot", "status", file_s, "-w", "json"],
        None,
    )))
    .unwrap();
    assert_eq!(status["revision"], revision, "{status}");
    // Every stored revision plus the other buckets' entries.
    assert!(
        status["totalKey"].as_u64().unwrap() > BULK_KEYS as u64,
        "{status}"
    );
    let ours = ok(quorum(&["snapshot", "status", file_s, "-w", "json"]));
    assert_eq!(serde_json::from_str::<Value>(&ours).unwrap(), status);
    eprintln!(
        "snapshot of {} live keys: {} bytes, saved in {save_time:?}",
        BULK_KEYS + 1,
        status["totalSize"]
    );

    let restored = dir.path().join("etcd");
    let etcd = restore_and_start_etcd(file_s, &restored);
    let (kvs2, revision2, old2) = key_space(&etcd.client_url);
    assert_eq!(revision2, revision);
    assert_eq!(kvs2, kvs, "etcd serves the same keys, values and revisions");
    assert_eq!(old2, old, "and the same history");
    let leases = ok(etcdctl(&etcd.client_url, &["lease", "list"], None));
    assert!(leases.contains(&lease), "{leases}");
}

#[test]
fn users_roles_and_permissions_travel_with_a_snapshot_into_etcd() {
    // Goal: a backup of a cluster with auth on keeps who may do what: restored into etcd 3.4,
    // the same users log in with the same passwords and get the same answers.
    if !etcd_available() {
        return;
    }
    let c = ProcCluster::start(Program::Quorum, 1);
    let ep = &c.members[0].client_url;
    for cmd in [
        "user add root:rootpw",
        "role add app",
        "role grant-permission app readwrite foo",
        "user add alice:alicepw",
        "user grant-role alice app",
        "auth enable",
        "--user=root:rootpw put foo from-quorum",
    ] {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        ok(etcdctl(ep, &args, None));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.db");
    let file_s = file.to_str().unwrap();
    ok(etcdctl(
        ep,
        &["--user=root:rootpw", "snapshot", "save", file_s],
        None,
    ));

    let etcd = restore_and_start_etcd_as(file_s, &dir.path().join("etcd"), &["--user=root:rootpw"]);
    let as_alice = |args: &[&str]| {
        let all: Vec<&str> = ["--user=alice:alicepw"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        etcdctl(&etcd.client_url, &all, None)
    };
    assert_eq!(
        ok(as_alice(&["get", "foo", "--print-value-only"])).trim(),
        "from-quorum"
    );
    let denied = as_alice(&["put", "bar", "x"]);
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("etcdserver: permission denied"),
        "{denied:?}"
    );
    let anonymous = etcdctl(&etcd.client_url, &["get", "foo"], None);
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("etcdserver: user name is empty"),
        "{anonymous:?}"
    );
}

/// `etcdctl snapshot restore` for a one-member cluster on fresh ports, then `etcd` on it.
fn restore_and_start_etcd(file: &str, dir: &Path) -> Server {
    restore_and_start_etcd_as(file, dir, &[])
}

/// As `restore_and_start_etcd`, waiting for a read made with `flags` (credentials).
fn restore_and_start_etcd_as(file: &str, dir: &Path, flags: &[&str]) -> Server {
    // The peer URL is fixed at restore time, so pick the ports first and start etcd on them.
    let ports = free_ports(2);
    let client_url = format!("http://127.0.0.1:{}", ports[0]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    ok(etcdctl(
        "",
        &[
            "snapshot",
            "restore",
            file,
            "--name",
            "e1",
            "--data-dir",
            dir.to_str().unwrap(),
            "--initial-cluster",
            &format!("e1={peer}"),
            "--initial-advertise-peer-urls",
            &peer,
        ],
        None,
    ));
    let log = dir.with_extension("log");
    let child = Command::new("etcd")
        .args(["--name", "e1", "--data-dir"])
        .arg(dir)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("e1={peer}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn etcd");
    let s = Server {
        child,
        client_url,
        log,
    };
    s.wait_ready_as(flags);
    s
}

#[test]
fn etcd_snapshot_restores_into_a_quorum_member() {
    // Goal: a snapshot saved from a real etcd 3.4 becomes, through `quorum snapshot restore`,
    // a data dir from which `quorum serve` serves the same keys at the same revisions, with the
    // lease; `quorum snapshot verify` passes on the file.
    if !etcd_available() {
        return;
    }
    let c = ProcCluster::start(Program::Etcd, 1);
    let ep = &c.members[0].client_url;
    let lease = write_history(ep);
    let (kvs, revision, old) = key_space(ep);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("etcd.db");
    let file_s = file.to_str().unwrap();
    ok(etcdctl(ep, &["snapshot", "save", file_s], None));

    let verdict = ok(quorum(&["snapshot", "verify", file_s]));
    assert!(verdict.contains("PASS"), "{verdict}");

    let data = dir.path().join("q1");
    let server = restore_and_start_quorum(file_s, &data);
    let (kvs2, revision2, old2) = key_space(&server.client_url);
    assert_eq!(revision2, revision);
    assert_eq!(
        kvs2, kvs,
        "Quorum serves the same keys, values and revisions"
    );
    assert_eq!(old2, old, "and the same history");
    let leases = ok(etcdctl(&server.client_url, &["lease", "list"], None));
    assert!(leases.contains(&lease), "{leases}");
    // It takes writes at the next revision.
    let put: Value = serde_json::from_str(&ok(etcdctl(
        &server.client_url,
        &["put", "after", "restore", "-w", "json"],
        None,
    )))
    .unwrap();
    assert_eq!(
        put["header"]["revision"].as_i64(),
        revision.as_i64().map(|r| r + 1)
    );
}

/// `quorum snapshot restore` for a one-member cluster on fresh ports, then `quorum serve`.
fn restore_and_start_quorum(file: &str, dir: &Path) -> Server {
    let ports = free_ports(2);
    let client_url = format!("http://127.0.0.1:{}", ports[0]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let args = [
        "--name".to_string(),
        "q1".into(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--initial-cluster".into(),
        format!("q1={peer}"),
        "--initial-advertise-peer-urls".into(),
        peer.clone(),
        "--initial-cluster-token".into(),
        "restored".into(),
    ];
    let mut restore: Vec<&str> = vec!["snapshot", "restore", file];
    restore.extend(args.iter().map(String::as_str));
    ok(quorum(&restore));
    let log = dir.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .arg("serve")
        .args(&args)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn quorum");
    let s = Server {
        child,
        client_url,
        log,
    };
    s.wait_ready();
    s
}

#[test]
fn corrupted_snapshot_is_refused_with_the_reason() {
    // Goal: a flipped byte fails restore and verify on the SHA-256 trailer, a cut file on its
    // missing trailer, and nothing is written.
    let file = include_bytes!("../fixtures/etcd-3.4.23.snapshot.db");
    let dir = tempfile::tempdir().unwrap();
    let mut bad = file.to_vec();
    bad[5000] ^= 0x40;
    let bad_path = dir.path().join("bad.db");
    std::fs::write(&bad_path, &bad).unwrap();
    let cut_path = dir.path().join("cut.db");
    std::fs::write(&cut_path, &file[..9000]).unwrap();
    for (path, reason) in [(&bad_path, "expected sha256"), (&cut_path, "missing hash")] {
        let data = dir.path().join("data");
        let out = quorum(&[
            "snapshot",
            "restore",
            path.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{err}");
        assert!(!data.exists(), "nothing written for {}", path.display());
        let out = quorum(&["snapshot", "verify", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
    }
    let out = quorum(&["snapshot", "status", cut_path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}
