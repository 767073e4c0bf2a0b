//! Committed entries never change or vanish, on any member, across restarts: Raft's log
//! matching and leader completeness, seen from outside.
//!
//! Each member's log is read from its storage backend, up to the commit index it reports. The
//! first member to commit an index fixes that entry's bytes; every other member, and the same
//! member after a restart, must hold the same bytes there (or have purged them into a snapshot).
//! Within one life of a member (between crashes) its commit index never goes back.

use std::collections::BTreeMap;

use crate::storage::schema::{log_key, Tree};
use crate::storage::Backend;

pub struct LogChecker {
    /// Index → (the member that first committed it, a hash of the entry's bytes).
    committed: BTreeMap<u64, (usize, u64)>,
    /// Per member: the life (crash count) checked, and the highest commit index it reported.
    checked: Vec<(usize, u64)>,
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl LogChecker {
    /// The whole cluster was restored from a backup: a new log begins, whose entries owe
    /// nothing to the old one's.
    pub fn new_cluster(&mut self) {
        self.committed.clear();
        self.checked.iter_mut().for_each(|c| c.1 = 0);
    }

    pub fn new(nodes: usize) -> LogChecker {
        LogChecker {
            committed: BTreeMap::new(),
            checked: vec![(0, 0); nodes],
        }
    }

    /// Checks `member`'s log from where it was last checked up to `committed`, skipping what
    /// it purged (up to `purged`). A new `instance` (a life after a crash) is checked from the
    /// start.
    pub fn observe(
        &mut self,
        member: usize,
        instance: usize,
        log: &dyn Backend,
        purged: u64,
        committed: u64,
    ) -> Vec<String> {
        let (seen_instance, upto) = &mut self.checked[member];
        let mut violations = Vec::new();
        if *seen_instance != instance {
            *seen_instance = instance;
            *upto = 0;
        } else if committed < *upto {
            // A commit index may restart lower after a crash, never move back within one life.
            violations.push(format!(
                "member {} commit index went back from {upto} to {committed}",
                member + 1
            ));
        }
        let from = (*upto).max(purged) + 1;
        for index in from..=committed {
            let entry = match log.get(Tree::Log, &log_key(index)) {
                Ok(Some(bytes)) => hash(&bytes),
                // Purged between the metrics read and this one: nothing to compare.
                Ok(None) if index <= purged_now(log, purged) => continue,
                _ => {
                    violations.push(format!(
                        "member {} reports index {index} committed but its log lacks it",
                        member + 1
                    ));
                    continue;
                }
            };
            match self.committed.get(&index) {
                None => {
                    self.committed.insert(index, (member, entry));
                }
                Some((first, h)) if *h != entry => violations.push(format!(
                    "committed entry {index} differs: member {} holds other bytes than member {} \
                     committed",
                    member + 1,
                    first + 1
                )),
                Some(_) => {}
            }
        }
        self.checked[member].1 = committed.max(self.checked[member].1);
        violations
    }
}

/// The purge point may have moved since the caller read it; the first stored index tells.
fn purged_now(log: &dyn Backend, purged: u64) -> u64 {
    match log.scan(Tree::Log, &log_key(0), None, 1) {
        Ok(rows) => rows
            .first()
            .and_then(|(k, _)| <[u8; 8]>::try_from(k.as_slice()).ok())
            .map_or(purged, |k| {
                u64::from_be_bytes(k).saturating_sub(1).max(purged)
            }),
        Err(_) => purged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Batch, MemoryBackend};

    fn log(entries: &[(u64, &[u8])]) -> MemoryBackend {
        let b = MemoryBackend::new();
        let mut batch = Batch::default();
        for (i, bytes) in entries {
            batch.put(Tree::Log, log_key(*i).to_vec(), bytes.to_vec());
        }
        b.write(batch).unwrap();
        b
    }

    #[test]
    fn members_agreeing_pass_and_a_changed_committed_entry_is_caught() {
        let mut c = LogChecker::new(2);
        let a = log(&[(1, b"x"), (2, b"y")]);
        let b = log(&[(1, b"x"), (2, b"z")]);
        assert!(c.observe(0, 1, &a, 0, 2).is_empty());
        assert!(c.observe(1, 1, &b, 0, 1).is_empty(), "index 1 agrees");
        let v = c.observe(1, 1, &b, 0, 2);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("committed entry 2 differs"));
    }

    #[test]
    fn a_commit_index_going_back_within_one_life_is_caught() {
        let mut c = LogChecker::new(1);
        let l = log(&[(1, b"x"), (2, b"y")]);
        assert!(c.observe(0, 1, &l, 0, 2).is_empty());
        let v = c.observe(0, 1, &l, 0, 1);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("commit index went back from 2 to 1"));
        assert!(
            c.observe(0, 2, &l, 0, 1).is_empty(),
            "a new life may start lower"
        );
    }

    #[test]
    fn a_committed_entry_missing_after_restart_is_caught() {
        let mut c = LogChecker::new(1);
        assert!(c
            .observe(0, 1, &log(&[(1, b"x"), (2, b"y")]), 0, 2)
            .is_empty());
        let v = c.observe(0, 2, &log(&[(1, b"x")]), 0, 2);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("lacks"));
    }
}
