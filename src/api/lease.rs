//! Lease: Grant and Revoke through Raft; KeepAlive and TimeToLive from the leader's lessor.

use std::sync::Arc;

use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::command::Command;
use crate::error::Error;
use crate::lease::MAX_TTL_SECS;
use crate::peer::{LeaseCall, LeaseReply};
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::*;
use crate::server::Server;

/// Keep-alive responses queued per stream before the stream applies backpressure.
const KEEPALIVE_QUEUE_MAX: usize = 16;

fn unexpected(reply: LeaseReply) -> Status {
    Error::Internal(format!("unexpected lease reply {reply:?}")).into()
}

pub struct LeaseService {
    pub server: Arc<Server>,
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let creds = super::credentials(&req);
        let req = req.into_inner();
        if req.ttl > MAX_TTL_SECS {
            return Err(Error::LeaseTtlTooLarge.into());
        }
        let cmd = Command::LeaseGrant {
            id: req.id,
            ttl_secs: req.ttl,
        };
        Ok(Response::new(self.server.request_as(&creds, cmd).await?))
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let creds = super::credentials(&req);
        let id = req.into_inner().id;
        // WRITE on every attached key, checked when the revoke is applied.
        let cmd = Command::LeaseRevoke { id };
        Ok(Response::new(self.server.request_as(&creds, cmd).await?))
    }

    type LeaseKeepAliveStream = ReceiverStream<Result<LeaseKeepAliveResponse, Status>>;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(KEEPALIVE_QUEUE_MAX);
        let server = self.server.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                let reply = match server.lease_call(LeaseCall::KeepAlive(req.id)).await {
                    Ok(LeaseReply::KeepAlive(ttl)) => Ok(LeaseKeepAliveResponse {
                        header: Some(server.header()),
                        id: req.id,
                        ttl,
                    }),
                    Ok(other) => Err(unexpected(other)),
                    Err(e) => Err(e.into()),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = req.into_inner();
        let (ttl, granted) = match self
            .server
            .lease_call(LeaseCall::TimeToLive(req.id))
            .await?
        {
            LeaseReply::TimeToLive(ttl, granted) => (ttl, granted),
            other => return Err(unexpected(other)),
        };
        let keys = if req.keys && ttl >= 0 {
            self.server.lease_keys(req.id)
        } else {
            Vec::new()
        };
        Ok(Response::new(LeaseTimeToLiveResponse {
            header: Some(self.server.header()),
            id: req.id,
            ttl,
            granted_ttl: granted,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        _req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .server
            .lease_ids()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.server.header()),
            leases,
        }))
    }
}
