//! Cluster: MemberList from Raft's membership and the members' published attributes.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;
use tonic::{Request, Response, Status};

use super::status::unimplemented;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::*;
use crate::server::Server;

pub struct ClusterService {
    pub server: Arc<Server>,
}

impl ClusterService {
    pub fn members(&self) -> Vec<Member> {
        let membership = self
            .server
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let attrs = self.server.sm.read().members.clone();
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
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(unimplemented("Cluster.MemberAdd"))
    }

    async fn member_remove(
        &self,
        _r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(unimplemented("Cluster.MemberRemove"))
    }

    async fn member_update(
        &self,
        _r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(unimplemented("Cluster.MemberUpdate"))
    }

    async fn member_list(
        &self,
        _r: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let mut header = self.server.header();
        // etcd leaves revision unset on calls that do not touch the KV store.
        header.revision = 0;
        Ok(Response::new(MemberListResponse {
            header: Some(header),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        _r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(unimplemented("Cluster.MemberPromote"))
    }
}
