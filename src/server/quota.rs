//! etcd's backend quota and alarms. A write that would take the key space past
//! `--quota-backend-bytes` raises NOSPACE for this member (through Raft, so every member
//! knows) and is refused with "database space exceeded"; while NOSPACE is raised, every member
//! refuses what takes space (decided at apply, see `raft::state_machine`), until an operator
//! disarms it (`etcdctl alarm disarm`) after freeing space.
//!
//! The measure is the key space's size (what the store holds, revisions included), not the
//! files on disk: sled's files grow and shrink on their own schedule, and the same history
//! must give every member the same answer.

use super::Server;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::proto::etcdserverpb::{AlarmMember, AlarmResponse, AlarmType};
use crate::store::StoreError;

impl Server {
    /// Refuses `cmd` (and raises NOSPACE) when applying it would pass the quota.
    pub(super) async fn check_quota(&self, cmd: &Command) -> Result<()> {
        // A client's write arrives wrapped with its caller; the cost is the write's.
        let cmd = match cmd {
            Command::As { cmd, .. } => cmd.as_ref(),
            other => other,
        };
        let cost = match cmd {
            Command::Put(r) => r.key.len() + r.value.len(),
            Command::Txn(r) => prost::Message::encoded_len(r),
            Command::LeaseGrant { .. } => 16,
            _ => return Ok(()),
        } as u64;
        if self.db_in_use_bytes() + cost <= self.quota_bytes {
            return Ok(());
        }
        let raise = Command::Alarm {
            member_id: self.id,
            alarm: AlarmType::Nospace as i32,
            activate: true,
        };
        // Boxed: a write's future is kilobytes, and every write's future would carry it.
        if let Err(e) = Box::pin(self.write(raise)).await {
            tracing::warn!(error = %e, "raising NOSPACE failed");
        }
        Err(Error::Store(StoreError::NoSpace))
    }

    /// Raises or clears an alarm on a member, as the Alarm RPC asks.
    pub async fn set_alarm(
        &self,
        member_id: u64,
        alarm: AlarmType,
        activate: bool,
    ) -> Result<AlarmResponse> {
        let cmd = Command::Alarm {
            member_id,
            alarm: alarm as i32,
            activate,
        };
        self.request(cmd).await
    }

    /// Every raised alarm, by member.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.sm
            .read()
            .alarms
            .iter()
            .map(|&(member_id, alarm)| AlarmMember { member_id, alarm })
            .collect()
    }

    /// The quota `--quota-backend-bytes` set.
    pub fn quota_bytes(&self) -> u64 {
        self.quota_bytes
    }
}
