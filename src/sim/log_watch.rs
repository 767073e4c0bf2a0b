//! What happens to entries that are not (yet) committed, told for learners; never a violation.
//!
//! Two facts of Raft that a run can show: an entry a member held but that was never committed
//! may be replaced by another term's entry at the same index (a deposed leader's uncommitted
//! writes are discarded, which is why a client must not take them as done); and a leader
//! commits entries of earlier terms only together with an entry of its own term, never by
//! counting their replicas (the paper's §5.4.2 and figure 8: an earlier term's entry on a
//! majority can still be overwritten by a member that missed it but holds a later term).
//!
//! It reads each member's log from its storage backend above the member's commit index, at most
//! `SCAN_ENTRIES_MAX` entries per member per observation, and keeps ordered maps only.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::raft::codec::decode;
use crate::raft::typ::LogId;
use crate::sim::run::name;
use crate::storage::schema::{log_key, Tree};
use crate::storage::Backend;

/// A partitioned leader accepts a few writes per second of simulated time; a thousand entries
/// covers every schedule's longest cut while bounding the work of one observation.
const SCAN_ENTRIES_MAX: u64 = 1000;

pub struct LogWatch {
    /// Per member: index → term of the entries it held above its commit index when last seen.
    pending: Vec<BTreeMap<u64, u64>>,
    /// Per member: the commit index last seen.
    committed: Vec<u64>,
    /// The highest commit index any member reported: an entry at or below it was committed
    /// already, and a leader that commits it later only learns so.
    committed_max: u64,
    /// (index, term) of replaced entries already told, so a run is told once, when the first
    /// member replaces it, not again as each other holder catches up.
    told: BTreeSet<(u64, u64)>,
}

/// The first field of a stored `Entry`. bincode codes a struct's fields in order and reads
/// past none it is not asked for, so this decodes the log id and leaves the payload (a whole
/// client command) alone: every member's pending entries are read after every step.
#[derive(Deserialize)]
struct EntryHead {
    log_id: LogId,
}

/// The term of the entry at `index`, if the log holds one.
fn term_at(log: &dyn Backend, index: u64) -> Option<u64> {
    let bytes = log.get(Tree::Log, &log_key(index)).ok()??;
    let head: EntryHead = decode(&bytes).ok()?;
    Some(head.log_id.leader_id.term)
}

fn names(members: &BTreeSet<usize>) -> String {
    members
        .iter()
        .map(|m| name(*m))
        .collect::<Vec<_>>()
        .join(",")
}

fn span(from: u64, to: u64) -> String {
    match from == to {
        true => format!("entry {from}"),
        false => format!("entries {from}-{to}"),
    }
}

impl LogWatch {
    pub fn new(nodes: usize) -> LogWatch {
        LogWatch {
            pending: vec![BTreeMap::new(); nodes],
            committed: vec![0; nodes],
            committed_max: 0,
            told: BTreeSet::new(),
        }
    }

    /// Forgets member `m`'s log: its disk was wiped, so what it held was lost, not replaced.
    pub fn forget(&mut self, m: usize) {
        self.pending[m].clear();
        self.committed[m] = 0;
    }

    /// Looks at every running member's log (`logs[i]` is `None` for one down) and returns the
    /// notes to log: replaced uncommitted entries, grouped into runs, and a leader's commits
    /// that carry earlier terms' entries. `leading[i]` is the term member i leads, if it does.
    pub fn observe(
        &mut self,
        logs: &[Option<(&dyn Backend, u64)>],
        leading: &[Option<u64>],
    ) -> Vec<String> {
        let n = self.pending.len();
        let mut notes = Vec::new();
        // (old term, new term, holders) → replaced indices. Holders are read from every
        // member's pending map before any is updated, so a run names all who held it.
        let mut replaced: BTreeMap<(u64, u64, BTreeSet<usize>), Vec<u64>> = BTreeMap::new();
        for (m, log) in logs.iter().enumerate() {
            let Some((log, _)) = log else { continue };
            for (index, old) in &self.pending[m] {
                match term_at(*log, *index) {
                    Some(new) if new != *old && !self.told.contains(&(*index, *old)) => {
                        let holders: BTreeSet<usize> = (0..n)
                            .filter(|h| self.pending[*h].get(index) == Some(old))
                            .collect();
                        replaced
                            .entry((*old, new, holders))
                            .or_default()
                            .push(*index);
                    }
                    _ => {}
                }
            }
        }
        for ((old, new, holders), mut indices) in replaced {
            indices.sort_unstable();
            indices.dedup();
            self.told.extend(indices.iter().map(|i| (*i, old)));
            let (from, to) = (indices[0], indices[indices.len() - 1]);
            notes.push(format!(
                "log: {} of term {old}, held by {} ({} of {n}) and never committed, replaced by \
                 term {new}'s",
                span(from, to),
                names(&holders),
                holders.len(),
            ));
        }
        for (m, log) in logs.iter().enumerate() {
            // A member that is down keeps what it was last seen holding.
            let Some((log, committed)) = log else {
                continue;
            };
            let before = self.committed[m];
            if let Some(term) = leading[m] {
                let from = before.max(self.committed_max);
                if *committed > from {
                    notes.extend(commit_note(m, term, *log, from, *committed));
                }
            }
            self.committed[m] = *committed;
            let mut pending = BTreeMap::new();
            for index in committed + 1..=committed + SCAN_ENTRIES_MAX {
                match term_at(*log, index) {
                    Some(t) => pending.insert(index, t),
                    None => break,
                };
            }
            // An entry truncated away but not yet rewritten is kept until its index is filled
            // again, so the replacement is still seen when it lands between two observations.
            for (index, term) in &self.pending[m] {
                if term_at(*log, *index).is_none() {
                    pending.insert(*index, *term);
                }
            }
            self.pending[m] = pending;
        }
        for (_, committed) in logs.iter().flatten() {
            self.committed_max = self.committed_max.max(*committed);
        }
        notes
    }
}

