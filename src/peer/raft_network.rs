//! Raft replication to peers: openraft's `RaftNetworkFactory` over the shared `PeerClients`.
//!
//! Every call is bounded by openraft's soft TTL; a refused or cut connection is `Unreachable`
//! (openraft backs off), any other failure a `NetworkError` (openraft retries). After a timeout
//! or a failure the channel is forgotten, so the next call redials.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::PeerClients;
use crate::proto::peer::peer_client::PeerClient;
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};
use crate::raft::rejoin::Admission;
use crate::raft::typ::{Member, NodeId, Snapshot, TypeConfig, Vote};

/// Snapshot chunks stay well under gRPC's message limit.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

pub struct NetworkFactory {
    self_id: NodeId,
    clients: Arc<PeerClients>,
    rpc_timeout_min: Duration,
    admission: Arc<Admission>,
}

impl NetworkFactory {
    /// `rpc_timeout_min` bounds an RPC from below (the member's election timeout): openraft
    /// asks for append-entries and heartbeats to end within 3/4 of a heartbeat interval, which
    /// a link whose round trip is longer than that (another zone; the simulator's delays) never
    /// meets, so every append would time out, be redialled and retried, and nothing would
    /// commit. A slow answer within an election timeout is still an answer.
    pub fn new(
        self_id: NodeId,
        clients: Arc<PeerClients>,
        rpc_timeout_min: Duration,
        admission: Arc<Admission>,
    ) -> NetworkFactory {
        NetworkFactory {
            self_id,
            clients,
            rpc_timeout_min,
            admission,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        PeerConnection {
            self_id: self.self_id,
            target,
            member: node.clone(),
            clients: self.clients.clone(),
            rpc_timeout_min: self.rpc_timeout_min,
            admission: self.admission.clone(),
        }
    }
}

pub struct PeerConnection {
    self_id: NodeId,
    target: NodeId,
    member: Member,
    clients: Arc<PeerClients>,
    rpc_timeout_min: Duration,
    admission: Arc<Admission>,
}

fn unreachable(msg: impl ToString) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other(msg.to_string())))
}

impl PeerConnection {
    fn client(&self) -> Result<PeerClient<Channel>, RPCError<TypeConfig>> {
        self.clients
            .client(self.target, &self.member)
            .map_err(unreachable)
    }

    /// A stalled or failed stream may be dead for good: redial next time.
    fn forget(&self) {
        self.clients.forget(&self.member);
    }

    async fn call<Req, Resp, F, Fut>(
        &mut self,
        req: &Req,
        option: &RPCOption,
        f: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(PeerClient<Channel>, Payload) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Payload>, tonic::Status>>,
    {
        let client = self.client()?;
        let data = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let ttl = option.soft_ttl().max(self.rpc_timeout_min);
        let res = crate::clock::timeout(ttl, f(client, Payload { data })).await;
        let resp = match res {
            Err(_) => {
                self.forget();
                return Err(RPCError::Timeout(Timeout {
                    action: openraft::network::RPCTypes::AppendEntries,
                    id: self.self_id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
            Ok(Err(status)) => {
                if status.code() == tonic::Code::Unavailable {
                    self.forget();
                    return Err(unreachable(status.message()));
                }
                return Err(RPCError::Network(NetworkError::new(&io::Error::other(
                    status.message().to_string(),
                ))));
            }
            Ok(Ok(resp)) => resp.into_inner(),
        };
        let resp = decode(&resp.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.note_heard()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        Ok(resp)
    }

    /// Records on disk that the target answered, before Raft may count the answer (see
    /// `raft::heard`).
    fn note_heard(&self) -> io::Result<()> {
        self.admission.heard.note(self.target)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, p| async move {
            c.append_entries(p).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, p| async move { c.vote(p).await })
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, p| async move { c.pre_vote(p).await })
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&req, &option, |mut c, p| async move {
            c.transfer_leader(p).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(rpc_to_streaming)?;
        let head = encode(&(vote, snapshot.meta.clone()))
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let mut frames = vec![Payload { data: head }];
        frames.extend(
            snapshot
                .snapshot
                .chunks(SNAPSHOT_CHUNK_BYTES)
                .map(|c| Payload { data: c.to_vec() }),
        );
        let fut = client.install_snapshot(futures::stream::iter(frames));
        let resp = match crate::clock::timeout(option.hard_ttl(), fut).await {
            Err(_) => {
                self.forget();
                return Err(StreamingError::Network(NetworkError::new(
                    &io::Error::other("snapshot transfer timed out"),
                )));
            }
            Ok(Err(status)) => {
                self.forget();
                return Err(StreamingError::Network(NetworkError::new(
                    &io::Error::other(status.message().to_string()),
                )));
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let resp =
            decode(&resp.data).map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        self.note_heard()
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        Ok(resp)
    }
}

fn rpc_to_streaming(e: RPCError<TypeConfig>) -> StreamingError<TypeConfig> {
    match e {
        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
        RPCError::Timeout(t) => StreamingError::Timeout(t),
        RPCError::Network(n) => StreamingError::Network(n),
        RPCError::RemoteError(r) => {
            StreamingError::Network(NetworkError::new(&io::Error::other(r.to_string())))
        }
    }
}
