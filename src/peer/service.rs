//! The inbound half: each peer RPC decoded and handed on. Raft messages are one-line forwards
//! into openraft; the three calls a follower makes of its leader go to a `PeerHandler`.

use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status, Streaming};

use super::call_stream::{LeaderAnswer, LeaderCall};
use super::{HeardReply, LeaseCall, LeaseReply, Proposed, ReadLogId, Refusal, LOG_INDEX_KEY};
use crate::command::Command;
use crate::error::Error;
use crate::proto::peer::peer_server::Peer;
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};
use crate::raft::snapshot_data::Receiving;
use crate::raft::typ::{Runtime, Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::raft::{NodeId, Raft};

/// A snapshot larger than this is refused rather than buffered without bound.
const SNAPSHOT_MAX_BYTES: usize = 8 << 30;

/// What the peer service needs of the member it serves: its Raft, and the leader's side of
/// the calls followers make.
#[tonic::async_trait]
pub trait PeerHandler: Send + Sync + 'static {
    fn raft(&self) -> &Raft;
    /// Every append-entries (heartbeats included) is news that a leader is alive.
    fn leader_contact(&self);
    /// Proposes a follower's command here; refuses at once when this member does not lead.
    async fn propose(&self, cmd: Command) -> Result<Proposed, Refusal>;
    /// Confirms leadership and hands out the read index.
    async fn read_index(&self) -> Option<ReadLogId>;
    /// Answers a lease call with this member's lessor, if it leads.
    async fn lease_call(&self, call: LeaseCall) -> LeaseReply;
    /// Whether this member has heard from `from` before, and holds a log.
    fn heard(&self, from: NodeId) -> HeardReply;
    /// False while a member started on an empty data dir waits to learn whether it may take
    /// part in Raft at all: until then it answers no Raft message (it would vote and
    /// acknowledge with a vote and log it may have lost).
    fn admitted(&self) -> bool;
    /// A scratch file for a leader's snapshot to go to as it arrives; `None` holds it in
    /// memory.
    fn snapshot_spool(&self) -> std::io::Result<Option<std::fs::File>> {
        Ok(None)
    }
}

pub struct PeerService<H> {
    handler: std::sync::Arc<H>,
}

impl<H> PeerService<H> {
    pub fn new(handler: std::sync::Arc<H>) -> Self {
        PeerService { handler }
    }
}

fn request<T: DeserializeOwned>(req: Request<Payload>) -> Result<T, Status> {
    decode(&req.into_inner().data).map_err(|e| Error::PeerMessage(e.to_string()).into())
}

fn reply<T: Serialize>(v: &T) -> Result<Response<Payload>, Status> {
    let data = encode(v).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Response::new(Payload { data }))
}

/// A snapshot stream's first message: the vote and meta, then the snapshot's length, which a
/// member built before it was sent leaves out.
fn snapshot_head(head: &[u8]) -> Result<(Vote, SnapshotMeta, Option<u64>), Status> {
    if let Ok((vote, meta, len)) = decode::<(Vote, SnapshotMeta, u64)>(head) {
        return Ok((vote, meta, Some(len)));
    }
    let (vote, meta) = decode(head).map_err(|e| Error::PeerMessage(e.to_string()))?;
    Ok((vote, meta, None))
}

/// A Raft message reached a member not yet admitted: the sender retries, as after a refused
/// connection.
fn not_admitted() -> Status {
    Status::unavailable("member starting: checking its empty data dir with its peers")
}

fn stopped(e: impl std::fmt::Display) -> Status {
    tracing::debug!(error = %e, "peer call refused: raft stopped");
    Error::Stopped.into()
}

#[tonic::async_trait]
impl<H: PeerHandler> Peer for PeerService<H> {
    type StreamAppendStream = BoxStream<'static, Result<Payload, Status>>;
    type CallsStream = BoxStream<'static, Result<Payload, Status>>;

