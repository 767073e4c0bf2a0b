//! A member that starts on an empty data dir asks its peers, before it answers any Raft
//! message, whether they have heard from it before.
//!
//! An empty data dir is either a new member (first boot, or added with `member add`) or one
//! whose disk was lost. The second must not come back under its old id: it forgot its vote (it
//! could vote twice in one term) and its log (its vote could elect a leader missing writes it
//! had acknowledged). Leaders and candidates durably record every member they counted an
//! answer from (`heard`), so a peer that says "heard" proves the loss, and the member refuses
//! to start with the runbook in the error. A removed member's record is dropped once the
//! removal is applied, so `member remove` + `member add` lets it start again.
//!
//! The member goes ahead once every peer the newest membership still holds said "never
//! heard", or early when it and a majority of the cluster hold no log yet (a cluster still
//! forming, where a missing member must not block the rest). A learner goes ahead on a majority
//! of the voters whatever they heard: it neither votes nor counts toward a commit, so a learner
//! that lost its data is harmless (this is also how `member add --learner` after a removal
//! starts while a voter is down, or while a peer still remembers the member's earlier life).
//! Otherwise it waits: the peer that counted its answers may be the one that is down. The
//! limits, stated: a lost disk at the same time as a majority that never received a log entry
//! (so nobody can tell) is not detected, and neither is one known only to a peer since removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::peer::{HeardReply, PeerClients};
use crate::raft::heard::HeardFrom;
use crate::raft::{Member, NodeId};

/// Whether this member takes part in Raft yet, and whom it has heard from.
pub struct Admission {
    pub heard: HeardFrom,
    admitted: AtomicBool,
}

impl Admission {
    pub fn new(heard: HeardFrom, admitted: bool) -> Admission {
        Admission {
            heard,
            admitted: AtomicBool::new(admitted),
        }
    }

    pub fn admitted(&self) -> bool {
        self.admitted.load(Ordering::Acquire)
    }

    pub fn admit(&self) {
        self.admitted.store(true, Ordering::Release);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// This peer has heard from the member before: its data dir was lost.
    Refuse(NodeId),
    Wait,
}

/// Judges the answers so far from `peers` (every member the flags name but this one, `me`).
pub fn decide(
    me: NodeId,
    peers: &BTreeSet<NodeId>,
    answers: &BTreeMap<NodeId, HeardReply>,
) -> Verdict {
    let newest = answers
        .values()
        .filter_map(|a| a.config.as_ref())
        .max_by_key(|c| c.index);
    if let Some(config) = newest {
        // A learner neither votes nor counts toward a commit, so one that lost its data is
        // harmless: it catches up like a new one. A promotion, once committed, is in the log of
        // a majority of voters, so a majority answering without one shows there is none.
        let majority = |set: &BTreeSet<NodeId>| {
            2 * set.iter().filter(|v| answers.contains_key(v)).count() > set.len()
        };
        if config.learners.contains(&me)
            && !config.is_voter(me)
            && config.voters.iter().all(majority)
        {
            return Verdict::Proceed;
        }
    }
    if let Some((id, _)) = answers.iter().find(|(_, a)| a.heard) {
        return Verdict::Refuse(*id);
    }
    // A peer the newest membership no longer holds is not waited for: it was removed, and may
    // never run again.
    let mut awaited = peers.iter().filter(|p| newest.is_none_or(|c| c.holds(**p)));
    let cluster = peers.len() + 1;
    let forming = answers.values().all(|a| !a.has_log) && 2 * (answers.len() + 1) > cluster;
    if awaited.all(|p| answers.contains_key(p)) || forming {
        Verdict::Proceed
    } else {
        Verdict::Wait
    }
}

/// Why an empty data dir may not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "the data dir is empty, but member {peer:x} has heard from this member ({id:x}) before: its \
     vote and log were lost, and rejoining under the same id could lose acknowledged writes. \
     Remove it (etcdctl member remove {id:x}), add it back (etcdctl member add), and start it \
     with --initial-cluster-state existing"
)]
pub struct DataDirLost {
    pub id: NodeId,
    pub peer: NodeId,
}

