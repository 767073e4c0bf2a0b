//! A follower's calls to its leader (forwarded writes, the read index, lease calls), and the
//! question a member starting on an empty data dir asks every peer.
//!
//! Each returns what the leader said, or why it could not be asked; deciding whether to retry
//! is the caller's. A failed call forgets the channel, so the next one redials.

use super::{
    HeardReply, LeaseCall, LeaseReply, PeerClients, Proposed, ReadLogId, Refusal, LOG_INDEX_KEY,
};
use std::borrow::Cow;

use super::call_stream::{CallFailed, LeaderAnswer, LeaderCall};
use crate::command::{Command, CommandResult};
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};
use crate::raft::{Member, NodeId};

impl PeerClients {
    /// Hands `cmd` to the leader to propose. `NotLeader` means it surely was not proposed
    /// there (safe to retry); `LeaderChanged` means it may have been. A leader of an older
    /// release does not say at which index it applied the command: 0 then.
    pub async fn forward(
        &self,
        leader: NodeId,
        member: &Member,
        cmd: &Command,
    ) -> Result<Proposed, Refusal> {
        let call = LeaderCall::Forward(Cow::Borrowed(cmd));
        match self.leader_call(leader, member, &call).await {
            Ok(LeaderAnswer::Forward(answer)) => {
                let (result, index) = answer?;
                Ok(Proposed { result, index })
            }
            Ok(_) => Err(Refusal::LeaderChanged),
            Err(CallFailed::NotSent) => Err(Refusal::NotLeader),
            Err(CallFailed::Lost) => Err(Refusal::LeaderChanged),
            Err(CallFailed::Unsupported) => self.forward_unary(leader, member, cmd).await,
        }
    }

    /// `forward` as a unary call, for a leader of a release without the call stream.
    async fn forward_unary(
        &self,
        leader: NodeId,
        member: &Member,
        cmd: &Command,
    ) -> Result<Proposed, Refusal> {
        let Ok(mut client) = self.client(leader, member) else {
            return Err(Refusal::NotLeader);
        };
        let data = encode(cmd).map_err(|_| Refusal::Stopped)?;
        match client.forward(Payload { data }).await {
            Ok(resp) => {
                let index = resp
                    .metadata()
                    .get(LOG_INDEX_KEY)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0);
                let result = decode::<Result<CommandResult, Refusal>>(&resp.into_inner().data)
                    .map_err(|_| Refusal::LeaderChanged)??;
                Ok(Proposed { result, index })
            }
            // The request may or may not have reached the leader; only a refused connection
            // proves it did not.
            Err(status) if is_connect_failure(&status) => {
                self.forget(member);
                Err(Refusal::NotLeader)
            }
            Err(_) => {
                self.forget(member);
                Err(Refusal::LeaderChanged)
            }
        }
    }

    /// The leader's read index, once it has confirmed it still leads; `None` if it could not.
    pub async fn read_index(&self, leader: NodeId, member: &Member) -> Option<ReadLogId> {
        match self
            .leader_call(leader, member, &LeaderCall::ReadIndex)
            .await
        {
            Ok(LeaderAnswer::ReadIndex(answer)) => return answer,
            Err(CallFailed::Unsupported) => {}
            Ok(_) | Err(_) => return None,
        }
        let mut client = self.client(leader, member).ok()?;
        match client.read_index(Payload { data: Vec::new() }).await {
            Ok(resp) => decode::<Option<ReadLogId>>(&resp.into_inner().data).ok()?,
            Err(_) => {
                self.forget(member);
                None
            }
        }
    }

    /// A keep-alive or time-to-live answered by the leader's lessor; `None` if unanswered.
    pub async fn lease_call(
        &self,
        leader: NodeId,
        member: &Member,
        call: &LeaseCall,
    ) -> Option<LeaseReply> {
        match self
            .leader_call(leader, member, &LeaderCall::Lease(*call))
            .await
        {
            Ok(LeaderAnswer::Lease(reply)) => return Some(reply),
            Err(CallFailed::Unsupported) => {}
            Ok(_) | Err(_) => return None,
        }
        let mut client = self.client(leader, member).ok()?;
        let data = encode(call).ok()?;
        match client.lease_keep_alive(Payload { data }).await {
            Ok(resp) => decode::<LeaseReply>(&resp.into_inner().data).ok(),
            Err(_) => {
                self.forget(member);
                None
            }
        }
    }
}

impl PeerClients {
    /// Whether `peer` has heard from `from` before (see `raft::rejoin`); `None` if unanswered.
    pub async fn heard(&self, peer: NodeId, member: &Member, from: NodeId) -> Option<HeardReply> {
        let mut client = self.client(peer, member).ok()?;
        let data = encode(&from).ok()?;
        match client.heard(Payload { data }).await {
            Ok(resp) => HeardReply::decode(&resp.into_inner().data),
            Err(_) => {
                self.forget(member);
                None
            }
        }
    }
}

pub(super) fn is_connect_failure(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && {
        let msg = status.message().to_ascii_lowercase();
        msg.contains("connect") || msg.contains("refused")
    }
}