    /// A leader's replication session (see `append_stream`): requests are handed to Raft as
    /// they arrive, so the next is appended while the last is still being synced, and each
    /// result goes back in request order.
    async fn stream_append(
        &self,
        req: Request<Streaming<Payload>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        self.admitted()?;
        let handler = self.handler.clone();
        let broken = Arc::new(Mutex::new(None::<Status>));
        let requests = {
            let broken = broken.clone();
            req.into_inner().scan((), move |_, next| {
                let rpc = next.and_then(|p| {
                    decode::<AppendEntriesRequest<TypeConfig>>(&p.data)
                        .map_err(|e| Error::PeerMessage(e.to_string()).into())
                });
                futures::future::ready(match rpc {
                    Ok(rpc) => {
                        handler.leader_contact();
                        Some(rpc)
                    }
                    Err(status) => {
                        *broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                        None
                    }
                })
            })
        };
        // openraft spawns the task that feeds `requests` to Raft with its runtime, which
        // needs a seed in scope (hyper, not Raft, spawned this handler). That task draws no
        // randomness, so one fixed seed keeps the simulator's runs identical.
        let raft = self.handler.raft().clone();
        let results = Runtime::scope(0, async move { raft.stream_append(requests).boxed() })
            .await
            .map(|r| match r {
                Ok(result) => encode(&result)
                    .map(|data| Payload { data })
                    .map_err(|e| Error::Internal(e.to_string()).into()),
                Err(fatal) => Err(stopped(fatal)),
            });
        // A request that could not be read ends the results, then says why.
        let why = futures::stream::once(async move {
            broken.lock().unwrap_or_else(|e| e.into_inner()).take()
        })
        .filter_map(|status| futures::future::ready(status.map(Err)));
        Ok(Response::new(results.chain(why).boxed()))
    }

    async fn append_entries(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        self.admitted()?;
        let rpc: AppendEntriesRequest<TypeConfig> = request(req)?;
        self.handler.leader_contact();
        reply(
            &self
                .handler
                .raft()
                .append_entries(rpc)
                .await
                .map_err(stopped)?,
        )
    }

