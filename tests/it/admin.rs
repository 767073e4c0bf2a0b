//! `quorum cluster`'s admin page and fault API over an in-process cluster: a fault injected
//! through the API (the call the page's buttons make) shows up in `/api/status`; a paused member
//! really stops (another is elected) without hanging the status; the page renders its rows in
//! a headless browser, and a real click on its buttons (WebDriver) kills or pauses the leader
//! and the live page shows the new one.

use std::sync::Arc;
use std::time::Duration;

use quorum::admin::{self, ClusterStatus};
use quorum::cluster::{ClusterSpec, LocalCluster};

use super::browser::{chromium_available, dump_dom, webdriver};
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
    let (code, _) = admin::call(&url, "POST", "/api/fault/freeze/n1")
        .await
        .unwrap();
    assert_eq!(code, 404);
    let (code, body) = admin::call(&url, "POST", &format!("/api/fault/pause/{first}"))
        .await
        .unwrap();
    assert_eq!(code, 409, "a down member cannot be paused: {body}");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_leader_is_replaced_and_rejoins_as_follower_when_resumed() {
    // Goal: pause freezes a member for real (its heartbeats stop, so the others elect a new
    // leader) while the status still answers at once and shows it paused; resume lets it run
    // again, and it learns the newer term and follows. Method: pause the leader through the
    // API, bound every status call by a timeout, wait for another leader, resume, wait for the
    // old leader to report itself a Follower of the new term.
    let (url, _cluster, task) = start().await;
    let first = wait_for(&url, |s| s.leader.clone()).await;
    let term_before = status(&url)
        .await
        .members
        .iter()
        .find(|m| m.name == first)
        .expect("listed")
        .term;
    let (code, body) = admin::call(&url, "POST", &format!("/api/fault/pause/{first}"))
        .await
        .unwrap();
    assert_eq!(
        (code, body.as_str()),
        (200, format!("paused {first}").as_str())
    );

    let quick = Duration::from_secs(2);
    let s = tokio::time::timeout(quick, status(&url))
        .await
        .expect("status answers while a member is paused");
    let frozen = s.members.iter().find(|m| m.name == first).expect("listed");
    assert_eq!(frozen.role, "paused");
    assert_ne!(s.leader.as_deref(), Some(first.as_str()), "{s:#?}");
    assert!(admin::render_table(&s).contains("paused"));

    let second = wait_for(&url, |s| s.leader.clone().filter(|l| *l != first)).await;
    let s = tokio::time::timeout(quick, status(&url)).await.unwrap();
    let new_term = s.members.iter().find(|m| m.name == second).unwrap().term;
    assert!(new_term > term_before, "a new election: {s:#?}");
    // Frozen: the paused member still shows the term it stopped in.
    let frozen = s.members.iter().find(|m| m.name == first).unwrap();
    assert_eq!((frozen.role.as_str(), frozen.term), ("paused", term_before));

    let (code, _) = admin::call(&url, "POST", &format!("/api/fault/resume/{first}"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    wait_for(&url, |s| {
        let m = s.members.iter().find(|m| m.name == first)?;
        (m.role == "Follower" && m.term >= new_term && m.leader.is_some()).then_some(())
    })
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicking_kill_on_the_leader_in_a_browser_shows_another_leader() {
    // Goal: the page works for a person. Method: headless chromium under chromedriver loads the
    // page, reads the leader from the live DOM, clicks that member's kill button, and waits for
    // the page itself (fed only by server-sent events, never reloaded) to name another leader
    // and show the old one down; the server's status must agree, and no script error appears.
    let Some(browser) = webdriver().await else {
        return;
    };
    let (url, _cluster, task) = start().await;
    let first = wait_for(&url, |s| s.leader.clone()).await;
    browser
        .client
        .goto(&format!("{url}/"))
        .await
        .expect("page loads");
    browser.wait_text("leader", |t| t == first).await;

    browser.click(&format!("kill-{first}")).await;
    let second = browser
        .wait_text("leader", |t| t != first && t != "none")
        .await;
    let row = browser
        .wait_text(&format!("member-{first}"), |t| t.contains("down"))
        .await;
    assert!(row.starts_with(&first), "{row}");
    let s = status(&url).await;
    assert_eq!(s.leader.as_deref(), Some(second.as_str()), "{s:#?}");
    assert_eq!(browser.text("errors").await.as_deref(), Some(""));
    assert_eq!(
        browser.text("last").await.as_deref(),
        Some(format!("killed {first}").as_str())
    );
    browser.quit().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicking_pause_then_resume_in_a_browser_replaces_and_restores_the_leader() {
    // Goal: the page's pause and resume buttons reach a real freeze. Method: click pause on the
    // leader's row, wait for the page to show it paused and another member leading, click
    // resume, wait for the page to show it a Follower again.
    let Some(browser) = webdriver().await else {
        return;
    };
    let (url, _cluster, task) = start().await;
    let first = wait_for(&url, |s| s.leader.clone()).await;
    browser
        .client
        .goto(&format!("{url}/"))
        .await
        .expect("page loads");
    browser.wait_text("leader", |t| t == first).await;

    let row = format!("member-{first}");
    browser.click(&format!("pause-{first}")).await;
    browser.wait_text(&row, |t| t.contains("paused")).await;
    browser
        .wait_text("leader", |t| t != first && t != "none")
        .await;

    browser.click(&format!("resume-{first}")).await;
    browser.wait_text(&row, |t| t.contains("Follower")).await;
    assert_eq!(browser.text("errors").await.as_deref(), Some(""));
    browser.quit().await;
    task.abort();
}
