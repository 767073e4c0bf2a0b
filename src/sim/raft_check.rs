//! Raft's election safety, seen from outside after every step: at most one leader per term; a
//! member's term and vote term never go back, even across restarts (both are synced before they
//! are acted on, so not even a power loss may take them back); a member grants one vote per
//! term. It also narrates each member's role, vote and leadership changes into the event log,
//! which is what a learner reads and what the trace hash covers.
//!
//! Committed entries and the commit index are `log_check`'s; this file looks only at metrics.

use std::collections::BTreeMap;

use crate::raft::typ::RaftMetrics;
use openraft::ServerState;

use crate::sim::run::name;
use crate::sim::verdict::{Checker, Violation};

pub struct RaftChecker {
    /// Member index → Raft node id.
    ids: Vec<u64>,
    /// Term → the node id first seen leading it.
    leaders: BTreeMap<u64, u64>,
    /// Per member: the highest term seen.
    terms: Vec<u64>,
    /// Per member: the last (term, node id) of its vote, for the vote-regression check and
    /// the narration.
    votes: Vec<Option<(u64, u64)>>,
    /// Per member: the last vote sampled, granted or committed, for the one-vote-per-term check.
    granted: Vec<Option<(u64, u64)>>,
    /// Per member: the last role narrated.
    states: Vec<Option<ServerState>>,
    /// Per member: the life last sampled (1, plus one per crash).
    lives: Vec<usize>,
}

impl RaftChecker {
    pub fn new(ids: Vec<u64>) -> RaftChecker {
        let nodes = ids.len();
        RaftChecker {
            ids,
            leaders: BTreeMap::new(),
            terms: vec![0; nodes],
            votes: vec![None; nodes],
            granted: vec![None; nodes],
            states: vec![None; nodes],
            lives: vec![1; nodes],
        }
    }

    /// Forgets what member `i` remembered: its disk was wiped, so its term and vote start from
    /// nothing again. Leaders already seen per term stay: a wiped member that votes a second
    /// time in a term and so lets two leaders be elected is still caught.
    pub fn forget(&mut self, i: usize) {
        self.terms[i] = 0;
        self.votes[i] = None;
        self.granted[i] = None;
        self.states[i] = None;
    }

    /// The whole cluster was restored from a backup: its terms start again from nothing.
    pub fn new_cluster(&mut self) {
        self.leaders.clear();
        for i in 0..self.terms.len() {
            self.forget(i);
        }
    }

    /// The member index of Raft node `id`.
    pub fn member_of(&self, id: u64) -> Option<usize> {
        self.ids.iter().position(|x| *x == id)
    }

    fn name_of(&self, id: u64) -> Option<String> {
        self.member_of(id).map(name)
    }

