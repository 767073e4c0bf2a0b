//! One simulated run: members as turmoil hosts, a client host driving a register workload and a
//! watcher, the nemesis applying the schedule, invariants checked as the run steps, and the
//! verdicts at the end. Everything that reaches the event log (and so the trace hash) is a
//! simulated fact stamped with simulated time.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use openraft::ServerState;
use quorum::config::{ClusterState, Config};
use quorum::plant::Plants;
use quorum::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use quorum::proto::etcdserverpb::kv_client::KvClient;
use quorum::proto::etcdserverpb::request_op::Request as OpRequest;
use quorum::proto::etcdserverpb::response_op::Response as OpResponse;
use quorum::proto::etcdserverpb::watch_client::WatchClient;
use quorum::proto::etcdserverpb::watch_request::RequestUnion;
use quorum::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    WatchCreateRequest, WatchRequest,
};
use quorum::server::Server;
use quorum::storage::{MemoryBackend, SharedBackend};
use quorum::transport::{Network, Transport};
use quorum::Node;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::clocks::MemberClocks;
use crate::history::{Call, Op, Outcome};
use crate::lease_check::{AliveLog, LeaseChecker};
use crate::linearizability::{self, Verdict};
use crate::log_check::LogChecker;
use crate::net::TurmoilNetwork;
use crate::schedule::{self, Event, Fault};

/// The keys the register workload uses: few, so operations contend.
const KEYS: [&str; 3] = ["k1", "k2", "k3"];
/// Concurrent logical clients in the client host.
const CLIENTS: usize = 4;
/// A request with no answer after this long is recorded as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// All faults are healed for this long at the end; a leader and convergence must follow.
const LIVENESS_MS: u64 = 10_000;
/// The TTL of the workload's lease.
const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the harness samples every member's Raft state: every step (the tick is 2 ms).
const OBSERVE_EVERY_MS: u64 = 2;

#[derive(Debug, Clone)]
pub struct RunSpec {
    pub seed: u64,
    pub nodes: usize,
    /// Length of the safety phase (faults active), in simulated seconds.
    pub duration_secs: u64,
    pub plants: Plants,
    pub plant_name: Option<String>,
    pub schedule: Option<Vec<Event>>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub schedule: Vec<Event>,
    pub log: Vec<String>,
    pub violations: Vec<String>,
    pub history: Vec<Op>,
    pub simulated: Duration,
    pub trace: u64,
}

fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

fn member_config(i: usize, nodes: usize, plants: Plants) -> Config {
    let peer = |j: usize| format!("http://{}:2380", name(j));
    let client = format!("http://{}:2379", name(i));
    Config {
        name: name(i),
        data_dir: std::path::PathBuf::from("/nonexistent"),
        listen_client_urls: vec![client.clone()],
        advertise_client_urls: vec![client],
        listen_peer_urls: vec![peer(i)],
        initial_advertise_peer_urls: vec![peer(i)],
        initial_cluster: (0..nodes).map(|j| (name(j), vec![peer(j)])).collect(),
        initial_cluster_state: ClusterState::New,
        initial_cluster_token: "sim".into(),
        heartbeat_interval_ms: 50,
        election_timeout_ms: 500,
        snapshot_every_entries: 300,
        plants,
        tls: Default::default(),
        auth: Default::default(),
    }
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x0100_0000_01b3);
    }
}

type Servers = Rc<RefCell<Vec<Option<Arc<Server>>>>>;

/// What the watcher saw: (key, mod revision, is delete), in arrival order.
type Seen = Rc<RefCell<Vec<(String, i64, bool)>>>;

