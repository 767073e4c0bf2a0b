//! One simulated run, as four moves: build (members as turmoil hosts and the client host), step
//! (the nemesis acting after each step), observe (every running member checked after each step
//! by the invariant checkers) and judge (`verdict`). The nouns live in their own files; this one
//! only wires them, so adding a fault or a checker does not touch `run`.
//!
//! Everything that reaches the event log (and so the trace hash) is a simulated fact stamped
//! with simulated time.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::plant::Plants;
use crate::storage::{Backend, MemoryBackend};
use turmoil::Sim;

use crate::sim::churn;
use crate::sim::clocks::MemberClocks;
use crate::sim::committed::Committed;
use crate::sim::host::{self, member_config};
use crate::sim::lease_check::LeaseChecker;
use crate::sim::log_check::LogChecker;
use crate::sim::log_watch::LogWatch;
use crate::sim::nemesis::Nemesis;
use crate::sim::observe::{self, Servers};
use crate::sim::operator::{DeskLink, Operator};
use crate::sim::quiet::Quiet;
use crate::sim::raft_check::RaftChecker;
use crate::sim::schedule::{self, Event, Fault};
use crate::sim::verdict::{self, Checker, Report, Violation};
use crate::sim::workload::{self, LEASE_TTL};

/// All faults are healed for this long at the end (unless a scenario asks for less); a leader
/// and convergence must follow.
pub const LIVENESS_MS: u64 = 10_000;
/// One step of simulated time. Every step polls every host whether or not it has work, and
/// the harness samples every member's state after each. 10 ms is a fifth of a heartbeat and
/// half of a message's mean latency on turmoil's default links (0-100 ms, mean 20 ms), and runs
/// a seed about 1.3-1.5 x faster than 2 ms steps did.
pub const TICK: Duration = Duration::from_millis(10);
/// turmoil's own limit on a run, beyond its planned end: room to settle before it gives up.
const OVERRUN_MS: u64 = 60_000;

#[derive(Debug, Clone)]
pub struct RunSpec {
    pub seed: u64,
    pub nodes: usize,
    /// Length of the safety phase (faults active), in simulated seconds.
    pub duration_secs: u64,
    pub plants: Plants,
    pub plant_name: Option<String>,
    pub schedule: Option<Vec<Event>>,
    /// Length of the liveness phase (all healed), in simulated ms: `LIVENESS_MS` unless a
    /// scenario, which wants to be quick, asks for less.
    pub liveness_ms: u64,
    /// Run the control-plane controllers (`elector`) on the client host too.
    pub controllers: bool,
    /// How long the client host waits before its clients dial (0 for seed runs, whose traces
    /// stay as they were; scenarios wait for the first leader so short runs show traffic).
    pub warmup_ms: u64,
    /// Log entries between a member's snapshots (`SNAPSHOT_EVERY_ENTRIES` unless a scenario
    /// wants a lagging member to need a snapshot sooner).
    pub snapshot_every_entries: u64,
    /// Mix membership changes into the seed's generated schedule (`churn`).
    pub membership: bool,
}

/// Log entries between snapshots in a seed run.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 300;

/// A member's host name: `n1`, `n2`, ... for member index 0, 1, ...
pub fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

