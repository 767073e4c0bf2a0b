//! Maintenance: Status, Alarm, Defragment, Hash, HashKV, Snapshot, MoveLeader.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;
use tonic::{Request, Response, Status};

use super::status::unimplemented;
use crate::error::Error;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::*;
use crate::raft::log_store::encode;
use crate::server::Server;

/// The version reported to clients. Kubernetes parses it as semver and enables watch progress
/// requests only from 3.5.13 on, so it must be a 3.5-line version no lower than that.
pub const ETCD_VERSION: &str = "3.5.16";

/// Snapshot stream chunk size, as etcd sends.
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;
/// etcdctl checks that a snapshot is whole pages plus a 32-byte SHA-256.
const SNAPSHOT_PAGE_BYTES: usize = 512;

pub struct MaintenanceService {
    pub server: Arc<Server>,
}

impl MaintenanceService {
    pub fn status(&self) -> StatusResponse {
        let m = self.server.raft.metrics().borrow_watched().clone();
        let mut errors = Vec::new();
        // A cut-off member still names its old leader; report what it can vouch for, as etcd's
        // raft clears its leader once it stops hearing from it.
        let live = self
            .server
            .has_live_leader(3 * self.server.election_timeout);
        if !live {
            errors.push(Error::NoLeader.to_string());
        }
        let db_size = self.server.backend.size_bytes() as i64;
        let in_use = self.server.sm.read().store.approximate_size_bytes() as i64;
        StatusResponse {
            header: Some(self.server.header()),
            version: ETCD_VERSION.to_string(),
            db_size,
            leader: if live {
                m.current_leader.unwrap_or(0)
            } else {
                0
            },
            raft_index: m.local_committed.map(|l| l.index).unwrap_or(0),
            raft_term: m.current_term,
            raft_applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            errors,
            db_size_in_use: in_use.min(db_size.max(in_use)),
            is_learner: false,
            storage_version: String::new(),
            db_size_quota: 2 << 30,
            downgrade_info: None,
        }
    }
}

type SnapshotStream = futures::stream::BoxStream<'static, Result<SnapshotResponse, Status>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, _req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        // No quota alarms are raised yet, so GET is empty and (de)activation is a no-op.
        Ok(Response::new(AlarmResponse {
            header: Some(self.server.header()),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(MaintenanceService::status(self)))
    }

    async fn defragment(
        &self,
        _req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Ok(Response::new(DefragmentResponse {
            header: Some(self.server.header()),
        }))
    }

    async fn hash(&self, _req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let hash = self.server.sm.read().store.hash();
        Ok(Response::new(HashResponse {
            header: Some(self.server.header()),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        _req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let (hash, compact, rev) = {
            let s = self.server.sm.read();
            (
                s.store.hash(),
                s.store.compact_revision(),
                s.store.revision(),
            )
        };
        Ok(Response::new(HashKvResponse {
            header: Some(self.server.header_at(rev)),
            hash,
            compact_revision: compact,
            hash_revision: rev,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _req: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        // A consistent copy of this member's applied state in Quorum's own format, framed as
        // etcdctl expects a database: padded to 512-byte pages, then its SHA-256 as the last
        // message. `etcdctl snapshot save` verifies and writes it; etcd's `snapshot status` and
        // `restore` cannot read it (they expect bbolt).
        use sha2::Digest;
        let mut blob =
            encode(&*self.server.sm.read()).map_err(|e| Status::internal(e.to_string()))?;
        blob.resize(
            blob.len().div_ceil(SNAPSHOT_PAGE_BYTES) * SNAPSHOT_PAGE_BYTES,
            0,
        );
        let digest = sha2::Sha256::digest(&blob).to_vec();
        let header = self.server.header();
        let total = blob.len() + digest.len();
        let mut sent = 0usize;
        let mut frames: Vec<Result<SnapshotResponse, Status>> = Vec::new();
        for chunk in blob.chunks(SNAPSHOT_CHUNK_BYTES).chain([digest.as_slice()]) {
            sent += chunk.len();
            frames.push(Ok(SnapshotResponse {
                header: Some(header),
                remaining_bytes: (total - sent) as u64,
                blob: chunk.to_vec(),
                version: ETCD_VERSION.to_string(),
            }));
        }
        Ok(Response::new(Box::pin(futures::stream::iter(frames))))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        let target = req.into_inner().target_id;
        if !self.server.is_leader() {
            return Err(Error::NotLeader.into());
        }
        let known = self
            .server
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .voter_ids()
            .any(|id| id == target);
        if !known {
            return Err(Error::BadLeaderTransferee.into());
        }
        if target != self.server.id {
            self.server
                .raft
                .trigger()
                .transfer_leader(target)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let wait = self.server.raft.wait(Some(self.server.request_timeout));
            wait.current_leader(target, "move leader")
                .await
                .map_err(|_| Error::Timeout)?;
        }
        Ok(Response::new(MoveLeaderResponse {
            header: Some(self.server.header()),
        }))
    }

    async fn downgrade(
        &self,
        _req: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(unimplemented("Maintenance.Downgrade"))
    }
}
