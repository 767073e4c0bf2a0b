//! Every member's clock, as the nemesis drives it: skew sets a rate, a pause stops the clock
//! and a resume makes it jump by the time the process was stopped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, RATE_ONE_PPM};

pub struct MemberClocks {
    clocks: Vec<Arc<Clock>>,
    /// True time as the harness last saw it, for clock reads made outside any host.
    harness_time: Arc<AtomicU64>,
    /// The rate each member's clock has when it runs.
    rates: Vec<u64>,
    /// Paused members and when (true time) they stopped.
    paused: BTreeMap<usize, Duration>,
}

/// True time as a member's tasks read it: turmoil's simulated elapsed time, read once per
/// runtime and then carried forward on that runtime's own (paused, simulated) tokio clock.
///
/// Why not ask turmoil every time: a member reads its clock a few thousand times per simulated
/// second, and each `turmoil::sim_elapsed` looks the current host up in a hash map (6 % of a
/// run's instructions under callgrind). A host's tokio clock advances by exactly one step per
/// step while it runs, so both give the same instants; a restarted member runs on a new
/// runtime and is anchored afresh. Outside any runtime (the harness between steps) it is the
/// harness's time.
fn true_time(harness_time: Arc<AtomicU64>) -> crate::clock::TrueTime {
    let anchor: Mutex<Option<(tokio::runtime::Id, tokio::time::Instant, Duration)>> =
        Mutex::new(None);
    Box::new(move || {
        let harness = || Duration::from_nanos(harness_time.load(Ordering::Relaxed));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return harness();
        };
        let (id, now) = (runtime.id(), tokio::time::Instant::now());
        let mut anchor = anchor.lock().unwrap_or_else(|e| e.into_inner());
        match *anchor {
            Some((at_id, at, elapsed)) if at_id == id => {
                elapsed + now.saturating_duration_since(at)
            }
            _ => {
                let elapsed = turmoil::sim_elapsed().unwrap_or_else(harness);
                *anchor = Some((id, now, elapsed));
                elapsed
            }
        }
    })
}

impl MemberClocks {
    pub fn new(nodes: usize) -> MemberClocks {
        crate::clock::unbind_all();
        let harness_time = Arc::new(AtomicU64::new(0));
        let clocks = (0..nodes)
            .map(|_| Clock::new(true_time(harness_time.clone())))
            .collect();
        MemberClocks {
            clocks,
            harness_time,
            rates: vec![RATE_ONE_PPM; nodes],
            paused: BTreeMap::new(),
        }
    }

    pub fn clock(&self, member: usize) -> Arc<Clock> {
        self.clocks[member].clone()
    }

    /// Call after every simulation step, before the nemesis acts.
    pub fn advance(&self, elapsed: Duration) {
        self.harness_time
            .store(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn skew(&mut self, member: usize, rate_ppm: u64) {
        self.rates[member] = rate_ppm;
        if !self.paused.contains_key(&member) {
            self.clocks[member].set_rate(rate_ppm);
        }
    }

    pub fn pause(&mut self, member: usize, now: Duration) {
        if self.paused.insert(member, now).is_none() {
            self.clocks[member].set_rate(0);
        }
    }

    pub fn resume(&mut self, member: usize, now: Duration) {
        if let Some(since) = self.paused.remove(&member) {
            let stopped = now.saturating_sub(since);
            let rate = self.rates[member];
            let local = stopped.as_nanos() * u128::from(rate) / u128::from(RATE_ONE_PPM);
            self.clocks[member].jump(Duration::from_nanos(local as u64));
            self.clocks[member].set_rate(rate);
        }
    }

    /// The members paused now, in member order.
    pub fn paused(&self) -> Vec<usize> {
        self.paused.keys().copied().collect()
    }

    /// The liveness phase: every clock runs, at true rate.
    pub fn heal(&mut self, now: Duration) {
        let paused: Vec<usize> = self.paused.keys().copied().collect();
        for member in paused {
            self.resume(member, now);
        }
        for member in 0..self.clocks.len() {
            self.skew(member, RATE_ONE_PPM);
        }
    }
}
