//! The write-ahead log backend: Raft's log and vote held in memory and made durable by
//! appending each batch to a segment file and calling `fdatasync`, as etcd's WAL does.
//!
//! Why not sled for the log: a sled `flush` after each append cost two to three
//! `sync_file_range` calls per client write (measured with `strace -c` on a one-member
//! cluster), and `sync_file_range` does not flush the drive's cache or file metadata, so it
//! promised less than it cost. Here one append is one `pwrite` and one `fdatasync`.
//!
//! Invariant: `sync` returns only after every earlier `write` is on disk; after a failed write
//! or sync the backend refuses all further ones (a page cache that failed to reach the disk
//! cannot be trusted again), so Raft stops rather than acknowledges.
//! Boundary: the whole state lives in memory; it is meant for small trees (Raft's log, which
//! snapshots keep short, and its metadata), not for the key space.

mod frame;
mod segment;
mod slab;
mod trim;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use self::frame::{End, Record, RecordRef};
use self::segment::Segment;
use self::slab::Slab;
use super::trees::Trees;
use super::{Backend, Batch, Op, Tree};

/// Appends past this many bytes start a new segment (etcd's WAL segment size).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Unsynced batches past this many bytes are synced by `write` itself, bounding memory for a
/// caller that writes without syncing.
const PENDING_MAX_BYTES: usize = 8 * 1024 * 1024;

pub struct WalBackend {
    dir: PathBuf,
    segment_bytes: u64,
    /// Lock order: `disk`, then `state`. Readers take only `state`, so an fsync in progress
    /// never blocks them.
    disk: Mutex<Disk>,
    state: Mutex<State>,
    created: bool,
    /// Bytes in the current segment, as of the last write: read without the disk lock, so a
    /// Status call or a metrics scrape never waits behind an fsync.
    size: AtomicU64,
}

struct Disk {
    segment: Segment,
    /// Size of the checkpoint the current segment starts with.
    base_len: u64,
}

