//! The facade the API calls: propose a command, pass a read barrier, reach the leader.
//!
//! A member behaves as an etcd member does: any member accepts writes and linearizable reads.
//! A follower forwards a write to the leader over the peer channel and waits for the result; a
//! linearizable read on a follower asks the leader for a read index and waits until it has
//! applied that far, then reads locally. Every wait is bounded by the request timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::raft::linearizable_read::Linearizer;
use openraft::{ReadPolicy, ServerState};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::clock::{self, LocalInstant};
use crate::command::{Command, CommandResult};
use crate::error::{Error, Result};
use crate::lease::{Lessor, Renewal};
use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::peer::peer_client::PeerClient;
use crate::proto::peer::Payload;
use crate::raft::log_store::{decode, encode};
use crate::raft::network::PEER_MESSAGE_MAX_BYTES;
use crate::raft::state_machine::StateMachine;
use crate::raft::typ::{Member, NodeId, Raft, TypeConfig};
use crate::storage::SharedBackend;
use crate::transport::Transport;

/// How long to wait before asking again who leads, while an election runs.
const LEADER_POLL: Duration = Duration::from_millis(50);

pub type ReadLogId = openraft::raft::linearizable_read::ReadLogId<TypeConfig>;

/// Why the leader did not take a forwarded command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Refusal {
    /// Refused before proposing: safe to retry elsewhere.
    NotLeader,
    /// Proposed, then lost to a leader change: outcome unknown.
    LeaderChanged,
    Stopped,
    TimedOut,
}