pub fn run(spec: &RunSpec) -> Report {
    let safety_ms = spec.duration_secs * 1000;
    let end_ms = safety_ms + LIVENESS_MS;
    let schedule = spec
        .schedule
        .clone()
        .unwrap_or_else(|| schedule::generate(spec.seed, spec.nodes, safety_ms));
    let mut sim = turmoil::Builder::new()
        .rng_seed(spec.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(Duration::from_millis(end_ms + 60_000))
        // 2 ms steps: fine enough for 50 ms heartbeats, and each step polls every host, so
        // half the steps is about a third faster than 1 ms.
        .tick_duration(Duration::from_millis(2))
        .tcp_capacity(1 << 16)
        .build();

    let mut clocks = MemberClocks::new(spec.nodes);
    let servers: Servers = Rc::new(RefCell::new(vec![None; spec.nodes]));
    let backends: Vec<Arc<MemoryBackend>> = (0..spec.nodes)
        .map(|_| Arc::new(MemoryBackend::new()))
        .collect();
    for (i, backend) in backends.iter().enumerate() {
        let config = member_config(i, spec.nodes, spec.plants);
        let backend: SharedBackend = backend.clone();
        let slot = servers.clone();
        let seed = spec.seed.wrapping_mul(31).wrapping_add(i as u64 + 1);
        let clock = clocks.clock(i);
        sim.host(name(i), move || {
            let config = config.clone();
            let backend = backend.clone();
            let slot = slot.clone();
            let clock = clock.clone();
            async move {
                // Each start runs on a fresh runtime: bind the member's clock to it.
                quorum::clock::bind_to_current_runtime(clock);
                let transport = Transport::new(Arc::new(TurmoilNetwork));
                let node = Node::start_with_backend(config, backend, transport, seed)
                    .await
                    .map_err(|e| e.to_string())?;
                slot.borrow_mut()[i] = Some(node.server.clone());
                std::future::pending::<()>().await;
                drop(node);
                Ok(())
            }
        });
    }

    let history: Rc<RefCell<Vec<Op>>> = Rc::default();
    let seen: Seen = Rc::default();
    let alive = AliveLog::default();
    {
        let history = history.clone();
        let seen = seen.clone();
        let alive = alive.clone();
        let nodes = spec.nodes;
        let seed = spec.seed;
        sim.client("client", async move {
            let net = TurmoilNetwork;
            let urls: Vec<String> = (0..nodes)
                .map(|i| format!("http://{}:2379", name(i)))
                .collect();
            let kvs: Vec<KvClient<tonic::transport::Channel>> = urls
                .iter()
                .map(|u| KvClient::new(net.channel(u).expect("channel")))
                .collect();
            let watcher = tokio::task::spawn_local(watch_all(urls.clone(), seed, seen));
            let leaser = tokio::task::spawn_local(lease_loop(urls.clone(), seed, alive));
            let mut tasks = Vec::new();
            for c in 0..CLIENTS {
                let kvs = kvs.clone();
                let history = history.clone();
                tasks.push(tokio::task::spawn_local(client_loop(
                    c,
                    seed,
                    kvs,
                    history,
                    end_ms - 2_000,
                )));
            }
            for t in tasks {
                let _ = t.await;
            }
            // Final reads, after the liveness phase healed everything: what every member must
            // agree on, and what a lost write would contradict.
            let mut kv = kvs[0].clone();
            for key in KEYS {
                record(&history, 99, key, Call::Get, &mut kv).await;
            }
            watcher.abort();
            leaser.abort();
            Ok(())
        });
    }

    let mut log: Vec<String> = schedule.iter().map(|e| format!("schedule: {e}")).collect();
    let mut violations = Vec::new();
    let mut pending: Vec<Event> = schedule.clone();
    pending.reverse();
    let mut crashed: BTreeSet<usize> = BTreeSet::new();
    let max_rate = schedule
        .iter()
        .filter_map(|e| match e.fault {
            Fault::Skew(_, ppm) => Some(ppm),
            _ => None,
        })
        .max()
        .unwrap_or(quorum::clock::RATE_ONE_PPM);
    let mut leases = LeaseChecker::new(spec.nodes, LEASE_TTL, max_rate, alive);
    let mut logs = LogChecker::new(spec.nodes);
    let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
    let mut terms: Vec<u64> = vec![0; spec.nodes];
    let mut generations: Vec<usize> = vec![1; spec.nodes];
    let mut granted: Vec<Option<(u64, u64)>> = vec![None; spec.nodes];
    let mut votes: Vec<Option<(u64, u64)>> = vec![None; spec.nodes];
    let mut states: Vec<Option<ServerState>> = vec![None; spec.nodes];
    let mut healed = false;
    let mut last_observe = 0u64;
    let ids: Vec<u64> = (0..spec.nodes)
        .map(|i| member_config(i, spec.nodes, spec.plants).member_id())
        .collect();
    let index_of = |id: u64| ids.iter().position(|x| *x == id);

    let mut panicked = false;
    loop {
        // A member that panics (an openraft assertion tripped by a planted bug, say) is a
        // finding, not a harness crash: report it and stop the run.
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step()));
        let done = match stepped {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                violations.push(format!("simulation error: {e}"));
                break;
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                violations.push(format!("a member panicked: {msg}"));
                panicked = true;
                break;
            }
        };
        let now = sim.elapsed().as_millis() as u64;
        clocks.advance(sim.elapsed());
        while pending.last().is_some_and(|e| e.at_ms <= now) && !healed {
            let e = pending.pop().expect("checked non-empty");
            let leader = current_leader(&servers, &ids);
            let mut nemesis = Nemesis {
                sim: &mut sim,
                nodes: spec.nodes,
                leader,
                backends: &backends,
                servers: &servers,
                crashed: &mut crashed,
                clocks: &mut clocks,
                generations: &mut generations,
            };
            nemesis.apply(&e.fault);
            log.push(format!("t={now}ms apply {}", e.fault_text()));
        }
        if !healed && now >= safety_ms {
            healed = true;
            heal_all(&mut sim, spec.nodes);
            clocks.heal(sim.elapsed());
            for n in std::mem::take(&mut crashed) {
                sim.bounce(name(n));
            }
            log.push(format!(
                "t={now}ms liveness phase: all faults healed, crashed members restarted"
            ));
        }
        if now >= last_observe + OBSERVE_EVERY_MS {
            last_observe = now;
            for (i, s) in servers.borrow().iter().enumerate() {
                let Some(s) = s else { continue };
                if crashed.contains(&i) {
                    continue;
                }
                let held = s.lease_ids().into_iter().collect();
                // Which life of the member this is: counts its crashes, so a restart is seen
                // even if the next sample finds a server again (never a pointer, which the
                // allocator may reuse).
                let instance = generations[i];
                violations.extend(leases.observe(i, instance, held, sim.elapsed()));
                let m = s.metrics();
                violations.extend(
                    logs.observe(
                        i,
                        instance,
                        backends[i].as_ref(),
                        m.purged.map_or(0, |l| l.index),
                        m.local_committed.map_or(0, |l| l.index),
                    )
                    .into_iter()
                    .map(|v| format!("t={now}ms {v}")),
                );
                if std::env::var_os("QUORUM_SIM_DEBUG").is_some() && now.is_multiple_of(1000) {
                    eprintln!(
                        "debug t={now} {} state={:?} term={} leader={:?} last_log={:?} committed={:?} applied={:?} rev={}",
                        name(i), m.state, m.current_term, m.current_leader.and_then(index_of),
                        m.last_log_index, m.local_committed.map(|l| l.index), m.last_applied.map(|l| l.index),
                        s.revision()
                    );
                }
                if m.current_term < terms[i] {
                    violations.push(format!(
                        "t={now}ms {} term went back from {} to {}",
                        name(i),
                        terms[i],
                        m.current_term
                    ));
                }
                terms[i] = m.current_term;
                if states[i] != Some(m.state) {
                    states[i] = Some(m.state);
                    log.push(format!(
                        "t={now}ms {} is {:?} in term {}",
                        name(i),
                        m.state,
                        m.current_term
                    ));
                }
                let vote = (m.vote.leader_id().term, m.vote.leader_id().voted_for);
                // The vote is synced before it is sent, so even a power loss cannot take it back.
                if let Some((term, _)) = votes[i] {
                    if vote.0 < term {
                        violations.push(format!(
                            "t={now}ms {} vote went back from term {term} to term {}",
                            name(i),
                            vote.0
                        ));
                    }
                }
                // Classic Raft: one vote granted per term, even across restarts. Following the
                // term's leader after voting for another candidate is not a second vote, and a
                // restarted member holds the leader it followed as its vote (`read_vote`).
                if !m.vote.is_committed() {
                    if let Some((term, whom)) = granted[i] {
                        if vote.0 == term && vote.1 != whom {
                            violations.push(format!(
                                "t={now}ms {} voted for two members in term {term}",
                                name(i)
                            ));
                        }
                    }
                }
                granted[i] = Some(vote);
                if votes[i] != Some(vote) {
                    votes[i] = Some(vote);
                    let whom = index_of(vote.1)
                        .map(name)
                        .unwrap_or_else(|| "nobody".into());
                    let how = if m.vote.is_committed() {
                        "follows"
                    } else {
                        "votes for"
                    };
                    log.push(format!(
                        "t={now}ms {} {how} {whom} in term {}",
                        name(i),
                        vote.0
                    ));
                }
                if m.state == ServerState::Leader {
                    match leaders.get(&m.current_term) {
                        None => {
                            leaders.insert(m.current_term, s.id());
                            log.push(format!(
                                "t={now}ms {} leads term {}",
                                name(i),
                                m.current_term
                            ));
                        }
                        Some(other) if *other != s.id() => violations.push(format!(
                            "t={now}ms two leaders in term {}: {} and {}",
                            m.current_term,
                            index_of(*other).map(name).unwrap_or_default(),
                            name(i)
                        )),
                        _ => {}
                    }
                }
            }
        }
        if done {
            break;
        }
    }

    // Convergence: give members a moment to apply the last entries, then compare.
    let mut converged = panicked;
    for _ in 0..if panicked { 0 } else { 5_000 } {
        let states: Vec<(u64, u32)> = servers
            .borrow()
            .iter()
            .flatten()
            .map(|s| {
                let applied = s.metrics().last_applied.map_or(0, |l| l.index);
                (applied, s.kv_hash().hash)
            })
            .collect();
        if states.len() == spec.nodes && states.windows(2).all(|w| w[0] == w[1]) {
            converged = true;
            break;
        }
        if sim.step().is_err() {
            break;
        }
    }
    let now = sim.elapsed().as_millis() as u64;
    if !converged {
        violations.push(format!(
            "t={now}ms members did not converge to one applied state"
        ));
    }
    if !panicked && current_leader(&servers, &ids).is_none() {
        violations.push(format!("t={now}ms no leader after the liveness phase"));
    }

    let ops = history.borrow().clone();
    let writes = |from: u64, to: u64| {
        let w: Vec<&Op> = ops
            .iter()
            .filter(|o| {
                !matches!(o.call, Call::Get | Call::SerializableGet)
                    && o.invoke_ms >= from
                    && o.invoke_ms < to
            })
            .collect();
        let acked = w.iter().filter(|o| o.complete_ms.is_some()).count();
        (acked, w.len())
    };
    let (a, n) = writes(0, safety_ms);
    log.push(format!(
        "writes acknowledged during the safety phase: {a} of {n}"
    ));
    let (a, n) = writes(safety_ms, u64::MAX);
    log.push(format!(
        "writes acknowledged during the liveness phase: {a} of {n}"
    ));
    for op in &ops {
        log.push(format!(
            "op c{} {} {:?} [{}..{}] {:?}",
            op.client,
            op.key,
            op.call,
            op.invoke_ms,
            op.complete_ms.map_or("?".to_string(), |c| c.to_string()),
            op.outcome
        ));
    }
    for (key, verdict) in linearizability::check(&ops) {
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Unknown => log.push(format!("linearizability of {key}: unknown (budget)")),
            Verdict::Violation(why) => violations.push(format!("{key} is not linearizable: {why}")),
        }
    }
    if let Some(v) = check_watch(&servers, &seen.borrow()) {
        violations.push(v);
    }
    violations.extend(check_serializable(&servers, &ops));

    let mut trace = 0xcbf2_9ce4_8422_2325u64;
    for line in &log {
        fnv(&mut trace, line.as_bytes());
    }
    Report {
        schedule,
        log,
        violations,
        history: ops,
        simulated: sim.elapsed(),
        trace,
    }
}

