//! Writes: propose here when leading, otherwise forward to the leader; wait for the apply,
//! here too when forwarded.

use openraft::errors::{ClientWriteError, RaftError};

use super::{until, Server};
use crate::clock::{self, LocalInstant};
use crate::command::{Command, CommandResult, Reply};
use crate::error::{Error, Result};
use crate::peer::{Proposed, Refusal};

impl Server {
    /// Replicates `cmd` and returns what applying it produced, from any member.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult> {
        let cmd = &cmd;
        let deadline = self.deadline();
        // With whether it was forwarded.
        let answer = until(deadline, || async move {
            // A follower that knows its leader forwards at once: asking Raft first would only
            // hear "not leader" after a round trip through its core task. A stale view costs a
            // refusal from the old leader and another turn.
            let known = self
                .leader_member()
                .filter(|(leader, _)| *leader != self.id);
            let (leader, member) = match known {
                Some(known) => known,
                None => {
                    match self.propose_local(cmd.clone()).await {
                        Err(Refusal::NotLeader) => {}
                        other => return Some(other.map(|p| (p, false))),
                    }
                    self.leader_member()?
                }
            };
            if leader == self.id {
                return None;
            }
            match self.peers.forward(leader, &member, cmd).await {
                Err(Refusal::NotLeader) => None,
                other => Some(other.map(|p| (p, true))),
            }
        })
        .await;
        let result = match answer {
            Some(Ok((proposed, forwarded))) => {
                if forwarded {
                    self.applied_through(proposed.index, deadline).await?;
                }
                proposed.result
            }
            Some(Err(Refusal::LeaderChanged)) => return Err(Error::LeaderChanged),
            Some(Err(Refusal::Stopped)) => return Err(Error::Stopped),
            Some(Err(Refusal::TimedOut | Refusal::NotLeader)) | None => {
                return Err(self.timed_out())
            }
        };
        match result {
            CommandResult::Failed(e) => Err(e.into()),
            CommandResult::AuthFailed(e) => Err(e.into()),
            result => Ok(result),
        }
    }

    /// Waits until this member has applied through `index`, where the leader applied a write
    /// this member forwarded. etcd's member answers only after its own apply too, so a
    /// serializable read (or a watch) on the member a client wrote through shows the write.
    async fn applied_through(&self, index: u64, deadline: LocalInstant) -> Result<()> {
        let mut applied = self.sm.subscribe_applied();
        let reached = applied.wait_for(|at| *at >= index);
        let outcome = clock::timeout_at(deadline, async { reached.await.map(|_| ()) }).await;
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Stopped),
            // Committed, but not applied here in time: as ambiguous as any timeout.
            Err(clock::Elapsed) => Err(self.timed_out()),
        }
    }

    /// Replicates `cmd` and returns the response it produces, stamped with this member.
    /// Writes that take space are checked against the quota first.
    pub async fn request<R: Reply>(&self, cmd: Command) -> Result<R> {
        self.check_quota(&cmd).await?;
        let mut resp = R::from_result(self.write(cmd).await?)
            .map_err(|other| Error::Internal(format!("unexpected apply result {other:?}")))?;
        self.stamp(resp.header_mut());
        Ok(resp)
    }

    /// Proposes on this member only; refuses at once when it does not lead.
    pub async fn propose_local(&self, cmd: Command) -> std::result::Result<Proposed, Refusal> {
        self.metrics.proposals_pending.inc();
        let result = self.raft.client_write(cmd).await;
        self.metrics.proposals_pending.dec();
        if matches!(&result, Err(e) if !matches!(e, RaftError::APIError(ClientWriteError::ForwardToLeader(_))))
        {
            self.metrics.proposals_failed.inc();
        }
        match result {
            Ok(resp) => Ok(Proposed {
                result: resp.data,
                index: resp.log_id.index,
            }),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(Refusal::NotLeader)
            }
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_))) => {
                Err(Refusal::LeaderChanged)
            }
            Err(RaftError::Fatal(_)) => Err(Refusal::Stopped),
            Err(RaftError::APIError(e)) => {
                tracing::warn!(error = %e, "write refused");
                Err(Refusal::NotLeader)
            }
        }
    }
}