/// Asks each of `members` whether it has heard from `id`, at once, each for at most `poll` on
/// the member's clock; returns the answers that came.
pub async fn ask<'a>(
    id: NodeId,
    peers: &PeerClients,
    members: impl IntoIterator<Item = (&'a NodeId, &'a Member)>,
    poll: Duration,
) -> BTreeMap<NodeId, HeardReply> {
    let asks = members.into_iter().map(|(peer, member)| async move {
        let ask = peers.heard(*peer, member, id);
        (*peer, crate::clock::timeout(poll, ask).await.ok().flatten())
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .filter_map(|(peer, reply)| Some((peer, reply?)))
        .collect()
}

/// Asks `members` (every member but this one) until `decide` says proceed or refuse; polls
/// every `poll` on the member's clock.
pub async fn check(
    id: NodeId,
    peers: &PeerClients,
    members: &BTreeMap<NodeId, Member>,
    poll: Duration,
) -> Result<(), DataDirLost> {
    let mut answers: BTreeMap<NodeId, HeardReply> = BTreeMap::new();
    let peer_ids: BTreeSet<NodeId> = members.keys().copied().collect();
    for round in 0u64.. {
        let unanswered = members
            .iter()
            .filter(|(peer, _)| !answers.contains_key(peer));
        let new = ask(id, peers, unanswered, poll).await;
        answers.extend(new);
        match decide(id, &peer_ids, &answers) {
            Verdict::Proceed => return Ok(()),
            Verdict::Refuse(peer) => return Err(DataDirLost { id, peer }),
            Verdict::Wait => {}
        }
        if round % 50 == 49 {
            let waiting: Vec<String> = members
                .keys()
                .filter(|p| !answers.contains_key(p))
                .map(|p| format!("{p:x}"))
                .collect();
            tracing::warn!(
                ?waiting,
                "empty data dir: waiting for every member to confirm it never heard from this one"
            );
        }
        crate::clock::sleep(poll).await;
    }
    unreachable!("the rounds never run out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::ConfigView;

    fn answers(list: &[(NodeId, bool, bool)]) -> BTreeMap<NodeId, HeardReply> {
        list.iter()
            .map(|(id, heard, has_log)| {
                let (heard, has_log) = (*heard, *has_log);
                let reply = HeardReply {
                    heard,
                    has_log,
                    config: None,
                    applied: None,
                };
                (*id, reply)
            })
            .collect()
    }

    /// The peers of member `me` in a cluster of `size`, numbered from 1.
    fn peers(size: u64, me: NodeId) -> BTreeSet<NodeId> {
        (1..=size).filter(|p| *p != me).collect()
    }

    fn with_config(
        mut answers: BTreeMap<NodeId, HeardReply>,
        index: u64,
        voters: &[NodeId],
        learners: &[NodeId],
    ) -> BTreeMap<NodeId, HeardReply> {
        for reply in answers.values_mut() {
            reply.config = Some(ConfigView {
                index,
                voters: vec![voters.iter().copied().collect()],
                learners: learners.iter().copied().collect(),
            });
        }
        answers
    }

    #[test]
    fn any_peer_that_heard_refuses_the_start() {
        let a = answers(&[(1, false, true), (2, true, true)]);
        assert_eq!(decide(3, &peers(3, 3), &a), Verdict::Refuse(2));
    }

    #[test]
    fn a_late_new_member_starts_once_every_peer_answered() {
        // Goal: peers with logs that never heard from it: a member started late, not a lost
        // disk; but with one peer silent, the silent one may be the leader that counted it.
        let both = answers(&[(1, false, true), (2, false, true)]);
        assert_eq!(decide(3, &peers(3, 3), &both), Verdict::Proceed);
        let one = answers(&[(1, false, true)]);
        assert_eq!(decide(3, &peers(3, 3), &one), Verdict::Wait);
        let two_of_four = answers(&[(1, false, true), (2, false, false)]);
        assert_eq!(decide(5, &peers(5, 5), &two_of_four), Verdict::Wait);
    }

    #[test]
    fn a_forming_cluster_needs_only_a_majority() {
        // Goal: first boot with a member missing: it and a majority hold no log, so nothing
        // can have been committed with its help.
        let one = answers(&[(1, false, false)]);
        assert_eq!(decide(3, &peers(3, 3), &one), Verdict::Proceed);
        assert_eq!(decide(5, &peers(5, 5), &one), Verdict::Wait);
        let two = answers(&[(1, false, false), (2, false, false)]);
        assert_eq!(decide(5, &peers(5, 5), &two), Verdict::Proceed);
        assert_eq!(decide(1, &peers(1, 1), &answers(&[])), Verdict::Proceed);
    }

    #[test]
    fn a_learner_starts_on_a_majority_of_voters_whatever_was_heard() {
        // Goal: member 6, added back as a learner, starts while voter 4 is down and although
        // voter 1 remembers it from before its removal; it needs a majority of the voters.
        let three = answers(&[(1, true, true), (2, false, true), (3, false, true)]);
        let voters = [1, 2, 3, 4, 5];
        let learner = with_config(three.clone(), 40, &voters, &[6]);
        assert_eq!(decide(6, &peers(6, 6), &learner), Verdict::Proceed);
        let two = answers(&[(2, false, true), (3, false, true)]);
        let minority = with_config(two, 40, &voters, &[6]);
        assert_eq!(decide(6, &peers(6, 6), &minority), Verdict::Wait);
        // Promoted since: a voter that lost its log is refused as before.
        let promoted = with_config(three, 41, &[1, 2, 3, 4, 5, 6], &[]);
        assert_eq!(decide(6, &peers(6, 6), &promoted), Verdict::Refuse(1));
    }

    #[test]
    fn the_newest_membership_decides_and_removed_peers_are_not_awaited() {
        // Goal: peer 4 was removed and never answers; the voters that remain all did.
        let now = answers(&[(1, false, true), (2, false, true), (3, false, true)]);
        let newest = with_config(now, 50, &[1, 2, 3, 5], &[]);
        assert_eq!(decide(5, &peers(5, 5), &newest), Verdict::Proceed);
        // One lagging peer still lists 4 as a voter, but a newer membership leaves it out.
        let mut mixed = newest.clone();
        let lagging = with_config(answers(&[(3, false, true)]), 30, &[1, 2, 3, 4, 5], &[]);
        mixed.extend(lagging);
        assert_eq!(decide(5, &peers(5, 5), &mixed), Verdict::Proceed);
        // Without any newer membership, 4 is still awaited.
        let old = with_config(newest, 30, &[1, 2, 3, 4, 5], &[]);
        assert_eq!(decide(5, &peers(5, 5), &old), Verdict::Wait);
    }
}
