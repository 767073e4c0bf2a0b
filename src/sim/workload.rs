//! The client host: what the cluster's users do during a run, recorded for the verdicts. Four
//! register clients put, delete, read and compare-and-set a few contended keys against random
//! members; a lease keeper holds one lease alive with a key attached; watchers follow every
//! key across resumes and compaction (`watchers`); a compactor compacts now and then; a pair
//! writer makes revisions of two events. Clients never retry: a request without an answer is
//! recorded as unknown, which is what the checkers need to judge it honestly.
//!
//! Everything here runs inside the client host on simulated time; it must not read the wall
//! clock or iterate a hash map, or the history would differ between two runs of one seed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::request_op::Request as OpRequest;
use crate::proto::etcdserverpb::response_op::Response as OpResponse;
use crate::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use crate::proto::mvccpb;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::sim::admin;
use crate::sim::elector::{self, Controllers};
use crate::sim::history::{Call, Op, Outcome};
use crate::sim::lease_check::AliveLog;
use crate::sim::net::client_channel;
use crate::sim::operator::DeskLink;
use crate::sim::quiet::{self, Quiet};
use crate::sim::run::name;
use crate::sim::watchers::{self, WatchLog};
use crate::transport::frames::FrameChannel;

/// The keys the register workload uses: few, so operations contend.
const KEYS: [&str; 3] = ["k1", "k2", "k3"];
/// Concurrent logical clients in the client host.
const CLIENTS: usize = 4;
/// A request with no answer after this long is recorded as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the compactor compacts, ms.
const COMPACT_EVERY_MS: std::ops::Range<u64> = 1_500..3_500;
/// The key the compactor writes to pick its compaction revisions.
const COMPACT_MARK: &str = "compact-mark";
/// How often the compactor compacts at its delete at once rather than at an older mark.
const COMPACT_AT_HEAD_PROBABILITY: f64 = 0.25;
/// The compactor compacts at revisions at least this old.
const COMPACT_LAG: Duration = Duration::from_secs(1);
/// The TTL of the workload's lease.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// The register clients stop this long before the run ends, so their last requests can finish
/// before the final reads.
const CLIENTS_STOP_BEFORE_END_MS: u64 = 2_000;

/// One watched event: (key, mod revision, is delete).
pub type Watched = (String, i64, bool);

/// What the client host records, shared with the harness, which reads it after the run.
pub struct Workload {
    /// Every register operation, in the order it completed or timed out.
    pub history: Rc<RefCell<Vec<Op>>>,
    /// What each watcher saw, response by response (`watchers`).
    pub watches: WatchLog,
    /// When each lease was last acknowledged alive, for the lease checker.
    pub alive: AliveLog,
    /// The control-plane controllers, when the run has them (`elector`).
    pub controllers: Option<Controllers>,
}

/// What the schedule asks of the client host besides its clients.
#[derive(Default)]
pub struct Hooks {
    /// The operator's desk and every host's member id: the client host runs the admin that
    /// makes the operator's membership changes (`admin`).
    pub admin: Option<(DeskLink, Vec<u64>)>,
    /// Quiet spells (`quiet`).
    pub quiet: Option<Quiet>,
}

