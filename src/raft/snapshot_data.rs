//! A snapshot's bytes as openraft carries them: in hand, or where the member stored them.
//!
//! openraft asks the state machine for its current snapshot twice at every start, for the meta
//! alone, and once per follower it sends one to. Read whole each time, the bytes (as large as
//! the store: 360 MB at a million keys) doubled a start's peak memory and most of its time, so
//! a member's own snapshot is read only when it is sent, and then a chunk at a time.

use std::fmt;
use std::io;

use super::codec::decode;
use super::typ::SnapshotMeta;
use crate::storage::schema::snapshot_keys;
use crate::storage::{read_whole, Backend, HeldValue, SharedBackend, Tree, ValueRead};

#[derive(Clone)]
pub enum SnapshotData {
    /// Received from a leader, to be installed.
    Held(Vec<u8>),
    /// This member's latest snapshot, the one `meta` describes, still in `backend`.
    Stored {
        backend: SharedBackend,
        meta: SnapshotMeta,
    },
}

impl SnapshotData {
    /// The bytes to read, from the stored snapshot as it is now if they are stored. A stored
    /// snapshot replaced since it was handed out is an error, not its successor's bytes: those
    /// are a later state than its meta says, and a follower installing them would apply the
    /// entries in between a second time.
    pub fn open(self) -> io::Result<Box<dyn ValueRead>> {
        let (backend, meta) = match self {
            SnapshotData::Held(bytes) => return Ok(HeldValue::boxed(bytes)),
            SnapshotData::Stored { backend, meta } => (backend, meta),
        };
        let data = backend.open_value(Tree::Snapshot, snapshot_keys::DATA)?;
        // Read after the data was opened: had a newer snapshot been written before that, the
        // meta would be the newer one's too (a snapshot's meta only grows).
        match (data, stored_meta(backend.as_ref())?) {
            (Some(data), Some(now)) if now == meta => Ok(data),
            _ => Err(io::Error::other(format!(
                "the snapshot at index {} was replaced before it was read; a newer one is sent \
                 instead",
                index(&meta)
            ))),
        }
    }

    /// The bytes, read whole (those in hand are handed over, not copied).
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self {
            SnapshotData::Held(bytes) => Ok(bytes),
            stored => read_whole(stored.open()?),
        }
    }
}

/// The meta of the snapshot stored in `backend`, if there is one.
pub fn stored_meta(backend: &dyn Backend) -> io::Result<Option<SnapshotMeta>> {
    backend
        .get(Tree::Snapshot, snapshot_keys::META)?
        .map(|m| decode(&m))
        .transpose()
}

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotData::Held(bytes) => write!(f, "Held({} bytes)", bytes.len()),
            SnapshotData::Stored { meta, .. } => write!(f, "Stored(index {})", index(meta)),
        }
    }
}

fn index(meta: &SnapshotMeta) -> u64 {
    meta.last_log_id.as_ref().map_or(0, |l| l.index)
}
