//! The HTTP endpoints beside gRPC: `/metrics` under etcd's names with values that follow the
//! cluster, `/health` turning 503 when quorum is lost, and `--listen-metrics-urls` serving
//! only health and metrics.

use std::io::{Read, Write};
use std::time::Duration;

use super::embedded::{client, cluster, free_ports, wait_for};
use quorum::config::Config;
use quorum::transport::Transport;
use quorum::Node;

/// One HTTP/1.1 GET on `url` (`http://host:port`); returns (status code, body).
fn get(url: &str, path: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

/// The value of an unlabelled metric in exposition text.
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_the_cluster_and_health_fails_without_quorum() {
    // Goal: a dashboard or probe written for etcd reads true values. Method: three members,
    // writes, scrape each; then stop two members and watch the survivor's /health turn 503.
    let mut c = cluster(3).await;
    let eps = c.endpoints();
    let mut cli = client(&eps[0]).await;
    for i in 0..5 {
        cli.put(format!("m/{i}"), "v", None).await.unwrap();
    }
    let scrapes: Vec<String> = {
        let eps = eps.clone();
        tokio::task::spawn_blocking(move || eps.iter().map(|e| get(e, "/metrics").1).collect())
            .await
            .unwrap()
    };
    let leaders: f64 = scrapes
        .iter()
        .map(|t| value(t, "etcd_server_is_leader"))
        .sum();
    assert_eq!(leaders, 1.0, "exactly one member says it leads");
    for text in &scrapes {
        assert_eq!(value(text, "etcd_server_has_leader"), 1.0);
        assert!(value(text, "etcd_server_leader_changes_seen_total") >= 1.0);
        assert!(value(text, "etcd_server_proposals_committed_total") >= 6.0);
        assert!(value(text, "etcd_disk_wal_fsync_duration_seconds_count") >= 1.0);
        assert!(value(text, "etcd_mvcc_db_total_size_in_bytes") > 0.0);
    }
    wait_for("every member to apply the five keys", || {
        let eps = eps.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                eps.iter()
                    .all(|e| value(&get(e, "/metrics").1, "etcd_debugging_mvcc_keys_total") == 5.0)
            })
            .await
            .unwrap()
        }
    })
    .await;
    let first = eps[0].clone();
    let (code, body) = tokio::task::spawn_blocking(move || get(&first, "/health"))
        .await
        .unwrap();
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"health":"true","reason":""}"#)
    );

    c.stop(1).await;
    c.stop(2).await;
    wait_for("the lone member's /health to fail", || {
        let first = eps[0].clone();
        async move {
            let (code, body) = tokio::task::spawn_blocking(move || get(&first, "/health"))
                .await
                .unwrap();
            code == 503 && body.contains(r#""health":"false""#)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_metrics_urls_serve_health_and_metrics_only() {
    // Goal: etcd's `--listen-metrics-urls`: /metrics and /health there, nothing else.
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let mut config = Config::single("solo", dir.path().to_path_buf());
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    config.listen_client_urls = vec![url(ports[0].0)];
    config.advertise_client_urls = vec![url(ports[0].0)];
    config.listen_peer_urls = vec![url(ports[0].1)];
    config.initial_advertise_peer_urls = vec![url(ports[0].1)];
    config.initial_cluster = vec![("solo".into(), vec![url(ports[0].1)])];
    config.listen_metrics_urls = vec![url(ports[1].0)];
    let node = Node::start(config, Transport::default()).await.unwrap();
    let metrics_url = url(ports[1].0);
    wait_for("the metrics URL to report a leader", || {
        let m = metrics_url.clone();
        async move {
            tokio::task::spawn_blocking(move || get(&m, "/metrics"))
                .await
                .unwrap()
                .1
                .contains("etcd_server_has_leader 1")
        }
    })
    .await;
    let m = metrics_url.clone();
    let (health, version) =
        tokio::task::spawn_blocking(move || (get(&m, "/health").0, get(&m, "/version").0))
            .await
            .unwrap();
    assert_eq!((health, version), (200, 404));
    node.stop().await;
}
