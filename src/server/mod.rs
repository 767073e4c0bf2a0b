//! The facade the API calls: propose a command, pass a read barrier, reach the leader, and
//! answer for this member (its headers, status, membership, leases).
//!
//! A member behaves as an etcd member does: any member accepts writes and linearizable reads.
//! A follower forwards a write to the leader over the peer channel and waits for the result; a
//! linearizable read on a follower asks the leader for a read index and waits until it has
//! applied that far, then reads locally. Every wait is bounded by the request timeout, on the
//! member's own clock (`clock`), so a paused member's waits stop with it.
//!
//! **Boundary:** the API sees methods, never the Raft handle, the state machine or the peer
//! channels; the fields are private. One concern per file: `write`, `read`, `lease`,
//! `members`, `maintenance`, `auth`.

mod auth;
mod idle_snapshot;
mod lease;
mod maintenance;
mod members;
mod metrics;
mod quota;
mod read;
mod read_queue;
mod write;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;

use crate::clock::{self, LocalInstant};
use crate::command::Command;
use crate::config::{AuthConfig, Config};
use crate::error::Error;
use crate::lease::Lessor;
use crate::metrics::Metrics;
use crate::peer::{
    ConfigView, HeardReply, LeaseCall, LeaseReply, PeerClients, PeerHandler, Proposed, ReadLogId,
    Refusal,
};
use crate::plant::Plants;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::raft::rejoin::Admission;
use crate::raft::state_machine::StateMachine;
use crate::raft::typ::{Member, NodeId, Raft, RaftMetrics};
use crate::storage::MemberStorage;

pub use maintenance::{KvHash, RaftStatus};

/// How long to wait before asking again who leads, while an election runs.
const LEADER_POLL: Duration = Duration::from_millis(50);

pub struct Server {
    plants: Plants,
    id: NodeId,
    cluster_id: u64,
    /// `--initial-cluster-token`: new members' ids derive from it, as etcd's do.
    cluster_token: String,
    name: String,
    raft: Raft,
    sm: StateMachine,
    lessor: Arc<Lessor>,
    storage: MemberStorage,
    /// etcd's: 5 s plus two election timeouts.
    request_timeout: Duration,
    election_timeout: Duration,
    peers: Arc<PeerClients>,
    metrics: Arc<Metrics>,
    /// `--quota-backend-bytes`: the key space may not grow past this.
    quota_bytes: u64,
    /// When this member last received append-entries (a heartbeat) from a leader.
    leader_contact: Mutex<Option<LocalInstant>>,
    /// Token TTL and bcrypt cost.
    auth: AuthConfig,
    /// Whether Raft messages are answered yet, and whom this member has heard from.
    admission: Arc<Admission>,
    /// Linearizable reads waiting for a shared read barrier.
    reads: read_queue::ReadQueue,
}

impl Server {
    pub fn new(
        config: &Config,
        raft: Raft,
        sm: StateMachine,
        storage: MemberStorage,
        peers: Arc<PeerClients>,
        metrics: Arc<Metrics>,
        admission: Arc<Admission>,
    ) -> Self {
        let election_timeout = config.election_timeout();
        Self {
            plants: config.plants,
            id: config.member_id(),
            cluster_id: config.cluster_id(),
            cluster_token: config.initial_cluster_token.clone(),
            name: config.name.clone(),
            raft,
            lessor: sm.lessor().clone(),
            sm,
            storage,
            request_timeout: Duration::from_secs(5) + 2 * election_timeout,
            election_timeout,
            peers,
            metrics,
            quota_bytes: config.quota_backend_bytes,
            leader_contact: Mutex::new(None),
            auth: config.auth,
            admission,
            reads: read_queue::ReadQueue::new(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn election_timeout(&self) -> Duration {
        self.election_timeout
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

    /// Raft's own view of this member, for observers (tests, the simulator's checkers).
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow_watched().clone()
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

    /// Whether a leader was in touch within `within`: for a leader, a quorum acknowledged it;
    /// for a follower, the leader's heartbeats arrived. openraft keeps a cut-off member's idea of
    /// the leader (pre-vote never moves its term), so `leader()` alone would say yes forever.
    pub fn has_live_leader(&self, within: Duration) -> bool {
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

    /// Whether this member can vouch for a leader, as Status reports it: heard from within
    /// three election timeouts, the span after which etcd's raft forgets it.
    pub fn has_leader(&self) -> bool {
        self.has_live_leader(3 * self.election_timeout)
    }

    /// Why `/health` must say false, as etcd 3.5 words it; `None` when healthy.
    pub fn unhealthy_reason(&self) -> Option<String> {
        if let Some(a) = self.alarms().first() {
            let name = crate::proto::etcdserverpb::AlarmType::try_from(a.alarm)
                .map(|t| t.as_str_name())
                .unwrap_or("UNKNOWN");
            return Some(format!("ALARM {name}"));
        }
        (!self.has_leader()).then(|| "RAFT NO LEADER".to_string())
    }

    /// Stops Raft; requests in flight fail with "server stopped".
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }

    fn leader_member(&self) -> Option<(NodeId, Member)> {
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// When a request that starts now must have its answer.
    fn deadline(&self) -> LocalInstant {
        clock::now() + self.request_timeout
    }

    fn timed_out(&self) -> Error {
        if self.leader().is_none() {
            Error::NoLeader
        } else {
            Error::Timeout
        }
    }
}

/// Tries `attempt` until it answers or `deadline` passes on the member's clock, waiting
/// `LEADER_POLL` between tries. An attempt answers `None` when there is no one to ask yet (an
/// election is running, the leader refused); `None` back means the deadline passed.
async fn until<T, Fut>(deadline: LocalInstant, mut attempt: impl FnMut() -> Fut) -> Option<T>
where
    Fut: Future<Output = Option<T>>,
{
    loop {
        match clock::timeout_at(deadline, attempt()).await {
            Err(clock::Elapsed) => return None,
            Ok(Some(answer)) => return Some(answer),
            Ok(None) => {}
        }
        if clock::now() + LEADER_POLL >= deadline {
            return None;
        }
        clock::sleep(LEADER_POLL).await;
    }
}

#[tonic::async_trait]
impl PeerHandler for Server {
    fn raft(&self) -> &Raft {
        &self.raft
    }

    fn leader_contact(&self) {
        *self
            .leader_contact
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(clock::now());
    }

    async fn propose(&self, cmd: Command) -> std::result::Result<Proposed, Refusal> {
        self.propose_local(cmd).await
    }

    async fn read_index(&self) -> Option<ReadLogId> {
        self.leader_read_index().await
    }

    async fn lease_call(&self, call: LeaseCall) -> LeaseReply {
        self.lease_call_as_leader(&call).await
    }

    fn heard(&self, from: NodeId) -> HeardReply {
        let watch = self.raft.metrics();
        let metrics = watch.borrow_watched();
        HeardReply {
            heard: self.admission.heard.contains(from),
            has_log: metrics.last_log_index.unwrap_or(0) > 0,
            config: ConfigView::of(&metrics.membership_config),
            applied: ConfigView::of(&self.sm.read().last_membership),
        }
    }

    fn admitted(&self) -> bool {
        self.admission.admitted()
    }

    fn snapshot_spool(&self) -> std::io::Result<Option<std::fs::File>> {
        self.sm.scratch_file()
    }
}
