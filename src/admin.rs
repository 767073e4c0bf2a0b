//! The admin page of `quorum cluster`: a view of a `LocalCluster` and buttons that inject its
//! faults, for people watching Raft react (and for `quorum fault` / `quorum cluster status`).
//!
//! Routes: `GET /` (one self-contained HTML page, no network beyond this server),
//! `GET /api/status` (JSON), `GET /api/events` (the same JSON as server-sent events, every
//! `EVENT_INTERVAL_MS`), `POST /api/fault/{kill|restart|pause|resume|partition|heal}/{member}`.
//! The page's buttons call the same fault routes the CLI does.
//!
//! A status never waits on a member: it reads each one's last published Raft metrics. A paused
//! member therefore cannot hang the page; it shows as `paused` with the term and indices it froze
//! at, and its stale belief that it leads is not taken for the cluster's leader.
//!
//! **Boundary:** member names and fault kinds come from the network; an unknown one is a 404
//! with a sentence, never a panic (indices into the cluster are checked before use).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use crate::cluster::LocalCluster;

/// The cluster the routes share; a fault holds the lock while it runs, so status reads wait for
/// a kill or restart to finish instead of seeing a half-stopped member.
pub type SharedCluster = Arc<Mutex<LocalCluster>>;

/// Default admin port: just below etcd's client port 2379, so it is easy to remember.
pub const DEFAULT_ADMIN_PORT: u16 = 2378;

/// How many ports after the requested one to try when it is taken (another cluster running).
pub const ADMIN_PORT_TRIES: u16 = 16;

/// How often the page is pushed a fresh status: fast enough to watch an election (the local
/// cluster's election timeout is 1 s), slow enough to cost nothing.
pub const EVENT_INTERVAL_MS: u64 = 300;

/// The longest admin reply the CLI client reads; a status of a few members is a few KiB.
const REPLY_BYTES_MAX: u64 = 1 << 20;

/// One member as the page and the CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberStatus {
    pub name: String,
    pub id: String,
    /// `Leader`, `Follower`, `Candidate`, `Learner`; `down` when killed; `paused` when frozen
    /// (then term and indices are those it froze with).
    pub role: String,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    /// The leader this member believes in, by name.
    pub leader: Option<String>,
    pub isolated: bool,
}

/// The whole cluster: members, who leads, and which links are cut.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterStatus {
    pub members: Vec<MemberStatus>,
    /// The leader as a running leader itself reports it (not a follower's stale belief).
    pub leader: Option<String>,
    /// Cut links, `from -> to` by name; a symmetric cut appears once as `a <-> b`.
    pub cut: Vec<String>,
}

/// Reads the cluster's state now.
pub fn status(cluster: &LocalCluster) -> ClusterStatus {
    let names = cluster.names();
    let ids = cluster.member_ids();
    let name_of = |id: u64| ids.iter().position(|x| *x == id).map(|i| names[i].clone());
    let cut = cluster.cut_links();
    let mut members = Vec::new();
    let mut leader = None;
    for (i, name) in names.iter().enumerate() {
        let isolated = (0..names.len())
            .filter(|j| *j != i)
            .all(|j| cut.contains(&(i, j)) && cut.contains(&(j, i)))
            && names.len() > 1;
        let member = match cluster.node(i) {
            None => MemberStatus {
                name: name.clone(),
                id: format!("{:x}", ids[i]),
                role: "down".into(),
                term: 0,
                commit: 0,
                applied: 0,
                leader: None,
                isolated,
            },
            Some(node) => {
                let m = node.server.metrics();
                let paused = cluster.is_paused(i);
                if node.server.is_leader() && !paused {
                    leader = Some(name.clone());
                }
                MemberStatus {
                    name: name.clone(),
                    id: format!("{:x}", ids[i]),
                    role: match paused {
                        true => "paused".into(),
                        false => format!("{:?}", m.state),
                    },
                    term: m.current_term,
                    commit: m.local_committed.map(|l| l.index).unwrap_or(0),
                    applied: m.last_applied.map(|l| l.index).unwrap_or(0),
                    leader: m.current_leader.and_then(name_of),
                    isolated,
                }
            }
        };
        members.push(member);
    }
    let mut links = Vec::new();
    for (a, b) in &cut {
        let both = cut.contains(&(*b, *a));
        if both && a > b {
            continue; // shown once, from the lower index
        }
        let arrow = if both { "<->" } else { "->" };
        links.push(format!("{} {arrow} {}", names[*a], names[*b]));
    }
    ClusterStatus {
        members,
        leader,
        cut: links,
    }
}

