//! The nemesis: applies the schedule's faults to the running simulation as their time comes, and
//! at the end of the safety phase heals everything and restarts crashed members for the liveness
//! phase. It owns what faults change outside turmoil: member clocks (skew, pause), storage (power
//! loss drops unsynced writes) and which life of each member is running.
//!
//! A new fault is a `Fault` variant in `schedule` and an arm in `apply`; nothing else changes.
//! Faults are data from the seed, applied after a step in schedule order, so a run stays a pure
//! function of its seed.
//!
//! Membership: operator actions go to the `Operator`, whose host steps (stop, wipe, start) the
//! nemesis carries out. A host outside the cluster (a spare not yet added, a removed member) is
//! `out`: no fault crashes or restarts it, and no checker expects it to run. A member that
//! refused to start is down until something starts it again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::storage::MemoryBackend;
use turmoil::Sim;

use crate::config::ClusterState;
use crate::sim::admin::peer_url;
use crate::sim::clocks::MemberClocks;
use crate::sim::elector::Controllers;
use crate::sim::host::HostLink;
use crate::sim::observe::{self, Servers};
use crate::sim::operator::{HostStep, Operator};
use crate::sim::quiet::Quiet;
use crate::sim::run::name;
use crate::sim::schedule::{Event, Fault};
use crate::snapshot::restore::{restore_into, RestoreOptions};

/// How long after a refused start the nemesis starts an operator-added member again.
const START_RETRY_MS: u64 = 1_000;

pub struct Nemesis {
    /// Hosts: the run's members, then the spares.
    nodes: usize,
    /// The schedule's events not yet applied, the next one last.
    pending: Vec<Event>,
    /// When the safety phase ends and everything is healed.
    safety_ms: u64,
    healed: bool,
    /// Members crashed and not yet restarted.
    crashed: BTreeSet<usize>,
    /// Members whose disk fails every IO (they stop by themselves; `restart` repairs).
    failed_disks: BTreeSet<usize>,
    /// Per member: which life is running, bumped on every crash, so checkers see a restart
    /// even if their next sample finds a server again (never a pointer, which the allocator
    /// may reuse).
    lives: Vec<usize>,
    clocks: MemberClocks,
    backends: Vec<Arc<MemoryBackend>>,
    servers: Servers,
    /// Member index → Raft node id, to find the leader a fault aims at.
    ids: Vec<u64>,
    /// The control-plane controllers, when the workload runs them (`pause-holder` aims at one).
    controllers: Option<Controllers>,
    /// Hosts outside the cluster on purpose: spares not yet added, removed members.
    out: BTreeSet<usize>,
    /// Members whose last start failed (`nK refused to start`).
    refused: BTreeSet<usize>,
    /// The cluster was restored from a backup, and the checkers have not heard yet.
    restored: bool,
    /// The clients' quiet spells, when the schedule has any.
    quiet: Option<Quiet>,
    /// Members whose data dir was lost since the operator last started them: their refusal is
    /// the guard working, until the runbook adds them back.
    lost: BTreeSet<usize>,
    /// Members the operator started that refused, and when their start is tried again.
    retry_start: BTreeMap<usize, u64>,
    /// Members whose disk was wiped since the run last asked (their checkers start afresh).
    wiped: Vec<usize>,
    /// The run's initial members (`nodes` counts the spares too).
    members: usize,
    hosts: HostLink,
    operator: Option<Operator>,
}

impl Nemesis {
    pub fn new(
        schedule: &[Event],
        safety_ms: u64,
        clocks: MemberClocks,
        backends: Vec<Arc<MemoryBackend>>,
        servers: Servers,
        ids: Vec<u64>,
        controllers: Option<Controllers>,
    ) -> Nemesis {
        let mut pending = schedule.to_vec();
        pending.reverse();
        Nemesis {
            out: BTreeSet::new(),
            refused: BTreeSet::new(),
            lost: BTreeSet::new(),
            quiet: None,
            restored: false,
            retry_start: BTreeMap::new(),
            wiped: Vec::new(),
            members: ids.len(),
            hosts: HostLink::default(),
            operator: None,
            nodes: ids.len(),
            pending,
            safety_ms,
            healed: false,
            crashed: BTreeSet::new(),
            failed_disks: BTreeSet::new(),
            lives: vec![1; ids.len()],
            clocks,
            backends,
            servers,
            ids,
            controllers,
        }
    }

    /// Lets `quiet` events reach the clients.
    pub fn with_quiet(mut self, quiet: Option<Quiet>) -> Nemesis {
        self.quiet = quiet;
        self
    }