/// The note for leader `m` of `term` committing (before, committed] when that range holds
/// entries of earlier terms: they commit only because an entry of `term` after them did.
fn commit_note(
    m: usize,
    term: u64,
    log: &dyn Backend,
    before: u64,
    committed: u64,
) -> Option<String> {
    let from = before + 1;
    let to = committed.min(before + SCAN_ENTRIES_MAX);
    let terms: Vec<(u64, u64)> = (from..=to)
        .filter_map(|i| term_at(log, i).map(|t| (i, t)))
        .collect();
    let older: Vec<u64> = terms
        .iter()
        .filter(|(_, t)| *t < term)
        .map(|(i, _)| *i)
        .collect();
    let own = terms.iter().find(|(_, t)| *t == term).map(|(i, _)| *i)?;
    let (first, last) = (*older.first()?, *older.last()?);
    Some(format!(
        "log: {} leader of term {term} commits {} of earlier terms only together with entry \
         {own} of its own term (Raft never commits an earlier term's entry by counting its replicas)",
        name(m),
        span(first, last),
    ))
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;
    use crate::raft::codec::encode;
    use crate::raft::typ::Entry;
    use crate::storage::{Batch, MemoryBackend};

    /// Each member's log, all with commit index 1.
    fn views(logs: [&MemoryBackend; 3]) -> Vec<Option<(&dyn Backend, u64)>> {
        logs.iter().map(|l| Some((*l as &dyn Backend, 1))).collect()
    }

    /// A log holding blank entries of these (index, term).
    fn log(entries: &[(u64, u64)]) -> MemoryBackend {
        let b = MemoryBackend::new();
        let mut batch = Batch::default();
        for (index, term) in entries {
            let entry = Entry {
                log_id: LogId::new_term_index(*term, *index),
                payload: EntryPayload::Blank,
            };
            batch.put(Tree::Log, log_key(*index).to_vec(), encode(&entry).unwrap());
        }
        b.write(batch).unwrap();
        b
    }

    #[test]
    fn an_uncommitted_run_replaced_by_a_later_term_is_told_once_with_its_holders() {
        // Goal: a deposed leader's uncommitted entries, replaced on two members, make one note
        // naming both holders; seeing the second member replace them later adds nothing.
        let mut w = LogWatch::new(3);
        let old = log(&[(1, 1), (2, 1), (3, 1)]);
        let other = log(&[(1, 1)]);
        let none = vec![None; 3];
        assert!(w.observe(&views([&old, &old, &other]), &none).is_empty());
        let new = log(&[(1, 1), (2, 2), (3, 2)]);
        let notes = w.observe(&views([&new, &old, &other]), &none);
        assert_eq!(
            notes,
            vec![
                "log: entries 2-3 of term 1, held by n1,n2 (2 of 3) and never committed, \
                  replaced by term 2's"
                    .to_string()
            ]
        );
        assert!(w.observe(&views([&new, &new, &new]), &none).is_empty());
    }

    #[test]
    fn a_leader_committing_an_earlier_terms_entry_with_its_own_is_told_but_not_a_known_commit() {
        // Goal: the commit-rule note appears when a leader's commit carries entries of earlier
        // terms no member had committed, and not when another member had committed them.
        let l = log(&[(1, 1), (2, 1), (3, 2)]);
        let mut w = LogWatch::new(1);
        w.observe(&[Some((&l as &dyn Backend, 1))], &[Some(2)]);
        let notes = w.observe(&[Some((&l as &dyn Backend, 3))], &[Some(2)]);
        assert_eq!(
            notes,
            vec![
                "log: n1 leader of term 2 commits entry 2 of earlier terms only together with \
                  entry 3 of its own term (Raft never commits an earlier term's entry by \
                  counting its replicas)"
                    .to_string()
            ]
        );

        let f = log(&[(1, 1), (2, 1), (3, 2)]);
        let mut w = LogWatch::new(2);
        // n2 committed entry 2 already (in term 1); n1 then commits it as leader of term 2.
        w.observe(
            &[Some((&f as &dyn Backend, 1)), Some((&f as &dyn Backend, 2))],
            &[None, None],
        );
        let notes = w.observe(&[Some((&f as &dyn Backend, 3)), None], &[Some(2), None]);
        assert!(notes.is_empty(), "{notes:?}");
    }
}
