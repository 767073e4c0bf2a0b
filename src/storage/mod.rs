//! Durable bytes under the Raft layer: the `Backend` trait and its two implementations.
//!
//! Raft's log, its vote and the latest state-machine snapshot live here; the MVCC store itself is
//! in memory and is rebuilt at start from the snapshot plus the log. A backend is a handful of
//! ordered trees with atomic batches and an explicit `sync`: nothing written is promised durable
//! until `sync` returns, and the memory backend models exactly that so a simulated power loss can
//! drop what was never synced.
//!
//! Invariant: writes from one `apply` call become visible together, in order.
//! Boundary: callers never see sled; they see `Tree`, `Batch` and `io::Error`.

mod member;
mod memory;
pub mod schema;
mod sled_backend;
mod snapshot_file;
mod trees;
mod wal;

use std::io;
use std::sync::Arc;

pub use member::MemberStorage;
pub use memory::MemoryBackend;
pub use schema::Tree;
pub use sled_backend::SledBackend;
pub use snapshot_file::SnapshotFile;
pub use wal::WalBackend;

/// One atomic group of writes across trees.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
}

/// Keys and values code as bytes, not as sequences of `u8` (one call per byte); bincode writes
/// both alike, so the WAL reads back either way.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Op {
    Put(
        Tree,
        #[serde(with = "serde_bytes")] Vec<u8>,
        #[serde(with = "serde_bytes")] Vec<u8>,
    ),
    Delete(Tree, #[serde(with = "serde_bytes")] Vec<u8>),
    /// Removes every key in `[from, to)`; `to = None` means to the end of the tree.
    DeleteRange(
        Tree,
        #[serde(with = "serde_bytes")] Vec<u8>,
        #[serde(with = "serde_bytes")] Option<Vec<u8>>,
    ),
}

impl Batch {
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(tree, key.into(), value.into()));
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(tree, key.into()));
    }

    pub fn delete_range(&mut self, tree: Tree, from: impl Into<Vec<u8>>, to: Option<Vec<u8>>) {
        self.ops.push(Op::DeleteRange(tree, from.into(), to));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Writes a value's bytes, given a writer: for a value as large as the store itself (the state
/// machine's snapshot), which a backend can take without anyone holding it whole.
pub type Fill<'a> = &'a mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>;

/// A value being read, pinned to what was stored when it was opened: its bytes through `Read`,
/// then `finish`, which says whether they were sound (a file's checksum covers it whole, so
/// only reading on to its end can tell).
pub trait ValueRead: io::Read + Send {
    /// Bytes of the value, all of them, read or not.
    fn size(&self) -> u64;

    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// A value in hand.
pub struct HeldValue(io::Cursor<bytes::Bytes>);

impl HeldValue {
    pub fn new(bytes: impl Into<bytes::Bytes>) -> Self {
        HeldValue(io::Cursor::new(bytes.into()))
    }

    pub fn boxed(bytes: impl Into<bytes::Bytes>) -> Box<dyn ValueRead> {
        Box::new(HeldValue::new(bytes))
    }
}

/// Reads `value` whole, then checks it.
pub fn read_whole(mut value: Box<dyn ValueRead>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(value.size() as usize);
    value.read_to_end(&mut bytes)?;
    value.finish()?;
    Ok(bytes)
}

impl io::Read for HeldValue {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl ValueRead for HeldValue {
    fn size(&self) -> u64 {
        self.0.get_ref().len() as u64
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

/// Ordered key-value trees with atomic batches and an explicit durability point.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>>;

    /// Entries with `from <= key < to` (`to = None`: to the end), in key order, at most `limit`.
    fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// The values `scan` returns, as shared bytes: a backend that holds its trees in memory
    /// hands out handles instead of copies.
    fn scan_values(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<bytes::Bytes>> {
        let rows = self.scan(tree, from, to, limit)?;
        Ok(rows.into_iter().map(|(_, v)| v.into()).collect())
    }

    /// The last entry of the tree, if any.
    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// Applies the batch atomically; readable at once, durable only after `sync`.
    fn write(&self, batch: Batch) -> io::Result<()>;

    /// Writes `batch`, and at `(tree, key)` the `len` bytes `fill` writes, then syncs. What
    /// `fill` writes need not be held in memory; here it is, for backends that hold values.
    fn write_streamed_and_sync(
        &self,
        mut batch: Batch,
        tree: Tree,
        key: &[u8],
        len: u64,
        fill: Fill<'_>,
    ) -> io::Result<()> {
        let mut value = Vec::with_capacity(len as usize);
        fill(&mut value)?;
        if value.len() as u64 != len {
            return Err(io::Error::other(format!(
                "a streamed value wrote {} bytes where it promised {len}",
                value.len()
            )));
        }
        batch.put(tree, key.to_vec(), value);
        self.write(batch)?;
        self.sync()
    }

    /// The value at `(tree, key)` to read as it is now, or `None`; a backend that keeps it on
    /// disk hands out a reader of the file as it is, unchanged by later writes, and never a
    /// copy in memory.
    fn open_value(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Box<dyn ValueRead>>> {
        Ok(self.get(tree, key)?.map(HeldValue::boxed))
    }

    /// An unnamed scratch file beside the backend's own, for a large value received before it is
    /// stored (a leader's snapshot); being unnamed, it leaves nothing behind, even after a
    /// crash. `None` for a backend without files: such a value is held in memory.
    fn scratch_file(&self) -> io::Result<Option<std::fs::File>> {
        Ok(None)
    }

    /// Makes every earlier `write` durable. Synchronous on purpose: the simulator must not leave
    /// the host's task set, and production calls it from a blocking-tolerant context.
    fn sync(&self) -> io::Result<()>;

    /// Bytes on disk, for Maintenance.Status.
    fn size_bytes(&self) -> u64;

    /// Extra time a log sync takes, waited on the member's clock before `sync`: how the
    /// simulator models a slow disk. Real disks are slow by themselves.
    fn sync_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

pub type SharedBackend = Arc<dyn Backend>;

/// Runs a disk sync. On a multi-threaded tokio runtime it runs under `block_in_place`, so the
/// worker's other tasks move elsewhere while the disk syncs; elsewhere (the simulator's
/// current-thread runtimes, plain threads) it simply runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