    /// Takes over the hosts' plans (spare hosts start outside the cluster) and their refusals
    /// to start, and the operator that makes membership changes, if the schedule has any.
    pub fn with_hosts(mut self, hosts: HostLink, operator: Option<Operator>) -> Nemesis {
        let plans = hosts.plans.borrow().clone();
        self.out = (0..plans.len()).filter(|i| !plans[*i].run).collect();
        self.members = plans.iter().filter(|p| p.run).count();
        self.hosts = hosts;
        self.operator = operator;
        self
    }

    /// Whether `member` is crashed, refused to start, outside the cluster, or its disk failed
    /// (its server, if still visible, is not to be observed: what it holds in memory after a
    /// failed write was never durable, and it must stop). What it answered clients is still
    /// judged, by the history checkers.
    pub fn is_down(&self, member: usize) -> bool {
        self.crashed.contains(&member)
            || self.out.contains(&member)
            || self.refused.contains(&member)
            || self.failed_disks.contains(&member)
    }

    /// The members that should be running and agree at the end: every host in the cluster
    /// except those that refused to start, and those whose data dir was lost and that the
    /// runbook did not add back (their refusals are the guard working, and a start tried again
    /// may be under way when the run ends).
    pub fn members_expected_up(&self) -> Vec<usize> {
        (0..self.nodes)
            .filter(|m| !self.out.contains(m) && !self.refused.contains(m))
            .filter(|m| !self.lost.contains(m))
            .collect()
    }

    /// Members the operator added (started with `existing`) that still refuse to start: after
    /// the liveness phase that is a finding, since the runbook was followed.
    pub fn added_but_refused(&self) -> Vec<usize> {
        let plans = self.hosts.plans.borrow();
        self.refused
            .iter()
            .copied()
            .filter(|m| plans[*m].state == ClusterState::Existing && !self.out.contains(m))
            .filter(|m| !self.lost.contains(m))
            .collect()
    }

    /// Whether the whole cluster was restored from a backup since the last call.
    pub fn take_restored(&mut self) -> bool {
        std::mem::take(&mut self.restored)
    }