pub fn run(spec: &RunSpec) -> Report {
    let safety_ms = spec.duration_secs * 1000;
    let end_ms = safety_ms + spec.liveness_ms;
    let schedule = spec.schedule.clone().unwrap_or_else(|| {
        let plain = schedule::generate(spec.seed, spec.nodes, safety_ms);
        match spec.membership {
            true => churn::mix(plain, spec.seed, spec.nodes, safety_ms),
            false => plain,
        }
    });
    // The run's members, then a spare host for each member the schedule adds beyond them.
    let hosts = schedule::hosts(&schedule, spec.nodes);

    // Build.
    let mut sim = new_sim(spec.seed, end_ms);
    let clocks = MemberClocks::new(hosts);
    let backends: Vec<Arc<MemoryBackend>> =
        (0..hosts).map(|_| Arc::new(MemoryBackend::new())).collect();
    let (servers, host_link) = host::add_hosts(&mut sim, spec, &clocks, &backends);
    let ids: Vec<u64> = (0..hosts)
        .map(|i| member_config(i, spec).member_id())
        .collect();
    let operated = schedule.iter().any(|e| e.fault.is_operator());
    let quiet = schedule
        .iter()
        .any(|e| matches!(e.fault, schedule::Fault::Quiet(_)))
        .then(Quiet::default);
    let desk = operated.then(DeskLink::default);
    let workload = workload::start(
        &mut sim,
        spec.nodes,
        spec.seed,
        end_ms,
        spec.controllers,
        Duration::from_millis(spec.warmup_ms),
        workload::Hooks {
            admin: desk.clone().map(|d| (d, ids.clone())),
            quiet: quiet.clone(),
        },
    );
    let mut checks = Invariants {
        raft: RaftChecker::new(ids.clone()),
        logs: LogChecker::new(hosts),
        log_watch: LogWatch::new(hosts),
        leases: LeaseChecker::new(
            hosts,
            LEASE_TTL,
            max_rate_ppm(&schedule),
            workload.alive.clone(),
        ),
        backends: backends.clone(),
        committed: Committed::new(),
        debug: std::env::var_os("QUORUM_SIM_DEBUG").is_some(),
    };
    let mut nemesis = Nemesis::new(
        &schedule,
        safety_ms,
        clocks,
        backends,
        servers.clone(),
        ids.clone(),
        workload.controllers.clone(),
    )
    .with_hosts(host_link, desk.map(Operator::new))
    .with_quiet(quiet);
    let mut log: Vec<String> = schedule.iter().map(|e| format!("schedule: {e}")).collect();
    let mut violations = Vec::new();

    // Step and observe.
    let panicked = loop {
        let done = match step(&mut sim) {
            Ok(done) => done,
            Err(v) => {
                let panicked = v.checker == Checker::Panic;
                violations.push(v);
                break panicked;
            }
        };
        if let Some(c) = &workload.controllers {
            let events = std::mem::take(&mut c.borrow_mut().events);
            log.extend(events.into_iter().map(|(t, e)| format!("t={t}ms {e}")));
        }
        nemesis.act(&mut sim, &mut log);
        for wiped in nemesis.take_wiped() {
            checks.forget(wiped);
        }
        if nemesis.take_restored() {
            checks.raft.new_cluster();
            checks.logs.new_cluster();
        }
        let elapsed = sim.elapsed();
        violations.extend(checks.observe(&servers, &nemesis, elapsed, &mut log));
        log.append(&mut checks.leases.notes);
        if done {
            break false;
        }
    };

    // Judge.
    for m in nemesis.added_but_refused() {
        violations.push(Violation::new(
            Checker::Liveness,
            format!(
                "{} was removed and added back by the runbook but still refuses to start at \
                 the end: a peer still remembers its earlier life",
                name(m)
            ),
        ));
    }
    let expected = nemesis.members_expected_up();
    violations.extend(verdict::settle(
        &mut sim, &servers, &ids, &expected, panicked,
    ));
    checks.committed.observe(&servers, |_| true);
    let (history, judged) =
        verdict::judge_history(&workload, &servers, &checks.committed, safety_ms, &mut log);
    violations.extend(judged);
    Report {
        schedule,
        trace: verdict::trace(&log),
        log,
        violations,
        history,
        simulated: sim.elapsed(),
        nodes: hosts,
        members: spec.nodes,
        safety_ms,
        end_ms,
    }
}

fn new_sim<'a>(seed: u64, end_ms: u64) -> Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(Duration::from_millis(end_ms + OVERRUN_MS))
        .tick_duration(TICK)
        .tcp_capacity(1 << 16)
        .build()
}

/// The fastest member clock the schedule sets, which bounds how early a lease may expire.
fn max_rate_ppm(schedule: &[Event]) -> u64 {
    schedule
        .iter()
        .filter_map(|e| match e.fault {
            Fault::Skew(_, ppm) | Fault::SkewLeader(ppm) => Some(ppm),
            _ => None,
        })
        .max()
        .unwrap_or(crate::clock::RATE_ONE_PPM)
}

