//! `quorum snapshot verify`: proves a snapshot file restores. It restores the file into a
//! scratch single-member cluster in this process, starts it, takes a snapshot of the running
//! member in etcd's format, and compares the two: the `key` bucket's hash (every revision, live
//! and tombstone, byte for byte), the revision, the number of stored revisions and the leases.
//!
//! Only those are compared because the rest of the file legitimately changes on restore: the
//! members are the scratch cluster's, and `consistent_index` is the new Raft index.

use std::time::Duration;

use super::{bolt, database_bytes, restore, RestoreOptions, Result, SnapshotError};
use crate::cluster::{ClusterSpec, LocalCluster};

/// How long the scratch member may take to elect itself and apply its first entries.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// The scratch member's Raft timing: fast, since nothing else competes for the vote.
const SCRATCH_HEARTBEAT_MS: u64 = 50;
const SCRATCH_ELECTION_TIMEOUT_MS: u64 = 300;

/// The parts of a database a restore must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpaceDigest {
    /// CRC-32C of the `key` bucket as `snapshot status` feeds it (name, then keys and values).
    pub hash: u32,
    pub revision: i64,
    /// Entries of the `key` bucket: every stored revision.
    pub revisions: u64,
    pub leases: u64,
}

impl KeySpaceDigest {
    pub fn of(db: &bolt::Db) -> KeySpaceDigest {
        let only = |name: &[u8]| bolt::Db {
            buckets: db.bucket(name).cloned().into_iter().collect(),
            ..db.clone()
        };
        let keys = super::Status::of(&only(b"key"));
        KeySpaceDigest {
            hash: keys.hash,
            revision: keys.revision,
            revisions: keys.total_key,
            leases: db.bucket(b"lease").map_or(0, |b| b.entries.len() as u64),
        }
    }
}

/// The outcome: what the file holds and what the restored member serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub file: KeySpaceDigest,
    pub restored: KeySpaceDigest,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.file == self.restored
    }
}

/// Restores `file` into a scratch member on two free loopback ports and compares.
pub async fn verify(file: &[u8], skip_hash_check: bool) -> Result<Verdict> {
    let expected = KeySpaceDigest::of(&bolt::read(database_bytes(file, skip_hash_check)?)?);
    let member = |e: String| SnapshotError::Member(e);
    let scratch = tempfile::tempdir().map_err(|e| member(e.to_string()))?;
    let ports = free_ports().map_err(|e| member(e.to_string()))?;
    let mut spec = ClusterSpec::new(1);
    spec.data_dir = Some(scratch.path().to_path_buf());
    spec.ports = vec![ports];
    spec.heartbeat_interval_ms = SCRATCH_HEARTBEAT_MS;
    spec.election_timeout_ms = SCRATCH_ELECTION_TIMEOUT_MS;
    // The names and URLs `LocalCluster` gives its first member.
    let peer = format!("http://127.0.0.1:{}", ports.1);
    let opts = RestoreOptions {
        name: "n1".into(),
        data_dir: scratch.path().join("n1"),
        initial_cluster: format!("n1={peer}"),
        initial_cluster_token: spec.token.clone(),
        initial_advertise_peer_urls: vec![peer],
        skip_hash_check,
    };
    restore(file, &opts)?;
    let cluster = LocalCluster::start(spec)
        .await
        .map_err(|e| member(e.to_string()))?;
    let outcome = restored_digest(&cluster).await;
    cluster.shutdown().await;
    Ok(Verdict {
        file: expected,
        restored: outcome?,
    })
}

async fn restored_digest(cluster: &LocalCluster) -> Result<KeySpaceDigest> {
    let member = |e: String| SnapshotError::Member(e);
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    while cluster.leader().is_none() {
        if tokio::time::Instant::now() > deadline {
            return Err(member("the restored member elected no leader".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = cluster
        .node(0)
        .ok_or_else(|| member("the restored member is not running".into()))?;
    let db = node
        .server
        .snapshot_db()
        .map_err(|e| member(e.to_string()))?;
    Ok(KeySpaceDigest::of(&bolt::read(&db)?))
}

/// A client and a peer port nobody listens on (the OS picks them; they are released at once,
/// so another process could take them first, which would only fail the start).
fn free_ports() -> std::io::Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}
