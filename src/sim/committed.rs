//! The committed events, revision by revision, as the watch checker's reference: recorded while
//! the run goes, because the workload compacts and the members' history at the end no longer
//! reaches back.
//!
//! After each observation step the member with the highest applied revision is asked for the
//! events after what was recorded (an applied revision is a committed one). Compaction lags
//! behind the head by a second of simulated time and observation runs every step, so the
//! history is nearly always still there; when it is not, the skipped revisions are a hole and
//! the checker judges nothing inside it. Cost: one revision read per member per step, and one
//! history read per new revision.

use std::collections::BTreeMap;

use crate::sim::observe::{self, Servers};
use crate::sim::workload::{watched, Watched};

#[derive(Debug, Default)]
pub struct Committed {
    /// Revision → its events in op order; a revision with none (a compaction, a failed txn
    /// does not make one) is absent.
    events: BTreeMap<i64, Vec<Watched>>,
    /// Every revision through this one was recorded, holes aside.
    upto: i64,
    /// Revisions whose events are unknown, as inclusive ranges.
    holes: Vec<(i64, i64)>,
}

impl Committed {
    pub fn new() -> Committed {
        Committed {
            upto: 1,
            ..Committed::default()
        }
    }

    /// Records what the most advanced of `running` members applied since the last call.
    pub fn observe(&mut self, servers: &Servers, running: impl Fn(usize) -> bool) {
        let servers = servers.borrow();
        let best = servers
            .iter()
            .enumerate()
            .filter(|(i, _)| running(*i))
            .filter_map(|(_, s)| s.as_ref())
            .map(|s| (observe::revision(s), s))
            .max_by_key(|(rev, _)| *rev);
        let Some((head, server)) = best else { return };
        if head <= self.upto {
            return;
        }
        let from = self.upto + 1;
        let events = match observe::events_from(server, from, head) {
            Ok(events) => events,
            Err(compacted) => {
                self.holes.push((from, compacted - 1));
                match observe::events_from(server, compacted, head) {
                    Ok(events) => events,
                    Err(_) => {
                        self.holes.push((compacted, head));
                        self.upto = head;
                        return;
                    }
                }
            }
        };
        for e in events.into_iter().map(watched) {
            self.events.entry(e.1).or_default().push(e);
        }
        self.upto = head;
    }

    /// A reference built from known events, for the checker's own tests.
    #[cfg(test)]
    pub fn of(events: &[Watched], upto: i64) -> Committed {
        let mut c = Committed {
            upto,
            ..Committed::default()
        };
        for e in events {
            c.events.entry(e.1).or_default().push(e.clone());
        }
        c
    }

    /// Whether the events of `revision` are known.
    pub fn known(&self, revision: i64) -> bool {
        revision <= self.upto
            && !self
                .holes
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&revision))
    }

    /// The events committed at `revision` (empty when none, or unknown).
    pub fn at(&self, revision: i64) -> &[Watched] {
        self.events.get(&revision).map_or(&[], |v| v.as_slice())
    }

    /// The first revision in `[from, through]` with known committed events.
    pub fn first_in(&self, from: i64, through: i64) -> Option<i64> {
        if from > through {
            return None;
        }
        self.events
            .range(from..=through)
            .map(|(r, _)| *r)
            .find(|r| self.known(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_hides_its_revisions_from_the_checker() {
        // Goal: revisions lost to compaction before they were recorded are unknown, so
        // `first_in` never names one as missed; revisions past the record are unknown too.
        let mut c = Committed::of(
            &[
                ("a".into(), 2, false),
                ("b".into(), 4, true),
                ("a".into(), 6, false),
            ],
            6,
        );
        c.holes.push((3, 4));
        assert!(c.known(2) && !c.known(4) && c.known(6) && !c.known(7));
        assert_eq!(c.first_in(3, 6), Some(6));
        assert_eq!(c.first_in(3, 5), None);
        assert_eq!(c.at(4).len(), 1, "the events stay, only unjudged");
    }
}
