//! Maintenance: Status, Alarm, Defragment, Hash, HashKV, Snapshot, MoveLeader.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::credentials;
use super::status::unimplemented;
use crate::error::Error;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::*;
use crate::server::Server;

/// The version reported to clients. Kubernetes parses it as semver and enables watch progress
/// requests only from 3.5.13 on, so it must be a 3.5-line version no lower than that.
pub const ETCD_VERSION: &str = "3.5.16";

/// Snapshot stream chunk size, as etcd sends.
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

pub struct MaintenanceService {
    pub server: Arc<Server>,
}

impl MaintenanceService {
    pub fn status(&self) -> StatusResponse {
        let raft = self.server.raft_status();
        let (db_size, in_use) = self.server.db_size_bytes();
        let mut errors = Vec::new();
        if raft.leader.is_none() {
            errors.push(Error::NoLeader.to_string());
        }
        // As etcd lists them: each alarm's protobuf text form.
        for a in self.server.alarms() {
            let name = AlarmType::try_from(a.alarm).map_or("UNKNOWN", |t| t.as_str_name());
            errors.push(format!("memberID:{} alarm:{name} ", a.member_id));
        }
        StatusResponse {
            header: Some(self.server.header()),
            version: ETCD_VERSION.to_string(),
            db_size: db_size as i64,
            leader: raft.leader.unwrap_or(0),
            raft_index: raft.commit_index,
            raft_term: raft.term,
            raft_applied_index: raft.applied_index,
            errors,
            db_size_in_use: in_use.min(db_size.max(in_use)) as i64,
            is_learner: false,
            storage_version: String::new(),
            db_size_quota: self.server.quota_bytes() as i64,
            downgrade_info: None,
        }
    }
}

type SnapshotStream = futures::stream::BoxStream<'static, Result<SnapshotResponse, Status>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let req = req.into_inner();
        let alarm = AlarmType::try_from(req.alarm).unwrap_or(AlarmType::None);
        let resp = match alarm_request::AlarmAction::try_from(req.action) {
            Ok(alarm_request::AlarmAction::Activate) if alarm != AlarmType::None => {
                self.server.set_alarm(req.member_id, alarm, true).await?
            }
            Ok(alarm_request::AlarmAction::Deactivate) if alarm != AlarmType::None => {
                self.server.set_alarm(req.member_id, alarm, false).await?
            }
            // GET, and (as etcd) a change naming no alarm type, which changes nothing.
            _ => AlarmResponse {
                header: Some(self.server.header()),
                alarms: self.server.alarms(),
            },
        };
        Ok(Response::new(resp))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(MaintenanceService::status(self)))
    }

    async fn defragment(
        &self,
        req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.server.settle_token(&credentials(&req)).await;
        self.server.check_admin(&credentials(&req))?;
        Ok(Response::new(DefragmentResponse {
            header: Some(self.server.header()),
        }))
    }

    async fn hash(&self, req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.server.settle_token(&credentials(&req)).await;
        self.server.check_admin(&credentials(&req))?;
        Ok(Response::new(HashResponse {
            header: Some(self.server.header()),
            hash: self.server.kv_hash().hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        self.server.settle_token(&credentials(&req)).await;
        self.server.check_admin(&credentials(&req))?;
        let h = self.server.kv_hash();
        Ok(Response::new(HashKvResponse {
            header: Some(self.server.header_at(h.revision)),
            hash: h.hash,
            compact_revision: h.compact_revision,
            hash_revision: h.revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        // etcd 3.4 lets only an admin take these once auth is on.
        self.server.settle_token(&credentials(&req)).await;
        self.server.check_admin(&credentials(&req))?;
        // A consistent copy of this member's applied state as etcd's backend database (bbolt,
        // whole 4 KiB pages, so a multiple of etcdctl's 512-byte sectors), then its SHA-256 as
        // the last message, as etcd streams it.
        use sha2::Digest;
        let blob = self.server.snapshot_db()?;
        let digest = sha2::Sha256::digest(&blob).to_vec();
        let header = self.server.header();
        let total = blob.len() + digest.len();
        // Each chunk is copied out as it is sent, not all of them before the first goes: the
        // database is as large as the store.
        let chunks = blob.len().div_ceil(SNAPSHOT_CHUNK_BYTES);
        let frames = (0..=chunks).map(move |i| {
            let (chunk, sent) = match i < chunks {
                true => {
                    let end = blob.len().min((i + 1) * SNAPSHOT_CHUNK_BYTES);
                    (blob[i * SNAPSHOT_CHUNK_BYTES..end].to_vec(), end)
                }
                false => (digest.clone(), total),
            };
            Ok(SnapshotResponse {
                header: Some(header),
                remaining_bytes: (total - sent) as u64,
                blob: chunk,
                version: ETCD_VERSION.to_string(),
            })
        });
        Ok(Response::new(Box::pin(futures::stream::iter(frames))))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.server.move_leader(req.into_inner().target_id).await?;
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
