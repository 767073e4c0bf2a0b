//! `--quota-backend-bytes` as etcd enforces it: past the quota a write is refused with
//! "database space exceeded" and NOSPACE is raised; while raised, writes stay refused (deletes
//! and compaction still go through), `/health` fails, and `alarm disarm` ends it.

use super::embedded::{free_ports, wait_for};
use super::procs::{etcd_available, etcdctl};
use quorum::config::Config;
use quorum::transport::Transport;
use quorum::Node;

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_quota_writes_are_refused_until_the_alarm_is_disarmed() {
    // Goal: the NOSPACE cycle an operator meets in etcd. Method: one member with a 16 KiB
    // quota, 1 KiB values until refused, then etcdctl's alarm list / compaction / disarm.
    if !etcd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(1);
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let mut config = Config::single("q", dir.path().to_path_buf());
    config.listen_client_urls = vec![url(ports[0].0)];
    config.advertise_client_urls = vec![url(ports[0].0)];
    config.listen_peer_urls = vec![url(ports[0].1)];
    config.initial_advertise_peer_urls = vec![url(ports[0].1)];
    config.initial_cluster = vec![("q".into(), vec![url(ports[0].1)])];
    config.quota_backend_bytes = 16 * 1024;
    let id = config.member_id();
    let node = Node::start(config, Transport::default()).await.unwrap();
    let ep = url(ports[0].0);
    let run = |args: Vec<String>| {
        let ep = ep.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                etcdctl(&ep, &args, None)
            })
            .await
            .unwrap()
        }
    };
    wait_for("the member to take writes", || {
        let run = &run;
        async move {
            run(vec!["put".into(), "probe".into(), "x".into()])
                .await
                .status
                .success()
        }
    })
    .await;

    let value = "v".repeat(1024);
    let mut refused = None;
    for i in 0..64 {
        let o = run(vec!["put".into(), format!("k{i:02}"), value.clone()]).await;
        if !o.status.success() {
            refused = Some((i, out(&o)));
            break;
        }
    }
    let (at, text) = refused.expect("the quota refuses a write within 64 KiB");
    assert!(at >= 8, "about 16 writes of 1 KiB fit, refused at {at}");
    assert!(
        text.contains("etcdserver: mvcc: database space exceeded"),
        "{text}"
    );

    let alarms = run(vec!["alarm".into(), "list".into()]).await;
    assert_eq!(
        String::from_utf8_lossy(&alarms.stdout).trim(),
        format!("memberID:{id} alarm:NOSPACE")
    );
    // A small write fails too now, but a delete goes through.
    let small = run(vec!["put".into(), "small".into(), "x".into()]).await;
    assert!(
        out(&small).contains("database space exceeded"),
        "{}",
        out(&small)
    );
    let del = run(vec!["del".into(), "k".into(), "--prefix".into()]).await;
    assert!(del.status.success(), "{}", out(&del));
    // As in etcd, deleted values hold space until compacted away.
    let status = run(vec![
        "get".into(),
        "probe".into(),
        "-w".into(),
        "json".into(),
    ])
    .await;
    let json = String::from_utf8_lossy(&status.stdout).to_string();
    let revision = json
        .split("\"revision\":")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .expect("a header revision")
        .to_string();
    let compact = run(vec!["compaction".into(), revision]).await;
    assert!(compact.status.success(), "{}", out(&compact));

    let disarm = run(vec!["alarm".into(), "disarm".into()]).await;
    assert!(disarm.status.success(), "{}", out(&disarm));
    let after = run(vec!["alarm".into(), "list".into()]).await;
    assert_eq!(String::from_utf8_lossy(&after.stdout).trim(), "");
    let put = run(vec!["put".into(), "small".into(), "x".into()]).await;
    assert!(put.status.success(), "{}", out(&put));
    node.stop().await;
}
