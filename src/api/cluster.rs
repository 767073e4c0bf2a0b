//! Cluster: member list, add, remove, update, promote. Changes run on the leader (see
//! `server::members`); a follower relays the request to the leader's client URL and returns
//! its answer, as etcd's members do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use crate::clock;
use crate::error::Error;
use crate::peer::PeerChannel;
use crate::proto::etcdserverpb::cluster_client::ClusterClient;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::*;
use crate::server::Server;

/// How long a relayed change may take, as the leader bounds its own.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ClusterService {
    pub server: Arc<Server>,
}

impl ClusterService {
    /// Runs `here` on the leader, or relays the request to it with `relay`.
    async fn on_leader<T, Fut, RFut>(
        &self,
        here: impl FnOnce() -> Fut,
        relay: impl FnOnce(ClusterClient<PeerChannel>) -> RFut,
    ) -> Result<Response<T>, Status>
    where
        Fut: Future<Output = Result<T, Error>>,
        RFut: Future<Output = Result<Response<T>, Status>>,
    {
        if self.server.is_leader() {
            return Ok(Response::new(here().await?));
        }
        let channel = self.server.dial_leader_client()?;
        match clock::timeout(RELAY_TIMEOUT, relay(ClusterClient::new(channel))).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout.into()),
        }
    }

    /// etcd leaves revision unset on calls that do not touch the KV store.
    fn header(&self) -> Option<ResponseHeader> {
        let mut h = self.server.header();
        h.revision = 0;
        Some(h)
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let req = r.into_inner();
        let relayed = req.clone();
        self.on_leader(
            || async {
                let member = self
                    .server
                    .add_member(req.peer_ur_ls, req.is_learner)
                    .await?;
                Ok(MemberAddResponse {
                    header: self.header(),
                    member: Some(member),
                    members: self.server.members(),
                })
            },
            |mut c| async move { c.member_add(relayed).await },
        )
        .await
    }

    async fn member_remove(
        &self,
        r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let req = r.into_inner();
        self.on_leader(
            || async {
                self.server.remove_member(req.id).await?;
                Ok(MemberRemoveResponse {
                    header: self.header(),
                    members: self.server.members(),
                })
            },
            |mut c| async move { c.member_remove(req).await },
        )
        .await
    }

    async fn member_update(
        &self,
        r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let req = r.into_inner();
        let relayed = req.clone();
        self.on_leader(
            || async {
                self.server.update_member(req.id, req.peer_ur_ls).await?;
                Ok(MemberUpdateResponse {
                    header: self.header(),
                    members: self.server.members(),
                })
            },
            |mut c| async move { c.member_update(relayed).await },
        )
        .await
    }

    async fn member_list(
        &self,
        r: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        // etcd 3.5's `linearizable`: the list reflects every change committed before the call
        // (a cut-off member that still believes it leads cannot answer it).
        if r.into_inner().linearizable {
            self.server.read_barrier().await?;
        }
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.server.members(),
        }))
    }

    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let req = r.into_inner();
        self.on_leader(
            || async {
                self.server.promote_member(req.id).await?;
                Ok(MemberPromoteResponse {
                    header: self.header(),
                    members: self.server.members(),
                })
            },
            |mut c| async move { c.member_promote(req).await },
        )
        .await
    }
}
