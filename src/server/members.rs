//! Membership: the member list as Raft holds it with each member's published attributes, and
//! changes to it (add, remove, update, promote), which run as Raft membership changes on the
//! leader. A follower's API relays them to the leader's client URL (`dial_leader_client`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::ChangeMembers;

use super::Server;
use crate::clock;
use crate::command::Command;
use crate::config::{member_id, url_host_port};
use crate::error::{Error, Result};
use crate::peer::PeerChannel;
use crate::proto::etcdserverpb::Member;
use crate::raft::typ::Member as RaftMember;

/// How long a membership change may take before the caller hears "request timed out".
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A learner is promoted only once it holds at least this share (in tenths) of the leader's
/// log, as etcd's `isLearnerReady` requires (90%): a promoted voter counts toward every
/// majority at once, so promoting one far behind would stall commits while it catches up, or
/// stop them outright if another voter is down.
const LEARNER_READY_TENTHS: u64 = 9;

impl Server {
    /// Every member, voters and learners, with the name and client URLs each published.
    pub fn members(&self) -> Vec<Member> {
        let membership = self.membership();
        let attrs = self.sm.read().members.clone();
        let voters: Vec<u64> = membership.voter_ids().collect();
        membership
            .membership()
            .nodes()
            .map(|(id, node)| {
                let a = attrs.get(id).cloned().unwrap_or_default();
                Member {
                    id: *id,
                    // etcd shows an empty name until the member has started and published.
                    name: a.name,
                    peer_ur_ls: node.peer_urls.clone(),
                    client_ur_ls: a.client_urls,
                    is_learner: !voters.contains(id),
                }
            })
            .collect()
    }

    /// A channel to the leader's client URL (as it published it), to relay a request to it.
    pub fn dial_leader_client(&self) -> Result<PeerChannel> {
        let leader = self.leader().ok_or(Error::NoLeader)?;
        let url = self
            .sm
            .read()
            .members
            .get(&leader)
            .and_then(|m| m.client_urls.first().cloned())
            .ok_or(Error::NoLeader)?;
        let transport = self.peers.transport();
        PeerChannel::dial(&transport.net, &url, transport.client_tls.as_ref())
            .map_err(|e| Error::Unreachable(e.to_string()))
    }

    /// Adds a member at `peer_urls` (on the leader); returns it as the list shows it.
    pub async fn add_member(&self, peer_urls: Vec<String>, is_learner: bool) -> Result<Member> {
        check_peer_urls(&peer_urls)?;
        let taken = self
            .members()
            .iter()
            .any(|m| m.peer_ur_ls.iter().any(|u| peer_urls.contains(u)));
        if taken {
            return Err(Error::PeerUrlExists);
        }
        let id = member_id(&peer_urls, &self.cluster_token);
        let node = RaftMember {
            name: String::new(),
            peer_urls: peer_urls.clone(),
        };
        let change = if is_learner {
            ChangeMembers::AddNodes(BTreeMap::from([(id, node)]))
        } else {
            // etcd counts a new voter toward quorum at once; so does this.
            ChangeMembers::AddVoters(BTreeMap::from([(id, node)]))
        };
        self.change_membership(change).await?;
        Ok(Member {
            id,
            name: String::new(),
            peer_ur_ls: peer_urls,
            client_ur_ls: Vec::new(),
            is_learner,
        })
    }

    pub async fn remove_member(&self, id: u64) -> Result<()> {
        let (_, is_voter) = self.lookup_member(id)?;
        let ids = BTreeSet::from([id]);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.change_membership(change).await
    }

    pub async fn update_member(&self, id: u64, peer_urls: Vec<String>) -> Result<()> {
        check_peer_urls(&peer_urls)?;
        let (mut node, _) = self.lookup_member(id)?;
        node.peer_urls = peer_urls;
        self.change_membership(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])))
            .await
    }

    pub async fn promote_member(&self, id: u64) -> Result<()> {
        let (_, is_voter) = self.lookup_member(id)?;
        if is_voter {
            return Err(Error::NotLearner);
        }
        self.check_learner_ready(id)?;
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// On the leader: whether learner `id` caught up (`LEARNER_READY_TENTHS`). A learner the
    /// leader does not replicate to yet passes, as in etcd.
    fn check_learner_ready(&self, id: u64) -> Result<()> {
        let m = self.raft.metrics().borrow_watched().clone();
        let Some(replication) = &m.replication else {
            return Err(Error::NotLeader);
        };
        let Some(matched) = replication.get(&id) else {
            return Ok(());
        };
        let learner = matched.as_ref().map_or(0, |l| l.index);
        let leader = m.last_log_index.unwrap_or(0);
        if u128::from(learner) * 10 < u128::from(leader) * u128::from(LEARNER_READY_TENTHS) {
            return Err(Error::LearnerNotReady);
        }
        Ok(())
    }

    async fn change_membership(&self, change: ChangeMembers<u64, RaftMember>) -> Result<()> {
        let fut = self.raft.change_membership(change, false);
        match clock::timeout(CHANGE_TIMEOUT, fut).await {
            Err(_) => Err(Error::Timeout),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::Reconfiguration(e.to_string())),
        }
    }

    /// Raft's current membership (voters, learners and their peer URLs).
    fn membership(&self) -> Arc<crate::raft::typ::StoredMembership> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone()
    }

    /// The member as Raft knows it, and whether it votes.
    fn lookup_member(&self, id: u64) -> Result<(RaftMember, bool)> {
        let membership = self.membership();
        let node = membership
            .membership()
            .get_node(&id)
            .cloned()
            .ok_or(Error::MemberNotFound)?;
        let is_voter = membership.voter_ids().any(|v| v == id);
        Ok((node, is_voter))
    }

    /// Publishes this member's name and client URLs once a leader exists, as etcd does at start.
    pub async fn publish_loop(self: Arc<Self>, client_urls: Vec<String>) {
        loop {
            let published = self
                .sm
                .read()
                .members
                .get(&self.id)
                .is_some_and(|m| m.name == self.name && m.client_urls == client_urls);
            if published {
                return;
            }
            let cmd = Command::PublishMember {
                id: self.id,
                name: self.name.clone(),
                client_urls: client_urls.clone(),
            };
            if self.write(cmd).await.is_ok() {
                return;
            }
            clock::sleep(self.election_timeout).await;
        }
    }
}

fn check_peer_urls(urls: &[String]) -> Result<()> {
    if urls.is_empty() || urls.iter().any(|u| url_host_port(u).is_err()) {
        return Err(Error::InvalidPeerUrls);
    }
    Ok(())
}

impl crate::raft::removal::Watched for Server {
    fn raft(&self) -> &crate::raft::Raft {
        &self.raft
    }

    fn applied_holds_me(&self) -> bool {
        let applied = self.sm.read();
        let m = &applied.last_membership;
        m.log_id().is_none() || m.membership().get_node(&self.id).is_some()
    }

    fn has_live_leader(&self) -> bool {
        self.has_leader()
    }
}