impl Event {
    fn fault_text(&self) -> String {
        let s = self.to_string();
        s.split_once(' ').map(|(_, r)| r.to_string()).unwrap_or(s)
    }
}

fn current_leader(servers: &Servers, ids: &[u64]) -> Option<usize> {
    servers.borrow().iter().flatten().find_map(|s| {
        let m = s.metrics();
        (m.state == ServerState::Leader)
            .then(|| ids.iter().position(|x| *x == s.id()))
            .flatten()
    })
}

fn heal_all(sim: &mut turmoil::Sim<'_>, nodes: usize) {
    for a in 0..nodes {
        sim.release(name(a), "client");
        for b in 0..nodes {
            if a != b {
                sim.repair(name(a), name(b));
                sim.release(name(a), name(b));
                sim.set_link_latency(name(a), name(b), Duration::from_millis(0));
            }
        }
    }
}

/// What the nemesis acts on.
struct Nemesis<'a, 'b> {
    sim: &'a mut turmoil::Sim<'b>,
    nodes: usize,
    leader: Option<usize>,
    backends: &'a [Arc<MemoryBackend>],
    servers: &'a Servers,
    crashed: &'a mut BTreeSet<usize>,
    clocks: &'a mut MemberClocks,
    /// Bumped on every crash: the member's next start is a new life.
    generations: &'a mut [usize],
}

