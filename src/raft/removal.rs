//! A member the cluster removed stops, as etcd's does ("the member has been permanently removed
//! from the cluster"), instead of lingering as a member nobody replicates to: its clients would
//! read ever older data there, and an admin whose `member remove` answer was lost would never
//! see the process go.
//!
//! Member ids are not unique across lives here (a member removed and added back keeps its id),
//! so a membership without this member in the local log does not prove the removal is current:
//! a member added back replays its own earlier removal while it catches up. The member asks the
//! voters of the newest membership it knows instead, with the question a starting member asks
//! (`rejoin`), and stops once a majority of every voter set answers that both the newest
//! membership in its log and the newest it applied are at least as new as that one and leave it
//! out. A re-add the runbook waited for is committed, so a majority of the voters hold it in
//! their logs and the question never gets that answer; a removal not yet committed is in no
//! applied membership, so a removal a later leader overwrites (Raft's figure 8) never stops it.
//!
//! It asks when its applied membership leaves it out (it applied its removal) or when it has
//! had no live leader for `LEADERLESS_POLLS` polls: a leader stops replicating to a member as
//! soon as it appends the membership without it, so a removed member often never receives its
//! own removal, and one removed while it was down or cut off never will.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;

use crate::peer::{ConfigView, HeardReply, PeerClients};
use crate::raft::{NodeId, Raft};

/// Polls without a live leader before a member asks whether it still belongs to the cluster.
pub const LEADERLESS_POLLS: u32 = 2;

/// Whether the answers show `me` removed: a majority of every voter set of `known` (the newest
/// membership this member holds) answered with a logged and an applied membership, each at
/// least as new, that leave it out.
pub fn removed(me: NodeId, known: &ConfigView, answers: &BTreeMap<NodeId, HeardReply>) -> bool {
    let out = |c: &Option<ConfigView>| {
        c.as_ref()
            .is_some_and(|c| c.index >= known.index && !c.holds(me))
    };
    let leaves_out = |peer: &NodeId| {
        answers
            .get(peer)
            .is_some_and(|a| out(&a.config) && out(&a.applied))
    };
    !known.voters.is_empty()
        && known
            .voters
            .iter()
            .all(|set| 2 * set.iter().filter(|v| leaves_out(v)).count() > set.len())
}

/// The newest membership this member holds, and the peers it names.
fn newest(raft: &Raft) -> Option<(ConfigView, BTreeMap<NodeId, crate::raft::Member>)> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow_watched();
    let stored = &metrics.membership_config;
    let view = ConfigView::of(stored)?;
    let nodes = stored
        .membership()
        .nodes()
        .map(|(id, n)| (*id, n.clone()))
        .collect();
    Some((view, nodes))
}

/// What the watch asks of its member.
pub trait Watched {
    fn raft(&self) -> &Raft;
    /// Whether the applied membership still holds this member.
    fn applied_holds_me(&self) -> bool;
    /// Whether a leader was in touch lately (see `Server::has_leader`).
    fn has_live_leader(&self) -> bool;
}

