//! In-process clusters (the embedding API) driven through the `etcd-client` crate: leases across
//! leader changes, watches across leader kills, the Election and Lock services, LeaderElector.

use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, LockOptions, PutOptions, WatchOptions};
use quorum::cluster::{ClusterSpec, LocalCluster};
use quorum::leader_election::{ElectionConfig, LeaderElector, LeadershipEvent};

/// Picks `n` (client, peer) port pairs that are free right now on loopback.
pub(crate) fn free_ports(n: usize) -> Vec<(u16, u16)> {
    let listeners: Vec<std::net::TcpListener> = (0..2 * n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound socket has an address").port())
        .collect();
    (0..n).map(|i| (ports[2 * i], ports[2 * i + 1])).collect()
}

pub(crate) async fn cluster(n: usize) -> LocalCluster {
    let mut spec = ClusterSpec::new(n);
    spec.ports = free_ports(n);
    // Faster elections keep the tests short; the semantics are the same.
    spec.heartbeat_interval_ms = 50;
    spec.election_timeout_ms = 500;
    let c = LocalCluster::start(spec).await.expect("cluster starts");
    wait_leader(&c).await;
    // Ready means a write commits through every member, not just that someone leads.
    for ep in c.endpoints() {
        let mut cli = client(&ep).await;
        wait_for("a write through every member", || {
            let mut cli = cli.clone();
            async move { cli.put("ready-probe", "", None).await.is_ok() }
        })
        .await;
        cli.delete("ready-probe", None).await.ok();
    }
    c
}

pub(crate) async fn wait_leader(c: &LocalCluster) -> usize {
    for _ in 0..200 {
        if let Some(l) = c.leader() {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader elected within 10 s");
}

pub(crate) async fn client(endpoint: &str) -> Client {
    Client::connect([endpoint], None)
        .await
        .expect("client connects")
}

pub(crate) async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_outlives_a_leader_change_then_its_keys_vanish_everywhere_at_one_revision() {
    // Goal: a kept-alive lease survives the leader's death; once keep-alives stop it expires and
    // every member deletes its keys at the same revision. Method: 3 members, kill the leader
    // while keeping the lease alive through a survivor, then stop and watch all members.
    let mut c = cluster(3).await;
    let leader = wait_leader(&c).await;
    let survivor = (leader + 1) % 3;
    let eps = c.endpoints();
    let mut cli = client(&eps[survivor]).await;
    let lease = cli.lease_grant(3, None).await.unwrap().id();
    cli.put("leased/a", "1", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    cli.put("leased/b", "2", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    let (mut keeper, mut answers) = cli.lease_keep_alive(lease).await.unwrap();
    c.kill(leader).await;
    // Keep it alive for twice its TTL across the election.
    for _ in 0..12 {
        keeper.keep_alive().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(2), answers.message()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let r = cli
        .get("leased/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(
        r.count(),
        2,
        "keys must survive while the lease is kept alive"
    );
    drop(keeper);
    drop(answers);
    c.restart(leader).await.unwrap();
    // Expiry: TTL plus at most one election timeout and a scan interval.
    let mut deleted_at = Vec::new();
    for ep in &eps {
        let mut m = client(ep).await;
        wait_for("the leased keys to vanish", || {
            let mut m = m.clone();
            async move {
                let opts = GetOptions::new().with_prefix().with_serializable();
                m.get("leased/", Some(opts))
                    .await
                    .map(|r| r.count() == 0)
                    .unwrap_or(false)
            }
        })
        .await;
        // Both keys went in one revision: their DELETE events share it.
        let mut w = m
            .watch(
                "leased/",
                Some(WatchOptions::new().with_prefix().with_start_revision(1)),
            )
            .await
            .unwrap();
        let mut deletes = Vec::new();
        while deletes.len() < 2 {
            let resp = tokio::time::timeout(Duration::from_secs(5), w.message())
                .await
                .expect("history arrives")
                .unwrap()
                .unwrap();
            for e in resp.events() {
                if e.event_type() == EventType::Delete {
                    deletes.push(e.kv().unwrap().mod_revision());
                }
            }
        }
        assert_eq!(
            deletes[0], deletes[1],
            "one revision deletes every key of the lease"
        );
        deleted_at.push(deletes[0]);
    }
    assert!(
        deleted_at.windows(2).all(|w| w[0] == w[1]),
        "members agree: {deleted_at:?}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_on_a_follower_sees_every_acknowledged_write_across_a_leader_kill() {
    // Goal: a follower's watch streams on through a leader change with no gap and no duplicate.
    // Method: watch a prefix on a follower, write unique keys through the third member, kill
    // the leader half way, then compare the events with the acknowledged writes.
    let mut c = cluster(3).await;
    let leader = wait_leader(&c).await;
    let follower = (leader + 1) % 3;
    let writer_at = (leader + 2) % 3;
    let eps = c.endpoints();
    let mut watcher = client(&eps[follower]).await;
    let mut w = watcher
        .watch("w/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let mut writer = client(&eps[writer_at]).await;
    let mut acked = Vec::new();
    for i in 0..40 {
        if i == 20 {
            c.kill(leader).await;
        }
        let key = format!("w/{i:03}");
        let put =
            tokio::time::timeout(Duration::from_secs(10), writer.put(key.clone(), "v", None)).await;
        if let Ok(Ok(r)) = put {
            acked.push((key, r.header().unwrap().revision()));
        }
    }
    assert!(
        acked.len() >= 30,
        "writes continue after the leader dies: {}",
        acked.len()
    );
    let last = acked.last().unwrap().1;
    let mut seen: Vec<(String, i64)> = Vec::new();
    while seen.last().is_none_or(|s| s.1 < last) {
        let resp = tokio::time::timeout(Duration::from_secs(10), w.message())
            .await
            .expect("events keep flowing")
            .unwrap()
            .expect("stream stays open");
        for e in resp.events() {
            let kv = e.kv().unwrap();
            seen.push((kv.key_str().unwrap().to_string(), kv.mod_revision()));
        }
    }
    let revisions: Vec<i64> = seen.iter().map(|s| s.1).collect();
    assert!(
        revisions.windows(2).all(|p| p[0] < p[1]),
        "ordered, no duplicates: {revisions:?}"
    );
    for a in &acked {
        assert!(
            seen.contains(a),
            "acknowledged write {a:?} reached the watcher"
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn election_queues_candidates_and_guards_proclaim_with_the_leader_key() {
    // Goal: the Election service elects the earliest candidate, hands over on resign, and
    // refuses a stale leader's proclaim with etcd's "election: not leader".
    let c = cluster(1).await;
    let ep = c.endpoints()[0].clone();
    let mut a = client(&ep).await;
    let la = a.lease_grant(30, None).await.unwrap().id();
    let won = a.campaign("job", "a", la).await.unwrap();
    let key_a = won.leader().unwrap().clone();
    assert_eq!(a.leader("job").await.unwrap().kv().unwrap().value(), b"a");

    let mut b = client(&ep).await;
    let lb = b.lease_grant(30, None).await.unwrap().id();
    let waiting = tokio::spawn(async move { b.campaign("job", "b", lb).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "b queues behind a");

    a.proclaim(
        "a2",
        Some(etcd_client::ProclaimOptions::new().with_leader(key_a.clone())),
    )
    .await
    .unwrap();
    assert_eq!(a.leader("job").await.unwrap().kv().unwrap().value(), b"a2");
    a.resign(Some(
        etcd_client::ResignOptions::new().with_leader(key_a.clone()),
    ))
    .await
    .unwrap();
    let won_b = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(won_b.leader().unwrap().rev() > key_a.rev());
    let err = a
        .proclaim(
            "stale",
            Some(etcd_client::ProclaimOptions::new().with_leader(key_a)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("election: not leader"), "{err}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_is_exclusive_and_passes_to_the_next_waiter_on_unlock() {
    // Goal: the Lock service grants one holder at a time, FIFO, keyed `name/<lease hex>`.
    let c = cluster(1).await;
    let ep = c.endpoints()[0].clone();
    let mut a = client(&ep).await;
    let la = a.lease_grant(30, None).await.unwrap().id();
    let held = a
        .lock("m", Some(LockOptions::new().with_lease(la)))
        .await
        .unwrap();
    let key = held.key().to_vec();
    assert_eq!(key, format!("m/{la:x}").into_bytes());
    let mut b = client(&ep).await;
    let waiting = tokio::spawn(async move { b.lock("m", None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "second locker waits");
    a.unlock(key).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(got.key().starts_with(b"m/"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_elector_hands_over_when_the_leader_stops_renewing() {
    // Goal: the Rust helper reports StartedLeading for one candidate at a time, and the second
    // takes over once the first stops (its lease expires on the cluster's clock).
    let c = cluster(1).await;
    let ep = c.endpoints()[0].clone();
    let channel = || {
        tonic::transport::Endpoint::from_shared(ep.clone())
            .unwrap()
            .connect_lazy()
    };
    let cfg = |id: &str| ElectionConfig {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
        ..ElectionConfig::new("ctrl", id)
    };
    let mut first = LeaderElector::start(channel(), cfg("first"));
    let started = tokio::time::timeout(Duration::from_secs(10), first.next_event())
        .await
        .unwrap();
    let Some(LeadershipEvent::StartedLeading { revision: rev1, .. }) = started else {
        panic!("first candidate leads: {started:?}");
    };
    let mut second = LeaderElector::start(channel(), cfg("second"));
    assert!(
        tokio::time::timeout(Duration::from_secs(2), second.next_event())
            .await
            .is_err(),
        "second must not lead while the first renews"
    );
    first.stop();
    let took = tokio::time::timeout(Duration::from_secs(15), second.next_event())
        .await
        .unwrap();
    match took {
        Some(LeadershipEvent::StartedLeading { revision, .. }) => assert!(revision > rev1),
        other => panic!("second takes over: {other:?}"),
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_missed_purged_entries_catches_up_from_a_snapshot() {
    // Goal: snapshots are built, the log is purged, and a member that was down throughout
    // installs the leader's snapshot and ends with the same data. Method: snapshot every 20
    // entries, stop a follower, write 150 keys, restart it, compare serializable reads.
    let mut spec = ClusterSpec::new(3);
    spec.ports = free_ports(3);
    spec.heartbeat_interval_ms = 50;
    spec.election_timeout_ms = 500;
    spec.snapshot_every_entries = 20;
    let mut c = LocalCluster::start(spec).await.unwrap();
    let leader = wait_leader(&c).await;
    let lagger = (leader + 1) % 3;
    let eps = c.endpoints();
    c.stop(lagger).await;
    let mut w = client(&eps[(leader + 2) % 3]).await;
    for i in 0..150 {
        w.put(format!("s/{i:03}"), format!("{i}"), None)
            .await
            .unwrap();
    }
    let server = c.node(leader).unwrap().server.clone();
    wait_for("the leader to snapshot and purge its log", || {
        let purged = server.metrics().purged;
        async move { purged.is_some_and(|p| p.index > 20) }
    })
    .await;
    c.restart(lagger).await.unwrap();
    let mut r = client(&eps[lagger]).await;
    wait_for("the restarted member to catch up", || {
        let mut r = r.clone();
        async move {
            let opts = GetOptions::new().with_prefix().with_serializable();
            r.get("s/", Some(opts))
                .await
                .map(|g| g.count() == 150)
                .unwrap_or(false)
        }
    })
    .await;
    let opts = GetOptions::new().with_prefix().with_serializable();
    let got = r.get("s/149", Some(opts)).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"149");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_require_leader_watch_ends_when_its_member_loses_the_leader() {
    // Goal: clientv3's WithRequireLeader: a watch on a member cut off from the others ends with
    // "etcdserver: no leader" after about three election timeouts, so the client can move on.
    let c = cluster(3).await;
    let leader = wait_leader(&c).await;
    let lonely = (leader + 1) % 3;
    let others: Vec<usize> = (0..3).filter(|i| *i != lonely).collect();
    let opts = etcd_client::ConnectOptions::new().with_require_leader(true);
    let mut cli = Client::connect([c.endpoints()[lonely].as_str()], Some(opts))
        .await
        .unwrap();
    let mut w = cli.watch("x", None).await.unwrap();
    assert!(w.message().await.unwrap().unwrap().created());
    c.partition(&[lonely], &others);
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match w.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends");
    let err = end.expect_err("the stream ends with an error");
    assert!(err.to_string().contains("etcdserver: no leader"), "{err}");
    c.heal();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_require_leader_watch_stays_open_on_a_healthy_leader_and_follower() {
    // Goal: the leader check must not end watches on members that are fine, even when idle.
    let c = cluster(3).await;
    let leader = wait_leader(&c).await;
    let follower = (leader + 1) % 3;
    let opts = etcd_client::ConnectOptions::new().with_require_leader(true);
    let mut streams = Vec::new();
    for i in [leader, follower] {
        let mut cli = Client::connect([c.endpoints()[i].as_str()], Some(opts.clone()))
            .await
            .unwrap();
        let mut w = cli.watch("idle", None).await.unwrap();
        assert!(w.message().await.unwrap().unwrap().created());
        streams.push((cli, w));
    }
    // Several times the 1.5 s leaderless limit of these timings.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut writer = client(&c.endpoints()[leader]).await;
    writer.put("idle", "v", None).await.unwrap();
    for (_, w) in streams.iter_mut() {
        let r = tokio::time::timeout(Duration::from_secs(5), w.message())
            .await
            .expect("event arrives")
            .expect("stream still open")
            .expect("not closed");
        assert_eq!(r.events().len(), 1);
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_the_others_does_not_acknowledge_keep_alives() {
    // Goal: a keep-alive is acknowledged only by a leader a quorum still follows. A cut-off
    // leader that renewed on its own would tell the client its lease lives while the new leader
    // expires it (the simulator's lease checker found this; etcd 3.4.25+ checks the same way).
    let c = cluster(3).await;
    let leader = wait_leader(&c).await;
    let mut cli = client(&c.endpoints()[leader]).await;
    let lease = cli.lease_grant(5, None).await.unwrap().id();
    let (mut keeper, mut acks) = cli.lease_keep_alive(lease).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let first = acks.message().await.unwrap().unwrap();
    assert_eq!(first.ttl(), 5, "a healthy leader renews");

    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    c.partition(&[leader], &others);
    keeper.keep_alive().await.unwrap();
    let cut_off = tokio::time::timeout(Duration::from_secs(10), acks.message()).await;
    match cut_off {
        // An error ends the stream: the client moves to another member.
        Ok(Err(_)) | Ok(Ok(None)) => {}
        Ok(Ok(Some(r))) => panic!(
            "a cut-off leader acknowledged a keep-alive: TTL {}",
            r.ttl()
        ),
        // No answer within the request timeout would also be safe, but ours answers with an error.
        Err(_) => panic!("no answer at all from the cut-off leader"),
    }
    c.heal();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_through_a_follower_is_read_back_there_serializably() {
    // Goal: etcd's member answers a write only after applying it itself, so a client that
    // writes through a follower and then reads there serializably sees its write.
    // Method: cut the link from the leader to a follower for 300 ms (less than an election
    // timeout), so the follower's forwarded put commits on the other two before it can learn
    // of it; the put must not be answered before the follower applied it. Then 50 rounds of a
    // put and at once a serializable get on the same follower.
    let c = cluster(3).await;
    let leader = wait_leader(&c).await;
    let follower = (leader + 1) % 3;
    let mut cli = client(&c.endpoints()[follower]).await;
    c.cut(leader, follower);
    let heal = tokio::time::sleep(Duration::from_millis(300));
    let mut writer = cli.clone();
    let put = writer.put("ryw", "cut", None);
    tokio::pin!(put);
    tokio::select! {
        r = &mut put => panic!("the put was answered before its member could apply it: {r:?}"),
        _ = heal => c.heal(),
    }
    let written = put.await.unwrap().header().unwrap().revision();
    let serializable = || Some(GetOptions::new().with_serializable());
    let get = cli.get("ryw", serializable()).await.unwrap();
    assert!(get.header().unwrap().revision() >= written);
    assert_eq!(get.kvs()[0].value(), b"cut");
    for i in 0..50 {
        let value = format!("v{i}");
        let put = cli.put("ryw", value.as_str(), None).await.unwrap();
        let written = put.header().unwrap().revision();
        let get = cli.get("ryw", serializable()).await.unwrap();
        assert!(get.header().unwrap().revision() >= written, "round {i}");
        assert_eq!(get.kvs()[0].value(), value.as_bytes(), "round {i}");
    }
    c.shutdown().await;
}