impl Nemesis<'_, '_> {
    fn cut(&mut self, a: &[usize], b: &[usize]) {
        for x in a {
            for y in b {
                self.sim.partition(name(*x), name(*y));
            }
        }
    }

    fn apply(&mut self, fault: &Fault) {
        let nodes = self.nodes;
        match fault {
            Fault::Partition(a, b) => self.cut(a, b),
            Fault::IsolateLeader => {
                if let Some(l) = self.leader {
                    let others: Vec<usize> = (0..nodes).filter(|n| *n != l).collect();
                    self.cut(&[l], &others);
                }
            }
            Fault::OneWay(a, b) => self.sim.partition_oneway(name(*a), name(*b)),
            Fault::Heal => heal_all(self.sim, nodes),
            Fault::Crash(n) | Fault::PowerLoss(n) => {
                if self.crashed.insert(*n) {
                    self.generations[*n] += 1;
                    self.sim.crash(name(*n));
                    self.servers.borrow_mut()[*n] = None;
                    if matches!(fault, Fault::PowerLoss(_)) {
                        self.backends[*n].power_loss();
                    }
                }
            }
            Fault::Restart(n) => {
                if self.crashed.remove(n) {
                    self.sim.bounce(name(*n));
                }
            }
            Fault::PowerLossAll => {
                for n in 0..nodes {
                    self.apply(&Fault::PowerLoss(n));
                }
            }
            Fault::Bridge(a, _, b) => self.cut(a, b),
            Fault::Pause(n) => {
                for y in (0..nodes).filter(|y| y != n) {
                    self.sim.hold(name(*n), name(y));
                }
                self.sim.hold(name(*n), "client");
                self.clocks.pause(*n, self.sim.elapsed());
            }
            Fault::Resume(n) => {
                for y in (0..nodes).filter(|y| y != n) {
                    self.sim.release(name(*n), name(y));
                }
                self.sim.release(name(*n), "client");
                self.clocks.resume(*n, self.sim.elapsed());
            }
            Fault::PauseLeader => {
                if let Some(l) = self.leader {
                    self.apply(&Fault::Pause(l));
                }
            }
            Fault::ResumeAll => {
                for n in self.clocks.paused() {
                    self.apply(&Fault::Resume(n));
                }
            }
            Fault::Skew(n, ppm) => self.clocks.skew(*n, *ppm),
            Fault::RestartAll => {
                for n in std::mem::take(self.crashed) {
                    self.sim.bounce(name(n));
                }
            }
            Fault::Delay(n, ms) => {
                for y in (0..nodes).filter(|y| y != n) {
                    self.sim
                        .set_link_latency(name(*n), name(y), Duration::from_millis(*ms));
                }
            }
        }
    }
}