    /// Members whose disk was wiped since the last call.
    pub fn take_wiped(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.wiped)
    }

    /// Which life of `member` is running: 1, plus one per crash.
    pub fn life(&self, member: usize) -> usize {
        self.lives[member]
    }

    /// Called after every step: moves member clocks to the simulation's time, applies every
    /// event now due, and heals everything once the safety phase is over. Logs what it did.
    pub fn act(&mut self, sim: &mut Sim<'_>, log: &mut Vec<String>) {
        let now = sim.elapsed().as_millis() as u64;
        self.clocks.advance(sim.elapsed());
        let refusals = std::mem::take(&mut *self.hosts.refusals.borrow_mut());
        for (m, why) in refusals {
            log.push(format!("t={now}ms {} refused to start: {why}", name(m)));
            self.refused.insert(m);
            self.servers.borrow_mut()[m] = None;
            // A member the operator added is started again, as a service manager restarts a
            // failed unit: a peer that has not yet applied its removal refuses it for now.
            if self.hosts.plans.borrow()[m].state == ClusterState::Existing {
                self.retry_start.insert(m, now + START_RETRY_MS);
            }
        }
        let removals = std::mem::take(&mut *self.hosts.removals.borrow_mut());
        for m in removals {
            log.push(format!(
                "t={now}ms {} stopped by itself: {}",
                name(m),
                crate::node::Stopped::Removed
            ));
            // Its host already emptied its slot in `servers`.
            self.take_out(m);
        }
        let due: Vec<usize> = self
            .retry_start
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(m, _)| *m)
            .collect();
        for m in due {
            self.retry_start.remove(&m);
            if self.refused.remove(&m) {
                self.lives[m] += 1;
                sim.bounce(name(m));
                log.push(format!("t={now}ms {} start tried again", name(m)));
            }
        }
        while self.pending.last().is_some_and(|e| e.at_ms <= now) && !self.healed {
            let e = self.pending.pop().expect("checked non-empty");
            let leader = observe::current_leader(&self.servers, &self.ids);
            // A leader-relative fault names whom it hit, so the narration can follow it.
            let target = self.apply(sim, leader, &e.fault);
            let target = target.map(|t| format!(" ({t})")).unwrap_or_default();
            log.push(format!("t={now}ms apply {}{target}", e.fault_text()));
            if let Some(op) = self.operator.as_mut().filter(|_| e.fault.is_operator()) {
                op.submit(&e.fault, e.fault_text());
            }
        }
        if let Some(mut op) = self.operator.take() {
            for step in op.poll(now, log) {
                self.host_step(sim, step, now, log);
            }
            if !self.healed && now >= self.safety_ms {
                op.close(now, log);
            }
            let reader = (0..self.members).find(|m| !self.out.contains(m));
            op.desk().borrow_mut().final_reader = reader.unwrap_or(0);
            self.operator = Some(op);
        }
        if !self.healed && now >= self.safety_ms {
            self.healed = true;
            heal_all(sim, self.nodes);
            self.clocks.heal(sim.elapsed());
            for b in &self.backends {
                b.slow_disk(Duration::ZERO);
            }
            for n in std::mem::take(&mut self.failed_disks) {
                self.swap_disk(sim, n);
            }
            for n in std::mem::take(&mut self.crashed) {
                sim.bounce(name(n));
            }
            if let Some(c) = &self.controllers {
                c.borrow_mut().paused.iter_mut().for_each(|p| *p = false);
            }
            log.push(format!(
                "t={now}ms liveness phase: all faults healed, crashed members restarted"
            ));
        }
    }

    /// `n` is no longer a member: no restart, no retried start, and no process at its next run.
    fn take_out(&mut self, n: usize) {
        self.crashed.remove(&n);
        self.retry_start.remove(&n);
        self.out.insert(n);
        self.hosts.plans.borrow_mut()[n].run = false;
    }

    /// Carries out an operator's host step; logs it.
    fn host_step(&mut self, sim: &mut Sim<'_>, step: HostStep, now: u64, log: &mut Vec<String>) {
        match step {
            HostStep::Stop(n) => {
                self.stop(sim, n);
                self.refused.remove(&n);
                self.failed_disks.remove(&n);
                self.take_out(n);
                log.push(format!("t={now}ms {} stopped: no longer a member", name(n)));
            }
            HostStep::Wipe(n) => {
                self.wipe(n);
                log.push(format!("t={now}ms {} data dir wiped", name(n)));
            }
            HostStep::Start(n) => {
                self.out.remove(&n);
                self.lost.remove(&n);
                self.crashed.remove(&n);
                self.refused.remove(&n);
                self.hosts.plans.borrow_mut()[n] = crate::sim::host::Plan {
                    run: true,
                    state: ClusterState::Existing,
                };
                self.lives[n] += 1;
                sim.bounce(name(n));
                log.push(format!(
                    "t={now}ms {} starts with --initial-cluster-state existing",
                    name(n)
                ));
            }
        }
    }

    /// Every member's data dir is lost; each is restored from the operator's last backup with
    /// its own flags (as `etcdctl snapshot restore` is run once per member) and started again.
    /// Says what it did, for the narration.
    fn restore_all(&mut self, sim: &mut Sim<'_>) -> String {
        let backup = self
            .operator
            .as_ref()
            .and_then(|op| op.desk().borrow().backup.clone());
        let Some(file) = backup else {
            return "no backup was taken: nothing done".to_string();
        };
        let members: Vec<usize> = (0..self.members)
            .filter(|n| !self.out.contains(n))
            .collect();
        let cluster: Vec<String> = members
            .iter()
            .map(|n| format!("{}={}", name(*n), peer_url(*n)))
            .collect();
        let mut restored = None;
        for &n in &members {
            self.lose_disk(sim, n);
            let opts = RestoreOptions {
                name: name(n),
                data_dir: std::path::PathBuf::new(),
                initial_cluster: cluster.join(","),
                initial_cluster_token: crate::sim::host::CLUSTER_TOKEN.to_string(),
                initial_advertise_peer_urls: vec![peer_url(n)],
                skip_hash_check: false,
            };
            match restore_into(&file, &opts, self.backends[n].as_ref()) {
                Ok(r) => restored = Some(r),
                Err(e) => return format!("restoring {} failed: {e}", name(n)),
            }
            self.crashed.remove(&n);
            sim.bounce(name(n));
        }
        let Some(r) = restored else {
            return "no member to restore".to_string();
        };
        self.restored = true;
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        format!(
            "every data dir lost; each member restored from the {}-byte backup: revision {}, {}, \
             {}",
            file.len(),
            r.revision,
            count(r.live_keys, "key"),
            count(r.leases, "lease")
        )
    }

    /// Stops a running member's process (a crash, as far as its peers can tell).
    fn stop(&mut self, sim: &mut Sim<'_>, n: usize) {
        if !self.crashed.contains(&n) && !self.out.contains(&n) {
            self.lives[n] += 1;
            sim.crash(name(n));
        }
        self.servers.borrow_mut()[n] = None;
    }

    /// The member crashes (if it runs) and its data dir is lost, synced or not.
    fn lose_disk(&mut self, sim: &mut Sim<'_>, n: usize) {
        self.failed_disks.remove(&n);
        if self.crashed.insert(n) {
            self.lives[n] += 1;
            sim.crash(name(n));
            self.servers.borrow_mut()[n] = None;
        }
        self.wipe(n);
    }

    /// The member's data dir is gone; its checkers start its history afresh.
    fn wipe(&mut self, n: usize) {
        self.backends[n].wipe();
        self.wiped.push(n);
    }

    /// Power-cuts a member whose disk failed and gives it back a working disk (holding what was
    /// synced before the failure), crashed, for a restart to bring back.
    fn swap_disk(&mut self, sim: &mut Sim<'_>, n: usize) {
        if self.crashed.insert(n) {
            self.lives[n] += 1;
            sim.crash(name(n));
            self.servers.borrow_mut()[n] = None;
        }
        self.backends[n].power_loss();
        self.backends[n].repair_disk();
    }

    fn cut(sim: &mut Sim<'_>, a: &[usize], b: &[usize]) {
        for x in a {
            for y in b {
                sim.partition(name(*x), name(*y));
            }
        }
    }

    /// Applies one fault; `leader` is the member leading when it applies, if any. Returns whom
    /// a leader- or holder-relative fault hit (`n2`, `c1`), or `none` when nobody qualified.
    fn apply(&mut self, sim: &mut Sim<'_>, leader: Option<usize>, fault: &Fault) -> Option<String> {
        let nodes = self.nodes;
        let none = || Some("none".to_string());
        // A host outside the cluster runs no member: nothing to crash, cut power to or restart.
        let host_fault = match fault {
            Fault::Crash(n)
            | Fault::PowerLoss(n)
            | Fault::TornPowerLoss(n)
            | Fault::DiskFail(n)
            | Fault::Restart(n)
            | Fault::LoseData(n) => Some(*n),
            _ => None,
        };
        if let Some(n) = host_fault.filter(|n| self.out.contains(n)) {
            return Some(format!("{} is no member: nothing done", name(n)));
        }
        match fault {
            Fault::Partition(a, b) => Self::cut(sim, a, b),
            Fault::IsolateLeader => {
                let Some(l) = leader else { return none() };
                let others: Vec<usize> = (0..nodes).filter(|n| *n != l).collect();
                Self::cut(sim, &[l], &others);
                return Some(name(l));
            }
            Fault::CrashLeader => {
                let Some(l) = leader else { return none() };
                self.apply(sim, leader, &Fault::Crash(l));
                return Some(name(l));
            }
            Fault::IsolateFollower => {
                let Some(f) = (0..nodes).find(|n| Some(*n) != leader && !self.is_down(*n)) else {
                    return none();
                };
                let others: Vec<usize> = (0..nodes).filter(|n| *n != f).collect();
                Self::cut(sim, &[f], &others);
                return Some(name(f));
            }
            Fault::SkewLeader(ppm) => {
                let Some(l) = leader else { return none() };
                self.clocks.skew(l, *ppm);
                return Some(name(l));
            }
            Fault::IsolateClient => {
                for n in 0..nodes {
                    sim.partition(name(n), "client");
                }
            }
            Fault::PauseHolder | Fault::ResumeHolders | Fault::IsolateHolder => {
                let Some(controllers) = self.controllers.clone() else {
                    return none();
                };
                let mut c = controllers.borrow_mut();
                match fault {
                    Fault::PauseHolder => {
                        let Some(h) = c.holder() else { return none() };
                        c.paused[h] = true;
                        return Some(format!("c{}", h + 1));
                    }
                    Fault::ResumeHolders => c.paused.iter_mut().for_each(|p| *p = false),
                    _ => {
                        let Some(h) = c.holder() else { return none() };
                        let m = c.member[h];
                        drop(c);
                        let others: Vec<usize> = (0..nodes).filter(|n| *n != m).collect();
                        Self::cut(sim, &[m], &others);
                        return Some(format!("c{} via {}", h + 1, name(m)));
                    }
                }
            }
            Fault::OneWay(a, b) => sim.partition_oneway(name(*a), name(*b)),
            Fault::Heal => heal_all(sim, nodes),
            Fault::Crash(n) | Fault::PowerLoss(n) => {
                if self.crashed.insert(*n) {
                    self.lives[*n] += 1;
                    sim.crash(name(*n));
                    self.servers.borrow_mut()[*n] = None;
                    if matches!(fault, Fault::PowerLoss(_)) {
                        self.backends[*n].power_loss();
                    }
                }
            }
            Fault::Restart(n) => {
                if self.failed_disks.remove(n) {
                    self.swap_disk(sim, *n);
                }
                // A member that refused to start is tried again, as an admin would.
                if self.crashed.remove(n) | self.refused.remove(n) {
                    sim.bounce(name(*n));
                }
            }
            Fault::RestoreAll => return Some(self.restore_all(sim)),
            Fault::LoseData(n) => {
                self.lost.insert(*n);
                self.lose_disk(sim, *n);
            }
            // The operator's: queued by `act`, applied through the member APIs.
            Fault::AddLearner(_)
            | Fault::Promote(_)
            | Fault::Remove(_)
            | Fault::Replace(_)
            | Fault::MoveLeader(_)
            | Fault::Backup => {}
            Fault::TornPowerLoss(n) => {
                if self.crashed.insert(*n) {
                    self.lives[*n] += 1;
                    sim.crash(name(*n));
                    self.servers.borrow_mut()[*n] = None;
                    self.backends[*n].torn_power_loss();
                }
            }
            Fault::DiskFail(n) => {
                if !self.crashed.contains(n) && self.failed_disks.insert(*n) {
                    self.backends[*n].fail_disk();
                }
            }
            Fault::DiskFailLeader => {
                let Some(l) = leader else { return none() };
                self.apply(sim, leader, &Fault::DiskFail(l));
                return Some(name(l));
            }
            Fault::SlowDisk(n, ms) => {
                self.backends[*n].slow_disk(std::time::Duration::from_millis(*ms));
            }
            Fault::PowerLossAll => {
                // A host outside the cluster is passed over by `apply`.
                for n in 0..nodes {
                    self.apply(sim, leader, &Fault::PowerLoss(n));
                }
            }
            Fault::Bridge(a, _, b) => Self::cut(sim, a, b),
            Fault::Pause(n) => {
                for y in (0..nodes).filter(|y| y != n) {
                    sim.hold(name(*n), name(y));
                }
                sim.hold(name(*n), "client");
                self.clocks.pause(*n, sim.elapsed());
            }
            Fault::Resume(n) => {
                for y in (0..nodes).filter(|y| y != n) {
                    sim.release(name(*n), name(y));
                }
                sim.release(name(*n), "client");
                self.clocks.resume(*n, sim.elapsed());
            }
            Fault::PauseLeader => {
                let Some(l) = leader else { return none() };
                self.apply(sim, leader, &Fault::Pause(l));
                return Some(name(l));
            }
            Fault::ResumeAll => {
                for n in self.clocks.paused() {
                    self.apply(sim, leader, &Fault::Resume(n));
                }
            }
            Fault::Skew(n, ppm) => self.clocks.skew(*n, *ppm),
            Fault::Quiet(ms) => {
                let now = sim.elapsed().as_millis() as u64;
                if let Some(q) = &self.quiet {
                    q.begin(now, *ms);
                }
                return Some(format!(
                    "the clients hold their writes until {}, and a DELETE made the head is \
                     compacted at once",
                    crate::sim::narrate::secs(now + ms)
                ));
            }
            Fault::RestartAll => {
                for n in std::mem::take(&mut self.failed_disks) {
                    self.swap_disk(sim, n);
                }
                for n in std::mem::take(&mut self.crashed) {
                    sim.bounce(name(n));
                }
            }
            Fault::Delay(n, ms) => {
                for y in (0..nodes).filter(|y| y != n) {
                    sim.set_link_latency(name(*n), name(y), Duration::from_millis(*ms));
                }
            }
        }
        None
    }
}

impl Event {
    /// The event without its time: what the log says was applied.
    fn fault_text(&self) -> String {
        let s = self.to_string();
        s.split_once(' ').map(|(_, r)| r.to_string()).unwrap_or(s)
    }
}

/// Repairs every partition, releases every held link and removes every added latency.
fn heal_all(sim: &mut Sim<'_>, nodes: usize) {
    for a in 0..nodes {
        sim.release(name(a), "client");
        sim.repair(name(a), "client");
        for b in 0..nodes {
            if a != b {
                sim.repair(name(a), name(b));
                sim.release(name(a), name(b));
                sim.set_link_latency(name(a), name(b), Duration::from_millis(0));
            }
        }
    }
}
