//! `quorum snapshot restore`: a member's data directory built from an etcd 3.4 snapshot file,
//! from which `quorum serve` (with the same flags) starts and serves the snapshot's keys at
//! their revisions, and its leases.
//!
//! As `etcdctl snapshot restore` does, the new cluster's membership comes from the flags, not
//! the file: every member of `--initial-cluster` is a voter, and the restored state counts as
//! applied at Raft index N (the member count), term 0. The data directory then holds exactly
//! one state-machine snapshot (the same record `StateMachine::open` loads at start) and an
//! empty log, so Raft starts initialized, elects a leader among the restored members and
//! carries on from index N+1. Each member is restored from the same file with its own
//! `--name` and `--initial-advertise-peer-urls`.
//!
//! **Invariant:** nothing is written until the file has been fully read and checked; a failure
//! while writing removes the directory it created.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{bolt, database_bytes, etcd_db, Result, SnapshotError, Status};
use crate::config::{member_id, parse_initial_cluster};
use crate::raft::codec::{encode_into, encoded_len};
use crate::raft::state_machine::{write_snapshot, Applied};
use crate::raft::typ::{LogId, StoredMembership};
use crate::raft::Member;
use crate::storage::{Backend, SnapshotFile};

/// etcdctl's restore flags.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub name: String,
    pub data_dir: PathBuf,
    /// `name=url,...`, as `--initial-cluster`.
    pub initial_cluster: String,
    pub initial_cluster_token: String,
    pub initial_advertise_peer_urls: Vec<String>,
    pub skip_hash_check: bool,
}

/// What a restore produced.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The snapshot file's `snapshot status`.
    pub status: Status,
    pub member_id: u64,
    pub revision: i64,
    pub compact_revision: i64,
    pub live_keys: usize,
    pub leases: usize,
}

/// Reads and checks the whole file, then writes the data directory.
pub fn restore(file: &[u8], opts: &RestoreOptions) -> Result<Restored> {
    if opts.data_dir.exists() {
        return Err(SnapshotError::DataDirExists(
            opts.data_dir.display().to_string(),
        ));
    }
    let (applied, restored) = restored_state(file, opts)?;
    write_data_dir(&opts.data_dir, &applied).inspect_err(|_| {
        // Best effort: the error being reported matters more than a failed cleanup.
        let _ = std::fs::remove_dir_all(&opts.data_dir);
    })?;
    Ok(restored)
}

/// Restores into `backend` (a member's snapshot store) instead of a new data directory: the
/// simulator's members keep their disks in memory.
pub fn restore_into(file: &[u8], opts: &RestoreOptions, backend: &dyn Backend) -> Result<Restored> {
    let (applied, restored) = restored_state(file, opts)?;
    let io = |source| SnapshotError::Io {
        path: "(memory)".to_string(),
        source,
    };
    write_state(backend, &applied).map_err(io)?;
    Ok(restored)
}

/// The applied state a restored member starts from.
fn restored_state(file: &[u8], opts: &RestoreOptions) -> Result<(Applied, Restored)> {
    let initial = parse_initial_cluster(&opts.initial_cluster)
        .map_err(|e| SnapshotError::Flags(e.to_string()))?;
    let own = initial
        .iter()
        .find(|(n, _)| *n == opts.name)
        .ok_or_else(|| {
            SnapshotError::Flags(format!(
                "--initial-cluster has no member named {:?}",
                opts.name
            ))
        })?;
    let sorted = |urls: &[String]| urls.iter().cloned().collect::<BTreeSet<String>>();
    if sorted(&own.1) != sorted(&opts.initial_advertise_peer_urls) {
        return Err(SnapshotError::Flags(format!(
            "--initial-cluster has {}={} but --initial-advertise-peer-urls is {}",
            opts.name,
            own.1.join(","),
            opts.initial_advertise_peer_urls.join(",")
        )));
    }
    let token = &opts.initial_cluster_token;
    let nodes: BTreeMap<u64, Member> = initial
        .iter()
        .map(|(name, urls)| {
            (
                member_id(urls, token),
                Member {
                    name: name.clone(),
                    peer_urls: urls.clone(),
                },
            )
        })
        .collect();
    if nodes.len() != initial.len() {
        return Err(SnapshotError::Flags(
            "two members of --initial-cluster have the same peer URLs".into(),
        ));
    }

    let db = bolt::read(database_bytes(file, opts.skip_hash_check)?)?;
    let status = Status::of(&db);
    let state = etcd_db::decode(&db)?;

    let voters: BTreeSet<u64> = nodes.keys().copied().collect();
    let membership = openraft::Membership::new(vec![voters], nodes.clone())
        .map_err(|e| SnapshotError::Flags(e.to_string()))?;
    // As etcd's restore: the state counts as applied at index N, one entry per member.
    let log_id = LogId::new_term_index(0, nodes.len() as u64);
    let restored = Restored {
        status,
        member_id: member_id(&opts.initial_advertise_peer_urls, token),
        revision: state.store.revision(),
        compact_revision: state.store.compact_revision(),
        live_keys: state.store.key_count(),
        leases: state.leases.len(),
    };
    let applied = Applied {
        store: state.store,
        leases: state.leases,
        members: BTreeMap::new(),
        last_applied: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
        alarms: state.alarms,
        auth: state.auth,
    };
    Ok((applied, restored))
}

fn write_data_dir(dir: &Path, applied: &Applied) -> Result<()> {
    let io = |source| SnapshotError::Io {
        path: dir.display().to_string(),
        source,
    };
    let backend = SnapshotFile::open(dir).map_err(io)?;
    write_state(&backend, applied).map_err(io)
}

/// The one state-machine snapshot a restored member starts from, synced.
fn write_state(backend: &dyn Backend, applied: &Applied) -> std::io::Result<()> {
    let len = encoded_len(applied)?;
    write_snapshot(backend, &applied.snapshot_meta(), len, &mut |w| {
        encode_into(w, applied)
    })
}
