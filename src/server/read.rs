//! Reads: the read barrier that makes a local read linearizable (shared between reads by
//! `read_queue`), ranges over the applied state, and what watch sessions and lease queries
//! read.

use std::sync::Arc;

use openraft::errors::{LinearizableReadError, RaftError};
use openraft::raft::linearizable_read::Linearizer;
use openraft::ReadPolicy;

use super::{until, Server};
use crate::error::{Error, Result};
use crate::peer::ReadLogId;
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse};
use crate::proto::mvccpb::Event;
use crate::watch::session::{SessionContext, WatchPermit};

impl Server {
    /// One read barrier, begun now: returns once this member has applied everything
    /// committed when it began, as confirmed by the leader. Reads go through the shared
    /// queue (`read_barrier`), not here.
    pub(super) async fn barrier_now(&self) -> Result<()> {
        let answer = until(self.deadline(), || async move {
            match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => return Some(Ok(())),
                Err(RaftError::Fatal(_)) => return Some(Err(Error::Stopped)),
                Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => return None,
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => {}
            }
            let (leader, member) = self.leader_member()?;
            if leader == self.id {
                return None;
            }
            let read_log_id = self.peers.read_index(leader, &member).await?;
            let linearizer = Linearizer::new(self.id, read_log_id, None);
            match linearizer.try_await_ready(&self.raft, None).await {
                Ok(_) => Some(Ok(())),
                Err(_) => Some(Err(Error::Stopped)),
            }
        })
        .await;
        answer.unwrap_or_else(|| Err(self.timed_out()))
    }

    /// The leader's half of a follower read: confirm leadership, hand out the read index.
    pub(super) async fn leader_read_index(&self) -> Option<ReadLogId> {
        let linearizer = self
            .raft
            .get_read_linearizer(ReadPolicy::ReadIndex)
            .await
            .ok()?;
        Some(*linearizer.read_log_id())
    }

    /// A Range as etcd serves it: linearizable (after a read barrier) unless serializable.
    pub async fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        if !req.serializable && !self.plants.stale_read {
            self.read_barrier().await?;
        }
        self.range_local(req)
    }

    /// A Range over this member's applied state as it is now, with no barrier.
    pub fn range_local(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let (mut resp, revision) = {
            let state = self.sm.read();
            (state.store.range(req)?, state.store.revision())
        };
        resp.header = Some(self.header_at(revision));
        Ok(resp)
    }

    /// The events of revisions `start..=end` on `key`..`range_end` (etcd's range encoding),
    /// from this member's history; `Err` with the compact revision if compacted.
    pub fn events_between(
        &self,
        key: &[u8],
        range_end: &[u8],
        start: i64,
        end: i64,
    ) -> std::result::Result<Vec<Event>, i64> {
        let state = self.sm.read();
        state
            .store
            .events_between(key, range_end, start, end)
            .map_err(|_| state.store.compact_revision())
    }

    /// The store revision this member has applied.
    pub fn revision(&self) -> i64 {
        self.sm.read().store.revision()
    }

    /// The applied store revision, as it changes.
    pub fn subscribe_revision(&self) -> tokio::sync::watch::Receiver<i64> {
        self.sm.hub().subscribe_revision()
    }

    /// What a watch stream on this member reads: the hub, the history, headers, whether its
    /// caller may watch a range and, for `WithRequireLeader` streams, whether a leader is
    /// still in touch.
    pub fn watch_context(
        self: &Arc<Self>,
        require_leader: bool,
        permit: WatchPermit,
    ) -> SessionContext {
        let checker = self.clone();
        let has_leader = move || checker.has_leader();
        let stamper = self.clone();
        SessionContext {
            hub: self.sm.hub().clone(),
            history: Arc::new(self.sm.clone()),
            require_leader: require_leader
                .then(|| Arc::new(has_leader) as Arc<dyn Fn() -> bool + Send + Sync>),
            header: Arc::new(move |rev| stamper.header_at(rev)),
            permit,
        }
    }

    /// The keys attached to a lease, as the applied table holds them.
    pub fn lease_keys(&self, id: i64) -> Vec<Vec<u8>> {
        self.sm
            .read()
            .leases
            .get(id)
            .map(|r| r.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every lease the applied table holds, in id order.
    pub fn lease_ids(&self) -> Vec<i64> {
        self.sm.read().leases.ids().collect()
    }
}
