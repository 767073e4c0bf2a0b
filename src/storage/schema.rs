//! Tree names: the one list of what a member keeps on disk.

/// A named keyspace inside a backend.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Tree {
    /// Raft log entries keyed by big-endian index.
    Log,
    /// Raft metadata: vote, committed log id, last purged log id.
    RaftMeta,
    /// The latest state-machine snapshot (meta and data).
    Snapshot,
}

impl Tree {
    pub const ALL: [Tree; 3] = [Tree::Log, Tree::RaftMeta, Tree::Snapshot];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Log => "raft_log",
            Tree::RaftMeta => "raft_meta",
            Tree::Snapshot => "snapshot",
        }
    }
}

/// Keys inside `Tree::RaftMeta`.
pub mod meta_keys {
    pub const VOTE: &[u8] = b"vote";
    pub const COMMITTED: &[u8] = b"committed";
    pub const LAST_PURGED: &[u8] = b"last_purged";
}

/// Keys inside `Tree::Snapshot`.
pub mod snapshot_keys {
    pub const META: &[u8] = b"meta";
    pub const DATA: &[u8] = b"data";
}

/// Log keys are big-endian so that byte order is index order.
pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}
