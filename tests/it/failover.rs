//! Three `quorum serve` processes: SIGKILL the leader mid-writes, keep writing, restart it from
//! its data directory, and find every acknowledged write on every member.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions};

use super::procs::{ProcCluster, Program};

async fn leader_index(c: &ProcCluster) -> usize {
    for _ in 0..100 {
        for (i, m) in c.members.iter().enumerate() {
            let Ok(mut cli) = Client::connect([m.client_url.as_str()], None).await else {
                continue;
            };
            if let Ok(s) = cli.status().await {
                if s.leader() != 0 && s.leader() == s.header().map_or(0, |h| h.member_id()) {
                    return i;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_loses_no_acknowledged_write_and_the_member_catches_up() {
    // Goal: etcd's durability promise across a leader crash. Method: a writer puts unique keys
    // through the survivors with short timeouts, recording acknowledgements; the leader is
    // SIGKILLed after 30 writes and restarted after 60; finally every member must serve every
    // acknowledged key from its own state (serializable reads).
    let mut c = ProcCluster::start(Program::Quorum, 3);
    let leader = leader_index(&c).await;
    let others: Vec<String> = (0..3)
        .filter(|i| *i != leader)
        .map(|i| c.members[i].client_url.clone())
        .collect();
    let opts = ConnectOptions::new().with_timeout(Duration::from_secs(3));
    let mut writer = Client::connect(others.clone(), Some(opts)).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..90 {
        if i == 30 {
            c.members[leader].kill();
        }
        if i == 60 {
            c.members[leader].restart();
        }
        let key = format!("ack/{i:03}");
        if writer.put(key.clone(), format!("v{i}"), None).await.is_ok() {
            acked.push(key);
        }
    }
    assert!(
        acked.len() >= 80,
        "writes continue through the failover: {} acked",
        acked.len()
    );
    for m in &c.members {
        let mut cli = Client::connect([m.client_url.as_str()], None)
            .await
            .unwrap();
        let mut caught_up = false;
        for _ in 0..100 {
            let opts = GetOptions::new()
                .with_prefix()
                .with_keys_only()
                .with_serializable();
            if let Ok(r) = cli.get("ack/", Some(opts)).await {
                let have: Vec<String> = r
                    .kvs()
                    .iter()
                    .map(|kv| kv.key_str().unwrap().to_string())
                    .collect();
                if acked.iter().all(|k| have.contains(k)) {
                    caught_up = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            caught_up,
            "{} holds every acknowledged write\n{}",
            m.name,
            m.log_tail()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_whose_data_dir_was_lost_refuses_to_rejoin_until_removed_and_added_back() {
    // Goal: a member that lost its disk must not come back under its old id (it forgot its
    // vote and log), and etcd's runbook (member remove, member add, start with `existing`)
    // brings it back with every write. Method: kill a follower, delete its data dir, restart
    // it: it must exit with the data-dir-lost error; then remove and re-add it through etcdctl
    // and restart it with `existing`: it must serve every key from its own state.
    let mut c = ProcCluster::start(Program::Quorum, 3);
    let leader = leader_index(&c).await;
    let lost = (leader + 1) % 3;
    let other = c.members[(leader + 2) % 3].client_url.clone();
    let mut cli = Client::connect([c.members[leader].client_url.as_str()], None)
        .await
        .unwrap();
    for i in 0..20 {
        cli.put(format!("lost/{i:02}"), "v", None).await.unwrap();
    }
    let id = cli
        .member_list()
        .await
        .unwrap()
        .members()
        .iter()
        .find(|m| m.name() == c.members[lost].name)
        .map(|m| m.id())
        .expect("the member is listed");

    let member = &mut c.members[lost];
    member.kill();
    std::fs::remove_dir_all(member.arg("--data-dir").unwrap()).unwrap();
    member.restart();
    let status = member.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the member refuses to start on an empty data dir\n{}",
        member.log_tail()
    );
    assert!(
        member.log_tail().contains("has heard from this member"),
        "the error says why\n{}",
        member.log_tail()
    );

    let peer_url = member
        .arg("--initial-advertise-peer-urls")
        .unwrap()
        .to_string();
    let hex = format!("{id:x}");
    let out = super::procs::etcdctl(&other, &["member", "remove", &hex], None);
    assert!(out.status.success(), "member remove: {out:?}");
    let add = [
        "member",
        "add",
        &member.name,
        &format!("--peer-urls={peer_url}"),
    ];
    let out = super::procs::etcdctl(&other, &add, None);
    assert!(out.status.success(), "member add: {out:?}");
    member.set_arg("--initial-cluster-state", "existing");
    member.restart();

    let mut back = Client::connect([member.client_url.as_str()], None)
        .await
        .unwrap();
    let mut have = 0;
    for _ in 0..100 {
        let opts = GetOptions::new().with_prefix().with_serializable();
        if let Ok(r) = back.get("lost/", Some(opts)).await {
            have = r.kvs().len();
            if have == 20 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        have,
        20,
        "the re-added member serves every write\n{}",
        member.log_tail()
    );
}