    async fn vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        self.admitted()?;
        let rpc: VoteRequest<TypeConfig> = request(req)?;
        reply(&self.handler.raft().vote(rpc).await.map_err(stopped)?)
    }

    async fn pre_vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        self.admitted()?;
        let rpc: VoteRequest<TypeConfig> = request(req)?;
        reply(&self.handler.raft().pre_vote(rpc).await.map_err(stopped)?)
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<Payload>>,
    ) -> Result<Response<Payload>, Status> {
        self.admitted()?;
        let mut stream = req.into_inner();
        let head = stream
            .next()
            .await
            .ok_or_else(|| Error::PeerMessage("empty snapshot stream".into()))??;
        let (vote, meta, len) = snapshot_head(&head.data)?;
        if len.is_some_and(|len| len > SNAPSHOT_MAX_BYTES as u64) {
            return Err(Error::SnapshotTooLarge.into());
        }
        let internal = |e: std::io::Error| Status::from(Error::Internal(e.to_string()));
        let spool = self.handler.snapshot_spool().map_err(internal)?;
        let mut data = Receiving::new(spool, len.unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if data.received() + chunk.data.len() as u64 > SNAPSHOT_MAX_BYTES as u64 {
                return Err(Error::SnapshotTooLarge.into());
            }
            data.push(&chunk.data).map_err(internal)?;
        }
        // A sender that could not read its snapshot whole stops short of its length.
        if let Some(len) = len.filter(|&len| len != data.received()) {
            let got = data.received();
            let e = format!("snapshot stream ended after {got} of {len} bytes");
            return Err(Error::PeerMessage(e).into());
        }
        let snapshot = Snapshot {
            meta,
            snapshot: data.finish(),
        };
        let raft = self.handler.raft();
        reply(
            &raft
                .install_full_snapshot(vote, snapshot)
                .await
                .map_err(stopped)?,
        )
    }

    async fn transfer_leader(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        self.admitted()?;
        let rpc: TransferLeaderRequest<TypeConfig> = request(req)?;
        let raft = self.handler.raft();
        reply(&raft.handle_transfer_leader(rpc).await.map_err(stopped)?)
    }

    async fn forward(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let cmd: Command = request(req)?;
        let proposed = self.handler.propose(cmd).await;
        let mut resp = reply(&proposed.as_ref().map(|p| &p.result))?;
        if let Ok(p) = &proposed {
            resp.metadata_mut().insert(LOG_INDEX_KEY, p.index.into());
        }
        Ok(resp)
    }

    /// A follower's call stream (see `call_stream`): each call is handled in a task of its
    /// own, so a slow one (a write waiting for its commit) holds up none behind it. The
    /// answers end once the calls have ended and every call taken has been answered.
    async fn calls(
        &self,
        req: Request<Streaming<Payload>>,
    ) -> Result<Response<Self::CallsStream>, Status> {
        let mut calls = req.into_inner();
        let (answers, out) = futures::channel::mpsc::unbounded();
        let handler = self.handler.clone();
        tokio::spawn(async move {
            while let Some(Ok(payload)) = calls.next().await {
                let Ok((id, call)) = decode::<(u64, LeaderCall)>(&payload.data) else {
                    tracing::warn!("cannot decode a follower's call; its stream ends");
                    break;
                };
                let (handler, answers) = (handler.clone(), answers.clone());
                tokio::spawn(async move {
                    let answer = answer(&*handler, call).await;
                    match encode(&(id, answer)) {
                        Ok(data) => {
                            // A follower that has gone no longer hears it.
                            let _ = answers.unbounded_send(Ok(Payload { data }));
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot encode an answer"),
                    }
                });
            }
        });
        Ok(Response::new(out.boxed()))
    }

    async fn read_index(&self, _req: Request<Payload>) -> Result<Response<Payload>, Status> {
        reply(&self.handler.read_index().await)
    }

    async fn lease_keep_alive(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let call: LeaseCall = request(req)?;
        reply(&self.handler.lease_call(call).await)
    }

    async fn heard(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let from: NodeId = request(req)?;
        reply(&self.handler.heard(from))
    }
}

/// Carries out one call of a follower's call stream.
async fn answer<H: PeerHandler>(handler: &H, call: LeaderCall<'_>) -> LeaderAnswer {
    match call {
        LeaderCall::Forward(cmd) => LeaderAnswer::Forward(
            handler
                .propose(cmd.into_owned())
                .await
                .map(|p| (p.result, p.index)),
        ),
        LeaderCall::ReadIndex => LeaderAnswer::ReadIndex(handler.read_index().await),
        LeaderCall::Lease(call) => LeaderAnswer::Lease(handler.lease_call(call).await),
    }
}

impl<H: PeerHandler> PeerService<H> {
    fn admitted(&self) -> Result<(), Status> {
        match self.handler.admitted() {
            true => Ok(()),
            false => Err(not_admitted()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::typ::LogId;

    #[test]
    fn a_snapshot_head_with_or_without_its_length_reads_on_either_release() {
        // Goal: members of both releases exchange snapshots during a rolling upgrade. The new
        // head reads with its length here and, its length ignored, as a release before it
        // reads heads; the old head reads here with no length.
        let vote = Vote::new_committed(3, 1);
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new_term_index(3, 42)),
            ..Default::default()
        };
        let new_head = encode(&(vote, meta.clone(), 358_000_000u64)).unwrap();
        let (v, m, len) = snapshot_head(&new_head).unwrap();
        assert_eq!((v, &m, len), (vote, &meta, Some(358_000_000)));
        let (v, m): (Vote, SnapshotMeta) = decode(&new_head).unwrap();
        assert_eq!((v, m), (vote, meta.clone()));

        let old_head = encode(&(vote, meta.clone())).unwrap();
        let (v, m, len) = snapshot_head(&old_head).unwrap();
        assert_eq!((v, m, len), (vote, meta, None));
    }
}