/// Adds the client host to `sim`: the register clients until `end_ms` less a margin, then one
/// final read of every key (after the liveness phase healed everything: what every member must
/// agree on, and what a lost write would contradict). With `controllers`, two control-plane
/// controllers also campaign for one leadership (`elector`).
pub fn start(
    sim: &mut turmoil::Sim<'_>,
    nodes: usize,
    seed: u64,
    end_ms: u64,
    controllers: bool,
    warmup: Duration,
    hooks: Hooks,
) -> Workload {
    let Hooks { admin, quiet } = hooks;
    let workload = Workload {
        history: Rc::default(),
        watches: watchers::new_log(),
        alive: AliveLog::default(),
        controllers: controllers.then(Controllers::default),
    };
    let history = workload.history.clone();
    let watches = workload.watches.clone();
    let alive = workload.alive.clone();
    let ctl = workload.controllers.clone();
    sim.client("client", async move {
        // Times are counted from the host's start, even when the clients wait first.
        let origin = tokio::time::Instant::now();
        CLIENT_ORIGIN.with(|o| {
            o.get_or_init(|| origin);
        });
        let desk = admin.as_ref().map(|(d, _)| d.clone());
        let admin = admin.map(|(desk, ids)| tokio::task::spawn_local(admin::admin_loop(desk, ids)));
        // Scenarios start their clients after the first election, so a short run's traffic
        // is about its faults, not the cluster's start.
        tokio::time::sleep(warmup).await;
        let urls: Vec<String> = (0..nodes)
            .map(|i| format!("http://{}:2379", name(i)))
            .collect();
        let kvs: Vec<KvClient<FrameChannel>> = urls
            .iter()
            .map(|u| KvClient::new(client_channel(u)))
            .collect();
        let mut background: Vec<tokio::task::JoinHandle<()>> = (0..watchers::WATCHERS)
            .map(|w| {
                let log = watches.clone();
                tokio::task::spawn_local(watchers::watch_loop(w, urls.clone(), seed, log))
            })
            .collect();
        background.push(tokio::task::spawn_local(compact_loop(
            kvs.clone(),
            seed,
            quiet.clone(),
        )));
        background.push(tokio::task::spawn_local(pair_loop(
            kvs.clone(),
            seed,
            quiet.clone(),
        )));
        if let Some(q) = quiet.clone() {
            let still = quiet::still_head(kvs.clone(), q, client_ms);
            background.push(tokio::task::spawn_local(still));
        }
        let leaser = tokio::task::spawn_local(lease_loop(urls.clone(), seed, alive));
        let ctl_tasks = ctl.map(|c| elector::start(&c, nodes)).unwrap_or_default();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let kvs = kvs.clone();
            let history = history.clone();
            tasks.push(tokio::task::spawn_local(client_loop(
                c,
                seed,
                kvs,
                history,
                end_ms - CLIENTS_STOP_BEFORE_END_MS,
                quiet.clone(),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
        // Through the first initial member still in the cluster: a removed one answers nothing.
        let reader = desk.map_or(0, |d| d.borrow().final_reader);
        let mut kv = kvs[reader].clone();
        for key in KEYS {
            record(&history, 99, key, Call::Get, &mut kv).await;
        }
        background.iter().for_each(|t| t.abort());
        leaser.abort();
        admin.iter().for_each(|t| t.abort());
        ctl_tasks.iter().for_each(|t| t.abort());
        Ok(())
    });
    workload
}

/// A watch event as the watcher records it.
pub fn watched(event: mvccpb::Event) -> Watched {
    let kv = event.kv.unwrap_or_default();
    (
        String::from_utf8_lossy(&kv.key).to_string(),
        kv.mod_revision,
        event.r#type == mvccpb::event::EventType::Delete as i32,
    )
}

/// Milliseconds since the client host started (simulated time, as the nemesis counts it):
/// simulated time is shared by every host, and the client host's clock started at zero.
fn client_ms() -> u64 {
    let clock = tokio::time::Instant::now();
    let origin = CLIENT_ORIGIN.with(|o| *o.get_or_init(|| clock));
    clock.duration_since(origin).as_millis() as u64
}

/// Milliseconds of simulated time since `start`.
fn now_ms(start: tokio::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

async fn client_loop(
    client: usize,
    seed: u64,
    kvs: Vec<KvClient<FrameChannel>>,
    history: Rc<RefCell<Vec<Op>>>,
    until_ms: u64,
    quiet: Option<Quiet>,
) {
    let mut rng = SmallRng::seed_from_u64(seed ^ ((client as u64 + 1) << 32));
    let start = tokio::time::Instant::now();
    let mut n = 0u64;
    while now_ms(start) < until_ms {
        n += 1;
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let call = match rng.random_range(0..11) {
            0..=3 => Call::Put(format!("c{client}-{n}")),
            4..=6 => Call::Get,
            7 => Call::Delete,
            10 => Call::SerializableGet,
            _ => Call::Cas {
                expect: format!(
                    "c{}-{}",
                    rng.random_range(0..CLIENTS),
                    rng.random_range(1..n.max(2))
                ),
                new: format!("c{client}-{n}"),
            },
        };
        // In a quiet spell a write becomes a read; the draws stay as they were.
        let call = match call {
            Call::Put(_) | Call::Delete | Call::Cas { .. } if quiet::holds(&quiet, client_ms()) => {
                Call::Get
            }
            call => call,
        };
        let mut kv = kvs[rng.random_range(0..kvs.len())].clone();
        record(&history, client, key, call, &mut kv).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..200))).await;
    }
}

/// Runs one call and records it; a timeout or error leaves the completion unknown.
async fn record(
    history: &Rc<RefCell<Vec<Op>>>,
    client: usize,
    key: &str,
    call: Call,
    kv: &mut KvClient<FrameChannel>,
) {
    let invoke_ms = client_ms();
    let outcome = tokio::time::timeout(REQUEST_TIMEOUT, perform(kv, key, &call)).await;
    let (complete_ms, outcome, failed, revision) = match outcome {
        Ok(Ok((o, rev))) => (Some(client_ms()), Some(o), false, Some(rev)),
        Ok(Err(_)) => (None, None, true, None),
        Err(_) => (None, None, false, None),
    };
    history.borrow_mut().push(Op {
        client,
        key: key.to_string(),
        call,
        invoke_ms,
        complete_ms,
        outcome,
        failed,
        revision,
    });
}

thread_local! {
    static CLIENT_ORIGIN: std::cell::OnceCell<tokio::time::Instant> = const { std::cell::OnceCell::new() };
}

async fn perform(
    kv: &mut KvClient<FrameChannel>,
    key: &str,
    call: &Call,
) -> Result<(Outcome, i64), tonic::Status> {
    let key_bytes = key.as_bytes().to_vec();
    match call {
        Call::Put(v) => {
            let r = kv
                .put(PutRequest {
                    key: key_bytes,
                    value: v.clone().into_bytes(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok((Outcome::Written, revision(&r.header)))
        }
        Call::Delete => {
            let r = kv
                .delete_range(DeleteRangeRequest {
                    key: key_bytes,
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok((Outcome::Written, revision(&r.header)))
        }
        Call::Get | Call::SerializableGet => {
            let serializable = *call == Call::SerializableGet;
            let r = kv
                .range(RangeRequest {
                    key: key_bytes,
                    serializable,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let value = first_value(&r.kvs);
            let at = revision(&r.header);
            let outcome = if serializable {
                Outcome::ReadAt {
                    value,
                    revision: at,
                }
            } else {
                Outcome::Read(value)
            };
            Ok((outcome, at))
        }
        Call::Cas { expect, new } => {
            let r = kv
                .txn(TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Value as i32,
                        key: key_bytes.clone(),
                        range_end: Vec::new(),
                        target_union: Some(TargetUnion::Value(expect.clone().into_bytes())),
                    }],
                    success: vec![RequestOp {
                        request: Some(OpRequest::RequestPut(PutRequest {
                            key: key_bytes.clone(),
                            value: new.clone().into_bytes(),
                            ..Default::default()
                        })),
                    }],
                    failure: vec![RequestOp {
                        request: Some(OpRequest::RequestRange(RangeRequest {
                            key: key_bytes,
                            ..Default::default()
                        })),
                    }],
                })
                .await?
                .into_inner();
            let seen = match r.responses.first().and_then(|o| o.response.as_ref()) {
                Some(OpResponse::ResponseRange(rr)) => first_value(&rr.kvs),
                _ => None,
            };
            let outcome = Outcome::Cas {
                succeeded: r.succeeded,
                seen,
            };
            Ok((outcome, revision(&r.header)))
        }
    }
}

/// The revision a response header names (0 when the header is missing).
fn revision(header: &Option<crate::proto::etcdserverpb::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |h| h.revision)
}

/// Compacts now and then, as Kubernetes does, at the revision of its own earlier write to a
/// marker key (a put or a delete, in turn), made at least `COMPACT_LAG` before: old enough that
/// the harness has recorded its events, recent enough that watchers relisting from old revisions
/// meet compaction, and, half the time, a revision holding a DELETE (etcd #18089/#19179).
/// Compactions interleave with whatever the schedule does (crashes and power loss included);
/// an unanswered request is not retried.
async fn compact_loop(kvs: Vec<KvClient<FrameChannel>>, seed: u64, quiet: Option<Quiet>) {
    use crate::proto::etcdserverpb::CompactionRequest;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xc0_3ac7);
    let mut marks: Vec<(tokio::time::Instant, i64)> = Vec::new();
    let mut delete = false;
    loop {
        tokio::time::sleep(Duration::from_millis(rng.random_range(COMPACT_EVERY_MS))).await;
        let mut kv = kvs[rng.random_range(0..kvs.len())].clone();
        if quiet::holds(&quiet, client_ms()) {
            continue;
        }
        let key = COMPACT_MARK.as_bytes().to_vec();
        let written = if delete {
            let req = kv.delete_range(DeleteRangeRequest {
                key,
                ..Default::default()
            });
            match tokio::time::timeout(REQUEST_TIMEOUT, req).await {
                Ok(Ok(r)) => Some(revision(&r.into_inner().header)),
                _ => None,
            }
        } else {
            let req = kv.put(PutRequest {
                key,
                value: b"mark".to_vec(),
                ..Default::default()
            });
            match tokio::time::timeout(REQUEST_TIMEOUT, req).await {
                Ok(Ok(r)) => Some(revision(&r.into_inner().header)),
                _ => None,
            }
        };
        if let Some(rev) = written {
            marks.push((tokio::time::Instant::now(), rev));
            delete = !delete;
        }
        let now = tokio::time::Instant::now();
        // Now and then at the delete just made, likely still the newest revision: compaction
        // of a tombstone at the head (what etcd #17780 needed), with crashes all around.
        let at_head = written.filter(|_| !delete && rng.random_bool(COMPACT_AT_HEAD_PROBABILITY));
        let Some(at) = at_head.or_else(|| {
            marks
                .iter()
                .rev()
                .find(|(t, _)| now.duration_since(*t) >= COMPACT_LAG)
                .map(|(_, r)| *r)
        }) else {
            continue;
        };
        marks.retain(|(t, _)| now.duration_since(*t) < COMPACT_LAG);
        let compact = kv.compact(CompactionRequest {
            revision: at,
            physical: false,
        });
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, compact).await;
    }
}

/// Writes two keys in one transaction now and then (puts, then deletes): revisions with several
/// events, which a watch must never split.
async fn pair_loop(kvs: Vec<KvClient<FrameChannel>>, seed: u64, quiet: Option<Quiet>) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x0009_a112);
    let mut n = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..800))).await;
        n += 1;
        let op = |key: &str| RequestOp {
            request: Some(if n.is_multiple_of(3) {
                OpRequest::RequestDeleteRange(DeleteRangeRequest {
                    key: key.as_bytes().to_vec(),
                    ..Default::default()
                })
            } else {
                OpRequest::RequestPut(PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: format!("p{n}").into_bytes(),
                    ..Default::default()
                })
            }),
        };
        let mut kv = kvs[rng.random_range(0..kvs.len())].clone();
        if quiet::holds(&quiet, client_ms()) {
            continue;
        }
        let txn = kv.txn(TxnRequest {
            success: vec![op("pair-a"), op("pair-b")],
            ..Default::default()
        });
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, txn).await;
    }
}

