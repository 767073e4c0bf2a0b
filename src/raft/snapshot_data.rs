//! A snapshot's bytes as openraft carries them: in hand, or where the member stored them.
//!
//! openraft asks the state machine for its current snapshot twice at every start, for the meta
//! alone, and once per follower it sends one to. Read whole each time, the bytes (as large as
//! the store: 360 MB at a million keys) doubled a start's peak memory and most of its time, so
//! a member's own snapshot is read only when it is sent, and then a chunk at a time.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::codec::decode;
use super::typ::SnapshotMeta;
use crate::storage::schema::snapshot_keys;
use crate::storage::{blocking, read_whole, Backend, HeldValue, SharedBackend, Tree, ValueRead};

#[derive(Clone)]
pub enum SnapshotData {
    /// Received from a leader, to be installed.
    Held(bytes::Bytes),
    /// Received from a leader into a scratch file of `len` bytes, to be installed.
    Spooled { file: Arc<File>, len: u64 },
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
            SnapshotData::Spooled { file, len } => {
                return Ok(Box::new(SpooledValue { file, at: 0, len }))
            }
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
            SnapshotData::Held(bytes) => Ok(bytes.into()),
            stored => read_whole(stored.open()?),
        }
    }
}

/// A leader's snapshot as its chunks arrive. With a scratch file they go to disk as they come:
/// held in memory, the bytes (360 MB at a million keys) were as much again as the state they
/// decode to, and writing them only once all had come left the disk idle during the transfer.
pub struct Receiving {
    spool: Option<File>,
    held: Vec<u8>,
    len: u64,
}

/// The most a held snapshot's buffer reserves up front. The length is the sender's word, and a
/// damaged one (up to the 8 GiB the peer service accepts) must not abort the process on an
/// allocation; a snapshot past this grows the buffer as it arrives.
const HELD_RESERVE_MAX: u64 = 256 << 20;

impl Receiving {
    /// `expected`: the length the sender announced, to size the buffer of bytes held.
    pub fn new(spool: Option<File>, expected: u64) -> Self {
        let held = match spool {
            Some(_) => Vec::new(),
            None => Vec::with_capacity(expected.min(HELD_RESERVE_MAX) as usize),
        };
        Receiving {
            spool,
            held,
            len: 0,
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.len
    }

    pub fn push(&mut self, chunk: &[u8]) -> io::Result<()> {
        match &mut self.spool {
            Some(file) => blocking(|| file.write_all(chunk))?,
            None => self.held.extend_from_slice(chunk),
        }
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// The bytes received, to install. The scratch file's are not synced: the install copies
    /// them into the stored snapshot, which is.
    pub fn finish(self) -> SnapshotData {
        match self.spool {
            Some(file) => SnapshotData::Spooled {
                file: Arc::new(file),
                len: self.len,
            },
            None => SnapshotData::Held(self.held.into()),
        }
    }
}

/// A spooled snapshot read from its start; each reader has a position of its own, so two can
/// read the one file at once.
struct SpooledValue {
    file: Arc<File>,
    at: u64,
    len: u64,
}

impl io::Read for SpooledValue {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.len - self.at).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.at)?;
        if n == 0 {
            let e = format!(
                "a received snapshot's file ends at {} of {} bytes",
                self.at, self.len
            );
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, e));
        }
        self.at += n as u64;
        Ok(n)
    }
}

impl ValueRead for SpooledValue {
    fn size(&self) -> u64 {
        self.len
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        Ok(())
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
            SnapshotData::Spooled { len, .. } => write!(f, "Spooled({len} bytes)"),
            SnapshotData::Stored { meta, .. } => write!(f, "Stored(index {})", index(meta)),
        }
    }
}

fn index(meta: &SnapshotMeta) -> u64 {
    meta.last_log_id.as_ref().map_or(0, |l| l.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_snapshot_reserves_no_more_than_its_cap_whatever_length_is_announced() {
        let mut data = Receiving::new(None, 8 << 30);
        assert!(data.held.capacity() as u64 <= HELD_RESERVE_MAX);
        data.push(b"abc").unwrap();
        data.push(b"def").unwrap();
        assert_eq!(data.received(), 6);
        match data.finish() {
            SnapshotData::Held(bytes) => assert_eq!(&bytes[..], b"abcdef"),
            _ => panic!("no scratch file was given, so the bytes are held"),
        }
    }
}