    /// Checks member `i`'s metrics `m`, sampled at `now` (simulated ms) in its `life`;
    /// narrates its changes into `log`.
    pub fn observe(
        &mut self,
        i: usize,
        life: usize,
        m: &RaftMetrics,
        now: u64,
        log: &mut Vec<String>,
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut violation = |text: String| violations.push(Violation::new(Checker::Raft, text));
        if m.current_term < self.terms[i] {
            violation(format!(
                "t={now}ms {} term went back from {} to {}",
                name(i),
                self.terms[i],
                m.current_term
            ));
        }
        self.terms[i] = m.current_term;
        if self.states[i] != Some(m.state) {
            self.states[i] = Some(m.state);
            log.push(format!(
                "t={now}ms {} is {:?} in term {}",
                name(i),
                m.state,
                m.current_term
            ));
        }
        let vote = (m.vote.leader_id().term, m.vote.leader_id().voted_for);
        if let Some((term, _)) = self.votes[i] {
            if vote.0 < term {
                violation(format!(
                    "t={now}ms {} vote went back from term {term} to term {}",
                    name(i),
                    vote.0
                ));
            }
        }
        // Classic Raft: one vote granted per term, even across restarts. Following the term's
        // leader after voting for another candidate is not a second vote, and a restarted
        // member holds the leader it followed as its vote (`read_vote`). That follow may fall
        // between two samples, just before a crash: a restarted member's vote for the leader
        // of its term is that, not a second grant.
        let restarted = std::mem::replace(&mut self.lives[i], life) != life;
        let followed_unseen = restarted && self.leaders.get(&vote.0) == Some(&vote.1);
        if !m.vote.is_committed() && !followed_unseen {
            if let Some((term, whom)) = self.granted[i] {
                if vote.0 == term && vote.1 != whom {
                    violation(format!(
                        "t={now}ms {} voted for two members in term {term}",
                        name(i)
                    ));
                }
            }
        }
        self.granted[i] = Some(vote);
        if self.votes[i] != Some(vote) {
            self.votes[i] = Some(vote);
            let whom = self.name_of(vote.1).unwrap_or_else(|| "nobody".into());
            let how = if m.vote.is_committed() {
                "follows"
            } else {
                "votes for"
            };
            log.push(format!(
                "t={now}ms {} {how} {whom} in term {}",
                name(i),
                vote.0
            ));
        }
        if m.state == ServerState::Leader {
            match self.leaders.get(&m.current_term) {
                None => {
                    self.leaders.insert(m.current_term, m.id);
                    log.push(format!(
                        "t={now}ms {} leads term {}",
                        name(i),
                        m.current_term
                    ));
                }
                Some(other) if *other != m.id => violation(format!(
                    "t={now}ms two leaders in term {}: {} and {}",
                    m.current_term,
                    self.name_of(*other).unwrap_or_default(),
                    name(i)
                )),
                _ => {}
            }
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::typ::Vote;

    fn metrics(id: u64, term: u64, state: ServerState, vote: Vote) -> RaftMetrics {
        let mut m = RaftMetrics::new_initial(id);
        m.current_term = term;
        m.state = state;
        m.vote = vote;
        m
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut c = RaftChecker::new(vec![11, 12]);
        let mut log = Vec::new();
        let lead = |id| metrics(id, 3, ServerState::Leader, Vote::new_committed(3, id));
        assert!(c.observe(0, 1, &lead(11), 10, &mut log).is_empty());
        let v = c.observe(1, 1, &lead(12), 12, &mut log);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, Checker::Raft);
        assert!(
            v[0].text.contains("two leaders in term 3: n1 and n2"),
            "{v:?}"
        );
        assert!(
            log.contains(&"t=10ms n1 leads term 3".to_string()),
            "{log:?}"
        );
    }

    #[test]
    fn a_wiped_member_starts_afresh_but_still_cannot_lead_a_term_twice() {
        // Goal: after a lost data dir, term and vote may start from zero (the operator's doing),
        // but a second leader in a term already led is still a violation.
        let mut c = RaftChecker::new(vec![11, 12, 13, 14]);
        let mut log = Vec::new();
        let lead = |id, term| metrics(id, term, ServerState::Leader, Vote::new_committed(term, id));
        assert!(c.observe(1, 1, &lead(12, 4), 10, &mut log).is_empty());
        c.forget(1);
        let fresh = metrics(12, 0, ServerState::Learner, Vote::new(0, 0));
        assert!(
            c.observe(1, 1, &fresh, 20, &mut log).is_empty(),
            "no regression"
        );
        let spare = c.observe(3, 1, &lead(14, 4), 30, &mut log);
        assert!(
            spare
                .iter()
                .any(|v| v.text.contains("two leaders in term 4: n2 and n4")),
            "{spare:?}"
        );
    }

    #[test]
    fn a_term_going_back_is_caught() {
        let mut c = RaftChecker::new(vec![11]);
        let mut log = Vec::new();
        let at = |term| metrics(11, term, ServerState::Follower, Vote::new(term, 11));
        assert!(c.observe(0, 1, &at(4), 10, &mut log).is_empty());
        let v = c.observe(0, 1, &at(3), 12, &mut log);
        assert!(
            v.iter()
                .any(|v| v.text.contains("term went back from 4 to 3")),
            "{v:?}"
        );
        assert!(v.iter().any(|v| v.text.contains("vote went back")), "{v:?}");
    }

    #[test]
    fn a_second_vote_in_a_term_is_caught_but_following_its_leader_is_not() {
        let mut c = RaftChecker::new(vec![11, 12, 13]);
        let mut log = Vec::new();
        let m = |vote| metrics(11, 5, ServerState::Follower, vote);
        assert!(c
            .observe(0, 1, &m(Vote::new(5, 12)), 10, &mut log)
            .is_empty());
        let follow = c.observe(0, 1, &m(Vote::new_committed(5, 13)), 12, &mut log);
        assert!(follow.is_empty(), "{follow:?}");
        let mut c = RaftChecker::new(vec![11, 12, 13]);
        assert!(c
            .observe(0, 1, &m(Vote::new(5, 12)), 10, &mut log)
            .is_empty());
        let twice = c.observe(0, 1, &m(Vote::new(5, 13)), 12, &mut log);
        assert_eq!(twice.len(), 1, "{twice:?}");
        assert!(twice[0].text.contains("voted for two members in term 5"));
    }

    #[test]
    fn a_restarted_member_holding_its_terms_leader_followed_it_unseen() {
        // Goal: sweep seed 1071: member 0 voted for 12, followed leader 13 between two samples,
        // lost power, and read back 13 as a plain vote. That is no second grant; the same
        // change within one life, or to a member that never led the term, still is.
        let leader = |id| metrics(id, 5, ServerState::Leader, Vote::new_committed(5, id));
        let m = |vote| metrics(11, 5, ServerState::Follower, vote);
        let mut c = RaftChecker::new(vec![11, 12, 13]);
        let mut log = Vec::new();
        assert!(c
            .observe(0, 1, &m(Vote::new(5, 12)), 10, &mut log)
            .is_empty());
        assert!(c.observe(2, 1, &leader(13), 11, &mut log).is_empty());
        let back = c.observe(0, 2, &m(Vote::new(5, 13)), 20, &mut log);
        assert!(back.is_empty(), "{back:?}");
        let mut c = RaftChecker::new(vec![11, 12, 13]);
        assert!(c
            .observe(0, 1, &m(Vote::new(5, 12)), 10, &mut log)
            .is_empty());
        assert!(c.observe(2, 1, &leader(13), 11, &mut log).is_empty());
        let same_life = c.observe(0, 1, &m(Vote::new(5, 13)), 20, &mut log);
        assert_eq!(same_life.len(), 1, "{same_life:?}");
        let mut c = RaftChecker::new(vec![11, 12, 13]);
        assert!(c
            .observe(0, 1, &m(Vote::new(5, 12)), 10, &mut log)
            .is_empty());
        let no_leader = c.observe(0, 2, &m(Vote::new(5, 13)), 20, &mut log);
        assert_eq!(no_leader.len(), 1, "{no_leader:?}");
    }
}
