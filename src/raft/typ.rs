//! The openraft type configuration and short aliases, so the rest of the crate names openraft
//! types in one place and an alpha bump touches few files.

use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandResult};

/// A member as Raft's membership knows it: its name and where its peers reach it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub peer_urls: Vec<String>,
}

/// Election jitter comes from a seeded RNG so a simulated run is a function of its seed (in
/// production the seed is drawn once from the OS at start); time is the member's clock.
pub use super::runtime::Runtime;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = Member,
        // Classic Raft, as etcd runs it: at most one leader per term. (openraft's default
        // "advanced" leader id lets several candidates lead the same term.)
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = Runtime,
);

pub type NodeId = u64;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, super::snapshot_data::SnapshotData>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig, super::state_machine::StateMachine>;
pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