/// The status as a text table, for `quorum cluster status`.
pub fn render_table(s: &ClusterStatus) -> String {
    let mut out = format!(
        "{:<6} {:<16} {:<10} {:>6} {:>8} {:>8} {:<6} {}\n",
        "NAME", "ID", "ROLE", "TERM", "COMMIT", "APPLIED", "LEADER", "ISOLATED"
    );
    for m in &s.members {
        out += &format!(
            "{:<6} {:<16} {:<10} {:>6} {:>8} {:>8} {:<6} {}\n",
            m.name,
            m.id,
            m.role,
            m.term,
            m.commit,
            m.applied,
            m.leader.as_deref().unwrap_or("-"),
            if m.isolated { "yes" } else { "no" }
        );
    }
    out += &format!("leader: {}\n", s.leader.as_deref().unwrap_or("none"));
    out += &format!(
        "cut links: {}\n",
        if s.cut.is_empty() {
            "none".to_string()
        } else {
            s.cut.join(", ")
        }
    );
    out
}

/// The admin routes over a shared cluster.
pub fn router(cluster: SharedCluster) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(status_json))
        .route("/api/events", get(events))
        .route("/api/fault/{kind}/{member}", post(fault))
        .with_state(cluster)
}

/// Binds 127.0.0.1 on `port`, or the next free of `ADMIN_PORT_TRIES` ports when it is taken.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for p in port..port.saturating_add(ADMIN_PORT_TRIES) {
        match TcpListener::bind(("127.0.0.1", p)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no admin port to try")))
}

/// Serves the admin routes on `listener` until the task is aborted; returns its address.
pub fn spawn(
    listener: TcpListener,
    cluster: SharedCluster,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(cluster)).await {
            tracing::warn!(error = %e, "admin server stopped");
        }
    });
    Ok((addr, task))
}

async fn status_json(State(cluster): State<SharedCluster>) -> Json<ClusterStatus> {
    Json(status(&*cluster.lock().await))
}

