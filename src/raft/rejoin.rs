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
//! The member goes ahead once every peer said "never heard", or early when it and a majority
//! of the cluster hold no log yet (a cluster still forming, where a missing member must not
//! block the rest). Otherwise it waits: the peer that counted its answers may be the one that
//! is down. The limit, stated: a lost disk at the same time as a majority that never received
//! a log entry (so nobody can tell) is not detected.

use std::collections::BTreeMap;
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

/// Judges the answers so far; `cluster` counts every member, the asking one included.
pub fn decide(cluster: usize, answers: &BTreeMap<NodeId, HeardReply>) -> Verdict {
    if let Some((id, _)) = answers.iter().find(|(_, a)| a.heard) {
        return Verdict::Refuse(*id);
    }
    let forming = answers.values().all(|a| !a.has_log) && 2 * (answers.len() + 1) > cluster;
    if answers.len() + 1 >= cluster || forming {
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

/// Asks `members` (every member but this one) until `decide` says proceed or refuse; polls
/// every `poll` on the member's clock.
pub async fn check(
    id: NodeId,
    peers: &PeerClients,
    members: &BTreeMap<NodeId, Member>,
    poll: Duration,
) -> Result<(), DataDirLost> {
    let mut answers: BTreeMap<NodeId, HeardReply> = BTreeMap::new();
    for round in 0u64.. {
        let asks = members
            .iter()
            .filter(|(peer, _)| !answers.contains_key(peer))
            .map(|(peer, member)| async move {
                let ask = peers.heard(*peer, member, id);
                (*peer, crate::clock::timeout(poll, ask).await.ok().flatten())
            });
        for (peer, reply) in futures::future::join_all(asks).await {
            if let Some(reply) = reply {
                answers.insert(peer, reply);
            }
        }
        match decide(members.len() + 1, &answers) {
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

    fn answers(list: &[(NodeId, bool, bool)]) -> BTreeMap<NodeId, HeardReply> {
        list.iter()
            .map(|(id, heard, has_log)| {
                let (heard, has_log) = (*heard, *has_log);
                (*id, HeardReply { heard, has_log })
            })
            .collect()
    }

    #[test]
    fn any_peer_that_heard_refuses_the_start() {
        let a = answers(&[(2, false, true), (3, true, true)]);
        assert_eq!(decide(3, &a), Verdict::Refuse(3));
    }

    #[test]
    fn a_late_new_member_starts_once_every_peer_answered() {
        // Goal: peers with logs that never heard from it: a member started late, not a lost
        // disk; but with one peer silent, the silent one may be the leader that counted it.
        assert_eq!(
            decide(3, &answers(&[(1, false, true), (2, false, true)])),
            Verdict::Proceed
        );
        assert_eq!(decide(3, &answers(&[(1, false, true)])), Verdict::Wait);
        assert_eq!(
            decide(5, &answers(&[(1, false, true), (2, false, false)])),
            Verdict::Wait
        );
    }

    #[test]
    fn a_forming_cluster_needs_only_a_majority() {
        // Goal: first boot with a member missing: it and a majority hold no log, so nothing
        // can have been committed with its help.
        assert_eq!(decide(3, &answers(&[(1, false, false)])), Verdict::Proceed);
        assert_eq!(decide(5, &answers(&[(1, false, false)])), Verdict::Wait);
        assert_eq!(
            decide(5, &answers(&[(1, false, false), (2, false, false)])),
            Verdict::Proceed
        );
        assert_eq!(decide(1, &answers(&[])), Verdict::Proceed);
    }
}
