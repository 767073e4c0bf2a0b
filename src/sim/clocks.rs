//! Every member's clock, as the nemesis drives it: skew sets a rate, a pause stops the clock
//! and a resume makes it jump by the time the process was stopped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

impl MemberClocks {
    pub fn new(nodes: usize) -> MemberClocks {
        crate::clock::unbind_all();
        let harness_time = Arc::new(AtomicU64::new(0));
        let clocks = (0..nodes)
            .map(|_| {
                let fallback = harness_time.clone();
                Clock::new(Box::new(move || {
                    turmoil::sim_elapsed()
                        .unwrap_or_else(|| Duration::from_nanos(fallback.load(Ordering::Relaxed)))
                }))
            })
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