fn now_ms(start: tokio::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

async fn client_loop(
    client: usize,
    seed: u64,
    kvs: Vec<KvClient<tonic::transport::Channel>>,
    history: Rc<RefCell<Vec<Op>>>,
    until_ms: u64,
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
    kv: &mut KvClient<tonic::transport::Channel>,
) {
    // Simulated time is shared by every host; the client host's clock started at zero.
    let clock = tokio::time::Instant::now();
    let origin = CLIENT_ORIGIN.with(|o| *o.get_or_init(|| clock));
    let invoke_ms = clock.duration_since(origin).as_millis() as u64;
    let outcome = tokio::time::timeout(REQUEST_TIMEOUT, perform(kv, key, &call)).await;
    let (complete_ms, outcome) = match outcome {
        Ok(Ok(o)) => (Some(now_ms(origin)), Some(o)),
        _ => (None, None),
    };
    history.borrow_mut().push(Op {
        client,
        key: key.to_string(),
        call,
        invoke_ms,
        complete_ms,
        outcome,
    });
}

thread_local! {
    static CLIENT_ORIGIN: std::cell::OnceCell<tokio::time::Instant> = const { std::cell::OnceCell::new() };
}

async fn perform(
    kv: &mut KvClient<tonic::transport::Channel>,
    key: &str,
    call: &Call,
) -> Result<Outcome, tonic::Status> {
    let key_bytes = key.as_bytes().to_vec();
    match call {
        Call::Put(v) => {
            kv.put(PutRequest {
                key: key_bytes,
                value: v.clone().into_bytes(),
                ..Default::default()
            })
            .await?;
            Ok(Outcome::Written)
        }
        Call::Delete => {
            kv.delete_range(DeleteRangeRequest {
                key: key_bytes,
                ..Default::default()
            })
            .await?;
            Ok(Outcome::Written)
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
            Ok(if serializable {
                Outcome::ReadAt {
                    value,
                    revision: r.header.map_or(0, |h| h.revision),
                }
            } else {
                Outcome::Read(value)
            })
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
            Ok(Outcome::Cas {
                succeeded: r.succeeded,
                seen,
            })
        }
    }
}

/// Watches every key from revision 1, reconnecting to another member (from the last revision
/// seen + 1, as etcd clients do) whenever a stream breaks.
async fn watch_all(urls: Vec<String>, seed: u64, seen: Seen) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xa11_5eed);
    let net = TurmoilNetwork;
    loop {
        let next_rev = seen.borrow().last().map_or(1, |(_, r, _)| r + 1);
        let url = &urls[rng.random_range(0..urls.len())];
        let Ok(channel) = net.channel(url) else {
            continue;
        };
        let mut client = WatchClient::new(channel);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: vec![0],
                range_end: vec![0],
                start_revision: next_rev,
                ..Default::default()
            })),
        };
        let _ = tx.send(create).await;
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, client.watch(tokio_stream_of(rx))).await;
        if let Ok(Ok(resp)) = stream {
            let mut inbound = resp.into_inner();
            loop {
                // A silent stream may be a dead peer behind a partition: re-dial after a while.
                match tokio::time::timeout(Duration::from_secs(3), inbound.message()).await {
                    Ok(Ok(Some(r))) => {
                        if r.canceled {
                            break;
                        }
                        for e in r.events {
                            let kv = e.kv.unwrap_or_default();
                            seen.borrow_mut().push((
                                String::from_utf8_lossy(&kv.key).to_string(),
                                kv.mod_revision,
                                e.r#type == 1,
                            ));
                        }
                    }
                    Ok(Ok(None)) | Ok(Err(_)) => break,
                    Err(_) => {
                        // Quiet is fine when nothing is written; only re-dial if we lag.
                        let behind = seen.borrow().last().map_or(0, |l| l.1) < 1;
                        if behind {
                            break;
                        }
                    }
                }
            }
        }
        drop(tx);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A lease kept alive for the whole run with a key attached: only the leader may expire it,
