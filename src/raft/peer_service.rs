//! The peer gRPC service: Raft messages in, one-line forwards into `Raft`, plus the three calls
//! a follower makes of its leader (forwarded writes, read index, lease calls).

use std::sync::Arc;

use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use serde::Serialize;
use tonic::{Request, Response, Status, Streaming};

use super::log_store::{decode, encode};
use super::typ::{Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::command::Command;
use crate::proto::peer::peer_server::Peer;
use crate::proto::peer::Payload;
use crate::server::{LeaseCall, Server};

/// A snapshot larger than this is refused rather than buffered without bound.
const SNAPSHOT_MAX_BYTES: usize = 8 << 30;

pub struct PeerService {
    pub server: Arc<Server>,
}

fn bad(e: impl ToString) -> Status {
    Status::invalid_argument(e.to_string())
}

fn reply<T: Serialize>(v: &T) -> Result<Response<Payload>, Status> {
    Ok(Response::new(Payload {
        data: encode(v).map_err(|e| Status::internal(e.to_string()))?,
    }))
}

fn stopped(e: impl ToString) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.into_inner().data).map_err(bad)?;
        self.server.touch_leader_contact();
        let resp = self
            .server
            .raft
            .append_entries(rpc)
            .await
            .map_err(stopped)?;
        reply(&resp)
    }

    async fn vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: VoteRequest<TypeConfig> = decode(&req.into_inner().data).map_err(bad)?;
        let resp = self.server.raft.vote(rpc).await.map_err(stopped)?;
        reply(&resp)
    }

    async fn pre_vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: VoteRequest<TypeConfig> = decode(&req.into_inner().data).map_err(bad)?;
        let resp = self.server.raft.pre_vote(rpc).await.map_err(stopped)?;
        reply(&resp)
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<Payload>>,
    ) -> Result<Response<Payload>, Status> {
        let mut stream = req.into_inner();
        let head = stream
            .next()
            .await
            .ok_or_else(|| bad("empty snapshot stream"))??;
        let (vote, meta): (Vote, SnapshotMeta) = decode(&head.data).map_err(bad)?;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if data.len() + chunk.data.len() > SNAPSHOT_MAX_BYTES {
                return Err(Status::resource_exhausted("snapshot too large"));
            }
            data.extend_from_slice(&chunk.data);
        }
        let snapshot = Snapshot {
            meta,
            snapshot: data,
        };
        let resp = self
            .server
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(stopped)?;
        reply(&resp)
    }

    async fn transfer_leader(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let rpc: TransferLeaderRequest<TypeConfig> = decode(&req.into_inner().data).map_err(bad)?;
        let resp = self
            .server
            .raft
            .handle_transfer_leader(rpc)
            .await
            .map_err(stopped)?;
        reply(&resp)
    }

    async fn forward(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let cmd: Command = decode(&req.into_inner().data).map_err(bad)?;
        let result = self.server.propose_local(cmd).await;
        reply(&result)
    }

    async fn read_index(&self, _req: Request<Payload>) -> Result<Response<Payload>, Status> {
        reply(&self.server.leader_read_index().await)
    }

    async fn lease_keep_alive(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let call: LeaseCall = decode(&req.into_inner().data).map_err(bad)?;
        reply(&self.server.lease_call_as_leader(&call).await)
    }
}
