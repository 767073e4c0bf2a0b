//! Cluster: membership as Raft holds it, with each member's published name and client URLs.
//! Add/remove/update/promote are Raft membership changes made on the leader.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;
use tonic::{Request, Response, Status};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::ChangeMembers;

use crate::config::{member_id, url_host_port};
use crate::error::Error;
use crate::proto::etcdserverpb::cluster_client::ClusterClient;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::*;
use crate::raft::typ::Member as RaftMember;
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

/// How long a membership change may take before the caller hears "request timed out".
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

impl ClusterService {
    /// Membership changes run on the leader; a follower relays the request to the leader's
    /// client URL (as published) and returns its answer.
    async fn on_leader<T, F, Fut, G, GFut>(&self, here: F, relay: G) -> Result<T, Status>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
        G: FnOnce(ClusterClient<tonic::transport::Channel>) -> GFut,
        GFut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        if self.server.is_leader() {
            return here().await;
        }
        let leader = self.server.leader().ok_or(Error::NoLeader)?;
        let url = self
            .server
            .sm
            .read()
            .members
            .get(&leader)
            .and_then(|m| m.client_urls.first().cloned())
            .ok_or(Error::NoLeader)?;
        let channel = self
            .server
            .transport
            .net
            .channel(&url)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let fut = relay(ClusterClient::new(channel));
        match tokio::time::timeout(CHANGE_TIMEOUT, fut).await {
            Ok(r) => r.map(|r| r.into_inner()),
            Err(_) => Err(Error::Timeout.into()),
        }
    }

    fn header(&self) -> Option<ResponseHeader> {
        let mut h = self.server.header();
        h.revision = 0;
        Some(h)
    }

    async fn change(&self, change: ChangeMembers<u64, RaftMember>) -> Result<(), Status> {
        let fut = self.server.raft.change_membership(change, false);
        match tokio::time::timeout(CHANGE_TIMEOUT, fut).await {
            Err(_) => Err(Error::Timeout.into()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Status::failed_precondition(format!(
                "etcdserver: re-configuration failed: {e}"
            ))),
        }
    }

    fn lookup(&self, id: u64) -> Result<(RaftMember, bool), Status> {
        let membership = self
            .server
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let node = membership
            .membership()
            .get_node(&id)
            .cloned()
            .ok_or(Error::MemberNotFound)?;
        let is_voter = membership.voter_ids().any(|v| v == id);
        Ok((node, is_voter))
    }
}

fn check_peer_urls(urls: &[String]) -> Result<(), Status> {
    if urls.is_empty() || urls.iter().any(|u| url_host_port(u).is_err()) {
        return Err(Status::invalid_argument(
            "etcdserver: given member URLs are invalid",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        r: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let req = r.into_inner();
        let relayed = req.clone();
        let resp = self
            .on_leader(
                || async {
                    check_peer_urls(&req.peer_ur_ls)?;
                    let taken = self
                        .members()
                        .iter()
                        .any(|m| m.peer_ur_ls.iter().any(|u| req.peer_ur_ls.contains(u)));
                    if taken {
                        return Err(Status::failed_precondition(
                            "etcdserver: Peer URLs already exists",
                        ));
                    }
                    let id = member_id(&req.peer_ur_ls, &self.server.cluster_token);
                    let node = RaftMember {
                        name: String::new(),
                        peer_urls: req.peer_ur_ls.clone(),
                    };
                    let change = if req.is_learner {
                        ChangeMembers::AddNodes(BTreeMap::from([(id, node)]))
                    } else {
                        // etcd counts a new voter toward quorum at once; so does this.
                        ChangeMembers::AddVoters(BTreeMap::from([(id, node)]))
                    };
                    self.change(change).await?;
                    Ok(MemberAddResponse {
                        header: self.header(),
                        member: Some(Member {
                            id,
                            name: String::new(),
                            peer_ur_ls: req.peer_ur_ls.clone(),
                            client_ur_ls: Vec::new(),
                            is_learner: req.is_learner,
                        }),
                        members: self.members(),
                    })
                },
                |mut c| async move { c.member_add(relayed).await },
            )
            .await?;
        Ok(Response::new(resp))
    }

    async fn member_remove(
        &self,
        r: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let req = r.into_inner();
        let resp = self
            .on_leader(
                || async {
                    let (_, is_voter) = self.lookup(req.id)?;
                    let ids = BTreeSet::from([req.id]);
                    let change = if is_voter {
                        ChangeMembers::RemoveVoters(ids)
                    } else {
                        ChangeMembers::RemoveNodes(ids)
                    };
                    self.change(change).await?;
                    Ok(MemberRemoveResponse {
                        header: self.header(),
                        members: self.members(),
                    })
                },
                |mut c| async move { c.member_remove(req).await },
            )
            .await?;
        Ok(Response::new(resp))
    }

    async fn member_update(
        &self,
        r: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let req = r.into_inner();
        let relayed = req.clone();
        let resp = self
            .on_leader(
                || async {
                    check_peer_urls(&req.peer_ur_ls)?;
                    let (mut node, _) = self.lookup(req.id)?;
                    node.peer_urls = req.peer_ur_ls.clone();
                    self.change(ChangeMembers::SetNodes(BTreeMap::from([(req.id, node)])))
                        .await?;
                    Ok(MemberUpdateResponse {
                        header: self.header(),
                        members: self.members(),
                    })
                },
                |mut c| async move { c.member_update(relayed).await },
            )
            .await?;
        Ok(Response::new(resp))
    }

    async fn member_list(
        &self,
        _r: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        // etcd leaves revision unset on calls that do not touch the KV store.
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        r: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let req = r.into_inner();
        let resp = self
            .on_leader(
                || async {
                    let (_, is_voter) = self.lookup(req.id)?;
                    if is_voter {
                        return Err(Status::failed_precondition(
                            "etcdserver: can only promote a learner member",
                        ));
                    }
                    self.change(ChangeMembers::AddVoterIds(BTreeSet::from([req.id])))
                        .await?;
                    Ok(MemberPromoteResponse {
                        header: self.header(),
                        members: self.members(),
                    })
                },
                |mut c| async move { c.member_promote(req).await },
            )
            .await?;
        Ok(Response::new(resp))
    }
}
