//! Judging a run once its steps are over: let the members settle and check convergence and a
//! leader, then judge the client history (linearizability, serializable reads, revisions) and
//! the watch streams against the committed events, and write the report.
//!
//! Every violation carries the `Checker` that raised it, under a stable short name: a planted
//! bug counts as caught only when the checker it targets speaks, not when some other checker
//! happens to trip over its consequences.

use std::fmt;
use std::time::Duration;

use crate::sim::committed::Committed;
use crate::sim::history::{Call, Op, Outcome};
use crate::sim::linearizability::{self, Verdict};
use crate::sim::observe::{self, Servers};
use crate::sim::schedule::Event;
use crate::sim::watchers::Seen;
use crate::sim::workload::{self, Workload};
use crate::sim::{revision_check, watch_check};

/// Steps granted after the run for members to apply the last entries before convergence fails.
const SETTLE_STEPS_MAX: usize = 5_000;

/// The checkers, each named once here; `name` is what reports print and tests look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    /// One leader per term; terms, votes and commit indexes never regress (`raft_check`).
    Raft,
    /// Committed entries never change or vanish (`log_check`).
    Log,
    /// No lease revoked before its TTL (`lease_check`).
    Lease,
    /// Per-key linearizability of the client history (`linearizability`).
    Linearizability,
    /// Serializable reads return what the committed history held at their revision.
    Serializable,
    /// etcd's watch guarantees on every stream, against the committed events (`watch_check`).
    Watch,
    /// A later operation never answers a lower revision (`revision_check`).
    Revision,
    /// After healing, every member applied the same history.
    Convergence,
    /// After healing, a leader exists.
    Liveness,
    /// A member panicked (an assertion in the member or in openraft).
    Panic,
    /// turmoil itself failed the run (a host returned an error, or time ran out).
    Simulation,
}

impl Checker {
    pub const fn name(self) -> &'static str {
        match self {
            Checker::Raft => "raft",
            Checker::Log => "log",
            Checker::Lease => "lease",
            Checker::Linearizability => "linearizability",
            Checker::Serializable => "serializable",
            Checker::Watch => "watch",
            Checker::Revision => "revision",
            Checker::Convergence => "convergence",
            Checker::Liveness => "liveness",
            Checker::Panic => "panic",
            Checker::Simulation => "simulation",
        }
    }
}

/// A broken guarantee, and which checker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub checker: Checker,
    pub text: String,
}

impl Violation {
    pub fn new(checker: Checker, text: impl Into<String>) -> Violation {
        Violation {
            checker,
            text: text.into(),
        }
    }
}

/// `[name] text`: the form the CLI prints after `VIOLATION` and tests match on.
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.checker.name(), self.text)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub schedule: Vec<Event>,
    pub log: Vec<String>,
    pub violations: Vec<Violation>,
    pub history: Vec<Op>,
    pub simulated: Duration,
    pub trace: u64,
    /// Hosts in the run: its members, then spare hosts the operator may add.
    pub nodes: usize,
    /// The run's initial members (voters).
    pub members: usize,
    /// When the safety phase ended (faults healed) and when the run was planned to end, ms.
    pub safety_ms: u64,
    pub end_ms: u64,
}

/// Steps the simulation until every `expected` member (the members of the cluster, running
/// at the end) reports the same applied index and store hash, or `SETTLE_STEPS_MAX` steps
/// pass; then a leader must exist. Skipped after a panic, since the simulation cannot step
/// again.
pub fn settle(
    sim: &mut turmoil::Sim<'_>,
    servers: &Servers,
    ids: &[u64],
    expected: &[usize],
    panicked: bool,
) -> Vec<Violation> {
    let mut converged = panicked;
    for _ in 0..if panicked { 0 } else { SETTLE_STEPS_MAX } {
        let states: Vec<(u64, u32)> = expected
            .iter()
            .filter_map(|i| servers.borrow()[*i].clone())
            .map(|s| (observe::applied(&s), observe::store_hash(&s)))
            .collect();
        if states.len() == expected.len() && states.windows(2).all(|w| w[0] == w[1]) {
            converged = true;
            break;
        }
        if sim.step().is_err() {
            break;
        }
    }
    let now = sim.elapsed().as_millis() as u64;
    let mut violations = Vec::new();
    if !converged {
        violations.push(Violation::new(
            Checker::Convergence,
            format!("t={now}ms members did not converge to one applied state"),
        ));
    }
    if !panicked && observe::current_leader(servers, ids).is_none() {
        violations.push(Violation::new(
            Checker::Liveness,
            format!("t={now}ms no leader after the liveness phase"),
        ));
    }
    violations
}

/// Judges what the workload recorded; appends its summary and every operation to `log`.
pub fn judge_history(
    workload: &Workload,
    servers: &Servers,
    committed: &Committed,
    safety_ms: u64,
    log: &mut Vec<String>,
) -> (Vec<Op>, Vec<Violation>) {
    let ops = workload.history.borrow().clone();
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
    let mut violations = Vec::new();
    for (key, verdict) in linearizability::check(&ops) {
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Unknown => log.push(format!("linearizability of {key}: unknown (budget)")),
            Verdict::Violation(why) => violations.push(Violation::new(
                Checker::Linearizability,
                format!("{key} is not linearizable: {why}"),
            )),
        }
    }
    let watches = workload.watches.borrow();
    let streams: usize = watches
        .iter()
        .flatten()
        .filter(|s| matches!(s, Seen::Start { .. }))
        .count();
    let responses: usize = watches.iter().map(Vec::len).sum::<usize>() - streams;
    log.push(format!(
        "watch: {} watchers, {streams} streams, {responses} responses",
        watches.len()
    ));
    violations.extend(
        watch_check::check(committed, &watches)
            .into_iter()
            .map(|v| Violation::new(Checker::Watch, v)),
    );
    violations.extend(
        revision_check::check(&ops)
            .into_iter()
            .map(|v| Violation::new(Checker::Revision, v)),
    );
    violations.extend(check_serializable(servers, &ops));
    (ops, violations)
}

/// The trace hash: FNV-1a over the event log, which holds only simulated facts.
pub fn trace(log: &[String]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for line in log {
        for b in line.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A serializable read may be stale, but what it returns must be what the key held, in the
/// committed history every member converged on, at the revision its response names.
fn check_serializable(servers: &Servers, ops: &[Op]) -> Vec<Violation> {
    let servers = servers.borrow();
    let Some(s) = servers.iter().flatten().next() else {
        return Vec::new();
    };
    ops.iter()
        .filter_map(|op| {
            let Some(Outcome::ReadAt { value, revision }) = &op.outcome else {
                return None;
            };
            let committed = workload::first_value(&observe::range_at(s, &op.key, *revision).ok()?);
            (committed != *value).then(|| {
                Violation::new(
                    Checker::Serializable,
                    format!(
                        "serializable read of {} at revision {revision} returned {value:?}, but \
                         the committed history has {committed:?} there",
                        op.key
                    ),
                )
            })
        })
        .collect()
}
