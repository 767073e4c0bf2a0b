//! etcdctl's cluster-facing commands against three `quorum serve` processes: what the
//! differential test cannot compare byte for byte (versions, ids, sizes), checked by shape.

use super::procs::{etcd_available, etcdctl, ProcCluster, Program};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn endpoint_status_health_and_member_list_work_with_scheme_urls() {
    // Goal: the recipes operators run (`endpoint status`, `endpoint health --cluster`,
    // `member list`) work with `http://` endpoints, as they do against etcd.
    if !etcd_available() {
        return;
    }
    let c = ProcCluster::start(Program::Quorum, 3);
    let eps: Vec<String> = c.members.iter().map(|m| m.client_url.clone()).collect();
    let all = eps.join(",");

    let status = etcdctl(&all, &["endpoint", "status", "-w", "json"], None);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = stdout(&status);
    assert_eq!(text.matches("\"version\":\"3.5.").count(), 3, "{text}");
    let leaders: Vec<&str> = text
        .split("\"leader\":")
        .skip(1)
        .map(|s| s.split(',').next().unwrap())
        .collect();
    assert!(
        leaders.windows(2).all(|w| w[0] == w[1]) && leaders[0] != "0",
        "one agreed leader: {text}"
    );

    let health = etcdctl(&eps[0], &["endpoint", "health", "--cluster"], None);
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    let text = stdout(&health) + &String::from_utf8_lossy(&health.stderr);
    for ep in &eps {
        assert!(text.contains(&format!("{ep} is healthy")), "{text}");
    }

    let members = etcdctl(&eps[1], &["member", "list"], None);
    let text = stdout(&members);
    assert_eq!(text.lines().count(), 3, "{text}");
    for (m, ep) in c.members.iter().zip(&eps) {
        assert!(text.contains(&format!(", started, {}, ", m.name)), "{text}");
        assert!(text.contains(ep.as_str()), "{text}");
    }

    let hashes = etcdctl(&all, &["endpoint", "hashkv"], None);
    let text = stdout(&hashes);
    let values: Vec<&str> = text.lines().filter_map(|l| l.split(", ").nth(1)).collect();
    assert_eq!(values.len(), 3, "{text}");
    assert!(
        values.windows(2).all(|w| w[0] == w[1]),
        "members hash alike: {text}"
    );
}

#[test]
fn snapshot_save_writes_a_file_from_one_member() {
    // Goal: `etcdctl snapshot save` (the backup recipe) completes against a member.
    if !etcd_available() {
        return;
    }
    let c = ProcCluster::start(Program::Quorum, 1);
    let ep = &c.members[0].client_url;
    assert!(etcdctl(ep, &["put", "k", "v"], None).status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let out = etcdctl(ep, &["snapshot", "save", file.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
}

#[test]
fn member_add_then_start_with_existing_state_joins_and_member_remove_leaves() {
    // Goal: the etcd recipe for growing a cluster: `member add`, start the new member with
    // `--initial-cluster-state existing`, it catches up; `member remove` takes it out again.
    if !etcd_available() {
        return;
    }
    use super::procs::free_ports;
    use std::process::{Command, Stdio};
    let c = ProcCluster::start(Program::Quorum, 3);
    let eps: Vec<String> = c.members.iter().map(|m| m.client_url.clone()).collect();
    let all = eps.join(",");
    assert!(etcdctl(&all, &["put", "before", "join"], None)
        .status
        .success());
    let ports = free_ports(2);
    let client = format!("http://127.0.0.1:{}", ports[0]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let add = etcdctl(
        &eps[1],
        &["member", "add", "m3", &format!("--peer-urls={peer}")],
        None,
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let text = stdout(&add);
    let line = text
        .lines()
        .find(|l| l.starts_with("ETCD_INITIAL_CLUSTER="))
        .expect("member add prints the initial cluster to use");
    let initial = line
        .trim_start_matches("ETCD_INITIAL_CLUSTER=")
        .trim_matches('"')
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut joiner = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["serve", "--name", "m3", "--data-dir"])
        .arg(dir.path().join("m3"))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args([
            "--initial-cluster",
            &initial,
            "--initial-cluster-state",
            "existing",
        ])
        .args(["--initial-cluster-token", "it-cluster"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("m3.log")).unwrap())
        .spawn()
        .unwrap();
    let mut joined = false;
    for _ in 0..100 {
        let got = etcdctl(
            &client,
            &["get", "before", "--consistency=s", "--print-value-only"],
            None,
        );
        let list = stdout(&etcdctl(&eps[0], &["member", "list"], None));
        if stdout(&got).trim() == "join" && list.contains(", started, m3, ") {
            joined = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        joined,
        "the new member replicated the data and published its name"
    );
    assert!(etcdctl(&client, &["put", "after", "join"], None)
        .status
        .success());

    let list = stdout(&etcdctl(&eps[0], &["member", "list"], None));
    let id = list
        .lines()
        .find(|l| l.contains(", m3, "))
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string();
    let rm = etcdctl(&eps[2], &["member", "remove", &id], None);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let list = stdout(&etcdctl(&eps[0], &["member", "list"], None));
    assert_eq!(list.lines().count(), 3, "{list}");
    let missing = etcdctl(&eps[0], &["member", "remove", &id], None);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("etcdserver: member not found"));
    // The removed member stops by itself, as etcd's does, and exits cleanly.
    let mut exited = None;
    for _ in 0..100 {
        exited = joiner.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = joiner.kill();
    let _ = joiner.wait();
    let log = std::fs::read_to_string(dir.path().join("m3.log")).unwrap();
    let status = exited.expect("the removed member's process exits within 10 s");
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        log.contains("the member has been permanently removed from the cluster"),
        "{log}"
    );
}
