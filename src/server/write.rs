//! Writes: propose here when leading, otherwise forward to the leader; wait for the apply.

use openraft::errors::{ClientWriteError, RaftError};

use super::{until, Server};
use crate::command::{Command, CommandResult, Reply};
use crate::error::{Error, Result};
use crate::peer::Refusal;

impl Server {
    /// Replicates `cmd` and returns what applying it produced, from any member.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult> {
        let cmd = &cmd;
        let answer = until(self.deadline(), || async move {
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
                        other => return Some(other),
                    }
                    self.leader_member()?
                }
            };
            if leader == self.id {
                return None;
            }
            match self.peers.forward(leader, &member, cmd).await {
                Err(Refusal::NotLeader) => None,
                other => Some(other),
            }
        })
        .await;
        match answer {
            Some(Ok(CommandResult::Failed(e))) => Err(e.into()),
            Some(Ok(CommandResult::AuthFailed(e))) => Err(e.into()),
            Some(Ok(result)) => Ok(result),
            Some(Err(Refusal::LeaderChanged)) => Err(Error::LeaderChanged),
            Some(Err(Refusal::Stopped)) => Err(Error::Stopped),
            Some(Err(Refusal::TimedOut | Refusal::NotLeader)) | None => Err(self.timed_out()),
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
    pub async fn propose_local(&self, cmd: Command) -> std::result::Result<CommandResult, Refusal> {
        self.metrics.proposals_pending.inc();
        let result = self.raft.client_write(cmd).await;
        self.metrics.proposals_pending.dec();
        if matches!(&result, Err(e) if !matches!(e, RaftError::APIError(ClientWriteError::ForwardToLeader(_))))
        {
            self.metrics.proposals_failed.inc();
        }
        match result {
            Ok(resp) => Ok(resp.data),
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