/// Lease calls a follower hands to the leader, whose clock decides TTLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaseCall {
    KeepAlive(i64),
    TimeToLive(i64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaseReply {
    /// Remaining TTL after renewal; 0 when the lease is unknown.
    KeepAlive(i64),
    /// (remaining TTL secs, granted TTL secs); TTL -1 when the lease is unknown.
    TimeToLive(i64, i64),
    NotLeader,
    /// The lease expired and its revoke is in flight; the caller waits for it.
    Expiring,
}

pub struct Server {
    pub plants: crate::plant::Plants,
    pub id: NodeId,
    pub cluster_id: u64,
    /// `--initial-cluster-token`: new members' ids derive from it, as etcd's do.
    pub cluster_token: String,
    pub name: String,
    pub raft: Raft,
    pub sm: StateMachine,
    pub lessor: Arc<Lessor>,
    pub backend: SharedBackend,
    pub request_timeout: Duration,
    pub election_timeout: Duration,
    pub transport: Transport,
    peers: Mutex<BTreeMap<String, PeerClient<Channel>>>,
    /// When this member last received append-entries (a heartbeat) from a leader.
    leader_contact: Mutex<Option<LocalInstant>>,
}

impl Server {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plants: crate::plant::Plants,
        id: NodeId,
        cluster_id: u64,
        cluster_token: String,
        name: String,
        raft: Raft,
        sm: StateMachine,
        lessor: Arc<Lessor>,
        backend: SharedBackend,
        election_timeout: Duration,
        transport: Transport,
    ) -> Self {
        Self {
            plants,
            id,
            cluster_id,
            cluster_token,
            name,
            raft,
            sm,
            lessor,
            backend,
            // etcd: 5 s plus two election timeouts.
            request_timeout: Duration::from_secs(5) + 2 * election_timeout,
            election_timeout,
            transport,
            peers: Mutex::new(BTreeMap::new()),
            leader_contact: Mutex::new(None),
        }
    }

    /// A header stamped with this member, its term and the current store revision.
    pub fn header(&self) -> ResponseHeader {
        self.header_at(self.sm.hub().revision())
    }

    pub fn header_at(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.id,
            revision,
            raft_term: self.term(),
        }
    }

    /// Stamps this member's identity onto a header the state machine filled with a revision.
    pub fn stamp(&self, header: &mut Option<ResponseHeader>) {
        let revision = header.as_ref().map(|h| h.revision).unwrap_or(0);
        *header = Some(self.header_at(revision));
    }

    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// Called by the peer service for every append-entries (heartbeats included).
    pub fn touch_leader_contact(&self) {
        *self
            .leader_contact
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(clock::now());
    }

    /// Whether a leader was in touch within `within`: for a leader, a quorum acknowledged it;
    /// for a follower, the leader's heartbeats arrived. openraft keeps a cut-off member's idea of
    /// the leader (pre-vote never moves its term), so `leader()` alone would say yes forever.
    pub fn has_live_leader(&self, within: std::time::Duration) -> bool {
        let m = self.raft.metrics().borrow_watched().clone();
        if m.current_leader.is_none() {
            return false;
        }
        if m.state == ServerState::Leader {
            if m.membership_config.voter_ids().count() <= 1 {
                return true;
            }
            return m
                .last_quorum_acked
                .as_ref()
                .is_some_and(|t| t.elapsed() < within);
        }
        self.leader_contact
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < within)
    }

    fn leader_member(&self) -> Option<(NodeId, Member)> {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    fn peer(&self, member: &Member, target: NodeId) -> Result<PeerClient<Channel>> {
        if self.transport.faults.is_cut(self.id, target) {
            return Err(Error::Timeout);
        }
        let url = member.peer_urls.first().cloned().unwrap_or_default();
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = peers.get(&url) {
            return Ok(c.clone());
        }
        let ch = self
            .transport
            .net
            .channel(&url)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let c = PeerClient::new(ch)
            .max_decoding_message_size(PEER_MESSAGE_MAX_BYTES)
            .max_encoding_message_size(PEER_MESSAGE_MAX_BYTES);
        peers.insert(url, c.clone());
        Ok(c)
    }

    /// Drops a cached peer channel after a failure: a connection that died silently (a
    /// partition, a crashed peer) must be redialled, not reused.
    fn forget_peer(&self, member: &Member) {
        if let Some(url) = member.peer_urls.first() {
            self.peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(url);
        }
    }

    fn timed_out(&self) -> Error {
        if self.leader().is_none() {
            Error::NoLeader
        } else {
            Error::Timeout
        }
    }

    /// Replicates `cmd` and returns what applying it produced, from any member.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let attempt = async {
                match self.propose_local(cmd.clone()).await {
                    Err(Refusal::NotLeader) => {}
                    other => return Some(other),
                }
                let (leader, member) = self.leader_member()?;
                if leader == self.id {
                    return None;
                }
                Some(self.forward(leader, &member, &cmd).await)
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Err(_) => return Err(self.timed_out()),
                Ok(Some(Ok(result))) => return into_result(result),
                Ok(Some(Err(Refusal::LeaderChanged))) => return Err(Error::LeaderChanged),
                Ok(Some(Err(Refusal::Stopped))) => return Err(Error::Stopped),
                Ok(Some(Err(Refusal::TimedOut))) => return Err(self.timed_out()),
                Ok(Some(Err(Refusal::NotLeader))) | Ok(None) => {}
            }
            if Instant::now() + LEADER_POLL >= deadline {
                return Err(self.timed_out());
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// Proposes on this member only; refuses at once when it does not lead.
    pub async fn propose_local(&self, cmd: Command) -> std::result::Result<CommandResult, Refusal> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(Refusal::NotLeader)
            }
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => {
                Err(Refusal::LeaderChanged)
            }
            Err(RaftError::Fatal(_)) => Err(Refusal::Stopped),
            Err(RaftError::APIError(e)) => {
                tracing::warn!(error = %e, "write refused");
                Err(Refusal::NotLeader)
            }
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        member: &Member,
        cmd: &Command,
    ) -> std::result::Result<CommandResult, Refusal> {
        let Ok(mut client) = self.peer(member, leader) else {
            return Err(Refusal::NotLeader);
        };
        let data = encode(cmd).map_err(|_| Refusal::Stopped)?;
        match client.forward(Payload { data }).await {
            Ok(resp) => {
                decode::<std::result::Result<CommandResult, Refusal>>(&resp.into_inner().data)
                    .map_err(|_| Refusal::LeaderChanged)?
            }
            // The request may or may not have reached the leader; only a refused connection
            // proves it did not.
            Err(status) if is_connect_failure(&status) => {
                self.forget_peer(member);
                Err(Refusal::NotLeader)
            }
            Err(_) => {
                self.forget_peer(member);
                Err(Refusal::LeaderChanged)
            }
        }
    }

    /// Waits until this member has applied everything committed when the call began, as
    /// confirmed by the leader: after it returns, a local read is linearizable.
    pub async fn read_barrier(&self) -> Result<()> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let attempt = async {
                match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                    Ok(_) => return Some(Ok(())),
                    Err(RaftError::Fatal(_)) => return Some(Err(Error::Stopped)),
                    Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                        return None
                    }
                    Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {}
                }
                let (leader, member) = self.leader_member()?;
                if leader == self.id {
                    return None;
                }
                let read_log_id = self.remote_read_index(leader, &member).await?;
                let linearizer = Linearizer::new(self.id, read_log_id, None);
                match linearizer.try_await_ready(&self.raft, None).await {
                    Ok(_) => Some(Ok(())),
                    Err(_) => Some(Err(Error::Stopped)),
                }
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Err(_) => return Err(self.timed_out()),
                Ok(Some(r)) => return r,
                Ok(None) => {}
            }
            if Instant::now() + LEADER_POLL >= deadline {
                return Err(self.timed_out());
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    async fn remote_read_index(&self, leader: NodeId, member: &Member) -> Option<ReadLogId> {
        let mut client = self.peer(member, leader).ok()?;
        let resp = match client.read_index(Payload { data: Vec::new() }).await {
            Ok(r) => r,
            Err(_) => {
                self.forget_peer(member);
                return None;
            }
        };
        decode::<Option<ReadLogId>>(&resp.into_inner().data).ok()?
    }

    /// The leader's half of a follower read: confirm leadership, hand out the read index.
    pub async fn leader_read_index(&self) -> Option<ReadLogId> {
        let linearizer = self
            .raft
            .get_read_linearizer(ReadPolicy::ReadIndex)
            .await
            .ok()?;
        Some(*linearizer.read_log_id())
    }

    /// Keep-alive and time-to-live are decided by the leader's clock; followers ask it.
    pub async fn lease_call(&self, call: LeaseCall) -> Result<LeaseReply> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            if self.lessor.is_primary() {
                let reply = self.lease_call_as_leader(&call).await;
                if !matches!(reply, LeaseReply::NotLeader) {
                    return Ok(reply);
                }
            } else if let Some((leader, member)) = self.leader_member() {
                if leader != self.id {
                    if let Ok(mut client) = self.peer(&member, leader) {
                        let data = encode(&call).map_err(|e| Error::Internal(e.to_string()))?;
                        let fut = client.lease_keep_alive(Payload { data });
                        match tokio::time::timeout_at(deadline, fut).await {
                            Ok(Ok(resp)) => {
                                if let Ok(reply) = decode::<LeaseReply>(&resp.into_inner().data) {
                                    if !matches!(reply, LeaseReply::NotLeader) {
                                        return Ok(reply);
                                    }
                                }
                            }
                            _ => self.forget_peer(&member),
                        }
                    }
                }
            }
            if Instant::now() + LEADER_POLL >= deadline {
                return Err(self.timed_out());
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// The leader answers a lease call. A keep-alive is answered only once a quorum has
    /// confirmed this member still leads, as etcd (3.4.25+/3.5.8+) does: a leader cut off from
    /// the others would otherwise renew leases that the new leader is about to expire, and the
    /// client, told the lease lives, would keep talking to it. (The simulator's lease checker
    /// found exactly that.) Not confirmed: `NotLeader`, so the caller retries or forwards.
    ///
    /// A keep-alive for a lease that has already expired waits for its revoke and then answers
    /// TTL 0, as etcd's lessor does; if the revoke does not land (leadership lost), `NotLeader`.
    pub async fn lease_call_as_leader(&self, call: &LeaseCall) -> LeaseReply {
        if matches!(call, LeaseCall::KeepAlive(_)) {
            let confirm = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
            match tokio::time::timeout(self.election_timeout, confirm).await {
                Ok(Ok(_)) => {}
                _ => return LeaseReply::NotLeader,
            }
        }
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let reply = self.lease_call_local(call);
            if !matches!(reply, LeaseReply::Expiring) {
                return reply;
            }
            if Instant::now() + LEADER_POLL >= deadline {
                return LeaseReply::NotLeader;
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// The leader's lessor answers a lease call, with no further check.
    fn lease_call_local(&self, call: &LeaseCall) -> LeaseReply {
        if !self.lessor.is_primary() {
            return LeaseReply::NotLeader;
        }
        let now = clock::now();
        match *call {
            LeaseCall::KeepAlive(id) => {
                let ttl = self.sm.read().leases.get(id).map(|r| r.ttl_secs);
                match ttl.map(|ttl| (ttl, self.lessor.renew(id, ttl, now))) {
                    Some((ttl, Renewal::Renewed)) => LeaseReply::KeepAlive(ttl),
                    Some((_, Renewal::Expired)) => LeaseReply::Expiring,
                    Some((_, Renewal::NotPrimary)) => LeaseReply::NotLeader,
                    None => LeaseReply::KeepAlive(0),
                }
            }
            LeaseCall::TimeToLive(id) => {
                let granted = self.sm.read().leases.get(id).map(|r| r.ttl_secs);
                match granted {
                    None => LeaseReply::TimeToLive(-1, 0),
                    Some(granted) => {
                        let remaining = self
                            .lessor
                            .remaining(id, now)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or(granted);
                        LeaseReply::TimeToLive(remaining, granted)
                    }
                }
            }
        }
    }
}

fn is_connect_failure(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && {
        let msg = status.message().to_ascii_lowercase();
        msg.contains("connect") || msg.contains("refused")
    }
}

fn into_result(r: CommandResult) -> Result<CommandResult> {
    match r {
        CommandResult::Failed(e) => Err(e.into()),
        other => Ok(other),
    }
}
