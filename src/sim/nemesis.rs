//! The nemesis: applies the schedule's faults to the running simulation as their time comes, and
//! at the end of the safety phase heals everything and restarts crashed members for the liveness
//! phase. It owns what faults change outside turmoil: member clocks (skew, pause), storage (power
//! loss drops unsynced writes) and which life of each member is running.
//!
//! A new fault is a `Fault` variant in `schedule` and an arm in `apply`; nothing else changes.
//! Faults are data from the seed, applied after a step in schedule order, so a run stays a pure
//! function of its seed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::storage::MemoryBackend;
use turmoil::Sim;

use crate::sim::clocks::MemberClocks;
use crate::sim::observe::{self, Servers};
use crate::sim::run::name;
use crate::sim::schedule::{Event, Fault};

pub struct Nemesis {
    nodes: usize,
    /// The schedule's events not yet applied, the next one last.
    pending: Vec<Event>,
    /// When the safety phase ends and everything is healed.
    safety_ms: u64,
    healed: bool,
    /// Members crashed and not yet restarted.
    crashed: BTreeSet<usize>,
    /// Per member: which life is running, bumped on every crash, so checkers see a restart
    /// even if their next sample finds a server again (never a pointer, which the allocator
    /// may reuse).
    lives: Vec<usize>,
    clocks: MemberClocks,
    backends: Vec<Arc<MemoryBackend>>,
    servers: Servers,
    /// Member index → Raft node id, to find the leader a fault aims at.
    ids: Vec<u64>,
}

impl Nemesis {
    pub fn new(
        schedule: &[Event],
        safety_ms: u64,
        clocks: MemberClocks,
        backends: Vec<Arc<MemoryBackend>>,
        servers: Servers,
        ids: Vec<u64>,
    ) -> Nemesis {
        let mut pending = schedule.to_vec();
        pending.reverse();
        Nemesis {
            nodes: ids.len(),
            pending,
            safety_ms,
            healed: false,
            crashed: BTreeSet::new(),
            lives: vec![1; ids.len()],
            clocks,
            backends,
            servers,
            ids,
        }
    }

    /// Whether `member` is crashed (its server, if still visible, is not to be observed).
    pub fn is_down(&self, member: usize) -> bool {
        self.crashed.contains(&member)
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
        while self.pending.last().is_some_and(|e| e.at_ms <= now) && !self.healed {
            let e = self.pending.pop().expect("checked non-empty");
            let leader = observe::current_leader(&self.servers, &self.ids);
            self.apply(sim, leader, &e.fault);
            log.push(format!("t={now}ms apply {}", e.fault_text()));
        }
        if !self.healed && now >= self.safety_ms {
            self.healed = true;
            heal_all(sim, self.nodes);
            self.clocks.heal(sim.elapsed());
            for n in std::mem::take(&mut self.crashed) {
                sim.bounce(name(n));
            }
            log.push(format!(
                "t={now}ms liveness phase: all faults healed, crashed members restarted"
            ));
        }
    }

    fn cut(sim: &mut Sim<'_>, a: &[usize], b: &[usize]) {
        for x in a {
            for y in b {
                sim.partition(name(*x), name(*y));
            }
        }
    }

    /// Applies one fault; `leader` is the member leading when it applies, if any.
    fn apply(&mut self, sim: &mut Sim<'_>, leader: Option<usize>, fault: &Fault) {
        let nodes = self.nodes;
        match fault {
            Fault::Partition(a, b) => Self::cut(sim, a, b),
            Fault::IsolateLeader => {
                if let Some(l) = leader {
                    let others: Vec<usize> = (0..nodes).filter(|n| *n != l).collect();
                    Self::cut(sim, &[l], &others);
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
                if self.crashed.remove(n) {
                    sim.bounce(name(*n));
                }
            }
            Fault::PowerLossAll => {
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
                if let Some(l) = leader {
                    self.apply(sim, leader, &Fault::Pause(l));
                }
            }
            Fault::ResumeAll => {
                for n in self.clocks.paused() {
                    self.apply(sim, leader, &Fault::Resume(n));
                }
            }
            Fault::Skew(n, ppm) => self.clocks.skew(*n, *ppm),
            Fault::RestartAll => {
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
        for b in 0..nodes {
            if a != b {
                sim.repair(name(a), name(b));
                sim.release(name(a), name(b));
                sim.set_link_latency(name(a), name(b), Duration::from_millis(0));
            }
        }
    }
}