/// and only after keep-alives stop reaching it. Records when each acknowledged grant or
/// keep-alive was sent, for the lease checker.
async fn lease_loop(urls: Vec<String>, seed: u64, alive: AliveLog) {
    use quorum::proto::etcdserverpb::lease_client::LeaseClient;
    use quorum::proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest};
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x1ea5e);
    let net = TurmoilNetwork;
    let clients: Vec<(
        LeaseClient<tonic::transport::Channel>,
        KvClient<tonic::transport::Channel>,
    )> = urls
        .iter()
        .filter_map(|u| net.channel(u).ok())
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
fn first_value(kvs: &[quorum::proto::mvccpb::KeyValue]) -> Option<String> {
    kvs.first()
        .map(|kv| String::from_utf8_lossy(&kv.value).to_string())
}

/// A serializable read may be stale, but what it returns must be what the key held, in the
/// committed history every member converged on, at the revision its response names.
fn check_serializable(servers: &Servers, ops: &[Op]) -> Vec<String> {
    let servers = servers.borrow();
    let Some(s) = servers.iter().flatten().next() else {
        return Vec::new();
    };
    ops.iter()
        .filter_map(|op| {
            let Some(Outcome::ReadAt { value, revision }) = &op.outcome else {
                return None;
            };
            let committed = first_value(
                &s.range_local(&RangeRequest {
                    key: op.key.as_bytes().to_vec(),
                    revision: *revision,
                    ..Default::default()
                })
                .ok()?
                .kvs,
            );
            (committed != *value).then(|| {
                format!(
                    "serializable read of {} at revision {revision} returned {value:?}, but the \
                     committed history has {committed:?} there",
                    op.key
                )
            })
        })
        .collect()
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The watcher's events must be exactly the committed events, in order, up to where it got.
fn check_watch(servers: &Servers, seen: &[(String, i64, bool)]) -> Option<String> {
    let servers = servers.borrow();
    let s = servers.iter().flatten().next()?;
    let last = seen.last()?.1;
    let committed = match s.events_between(&[0], &[0], 1, last) {
        Ok(evs) => evs,
        // History compacted below the watcher's start: nothing to compare.
        Err(_) => return None,
    };
    let committed: Vec<(String, i64, bool)> = committed
        .into_iter()
        .map(|e| {
            let kv = e.kv.unwrap_or_default();
            (
                String::from_utf8_lossy(&kv.key).to_string(),
                kv.mod_revision,
                e.r#type == 1,
            )
        })
        .collect();
    if committed.as_slice() != seen {
        let first = committed
            .iter()
            .zip(seen)
            .position(|(a, b)| a != b)
            .unwrap_or(committed.len().min(seen.len()));
        return Some(format!(
            "watch stream differs from the committed log at event {first}: committed {:?}, watched {:?}",
            committed.get(first),
            seen.get(first)
        ));
    }
    None
}