/// A lease kept alive for the whole run with a key attached: only the leader may expire it,
/// and only after keep-alives stop reaching it. Records when each acknowledged grant or
/// keep-alive was sent, for the lease checker.
async fn lease_loop(urls: Vec<String>, seed: u64, alive: AliveLog) {
    use crate::proto::etcdserverpb::lease_client::LeaseClient;
    use crate::proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest};
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x1ea5e);
    let clients: Vec<(LeaseClient<FrameChannel>, KvClient<FrameChannel>)> = urls
        .iter()
        .map(|u| client_channel(u))
        .map(|ch| (LeaseClient::new(ch.clone()), KvClient::new(ch)))
        .collect();
    let mut lease = 0i64;
    // Like etcd's client, keep talking to one member until a call fails, then pick another.
    let mut member = rng.random_range(0..clients.len());
    loop {
        let (mut leases, mut kv) = clients[member].clone();
        let sent = turmoil::sim_elapsed().unwrap_or_default();
        if lease == 0 {
            let ttl = LEASE_TTL.as_secs() as i64;
            let grant = leases.lease_grant(LeaseGrantRequest { ttl, id: 0 });
            if let Ok(Ok(r)) = tokio::time::timeout(REQUEST_TIMEOUT, grant).await {
                lease = r.into_inner().id;
                alive.borrow_mut().insert(lease, sent);
                let put = kv.put(PutRequest {
                    key: b"leased".to_vec(),
                    value: b"alive".to_vec(),
                    lease,
                    ..Default::default()
                });
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, put).await;
            } else {
                member = rng.random_range(0..clients.len());
            }
        } else {
            let req = futures::stream::iter([LeaseKeepAliveRequest { id: lease }]);
            let call = async {
                let mut s = leases.lease_keep_alive(req).await.ok()?.into_inner();
                s.message().await.ok()?.map(|r| r.ttl)
            };
            let got = tokio::time::timeout(REQUEST_TIMEOUT, call).await;
            if std::env::var_os("QUORUM_SIM_DEBUG").is_some() {
                eprintln!(
                    "debug lease {lease:x} via n{} at {sent:?}: {got:?}",
                    member + 1
                );
            }
            match got {
                // TTL 0: the lease expired (keep-alives failed too long); start a new one.
                Ok(Some(0)) => lease = 0,
                Ok(Some(_)) => {
                    alive.borrow_mut().insert(lease, sent);
                }
                _ => member = rng.random_range(0..clients.len()),
            }
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
}

/// The value of a single-key read, as the history records it.
pub fn first_value(kvs: &[mvccpb::KeyValue]) -> Option<String> {
    kvs.first()
        .map(|kv| String::from_utf8_lossy(&kv.value).to_string())
}