/// One step; `Ok(true)` when the simulation is over. A member that panics (an openraft
/// assertion tripped by a planted bug, say) is a finding, not a harness crash: it is reported
/// and the run stops.
fn step(sim: &mut Sim<'_>) -> Result<bool, Violation> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step())) {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(Violation::new(
            Checker::Simulation,
            format!("simulation error: {e}"),
        )),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Violation::new(
                Checker::Panic,
                format!("a member panicked: {msg}"),
            ))
        }
    }
}

/// The checkers that look at every running member after every step.
struct Invariants {
    raft: RaftChecker,
    logs: LogChecker,
    /// Not a checker: notes on uncommitted entries for the narration.
    log_watch: LogWatch,
    leases: LeaseChecker,
    /// Each member's storage, which the log checker reads.
    backends: Vec<Arc<MemoryBackend>>,
    /// The committed events so far, the watch checker's reference.
    committed: Committed,
    /// `QUORUM_SIM_DEBUG` is set: print each member's Raft state every simulated second.
    debug: bool,
}

impl Invariants {
    /// A member's disk was wiped: what it remembered (term, vote, log) is gone by the
    /// operator's hand, not Raft's, so the checkers start its history afresh. Global facts (one
    /// leader per term, the committed entries) still bind it.
    fn forget(&mut self, member: usize) {
        self.raft.forget(member);
        self.log_watch.forget(member);
    }

    fn observe(
        &mut self,
        servers: &Servers,
        nemesis: &Nemesis,
        elapsed: Duration,
        log: &mut Vec<String>,
    ) -> Vec<Violation> {
        let now = elapsed.as_millis() as u64;
        let mut violations = Vec::new();
        self.committed.observe(servers, |i| !nemesis.is_down(i));
        let n = self.backends.len();
        let mut watched: Vec<Option<u64>> = vec![None; n];
        let mut leading: Vec<Option<u64>> = vec![None; n];
        for (i, s) in servers.borrow().iter().enumerate() {
            let Some(s) = s else { continue };
            if nemesis.is_down(i) {
                continue;
            }
            let life = nemesis.life(i);
            let leases = self.leases.observe(i, life, observe::lease_ids(s), elapsed);
            violations.extend(
                leases
                    .into_iter()
                    .map(|v| Violation::new(Checker::Lease, v)),
            );
            let m = observe::metrics(s);
            let purged = m.purged.map_or(0, |l| l.index);
            let committed = m.local_committed.map_or(0, |l| l.index);
            let logs = self
                .logs
                .observe(i, life, self.backends[i].as_ref(), purged, committed);
            violations.extend(
                logs.into_iter()
                    .map(|v| Violation::new(Checker::Log, format!("t={now}ms {v}"))),
            );
            if self.debug && now.is_multiple_of(1000) {
                eprintln!(
                    "debug t={now} {} state={:?} term={} leader={:?} last_log={:?} committed={:?} applied={:?} rev={}",
                    name(i), m.state, m.current_term,
                    m.current_leader.and_then(|id| self.raft.member_of(id)),
                    m.last_log_index, m.local_committed.map(|l| l.index), m.last_applied.map(|l| l.index),
                    observe::revision(s)
                );
            }
            watched[i] = Some(committed);
            if m.state == openraft::ServerState::Leader {
                leading[i] = Some(m.current_term);
            }
            violations.extend(self.raft.observe(i, life, &m, now, log));
        }
        let logs: Vec<Option<(&dyn Backend, u64)>> = watched
            .iter()
            .zip(&self.backends)
            .map(|(c, b)| c.map(|c| (b.as_ref() as &dyn Backend, c)))
            .collect();
        let notes = self.log_watch.observe(&logs, &leading);
        log.extend(notes.into_iter().map(|note| format!("t={now}ms {note}")));
        violations
    }
}
