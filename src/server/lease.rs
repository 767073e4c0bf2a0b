//! Lease calls and the lease clock. Keep-alive and time-to-live are decided by the leader's
//! lessor (its clock); followers ask the leader. Expiry runs only on the leader and becomes a
//! revoke proposal, so a deposed leader's revoke cannot commit.

use std::sync::Arc;
use std::time::Duration;

use openraft::ReadPolicy;

use super::{until, Server};
use crate::clock;
use crate::command::Command;
use crate::error::Result;
use crate::lease::Renewal;
use crate::peer::{LeaseCall, LeaseReply};

/// How often the leader scans for expired leases, as etcd does.
const LEASE_SCAN_INTERVAL: Duration = Duration::from_millis(500);
/// At most this many revokes are proposed per scan, as etcd limits them.
const LEASE_REVOKES_PER_SCAN_MAX: usize = 500;

impl Server {
    /// Keep-alive and time-to-live are decided by the leader's clock; followers ask it.
    pub async fn lease_call(&self, call: LeaseCall) -> Result<LeaseReply> {
        let call = &call;
        let answer = until(self.deadline(), || async move {
            let reply = if self.lessor.is_primary() {
                self.lease_call_as_leader(call).await
            } else {
                let (leader, member) = self.leader_member()?;
                if leader == self.id {
                    return None;
                }
                self.peers.lease_call(leader, &member, call).await?
            };
            (!matches!(reply, LeaseReply::NotLeader)).then_some(reply)
        })
        .await;
        answer.ok_or_else(|| self.timed_out())
    }

    /// The leader answers a lease call. A keep-alive is answered only once a quorum has
    /// confirmed this member still leads, as etcd (3.4.25+/3.5.8+) does: a leader cut off from
    /// the others would otherwise renew leases that the new leader is about to expire, and the
    /// client, told the lease lives, would keep talking to it. (The simulator's lease checker
    /// found exactly that.) Not confirmed: `NotLeader`, so the caller retries or forwards.
    ///
    /// A keep-alive for a lease that has already expired waits for its revoke and then answers
    /// TTL 0, as etcd's lessor does; if the revoke does not land (leadership lost), `NotLeader`.
    pub(super) async fn lease_call_as_leader(&self, call: &LeaseCall) -> LeaseReply {
        if matches!(call, LeaseCall::KeepAlive(_)) {
            let confirm = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
            match clock::timeout(self.election_timeout, confirm).await {
                Ok(Ok(_)) => {}
                _ => return LeaseReply::NotLeader,
            }
        }
        let answer = until(self.deadline(), || async move {
            let reply = self.lease_call_local(call);
            (!matches!(reply, LeaseReply::Expiring)).then_some(reply)
        })
        .await;
        answer.unwrap_or(LeaseReply::NotLeader)
    }

    /// The leader's lessor answers a lease call, with no further check.
    fn lease_call_local(&self, call: &LeaseCall) -> LeaseReply {
        if !self.lessor.is_primary() {
            return LeaseReply::NotLeader;
        }
        let now = clock::now();
        match *call {
            LeaseCall::KeepAlive(id) => {
                let ttl = self.sm.read().leases.get(id).map(|r| r.ttl_secs);
                match ttl.map(|ttl| (ttl, self.lessor.renew(id, ttl, now))) {
                    Some((ttl, Renewal::Renewed)) => LeaseReply::KeepAlive(ttl),
                    Some((_, Renewal::Expired)) => LeaseReply::Expiring,
                    Some((_, Renewal::NotPrimary)) => LeaseReply::NotLeader,
                    None => LeaseReply::KeepAlive(0),
                }
            }
            LeaseCall::TimeToLive(id) => {
                let granted = self.sm.read().leases.get(id).map(|r| r.ttl_secs);
                match granted {
                    None => LeaseReply::TimeToLive(-1, 0),
                    Some(granted) => {
                        let remaining = self
                            .lessor
                            .remaining(id, now)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or(granted);
                        LeaseReply::TimeToLive(remaining, granted)
                    }
                }
            }
        }
    }

    /// The leader's lease clock: promote on gaining leadership, revoke what expires, demote on
    /// losing it. Runs on every member for the member's life.
    pub async fn lessor_loop(self: Arc<Self>) {
        let mut tick = clock::Interval::new(LEASE_SCAN_INTERVAL);
        // The term the lessor was promoted in.
        let mut promoted_in: Option<u64> = None;
        loop {
            tick.tick().await;
            // The member's own clock: a fast one expires leases early, as a real one would.
            let now = clock::now();
            // The planted bug lets every member run the lease clock as if it led.
            let rogue = self.plants.lease_without_leadership;
            let leading = self.is_leader() || rogue;
            // A member that lost the lead and won it back between two scans (a pause, then an
            // election) is promoted again: its old deadlines know nothing of the keep-alives
            // the leader in between acknowledged.
            let term = self.term();
            let new_term = !rogue && promoted_in != Some(term);
            if leading && (!self.lessor.is_primary() || new_term) {
                let table = self.sm.read().leases.clone();
                self.lessor.promote(&table, now, self.election_timeout);
                promoted_in = Some(term);
            } else if !leading && self.lessor.is_primary() {
                self.lessor.demote();
                promoted_in = None;
            }
            if !self.lessor.is_primary() {
                continue;
            }
            {
                let table = self.sm.read().leases.clone();
                self.lessor.sync_with(&table, now);
            }
            for id in self.lessor.expired(now, LEASE_REVOKES_PER_SCAN_MAX) {
                if rogue && !self.is_leader() {
                    self.sm.revoke_locally(id);
                    continue;
                }
                match self.propose_local(Command::LeaseRevoke { id }).await {
                    Ok(_) => tracing::debug!(lease = format!("{id:x}"), "lease expired"),
                    Err(e) => {
                        tracing::debug!(?e, "lease revoke not proposed");
                        break;
                    }
                }
            }
        }
    }
}
