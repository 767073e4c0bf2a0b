//! `quorum cluster`'s admin page and fault API over an in-process cluster: a fault injected
//! through the API (the call the page's buttons make) shows up in `/api/status`, and the page
//! itself renders its member rows in a headless browser with no script error.

use std::sync::Arc;
use std::time::Duration;

use quorum::admin::{self, ClusterStatus};
use quorum::cluster::{ClusterSpec, LocalCluster};

use super::browser::{chromium_available, dump_dom};
use super::procs::free_ports;

/// A three-member cluster on free ports with its admin server; returns the admin URL.
async fn start() -> (String, admin::SharedCluster, tokio::task::JoinHandle<()>) {
    let ports = free_ports(7);
    let mut spec = ClusterSpec::new(3);
    spec.ports = (0..3).map(|i| (ports[2 * i], ports[2 * i + 1])).collect();
    let cluster = LocalCluster::start(spec).await.expect("cluster starts");
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let listener = admin::bind(ports[6]).await.expect("admin port binds");
    let (addr, task) = admin::spawn(listener, cluster.clone()).expect("admin server starts");
    (format!("http://{addr}"), cluster, task)
}

async fn status(url: &str) -> ClusterStatus {
    let (code, body) = admin::call(url, "GET", "/api/status")
        .await
        .expect("admin answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status is JSON")
}

/// Polls `/api/status` until `pick` finds what it wants, for at most ten seconds.
async fn wait_for<T>(url: &str, pick: impl Fn(&ClusterStatus) -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(t) = pick(&status(url).await) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not seen in /api/status within 10 s: {:#?}",
        status(url).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_through_the_admin_api_elects_another() {
    // Goal: the fault API drives the real cluster and the status shows Raft's reaction. Method:
    // wait for a leader, POST kill for it (as the page's button does), then wait for a
    // different member to lead with the old one reported down; an unknown member is a 404.
    let (url, _cluster, task) = start().await;
    let first = wait_for(&url, |s| s.leader.clone()).await;

    let (code, body) = admin::call(&url, "POST", &format!("/api/fault/kill/{first}"))
        .await
        .expect("admin answers");
    assert_eq!(code, 200, "{body}");

    let second = wait_for(&url, |s| s.leader.clone().filter(|l| *l != first)).await;
    let s = status(&url).await;
    let old = s.members.iter().find(|m| m.name == first).expect("listed");
    assert_eq!(old.role, "down");
    assert!(s
        .members
        .iter()
        .any(|m| m.name == second && m.role == "Leader"));
    assert!(admin::render_table(&s).contains("down"));

    let (code, body) = admin::call(&url, "POST", "/api/fault/kill/n9")
        .await
        .unwrap();
    assert_eq!(code, 404);
    assert!(body.contains("no member named \"n9\""), "{body}");
    let (code, _) = admin::call(&url, "POST", "/api/fault/pause/n1")
        .await
        .unwrap();
    assert_eq!(code, 404);

    // Isolating a member shows its cut links; healing it clears them.
    let (code, _) = admin::call(&url, "POST", &format!("/api/fault/partition/{second}"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    let s = status(&url).await;
    assert!(s.members.iter().any(|m| m.name == second && m.isolated));
    assert_eq!(s.cut.len(), 2, "{:?}", s.cut);
    let (code, _) = admin::call(&url, "POST", &format!("/api/fault/heal/{second}"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(status(&url).await.cut.is_empty());
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_page_renders_member_rows_without_script_errors() {
    // Goal: the page's script runs in a real browser. Method: load `/` in headless chromium with
    // `--dump-dom` and look for one row per member and an empty `#errors` element (the page
    // writes script errors there). No virtual-time budget: the open event stream never lets
    // the network go idle, and the rows come from the status embedded in the page anyway.
    if !chromium_available() {
        return;
    }
    let (url, _cluster, task) = start().await;
    wait_for(&url, |s| s.leader.clone()).await;
    let page = format!("{url}/");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&page))
        .await
        .unwrap();
    for n in ["n1", "n2", "n3"] {
        assert!(dom.contains(&format!("id=\"member-{n}\"")), "{dom}");
    }
    assert!(dom.contains("<div id=\"errors\"></div>"), "{dom}");
    task.abort();
}
