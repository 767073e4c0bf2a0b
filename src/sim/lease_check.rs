//! Lease safety: no lease expires before its TTL has passed since the last keep-alive a client
//! had acknowledged, allowing for the fastest member clock in the schedule (a leader whose clock
//! runs at rate r expires a lease after TTL / r of true time; that much is etcd's contract too).
//!
//! The client records when it sent each grant or keep-alive that came back alive; the harness
//! sees a revoke when a lease vanishes from a member it watched hold it (the member's applied
//! state only moves forward between restarts). The revoke was decided no later than it was
//! seen, so a revoke seen before the earliest allowed expiry is certainly a violation.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use crate::clock::RATE_ONE_PPM;

/// Lease id → true time at which the last acknowledged grant or keep-alive was sent.
pub type AliveLog = Rc<RefCell<BTreeMap<i64, Duration>>>;

/// Turmoil's per-host time and the harness's step time can differ by a step or so.
const SLACK: Duration = crate::sim::run::TICK.saturating_mul(2);

pub struct LeaseChecker {
    ttl: Duration,
    max_rate_ppm: u64,
    alive: AliveLog,
    /// Per member: which life (crash count) we watched, and its leases.
    held: Vec<(usize, BTreeSet<i64>)>,
    /// Client-kept leases already seen revoked, so each revoke is narrated once.
    revoked: BTreeSet<i64>,
    /// Narration of revokes not yet moved into the run's event log.
    pub notes: Vec<String>,
}

impl LeaseChecker {
    pub fn new(nodes: usize, ttl: Duration, max_rate_ppm: u64, alive: AliveLog) -> LeaseChecker {
        LeaseChecker {
            ttl,
            max_rate_ppm: max_rate_ppm.max(RATE_ONE_PPM),
            alive,
            held: vec![(0, BTreeSet::new()); nodes],
            revoked: BTreeSet::new(),
            notes: Vec::new(),
        }
    }

    /// The earliest true time at which `lease` may expire, if a client kept it alive.
    fn earliest_expiry(&self, lease: i64) -> Option<Duration> {
        let sent = *self.alive.borrow().get(&lease)?;
        let nanos = self.ttl.as_nanos() * u128::from(RATE_ONE_PPM) / u128::from(self.max_rate_ppm);
        Some(sent + Duration::from_nanos(nanos as u64))
    }

    /// Feeds what `member` (server instance `instance`) holds at `now`; returns violations.
    pub fn observe(
        &mut self,
        member: usize,
        instance: usize,
        leases: BTreeSet<i64>,
        now: Duration,
    ) -> Vec<String> {
        let (seen_instance, held) = &mut self.held[member];
        if *seen_instance != instance {
            *seen_instance = instance;
            *held = leases;
            return Vec::new();
        }
        let gone: Vec<i64> = held.difference(&leases).copied().collect();
        *held = leases;
        for lease in &gone {
            let (Some(sent), Some(earliest)) = (
                self.alive.borrow().get(lease).copied(),
                self.earliest_expiry(*lease),
            ) else {
                continue;
            };
            if self.revoked.insert(*lease) {
                self.notes.push(format!(
                    "t={}ms lease {lease:x} revoked (seen on n{}): its last acknowledged \
                     keep-alive was sent at {}ms; the earliest allowed revoke is {}ms",
                    now.as_millis(),
                    member + 1,
                    sent.as_millis(),
                    earliest.as_millis()
                ));
            }
        }
        gone.into_iter()
            .filter_map(|lease| {
                let earliest = self.earliest_expiry(lease)?;
                (now + SLACK < earliest).then(|| {
                    format!(
                        "t={}ms lease {lease:x} revoked on member {} before {}ms, the earliest \
                         its last acknowledged keep-alive allows",
                        now.as_millis(),
                        member + 1,
                        earliest.as_millis()
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> (AliveLog, LeaseChecker) {
        let alive = AliveLog::default();
        let c = LeaseChecker::new(1, Duration::from_secs(5), 1_100_000, alive.clone());
        (alive, c)
    }

    #[test]
    fn an_early_revoke_is_caught_and_a_timely_one_is_not() {
        let (alive, mut c) = checker();
        let set = |ids: &[i64]| ids.iter().copied().collect::<BTreeSet<i64>>();
        alive.borrow_mut().insert(7, Duration::from_secs(10));
        alive.borrow_mut().insert(8, Duration::from_secs(10));
        assert!(c
            .observe(0, 1, set(&[7, 8]), Duration::from_secs(11))
            .is_empty());
        // 5 s / 1.1 = 4.545 s after 10 s: 14.5 s is early, 14.6 s is allowed.
        let early = c.observe(0, 1, set(&[8]), Duration::from_millis(14_500));
        assert_eq!(early.len(), 1, "{early:?}");
        assert!(early[0].contains("lease 7"));
        assert!(c
            .observe(0, 1, set(&[]), Duration::from_millis(14_600))
            .is_empty());
    }

    #[test]
    fn a_restarted_member_catching_up_is_not_a_revoke() {
        let (alive, mut c) = checker();
        alive.borrow_mut().insert(7, Duration::from_secs(10));
        let with = [7].into_iter().collect::<BTreeSet<i64>>();
        c.observe(0, 1, with, Duration::from_secs(11));
        assert!(c
            .observe(0, 2, BTreeSet::new(), Duration::from_secs(12))
            .is_empty());
    }
}
