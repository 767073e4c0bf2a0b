//! Membership churn for the random nemesis (`quorum sim run|sweep --membership`): operator
//! actions mixed into a generated schedule. They draw from a stream of their own, so a seed
//! keeps every time and target its plain schedule had; without the flag nothing changes.
//!
//! The churn follows a model of the membership so that each action makes sense when its turn
//! comes: the operator runs jobs one at a time and a job's successor waits for it, so the jobs
//! that complete are always a prefix of the ones drawn, and the model is right about them. One
//! spare host (member `nodes + 1`) starts outside the cluster; a learner is promoted before
//! anything else happens; a voter is removed only while there are more voters than the run's
//! members; a lost data dir is always followed by the replace runbook, and happens once a run
//! at most (a replace stuck behind an unfinished job would leave two voters without data,
//! which is an outage by the operator's hand, not a finding).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::sim::schedule::{Event, Fault};

/// Gap between two membership actions, ms: room for each to finish under faults.
const GAP_MS: std::ops::Range<u64> = 3_000..7_000;
/// No action starts this close to the end of the safety phase (it would only be abandoned).
const TAIL_MS: u64 = 3_000;

/// `events` with membership actions mixed in (stable: at equal times the fault comes first).
pub fn mix(events: Vec<Event>, seed: u64, nodes: usize, safety_ms: u64) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x3e3b_c4a1);
    let mut voters: Vec<usize> = (0..nodes).collect();
    let mut outside: Vec<usize> = vec![nodes];
    let mut learner: Option<usize> = None;
    let mut data_lost = false;
    let mut out = events;
    let mut t = rng.random_range(2_000..5_000);
    while t + TAIL_MS < safety_ms {
        let voter = voters[rng.random_range(0..voters.len())];
        let mut push = |at_ms, fault| out.push(Event { at_ms, fault });
        if let Some(l) = learner.take() {
            push(t, Fault::Promote(l));
            voters.push(l);
        } else {
            match rng.random_range(0..5) {
                0 if !outside.is_empty() => {
                    let n = outside.remove(rng.random_range(0..outside.len()));
                    push(t, Fault::AddLearner(n));
                    learner = Some(n);
                }
                1 if voters.len() > nodes => {
                    push(t, Fault::Remove(voter));
                    voters.retain(|v| *v != voter);
                    outside.push(voter);
                }
                2 => push(t, Fault::Replace(voter)),
                // Only with a voter to spare: a replace still under way may have taken one out,
                // and a lost disk on top must leave a majority (2 of 3 voters losing one
                // would be an outage by the operator's hand, not a finding).
                3 if !data_lost && voters.len() > nodes => {
                    data_lost = true;
                    push(t, Fault::LoseData(voter));
                    push(t + rng.random_range(500..2_000), Fault::Replace(voter));
                }
                _ => push(t, Fault::MoveLeader(voter)),
            }
        }
        t += rng.random_range(GAP_MS);
    }
    out.sort_by_key(|e| e.at_ms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::schedule::{generate, parse};

    #[test]
    fn churn_keeps_the_plain_schedule_and_round_trips() {
        // Goal: with --membership a seed's faults keep their times and targets, the actions
        // make sense for the membership they meet, and the schedule prints as it parses.
        let mut kinds = [false; 5];
        for seed in 0..50 {
            let plain = generate(seed, 3, 30_000);
            let mixed = mix(plain.clone(), seed, 3, 30_000);
            let kept: Vec<Event> = mixed
                .iter()
                .filter(|e| !e.fault.is_operator() && !matches!(e.fault, Fault::LoseData(_)))
                .cloned()
                .collect();
            assert_eq!(kept, plain, "seed {seed}");
            let text: String = mixed.iter().map(|e| format!("{e}\n")).collect();
            assert_eq!(parse(&text).unwrap(), mixed, "seed {seed}");
            let mut voters = 3;
            for e in &mixed {
                match e.fault {
                    Fault::AddLearner(_) => kinds[0] = true,
                    Fault::Promote(_) => {
                        voters += 1;
                        kinds[1] = true;
                    }
                    Fault::Remove(_) => {
                        voters -= 1;
                        assert!(voters >= 3, "seed {seed}: never below the run's members");
                        kinds[2] = true;
                    }
                    Fault::Replace(_) => kinds[3] = true,
                    Fault::LoseData(_) => kinds[4] = true,
                    _ => {}
                }
            }
        }
        assert_eq!(kinds, [true; 5]);
    }
}
