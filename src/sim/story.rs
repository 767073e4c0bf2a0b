//! What a run showed, as data: the report's event log, schedule and client history turned
//! into lanes a learner can follow (each member's role and term over time, crashes and pauses
//! as gaps, cut links, client operations, control-plane leadership), plus the quorum
//! arithmetic after every fault. The narration, the JSON, the SVG and the HTML timeline are all
//! drawn from one `Story`, so they cannot disagree.
//!
//! It reads only the report (simulated facts), in log order, with ordered collections: the same
//! seed gives the same story.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::sim::history::Call;
use crate::sim::run::name;
use crate::sim::schedule::{self, Fault};
use crate::sim::verdict::{Checker, Report};

/// A stretch of one member's lane: its role and term from `from_ms` to `to_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub member: usize,
    pub from_ms: u64,
    pub to_ms: u64,
    pub role: String,
    pub term: u64,
}

/// A member not running (`crash`, `power-loss`), stopped (`pause`), or a host outside the
/// cluster (`out`: a spare not yet added, a removed member).
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub member: usize,
    pub from_ms: u64,
    pub to_ms: u64,
    pub kind: String,
}

/// A link that dropped messages from `from` to `to` (member indexes; `nodes` is the client).
#[derive(Debug, Clone, Serialize)]
pub struct Cut {
    pub from: usize,
    pub to: usize,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// One client operation as a bar.
#[derive(Debug, Clone, Serialize)]
pub struct OpBar {
    pub client: usize,
    pub key: String,
    pub write: bool,
    /// A serializable read: served from the member's own state, without a quorum.
    pub serializable: bool,
    pub from_ms: u64,
    /// When it completed; for a failed or unknown operation, when the client gave up on it.
    pub to_ms: u64,
    /// `ok`, `failed` (an error came back) or `unknown` (no answer in time).
    pub status: String,
}

/// A stretch during which controller `controller` believed it led.
#[derive(Debug, Clone, Serialize)]
pub struct Holding {
    pub controller: usize,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// The network's shape after a fault, and what it means for a quorum.
#[derive(Debug, Clone, Serialize)]
pub struct Quorum {
    /// Groups of running members that can talk to each other, by member number.
    pub groups: Vec<Vec<usize>>,
    /// Members crashed or paused.
    pub down: Vec<usize>,
    /// The most voters any one running member reaches, itself included.
    pub reachable: usize,
    /// Voters in the cluster's configuration (learners do not count toward a majority).
    pub voters: usize,
    pub majority: usize,
    /// Members believed to lead that reach fewer than a majority.
    pub stranded_leaders: Vec<(usize, u64)>,
}

/// Something that happened, in time order: a fault (with the quorum after it) or a note.
#[derive(Debug, Clone, Serialize)]
pub struct Moment {
    pub t_ms: u64,
    /// `fault`, `leader`, `candidate`, `step-down`, `controller`, `lease`, `liveness`,
    /// `member` (a membership change or an operator's host step), `refused`.
    pub kind: String,
    pub text: String,
    /// For a fault: whom a leader-relative fault hit (`n2`, `c1`).
    pub target: Option<String>,
    pub quorum: Option<Quorum>,
}

/// One checker's conclusion.
#[derive(Debug, Clone, Serialize)]
pub struct Conclusion {
    pub checker: String,
    pub guarantee: String,
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Story {
    pub seed: u64,
    /// Hosts, one lane each: the run's members, then spare hosts.
    pub nodes: usize,
    /// The run's initial members (voters).
    pub members: usize,
    pub majority: usize,
    pub safety_ms: u64,
    pub end_ms: u64,
    pub schedule: Vec<String>,
    pub moments: Vec<Moment>,
    pub roles: Vec<Segment>,
    pub gaps: Vec<Gap>,
    pub cuts: Vec<Cut>,
    pub ops: Vec<OpBar>,
    pub holdings: Vec<Holding>,
    pub conclusions: Vec<Conclusion>,
    /// The first violation and, when its text names one, its time.
    pub first_violation: Option<(Option<u64>, String)>,
    pub trace: String,
}

/// `t=123ms rest` → (123, "rest").
pub fn split_time(line: &str) -> Option<(u64, &str)> {
    let rest = line.strip_prefix("t=")?;
    let (t, rest) = rest.split_once("ms ")?;
    Some((t.parse().ok()?, rest))
}

/// `n3` → 2.
fn member_of(word: &str) -> Option<usize> {
    word.strip_prefix('n')?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

/// What each checker guarantees, in the order the narration lists them.
const GUARANTEES: [(Checker, &str); 9] = [
    (
        Checker::Raft,
        "at most one leader per term; terms and votes never went back",
    ),
    (Checker::Log, "committed entries never changed or vanished"),
    (
        Checker::Linearizability,
        "every key's history is linearizable: no acknowledged write lost, no stale read",
    ),
    (
        Checker::Serializable,
        "serializable reads returned what the committed history held",
    ),
    (
        Checker::Lease,
        "no lease revoked before its TTL after its last acknowledged keep-alive",
    ),
    (
        Checker::Watch,
        "every watch stream was ordered, unique, atomic, reliable, resumable, bookmarkable",
    ),
    (
        Checker::Revision,
        "no answer named a revision below one already answered",
    ),
    (
        Checker::Convergence,
        "after healing, every member applied the same history",
    ),
    (Checker::Liveness, "after healing, a leader was elected"),
];

/// The links, members and client as the faults so far left them.
struct Network {
    nodes: usize,
    /// Directed (from, to) pairs whose messages are dropped; `nodes` stands for the client.
    cut: BTreeSet<(usize, usize)>,
    crashed: BTreeSet<usize>,
    paused: BTreeSet<usize>,
    /// The voters of the cluster's configuration, as the operator's changes left them.
    voters: BTreeSet<usize>,
    /// Hosts outside the cluster: spares not yet added, removed members.
    out: BTreeSet<usize>,
    /// Why the operator's last attempt failed, told with the success that follows it.
    last_failure: Option<String>,
}

impl Network {
    fn running(&self, m: usize) -> bool {
        !self.crashed.contains(&m) && !self.paused.contains(&m) && !self.out.contains(&m)
    }

    /// `voters 4: majority 3`.
    fn voters_text(&self) -> String {
        let v = self.voters.len();
        format!("voters {v}: majority {}", v / 2 + 1)
    }

    /// Follows the operator's log lines (`member n4 promoted to voter`, `n2 stopped: ...`);
    /// returns the moment to tell, if the line is one of them.
    fn membership(&mut self, t: u64, rest: &str) -> Option<Moment> {
        if let Some(note) = rest.strip_prefix("operator: ") {
            if let Some((_, why)) = note.split_once(" failed: ") {
                self.last_failure = Some(why.to_string());
            }
            return None;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        // `..., after 3 failed attempts)`: told with the last refusal, which says why.
        let retried = rest
            .split_once(", after ")
            .and_then(|(_, r)| r.strip_suffix(')'))
            .filter(|_| words.first() == Some(&"member"))
            .map(|r| {
                let why = self.last_failure.take().unwrap_or_default();
                format!(", after {r} (the last: {why})")
            })
            .unwrap_or_default();
        let (kind, text) = match words.as_slice() {
            ["member", m, "added", ..] => {
                let _ = member_of(m)?;
                (
                    "member",
                    format!("{m} joins as a learner ({})", self.voters_text()),
                )
            }
            ["member", m, "promoted", ..] => {
                self.voters.insert(member_of(m)?);
                (
                    "member",
                    format!("{m} promoted to voter ({})", self.voters_text()),
                )
            }
            ["member", m, "removed", ..] => {
                self.voters.remove(&member_of(m)?);
                (
                    "member",
                    format!("{m} removed from the cluster ({})", self.voters_text()),
                )
            }
            ["member", m, "handed", ..] => ("member", format!("{m} takes over the leadership")),
            [m, "stopped:", ..] => {
                let m = member_of(m)?;
                self.out.insert(m);
                self.crashed.remove(&m);
                return None;
            }
            [m, "starts", "with", ..] => {
                let m = member_of(m)?;
                self.out.remove(&m);
                self.crashed.remove(&m);
                return None;
            }
            [m, "start", "tried", "again"] => {
                self.crashed.remove(&member_of(m)?);
                return None;
            }
            [_, "data", "dir", "wiped"] => ("member", rest.to_string()),
            [m, "refused", "to", "start:", ..] => {
                self.crashed.insert(member_of(m)?);
                ("refused", rest.to_string())
            }
            ["operator", "gives", ..] => ("member", rest.to_string()),
            _ => return None,
        };
        Some(note(t, kind, &format!("{text}{retried}")))
    }

    fn talk(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&(a, b)) && !self.cut.contains(&(b, a))
    }

    fn cut_between(&mut self, a: &[usize], b: &[usize]) {
        for x in a {
            for y in b {
                self.cut.insert((*x, *y));
                self.cut.insert((*y, *x));
            }
        }
    }

    fn apply(&mut self, fault: &Fault, target: Option<usize>) {
        let n = self.nodes;
        let others = |t: usize| (0..n).filter(|x| *x != t).collect::<Vec<_>>();
        match fault {
            Fault::Partition(a, b) | Fault::Bridge(a, _, b) => self.cut_between(a, b),
            Fault::OneWay(a, b) => {
                self.cut.insert((*a, *b));
            }
            Fault::IsolateLeader | Fault::IsolateFollower | Fault::IsolateHolder => {
                if let Some(t) = target {
                    self.cut_between(&[t], &others(t));
                }
            }
            Fault::IsolateClient => self.cut_between(&[n], &(0..n).collect::<Vec<_>>()),
            Fault::Heal => self.cut.clear(),
            // A host outside the cluster runs no member: the nemesis leaves it alone.
            Fault::Crash(m)
            | Fault::PowerLoss(m)
            | Fault::TornPowerLoss(m)
            | Fault::DiskFail(m)
            | Fault::LoseData(m)
            | Fault::Restart(m)
                if self.out.contains(m) => {}
            // A member whose disk failed stops serving: for the quorum it is down.
            Fault::Crash(m)
            | Fault::PowerLoss(m)
            | Fault::TornPowerLoss(m)
            | Fault::DiskFail(m)
            | Fault::LoseData(m) => {
                self.crashed.insert(*m);
            }
            Fault::CrashLeader | Fault::DiskFailLeader => self.crashed.extend(target),
            Fault::PowerLossAll => {
                let running: Vec<usize> = (0..n).filter(|m| !self.out.contains(m)).collect();
                self.crashed.extend(running);
            }
            Fault::Restart(m) => {
                self.crashed.remove(m);
            }
            // The operator's changes show in its log lines (`membership`), when they succeed.
            Fault::AddLearner(_)
            | Fault::Promote(_)
            | Fault::Remove(_)
            | Fault::Replace(_)
            | Fault::MoveLeader(_) => {}
            Fault::RestartAll => self.crashed.clear(),
            Fault::Pause(m) => {
                self.paused.insert(*m);
            }
            Fault::PauseLeader => self.paused.extend(target),
            Fault::Resume(m) => {
                self.paused.remove(m);
            }
            Fault::ResumeAll => self.paused.clear(),
            Fault::Delay(..)
            | Fault::SlowDisk(..)
            | Fault::Skew(..)
            | Fault::SkewLeader(_)
            | Fault::PauseHolder
            | Fault::ResumeHolders
            | Fault::Quiet(_)
            | Fault::Backup
            | Fault::RestoreAll => {}
        }
    }

    fn quorum(&self, leaders: &[(usize, u64)]) -> Quorum {
        let n = self.nodes;
        let reach = |m: usize| {
            (0..n)
                .filter(|y| self.voters.contains(y))
                .filter(|y| self.running(*y) && (*y == m || self.talk(m, *y)))
                .count()
        };
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut placed = BTreeSet::new();
        for m in (0..n).filter(|m| self.running(*m)) {
            if !placed.insert(m) {
                continue;
            }
            // Everyone reachable from m through running members, link by link.
            let mut group = vec![m];
            let mut i = 0;
            while i < group.len() {
                let x = group[i];
                for y in (0..n).filter(|y| self.running(*y) && self.talk(x, *y)) {
                    if placed.insert(y) {
                        group.push(y);
                    }
                }
                i += 1;
            }
            group.sort();
            groups.push(group.into_iter().map(|m| m + 1).collect());
        }
        let majority = self.voters.len() / 2 + 1;
        Quorum {
            groups,
            down: (0..n)
                .filter(|m| !self.running(*m) && !self.out.contains(m))
                .map(|m| m + 1)
                .collect(),
            voters: self.voters.len(),
            reachable: (0..n)
                .filter(|m| self.running(*m))
                .map(reach)
                .max()
                .unwrap_or(0),
            majority,
            stranded_leaders: leaders
                .iter()
                .filter(|(m, _)| self.running(*m) && reach(*m) < majority)
                .map(|(m, t)| (m + 1, *t))
                .collect(),
        }
    }
}

/// Builds the story of a finished run.
pub fn build(report: &Report, seed: u64) -> Story {
    let nodes = report.nodes;
    // A report of an older form names no members: then every host is one.
    let members = if report.members == 0 {
        nodes
    } else {
        report.members
    };
    let end = report.simulated.as_millis() as u64;
    let mut net = Network {
        nodes,
        cut: BTreeSet::new(),
        crashed: BTreeSet::new(),
        paused: BTreeSet::new(),
        voters: (0..members).collect(),
        out: (members..nodes).collect(),
        last_failure: None,
    };
    let mut moments = Vec::new();
    let mut roles = Vec::new();
    let mut gaps: Vec<Gap> = Vec::new();
    let mut cuts: Vec<Cut> = Vec::new();
    // Per member: the open lane segment (from, role, term) and the open gap (from, kind).
    let mut open: Vec<Option<(u64, String, u64)>> = vec![None; nodes];
    let mut open_gap: Vec<Option<(u64, String)>> = vec![None; nodes];
    let mut open_cuts: Vec<(usize, usize, u64)> = Vec::new();
    let set_role = |roles: &mut Vec<Segment>,
                    open: &mut Vec<Option<(u64, String, u64)>>,
                    m: usize,
                    t: u64,
                    role: Option<&str>,
                    term: Option<u64>| {
        let prev = open[m].clone();
        let role = role
            .map(str::to_string)
            .or_else(|| prev.as_ref().map(|p| p.1.clone()))
            .unwrap_or_else(|| "Follower".into());
        let term = term.or(prev.as_ref().map(|p| p.2)).unwrap_or(0);
        if let Some((from, r, tm)) = prev {
            if r == role && tm == term {
                return;
            }
            if t > from {
                roles.push(Segment {
                    member: m,
                    from_ms: from,
                    to_ms: t,
                    role: r,
                    term: tm,
                });
            }
        }
        open[m] = Some((t, role, term));
    };
    let leaders_now = |open: &Vec<Option<(u64, String, u64)>>| -> Vec<(usize, u64)> {
        open.iter()
            .enumerate()
            .filter_map(|(m, s)| s.as_ref().filter(|s| s.1 == "Leader").map(|s| (m, s.2)))
            .collect()
    };
    // Spare hosts start outside the cluster.
    let before = (BTreeSet::new(), BTreeSet::new());
    track_gaps(
        &net,
        &before,
        0,
        &mut gaps,
        &mut open_gap,
        &mut open,
        &mut roles,
    );
    for line in &report.log {
        let Some((t, rest)) = split_time(line) else {
            continue;
        };
        if let Some(applied) = rest.strip_prefix("apply ") {
            let (text, target) = match applied.split_once(" (") {
                Some((f, tg)) => (f, Some(tg.trim_end_matches(')').to_string())),
                None => (applied, None),
            };
            let Ok(mut parsed) = schedule::parse(&format!("{t} {text}")) else {
                continue;
            };
            let Some(event) = parsed.pop() else { continue };
            let target_member = target
                .as_deref()
                .and_then(|tg| tg.split_whitespace().last())
                .and_then(member_of);
            let before = (net.crashed.clone(), net.paused.clone());
            net.apply(&event.fault, target_member);
            track_gaps(
                &net,
                &before,
                t,
                &mut gaps,
                &mut open_gap,
                &mut open,
                &mut roles,
            );
            track_cuts(&net, t, &mut cuts, &mut open_cuts);
            moments.push(Moment {
                t_ms: t,
                kind: "fault".into(),
                text: text.to_string(),
                target,
                quorum: Some(net.quorum(&leaders_now(&open))),
            });
        } else if rest.starts_with("liveness phase") {
            let before = (net.crashed.clone(), net.paused.clone());
            net.cut.clear();
            net.crashed.clear();
            net.paused.clear();
            track_gaps(
                &net,
                &before,
                t,
                &mut gaps,
                &mut open_gap,
                &mut open,
                &mut roles,
            );
            track_cuts(&net, t, &mut cuts, &mut open_cuts);
            moments.push(Moment {
                t_ms: t,
                kind: "liveness".into(),
                text: "all faults healed, crashed members restarted".into(),
                target: None,
                quorum: Some(net.quorum(&leaders_now(&open))),
            });
        } else if rest.starts_with('c') && rest.contains(" leading") {
            moments.push(note(t, "controller", rest));
        } else if rest.starts_with("lease ") {
            moments.push(note(t, "lease", rest));
        } else if let Some(what) = rest.strip_prefix("log: ") {
            moments.push(note(t, "log", what));
        } else if let Some(moment) = {
            let before = (net.crashed.clone(), net.paused.clone());
            let moment = net.membership(t, rest);
            track_gaps(
                &net,
                &before,
                t,
                &mut gaps,
                &mut open_gap,
                &mut open,
                &mut roles,
            );
            moment
        } {
            moments.push(moment);
        } else {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let Some(m) = words.first().and_then(|w| member_of(w)) else {
                continue;
            };
            if m >= nodes {
                continue;
            }
            match words.as_slice() {
                [_, "is", role, "in", "term", term] => {
                    let term: u64 = term.parse().unwrap_or(0);
                    let was = open[m].as_ref().map(|s| s.1.clone());
                    set_role(&mut roles, &mut open, m, t, Some(role), Some(term));
                    if *role == "Candidate" {
                        moments.push(note(
                            t,
                            "candidate",
                            &format!("{} stands for term {term}", name(m)),
                        ));
                    } else if was.as_deref() == Some("Leader") {
                        moments.push(note(
                            t,
                            "step-down",
                            &format!(
                                "{} steps down: it is {} in term {term}",
                                name(m),
                                role.to_lowercase()
                            ),
                        ));
                    }
                }
                [_, "leads", "term", term] => {
                    let term: u64 = term.parse().unwrap_or(0);
                    moments.push(note(
                        t,
                        "leader",
                        &format!("{} is elected leader of term {term}", name(m)),
                    ));
                }
                [_, "votes", "for", _, "in", "term", term]
                | [_, "follows", _, "in", "term", term] => {
                    set_role(&mut roles, &mut open, m, t, None, term.parse().ok());
                }
                _ => {}
            }
        }
    }
    for (m, seg) in open.iter().enumerate() {
        if let Some((from, role, term)) = seg {
            if end > *from {
                roles.push(Segment {
                    member: m,
                    from_ms: *from,
                    to_ms: end,
                    role: role.clone(),
                    term: *term,
                });
            }
        }
    }
    for (m, g) in open_gap.iter().enumerate() {
        if let Some((from, kind)) = g {
            gaps.push(Gap {
                member: m,
                from_ms: *from,
                to_ms: end,
                kind: kind.clone(),
            });
        }
    }
    for (a, b, from) in open_cuts {
        cuts.push(Cut {
            from: a,
            to: b,
            from_ms: from,
            to_ms: end,
        });
    }
    roles.sort_by_key(|s| (s.member, s.from_ms));
    let ops = report
        .history
        .iter()
        .map(|o| OpBar {
            client: o.client,
            key: o.key.clone(),
            write: !matches!(o.call, Call::Get | Call::SerializableGet),
            serializable: o.call == Call::SerializableGet,
            from_ms: o.invoke_ms,
            to_ms: o.complete_ms.unwrap_or(o.invoke_ms + 2_000).min(end),
            status: match (o.complete_ms, o.failed) {
                (Some(_), _) => "ok",
                (None, true) => "failed",
                (None, false) => "unknown",
            }
            .into(),
        })
        .collect();
    let holdings = crate::sim::elector::holdings(&report.log, end)
        .into_iter()
        .map(|(controller, from_ms, to_ms)| Holding {
            controller,
            from_ms,
            to_ms,
        })
        .collect();
    let conclusions = GUARANTEES
        .iter()
        .map(|(c, g)| (*c, g.to_string()))
        .chain(
            [Checker::Panic, Checker::Simulation]
                .into_iter()
                .filter(|c| report.violations.iter().any(|v| v.checker == *c))
                .map(|c| (c, "members and the simulation ran to the end".to_string())),
        )
        .map(|(c, guarantee)| Conclusion {
            checker: c.name().into(),
            guarantee,
            violations: report
                .violations
                .iter()
                .filter(|v| v.checker == c)
                .map(|v| v.text.clone())
                .collect(),
        })
        .collect();
    let first_violation = report.violations.first().map(|v| {
        let t = v
            .text
            .strip_prefix("t=")
            .and_then(|r| r.split("ms").next())
            .and_then(|n| n.parse().ok());
        (t, v.to_string())
    });
    Story {
        seed,
        nodes,
        members,
        majority: members / 2 + 1,
        safety_ms: report.safety_ms,
        end_ms: end,
        schedule: report.schedule.iter().map(|e| e.to_string()).collect(),
        moments,
        roles,
        gaps,
        cuts,
        ops,
        holdings,
        conclusions,
        first_violation,
        trace: format!("{:016x}", report.trace),
    }
}

fn note(t: u64, kind: &str, text: &str) -> Moment {
    Moment {
        t_ms: t,
        kind: kind.into(),
        text: text.into(),
        target: None,
        quorum: None,
    }
}

/// Opens and closes gaps as members go down or come back; a member coming back starts a new
/// lane segment as a follower (a restarted member never resumes leading).
fn track_gaps(
    net: &Network,
    before: &(BTreeSet<usize>, BTreeSet<usize>),
    t: u64,
    gaps: &mut Vec<Gap>,
    open_gap: &mut [Option<(u64, String)>],
    open: &mut [Option<(u64, String, u64)>],
    roles: &mut Vec<Segment>,
) {
    for m in 0..net.nodes {
        let now = if net.out.contains(&m) {
            Some("out")
        } else if net.crashed.contains(&m) {
            Some("crash")
        } else if net.paused.contains(&m) {
            Some("pause")
        } else {
            None
        };
        let was = open_gap[m].as_ref().map(|g| g.1.clone());
        if was.as_deref() == now {
            continue;
        }
        if let Some((from, kind)) = open_gap[m].take() {
            gaps.push(Gap {
                member: m,
                from_ms: from,
                to_ms: t,
                kind,
            });
        }
        if let Some(kind) = now {
            open_gap[m] = Some((t, kind.to_string()));
            if kind != "pause" {
                if let Some((from, role, term)) = open[m].take() {
                    if t > from {
                        roles.push(Segment {
                            member: m,
                            from_ms: from,
                            to_ms: t,
                            role,
                            term,
                        });
                    }
                }
            }
        } else if before.0.contains(&m) || was.as_deref() == Some("out") {
            let term = roles
                .iter()
                .rev()
                .find(|s| s.member == m)
                .map_or(0, |s| s.term);
            open[m] = Some((t, "Follower".into(), term));
        }
    }
}

/// Opens and closes cut links as the network changes.
fn track_cuts(net: &Network, t: u64, cuts: &mut Vec<Cut>, open: &mut Vec<(usize, usize, u64)>) {
    open.retain(|(a, b, from)| {
        let keep = net.cut.contains(&(*a, *b));
        if !keep {
            cuts.push(Cut {
                from: *a,
                to: *b,
                from_ms: *from,
                to_ms: t,
            });
        }
        keep
    });
    for (a, b) in &net.cut {
        if !open.iter().any(|(x, y, _)| x == a && y == b) {
            open.push((*a, *b, t));
        }
    }
}
