//! What a follower asks of its leader and what it hears back. Both ends are this build of
//! Quorum, so these travel bincode-encoded.

use serde::{Deserialize, Serialize};

use crate::command::CommandResult;
use crate::raft::TypeConfig;

/// The leader's read index: where a follower must have applied to before it reads.
pub type ReadLogId = openraft::raft::linearizable_read::ReadLogId<TypeConfig>;

/// A command the leader proposed and applied, and the log index it was applied at. The member
/// that forwarded it answers its client only once it has applied that far too, as etcd's
/// member does: a serializable read there then shows the write.
#[derive(Debug, Clone)]
pub struct Proposed {
    pub result: CommandResult,
    pub index: u64,
}

/// Where a forward's answer carries `Proposed::index`: in the metadata, so that the body keeps
/// the shape every release decodes.
pub const LOG_INDEX_KEY: &str = "quorum-log-index";

/// Why the leader did not take a forwarded command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Refusal {
    /// Refused before proposing: safe to retry elsewhere.
    NotLeader,
    /// Proposed, then lost to a leader change: outcome unknown.
    LeaderChanged,
    Stopped,
    TimedOut,
}

/// Lease calls a follower hands to the leader, whose clock decides TTLs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum LeaseCall {
    KeepAlive(i64),
    TimeToLive(i64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaseReply {
    /// Remaining TTL after renewal; 0 when the lease is unknown.
    KeepAlive(i64),
    /// (remaining TTL secs, granted TTL secs); TTL -1 when the lease is unknown.
    TimeToLive(i64, i64),
    NotLeader,
    /// The lease expired and its revoke is in flight; the caller waits for it.
    Expiring,
}

/// A peer's answer to a member starting on an empty data dir (`raft::rejoin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeardReply {
    /// The peer has had a Raft answer from the asking member before: that member's vote and
    /// log are lost, not new.
    pub heard: bool,
    /// The peer holds log entries past its bootstrap: the cluster is past forming.
    pub has_log: bool,
    /// The newest membership in the peer's log, if it holds one.
    pub config: Option<ConfigView>,
    /// The newest membership the peer has applied: committed, so no later leader can drop it.
    /// Last, so a member of an older release reads the fields it knows and ignores it; a peer
    /// of an older release sends none (see `HeardReply::decode`).
    pub applied: Option<ConfigView>,
}

/// `HeardReply` as a peer of an older release sends it.
#[derive(Deserialize)]
struct HeardReplyBefore {
    heard: bool,
    has_log: bool,
    config: Option<ConfigView>,
}

impl HeardReply {
    /// Reads a reply from a peer of this release or an older one (which applied nothing, as
    /// far as this member can tell).
    pub fn decode(bytes: &[u8]) -> Option<HeardReply> {
        if let Ok(reply) = crate::raft::codec::decode::<HeardReply>(bytes) {
            return Some(reply);
        }
        let before = crate::raft::codec::decode::<HeardReplyBefore>(bytes).ok()?;
        Some(HeardReply {
            heard: before.heard,
            has_log: before.has_log,
            config: before.config,
            applied: None,
        })
    }
}

/// A membership as a starting member needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigView {
    /// Where the membership sits in the log: a higher index is a newer membership.
    pub index: u64,
    /// The voter sets: one, or two during a joint change (a majority of each decides).
    pub voters: Vec<std::collections::BTreeSet<u64>>,
    pub learners: std::collections::BTreeSet<u64>,
}

impl ConfigView {
    /// A membership as openraft stores it; `None` before the first one is in the log.
    pub fn of(stored: &crate::raft::typ::StoredMembership) -> Option<ConfigView> {
        let at = stored.log_id().as_ref()?;
        let m = stored.membership();
        Some(ConfigView {
            index: at.index,
            voters: m.get_joint_config().clone(),
            learners: m.learner_ids().collect(),
        })
    }

    pub fn is_voter(&self, id: u64) -> bool {
        self.voters.iter().any(|set| set.contains(&id))
    }

    /// Whether `id` is in the membership at all, as a voter or a learner.
    pub fn holds(&self, id: u64) -> bool {
        self.learners.contains(&id) || self.is_voter(id)
    }
}

#[cfg(test)]
mod heard_tests {
    use super::*;
    use crate::raft::codec::{decode, encode};

    #[derive(Serialize)]
    struct Before {
        heard: bool,
        has_log: bool,
        config: Option<ConfigView>,
    }

    #[test]
    fn heard_replies_cross_releases_both_ways() {
        // Goal: during a rolling upgrade, a member of either release reads the other's reply.
        let config = Some(ConfigView {
            index: 7,
            voters: vec![[1, 2, 3].into()],
            learners: [4].into(),
        });
        let old = encode(&Before {
            heard: true,
            has_log: true,
            config: config.clone(),
        })
        .unwrap();
        let read = HeardReply::decode(&old).expect("an older peer's reply reads");
        assert_eq!(read.config, config);
        assert_eq!(read.applied, None);
        assert!(read.heard && read.has_log);
        let new = HeardReply {
            heard: false,
            has_log: true,
            config: config.clone(),
            applied: config.clone(),
        };
        let bytes = encode(&new).unwrap();
        assert_eq!(HeardReply::decode(&bytes), Some(new));
        let by_older: HeardReplyBefore = decode(&bytes).expect("an older member reads it");
        assert_eq!(by_older.config, config);
        assert!(!by_older.heard && by_older.has_log);
    }
}