/// Returns once the cluster confirms this member was removed; polls every `poll` on the
/// member's clock.
pub async fn watch(
    me: NodeId,
    member: &impl Watched,
    peers: std::sync::Arc<PeerClients>,
    poll: Duration,
) {
    let mut leaderless = 0u32;
    loop {
        crate::clock::sleep(poll).await;
        leaderless = if member.has_live_leader() {
            0
        } else {
            leaderless + 1
        };
        let applied_holds_me = member.applied_holds_me();
        if applied_holds_me && leaderless < LEADERLESS_POLLS {
            continue;
        }
        let Some((known, nodes)) = newest(member.raft()) else {
            continue;
        };
        let voters = nodes
            .iter()
            .filter(|(peer, _)| **peer != me && known.is_voter(**peer));
        let answers = crate::raft::rejoin::ask(me, &peers, voters, poll).await;
        if removed(me, &known, &answers) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(index: u64, voters: &[&[NodeId]], learners: &[NodeId]) -> ConfigView {
        ConfigView {
            index,
            voters: voters.iter().map(|s| s.iter().copied().collect()).collect(),
            learners: learners.iter().copied().collect(),
        }
    }

    fn answer(config: ConfigView) -> HeardReply {
        HeardReply {
            heard: false,
            has_log: true,
            config: Some(config.clone()),
            applied: Some(config),
        }
    }

    #[test]
    fn a_majority_of_voters_leaving_the_member_out_removes_it() {
        // Goal: member 1 applied its removal at index 40; both remaining voters agree.
        let known = view(40, &[&[2, 3]], &[]);
        let a = BTreeMap::from([(2, answer(known.clone())), (3, answer(known.clone()))]);
        assert!(removed(1, &known, &a));
        // One of two voters is not a majority.
        let one = BTreeMap::from([(2, answer(known.clone()))]);
        assert!(!removed(1, &known, &one));
    }

    #[test]
    fn a_member_added_back_is_not_stopped_while_it_replays_its_removal() {
        // Goal: member 1 was removed at 40 and added back as a learner at 45; replaying, it
        // holds the membership of index 40, but the voters answer with the one of 45.
        let replaying = view(40, &[&[2, 3]], &[]);
        let now = view(45, &[&[2, 3]], &[1]);
        let a = BTreeMap::from([(2, answer(now.clone())), (3, answer(now))]);
        assert!(!removed(1, &replaying, &a));
    }

    #[test]
    fn a_member_removed_while_away_is_told_by_the_voters_it_knows() {
        // Goal: member 1 still holds {1,2,3} from index 30; 2 and 3 removed it at 40. Two of
        // three voters is a majority; an older answer does not count.
        let known = view(30, &[&[1, 2, 3]], &[]);
        let later = view(40, &[&[2, 3]], &[]);
        let a = BTreeMap::from([(2, answer(later.clone())), (3, answer(later.clone()))]);
        assert!(removed(1, &known, &a));
        let stale = BTreeMap::from([(2, answer(later)), (3, answer(view(20, &[&[2, 3]], &[])))]);
        assert!(!removed(1, &known, &stale));
        // Cut off with one peer: its answer alone is no majority of three.
        let half = BTreeMap::from([(2, answer(view(40, &[&[2, 3]], &[])))]);
        assert!(!removed(1, &known, &half));
    }

    #[test]
    fn a_joint_membership_needs_a_majority_of_each_voter_set() {
        // Goal: the member knows the joint {1,2,3}/{2,3,4}; only the old set answered.
        let known = view(50, &[&[1, 2, 3], &[2, 3, 4]], &[]);
        let out = view(51, &[&[2, 3, 4]], &[]);
        let a = BTreeMap::from([(2, answer(out.clone())), (3, answer(out.clone()))]);
        assert!(removed(1, &known, &a));
        let b = BTreeMap::from([(3, answer(out.clone())), (4, answer(out))]);
        assert!(!removed(1, &known, &b));
    }

    #[test]
    fn a_removal_in_the_voters_logs_but_not_yet_applied_does_not_stop_the_member() {
        // Goal: Raft's figure 8: the removal at 41 reached a majority's logs under a leader
        // that then failed; a later leader may still overwrite it, so only an applied
        // membership counts. Nor does a peer of an older release, which applies nothing.
        let known = view(40, &[&[1, 2, 3]], &[]);
        let logged = |peer_applied: Option<ConfigView>| HeardReply {
            applied: peer_applied,
            ..answer(view(41, &[&[2, 3]], &[]))
        };
        let before = Some(known.clone());
        let a = BTreeMap::from([(2, logged(before.clone())), (3, logged(before))]);
        assert!(!removed(1, &known, &a));
        let old_release = BTreeMap::from([(2, logged(None)), (3, logged(None))]);
        assert!(!removed(1, &known, &old_release));
        let committed = Some(view(41, &[&[2, 3]], &[]));
        let b = BTreeMap::from([(2, logged(committed.clone())), (3, logged(committed))]);
        assert!(removed(1, &known, &b));
    }

    #[test]
    fn a_membership_that_still_holds_the_member_never_removes_it() {
        // Goal: the voters' newest membership keeps 1 as a learner: it was demoted, not removed.
        let known = view(40, &[&[1, 2, 3]], &[]);
        let learner = view(41, &[&[2, 3]], &[1]);
        let a = BTreeMap::from([(2, answer(learner.clone())), (3, answer(learner))]);
        assert!(!removed(1, &known, &a));
    }
}