struct State {
    trees: Trees,
    /// Where Raft's log entries are kept while in memory (see `slab`).
    log_slab: Slab,
    /// Framed records written since the last sync.
    pending: Vec<u8>,
    /// Set by the first failed write or sync; every later one reports it.
    failed: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic in this process mid-operation; the state is still a
    // whole number of applied batches (each is applied under the lock without early return).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WalBackend {
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_with(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// Opens (or creates) the WAL in `dir`, replaying its newest segment.
    pub fn open_with(dir: &Path, segment_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let seqs = segment::list(dir)?;
        let Some(&newest) = seqs.last() else {
            let trees = Trees::default();
            let mut first = Vec::new();
            frame::push(&mut first, &RecordRef::Checkpoint(&trees))?;
            let segment = Segment::create(dir, 0, &first, segment_bytes)?;
            return Ok(Self::assemble(
                dir,
                segment_bytes,
                segment,
                first.len(),
                trees,
                true,
            ));
        };
        let bytes = segment::read(dir, newest)?;
        let scan = frame::scan(&bytes);
        let corrupt = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "wal {}: segment {newest}: {what} at byte {}",
                    dir.display(),
                    scan.valid_len
                ),
            )
        };
        if scan.end == End::Corrupt {
            return Err(corrupt("damaged record followed by valid ones"));
        }
        let mut records = scan.records.into_iter();
        let (mut trees, base_len) = match records.next() {
            Some(Record::Checkpoint(trees)) => (trees, frame::HEADER_BYTES),
            _ => return Err(corrupt("segment does not start with a checkpoint")),
        };
        let mut log_slab = Slab::default();
        for record in records {
            match record {
                Record::Batch(ops) => {
                    trees.apply_placing(ops, |tree, v| log_slab.place_in(tree, v))
                }
                Record::Checkpoint(_) => return Err(corrupt("checkpoint inside a segment")),
            }
        }
        if scan.end == End::Torn {
            tracing::warn!(
                dir = %dir.display(),
                segment = newest,
                at = scan.valid_len,
                discarded = bytes.len() - scan.valid_len,
                "wal: discarding a torn write (never acknowledged)"
            );
        }
        let segment = Segment::reopen(dir, newest, scan.valid_len as u64, segment_bytes)?;
        // Older segments are superseded by the newest one's checkpoint; one is left behind
        // only by a crash between creating a segment and removing its predecessor.
        for &old in &seqs[..seqs.len() - 1] {
            segment::remove(dir, old)?;
        }
        Ok(Self::assemble(
            dir,
            segment_bytes,
            segment,
            base_len,
            trees,
            false,
        ))
    }

    fn assemble(
        dir: &Path,
        segment_bytes: u64,
        segment: Segment,
        base_len: usize,
        trees: Trees,
        created: bool,
    ) -> Self {
        WalBackend {
            dir: dir.to_path_buf(),
            segment_bytes,
            size: AtomicU64::new(segment.len()),
            disk: Mutex::new(Disk {
                segment,
                base_len: base_len as u64,
            }),
            state: Mutex::new(State {
                trees,
                // Replayed entries keep the buffers replay packed them into.
                log_slab: Slab::default(),
                pending: Vec::new(),
                failed: None,
            }),
            created,
        }
    }

    /// True when `open` found no WAL and made a new, empty one.
    pub fn created(&self) -> bool {
        self.created
    }

    fn failed(state: &State) -> io::Result<()> {
        match &state.failed {
            Some(e) => Err(io::Error::other(format!(
                "wal: refusing IO after an earlier failure: {e}"
            ))),
            None => Ok(()),
        }
    }

    fn sync_now(&self) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        let (bytes, checkpoint) = {
            let mut state = lock(&self.state);
            Self::failed(&state)?;
            if state.pending.is_empty() {
                return Ok(());
            }
            let bytes = std::mem::take(&mut state.pending);
            let written = disk.segment.len() - disk.base_len;
            let checkpoint = if written + bytes.len() as u64 > self.segment_bytes {
                let mut first = Vec::new();
                frame::push(&mut first, &RecordRef::Checkpoint(&state.trees))?;
                Some(first)
            } else {
                None
            };
            (bytes, checkpoint)
        };
        let result = match checkpoint {
            // The checkpoint already holds what `bytes` would add.
            Some(first) => self.rotate(&mut disk, first),
            None => disk
                .segment
                .append(&bytes)
                .and_then(|_| disk.segment.sync()),
        };
        if let Err(e) = &result {
            lock(&self.state).failed = Some(e.to_string());
        }
        self.size.store(disk.segment.len(), Ordering::Relaxed);
        result
    }

    /// Starts the next segment with `first` (a checkpoint of everything written so far), then
    /// drops the old one: the WAL's size follows the live state, not the write history.
    fn rotate(&self, disk: &mut Disk, first: Vec<u8>) -> io::Result<()> {
        let old = disk.segment.seq();
        let reserve = self.segment_bytes + first.len() as u64;
        disk.segment = Segment::create(&self.dir, old + 1, &first, reserve)?;
        disk.base_len = first.len() as u64;
        segment::remove(&self.dir, old)
    }
}

impl Backend for WalBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(lock(&self.state).trees.get(tree, key))
    }

    fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(lock(&self.state).trees.scan(tree, from, to, limit))
    }

    fn scan_values(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<bytes::Bytes>> {
        Ok(lock(&self.state).trees.values(tree, from, to, limit))
    }

    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(lock(&self.state).trees.last(tree))
    }

    fn write(&self, batch: Batch) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let purges_log = batch
            .ops
            .iter()
            .any(|op| matches!(op, Op::DeleteRange(Tree::Log, ..)));
        let pending = {
            let mut state = lock(&self.state);
            Self::failed(&state)?;
            let State {
                trees,
                log_slab,
                pending,
                ..
            } = &mut *state;
            frame::push(pending, &RecordRef::Batch(&batch.ops))?;
            trees.apply_placing(batch.ops, |tree, v| log_slab.place_in(tree, v));
            pending.len()
        };
        if purges_log {
            trim::soon();
        }
        if pending > PENDING_MAX_BYTES {
            self.sync()?;
        }
        Ok(())
    }

    /// Syncs on the calling thread, not under `block_in_place`: only the log's flusher task
    /// syncs, one fsync (~0.1 ms) at a time, and handing the worker's core to another thread
    /// and back around each cost three context switches per write on every member
    /// (`/proc/PID/task/*/status`, one-client puts: 13.5 to 10.4 on the leader, 11.3 to 8.6
    /// on a follower) and 12-20 % of a member's CPU per write.
    fn sync(&self) -> io::Result<()> {
        self.sync_now()
    }

    fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