async fn events(
    State(cluster): State<SharedCluster>,
) -> Sse<impl futures::Stream<Item = Result<Event, axum::Error>>> {
    let stream = futures::stream::unfold((cluster, true), |(cluster, first)| async move {
        // The first event goes out at once so a fresh page is not blank for an interval.
        if !first {
            tokio::time::sleep(Duration::from_millis(EVENT_INTERVAL_MS)).await;
        }
        let s = status(&*cluster.lock().await);
        let event = Event::default().event("status").json_data(&s);
        Some((event, (cluster, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A fault a caller can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Kill,
    Restart,
    /// Freeze the member with its sockets open.
    Pause,
    Resume,
    /// Isolate the member: cut its links to every other member.
    Partition,
    /// Restore the member's links (`all` heals every link).
    Heal,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Fault> {
        match s {
            "kill" => Some(Fault::Kill),
            "restart" => Some(Fault::Restart),
            "pause" => Some(Fault::Pause),
            "resume" => Some(Fault::Resume),
            "partition" => Some(Fault::Partition),
            "heal" => Some(Fault::Heal),
            _ => None,
        }
    }
}

async fn fault(
    State(cluster): State<SharedCluster>,
    Path((kind, member)): Path<(String, String)>,
) -> Response {
    let Some(kind) = Fault::parse(&kind) else {
        let msg = format!(
            "unknown fault {kind:?}; faults are kill, restart, pause, resume, partition, heal"
        );
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let mut c = cluster.lock().await;
    let names = c.names();
    if kind == Fault::Heal && member == "all" {
        c.heal();
        return (StatusCode::OK, "healed every link".to_string()).into_response();
    }
    let Some(i) = names.iter().position(|n| *n == member) else {
        let msg = format!(
            "no member named {member:?}; members are {}",
            names.join(", ")
        );
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    if matches!(kind, Fault::Pause | Fault::Resume) && c.node(i).is_none() {
        let msg = format!("{member} is down; restart it first");
        return (StatusCode::CONFLICT, msg).into_response();
    }
    let done = match kind {
        Fault::Kill => {
            c.kill(i).await;
            format!("killed {member}")
        }
        Fault::Restart => match c.restart(i).await {
            Ok(()) => format!("restarted {member}"),
            Err(e) => {
                let msg = format!("restarting {member}: {e}");
                return (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response();
            }
        },
        Fault::Pause => {
            c.pause(i).await;
            format!("paused {member}")
        }
        Fault::Resume => {
            c.resume(i);
            format!("resumed {member}")
        }
        Fault::Partition => {
            c.isolate(i);
            format!("isolated {member}")
        }
        Fault::Heal => {
            c.heal_member(i);
            format!("healed {member}'s links")
        }
    };
    (StatusCode::OK, done).into_response()
}

async fn page(State(cluster): State<SharedCluster>) -> Html<String> {
    let initial = status(&*cluster.lock().await);
    // The first status is embedded so the page renders its rows while it parses, before any
    // event arrives (and so a `--dump-dom` snapshot shows them). `</` is escaped so no name
    // can close the script element.
    let json = serde_json::to_string(&initial)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/");
    Html(PAGE.replace("__INITIAL__", &json))
}

/// Sends one HTTP/1.1 request to the admin server at `admin` (`http://host:port` or
/// `host:port`) and returns the status code and body. Deliberately tiny: the admin server is
/// ours, answers with `Content-Length`, and the connection is closed after one exchange.
pub async fn call(admin: &str, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let authority = admin
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = TcpStream::connect(&authority).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(REPLY_BYTES_MAX).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP reply");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(bad)?;
    Ok((code, body.to_string()))
}

/// The page: plain HTML, inline style and script, nothing fetched from elsewhere. Script
/// errors are written into `#errors` so a headless browser's DOM dump shows them.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>quorum cluster</title>
<style>
body{font-family:sans-serif;margin:1.5em}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .7em;text-align:left}
tr.leader{background:#dfd}tr.down{color:#999;background:#eee}tr.paused{background:#eef}tr.isolated{background:#fdd}
#errors{color:#b00;white-space:pre}button{margin-right:.2em}
</style></head>
<body>
<h1>quorum cluster</h1>
<div id="errors"></div>
<p>Leader: <b id="leader">-</b> &middot; Cut links: <span id="cut">none</span>
&middot; <button id="heal-all">heal all</button> <span id="last"></span></p>
<table><thead><tr><th>name</th><th>id</th><th>role</th><th>term</th><th>commit</th>
<th>applied</th><th>believes leader</th><th>faults</th></tr></thead>
<tbody id="members"></tbody></table>
<p><small>pause freezes a member's every task and timer with its sockets open (as SIGSTOP or a
long GC pause); resume lets it go on from where it stopped.</small></p>
<script>
"use strict";
const errors = document.getElementById("errors");
function report(msg) { errors.textContent += msg + "\n"; }
window.onerror = function (msg, src, line) { report("script error: " + msg + " (line " + line + ")"); };
window.onunhandledrejection = function (e) { report("script error: " + e.reason); };

function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }

function render(s) {
  if (!s) return;
  document.getElementById("leader").textContent = s.leader || "none";
  document.getElementById("cut").textContent = s.cut.length ? s.cut.join(", ") : "none";
  const body = document.getElementById("members");
  body.textContent = "";
  for (const m of s.members) {
    const tr = document.createElement("tr");
    tr.className = "member" + (m.name === s.leader ? " leader" : "") + (m.role === "down" ? " down" : "") + (m.role === "paused" ? " paused" : "") + (m.isolated ? " isolated" : "");
    tr.id = "member-" + m.name;
    cell(tr, m.name); cell(tr, m.id); cell(tr, m.role); cell(tr, m.term);
    cell(tr, m.commit); cell(tr, m.applied); cell(tr, m.leader || "-");
    const td = cell(tr, "");
    for (const kind of ["kill", "restart", "pause", "resume", "partition", "heal"]) {
      const b = document.createElement("button");
      b.textContent = kind;
      b.id = kind + "-" + m.name;
      b.onclick = function () { fault(kind, m.name); };
      td.appendChild(b);
    }
    body.appendChild(tr);
  }
}

async function fault(kind, member) {
  const r = await fetch("/api/fault/" + kind + "/" + encodeURIComponent(member), { method: "POST" });
  const text = await r.text();
  document.getElementById("last").textContent = r.ok ? text : "error: " + text;
}

document.getElementById("heal-all").onclick = function () { fault("heal", "all"); };
render(__INITIAL__);
if (window.EventSource) {
  const es = new EventSource("/api/events");
  es.addEventListener("status", function (e) {
    try { render(JSON.parse(e.data)); } catch (err) { report("script error: " + err); }
  });
}
</script>
</body></html>
"#;
