//! Election (v3electionpb): campaigns queue by create revision under `<name>/`; the leader is the
//! earliest; proclaim and resign are guarded by the leader key's create revision, so a deposed
//! leader cannot act ("election: not leader").

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::queue;
use crate::error::Error;
use crate::proto::etcdserverpb::TxnRequest;
use crate::proto::v3electionpb::election_server::Election;
use crate::proto::v3electionpb::*;
use crate::server::Server;

/// Leader changes buffered per Observe stream.
const OBSERVE_QUEUE_MAX: usize = 16;

pub struct ElectionService {
    pub server: Arc<Server>,
}

fn not_leader() -> Status {
    Error::ElectionNotLeader.into()
}

fn no_leader() -> Status {
    Error::ElectionNoLeader.into()
}

fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

impl ElectionService {
    async fn guarded(
        &self,
        leader: &LeaderKey,
        op: crate::proto::etcdserverpb::RequestOp,
    ) -> Result<bool, Status> {
        let resp = queue::txn(
            &self.server,
            TxnRequest {
                compare: vec![queue::create_revision_is(&leader.key, leader.rev)],
                success: vec![op],
                failure: Vec::new(),
            },
        )
        .await?;
        Ok(resp.succeeded)
    }
}

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let req = req.into_inner();
        let server = &self.server;
        let lease = match req.lease {
            0 => queue::session_lease(server).await?,
            l => l,
        };
        let prefix = prefix_of(&req.name);
        let key = [prefix.as_slice(), format!("{lease:x}").as_bytes()].concat();
        let (rev, existing) = queue::enqueue(server, &key, &req.value, lease).await?;
        let guard = queue::Withdraw::new(server.clone(), key.clone());
        let leader = LeaderKey {
            name: req.name.clone(),
            key: key.clone(),
            rev,
            lease,
        };
        // Re-campaigning with a new value proclaims it, as etcd does.
        if existing.is_some_and(|kv| kv.value != req.value)
            && !self
                .guarded(&leader, queue::put_op(&key, &req.value, lease))
                .await?
        {
            return Err(not_leader());
        }
        queue::wait_turn(server, &prefix, &key, rev).await?;
        guard.disarm();
        Ok(Response::new(CampaignResponse {
            header: Some(server.header()),
            leader: Some(leader),
        }))
    }

    async fn proclaim(
        &self,
        req: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let req = req.into_inner();
        let leader = req.leader.ok_or_else(not_leader)?;
        if !self
            .guarded(
                &leader,
                queue::put_op(&leader.key, &req.value, leader.lease),
            )
            .await?
        {
            return Err(not_leader());
        }
        Ok(Response::new(ProclaimResponse {
            header: Some(self.server.header()),
        }))
    }

    async fn leader(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let name = req.into_inner().name;
        let kv = queue::first_in_line(&self.server, &prefix_of(&name)).await?;
        match kv {
            Some(kv) => Ok(Response::new(LeaderResponse {
                header: Some(self.server.header()),
                kv: Some(kv),
            })),
            None => Err(no_leader()),
        }
    }

    type ObserveStream = ReceiverStream<Result<LeaderResponse, Status>>;

    async fn observe(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let prefix = prefix_of(&req.into_inner().name);
        let server = self.server.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(OBSERVE_QUEUE_MAX);
        tokio::spawn(async move {
            let mut revisions = server.subscribe_revision();
            let mut last: Option<(Vec<u8>, i64)> = None;
            loop {
                let current = match queue::first_in_line(&server, &prefix).await {
                    Ok(kv) => kv,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                if let Some(kv) = current {
                    let id = (kv.key.clone(), kv.mod_revision);
                    if last.as_ref() != Some(&id) {
                        last = Some(id);
                        let resp = LeaderResponse {
                            header: Some(server.header()),
                            kv: Some(kv),
                        };
                        if tx.send(Ok(resp)).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::select! {
                    changed = revisions.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn resign(
        &self,
        req: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let leader = req.into_inner().leader.ok_or_else(not_leader)?;
        // etcd resigns with a guarded delete and does not complain if the guard fails.
        self.guarded(&leader, queue::delete_op(&leader.key)).await?;
        Ok(Response::new(ResignResponse {
            header: Some(self.server.header()),
        }))
    }
}
