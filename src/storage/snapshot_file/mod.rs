//! State-machine snapshots in one file, `<data-dir>/snapshot`, replaced whole at each sync:
//! written beside it, synced, renamed over it, and the directory synced, so a crash leaves
//! either the old snapshot or the new one, never a mix.
//!
//! sled kept each snapshot as a blob file and never reclaimed the old ones: a 3-member cluster
//! loading a million keys had filled 28 GB of disk (9 GB a member, growing with every
//! snapshot) when it was stopped. A snapshot is one value written whole, so a file is all it
//! needs. On disk: `[crc32c: u32 LE][bincode of the trees]`.
//!
//! Once synced, large values (the state machine's data, O(keys)) live in the file only: they
//! are decoded straight from it at start and read a chunk at a time to send to a member that
//! needs a snapshot, so holding them in memory as well doubled a big member's resident size
//! for nothing. The largest is written into the file as its encoder produces it
//! (`write_streamed_and_sync`), never buffered whole.

mod layout;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::trees::Trees;
use super::{read_whole, Backend, Batch, Fill, HeldValue, Op, Tree, ValueRead};
use layout::{Entry, Streamed, Walker};

const FILE: &str = "snapshot";

/// Synced values longer than this stay on disk only.
const RESIDENT_MAX: usize = 64 << 10;

/// Reads and writes of the file go through buffers this large: its big value is hundreds of MB.
const BUFFER: usize = 256 << 10;

pub struct SnapshotFile {
    dir: PathBuf,
    state: Mutex<State>,
    /// Bytes of the file on disk, readable while a snapshot is written (Maintenance.Status
    /// asks for it, and must not wait seconds for a large one).
    size: AtomicU64,
}

#[derive(Default)]
struct State {
    /// What the file holds, less the values in `on_disk`.
    trees: Trees,
    /// Keys whose (large) values are in the file only. Empty while `dirty`.
    on_disk: BTreeSet<(Tree, Vec<u8>)>,
    /// Written since the last sync.
    dirty: bool,
}

impl SnapshotFile {
    /// Opens `dir/snapshot`, or starts empty when there is none yet.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let file = SnapshotFile {
            dir: dir.to_path_buf(),
            state: Mutex::new(State::default()),
            size: AtomicU64::new(0),
        };
        *file.lock() = file.load()?;
        Ok(file)
    }

    /// What the file on disk holds, its large values left there.
    fn load(&self) -> io::Result<State> {
        let mut state = State::default();
        let walked = self.walk(&mut |mut e: Entry<'_>| {
            match e.len as usize <= RESIDENT_MAX {
                true => {
                    let value = e.read_value()?;
                    state.trees.insert(e.tree, e.key, value);
                }
                false => {
                    state.on_disk.insert((e.tree, e.key));
                }
            }
            Ok(())
        });
        let size = match walked {
            Ok(size) => size,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        self.size.store(size, Ordering::Relaxed);
        Ok(state)
    }

    /// Everything the file holds, large values included.
    fn read_file(&self) -> io::Result<Trees> {
        let mut trees = Trees::default();
        self.walk(&mut |mut e: Entry<'_>| {
            let value = e.read_value()?;
            trees.insert(e.tree, e.key, value);
            Ok(())
        })?;
        Ok(trees)
    }

    /// Walks the file's entries, then checks its checksum; returns its size. What `visit` has
    /// read is only known sound once this returns `Ok`.
    fn walk(&self, visit: &mut dyn FnMut(Entry<'_>) -> io::Result<()>) -> io::Result<u64> {
        let mut opened = self.open_file()?;
        let size = opened.size;
        let mut visit_all = || {
            while let Some((tree, key, len)) = opened.walker.next_entry()? {
                visit(Entry {
                    tree,
                    key,
                    len,
                    value: &mut opened.walker,
                })?;
            }
            Ok::<_, io::Error>(())
        };
        let walked = visit_all();
        let path = opened.path.clone();
        opened.finish()?;
        walked.map_err(|e| damaged(&path, &e.to_string()))?;
        Ok(size)
    }

    /// The file as it is now, opened at the start of its body.
    fn open_file(&self) -> io::Result<Opened> {
        let path = self.dir.join(FILE);
        let file = File::open(&path)?;
        let size = file.metadata()?.len();
        let mut r = BufReader::with_capacity(BUFFER, file);
        let mut crc = [0; 4];
        r.read_exact(&mut crc)
            .map_err(|_| damaged(&path, "too short"))?;
        let body = Checksummed { inner: r, crc: 0 };
        let walker = Walker::new(body, size - 4).map_err(|e| damaged(&path, &e.to_string()))?;
        Ok(Opened {
            path,
            walker,
            crc: u32::from_le_bytes(crc),
            size,
        })
    }

    /// The trees to answer a read of `tree` from: the resident ones, or the file's when
    /// `tree` has a value held on disk only.
    fn for_reading(&self, state: &State, tree: Tree) -> io::Result<Option<Trees>> {
        match state.on_disk.iter().any(|(t, _)| *t == tree) {
            true => self.read_file().map(Some),
            false => Ok(None),
        }
    }

    /// Whether `dir` holds a snapshot file.
    pub fn exists(dir: &Path) -> bool {
        dir.join(FILE).exists()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `batch` into `state`, reading back from the file first any value held there
    /// that neither the batch nor `also` (a value about to be written) replaces.
    fn take_batch(
        &self,
        state: &mut State,
        batch: Batch,
        also: Option<(Tree, &[u8])>,
    ) -> io::Result<()> {
        let replaced = state.on_disk.iter().all(|(tree, key)| {
            also == Some((*tree, key.as_slice()))
                || batch
                    .ops
                    .iter()
                    .any(|op| matches!(op, Op::Put(t, k, _) if t == tree && k == key))
        });
        if !replaced {
            state.trees = self.read_file()?;
        }
        state.on_disk.clear();
        state.trees.apply(batch.ops);
        state.dirty = true;
        Ok(())
    }

    /// Replaces the file with `state`'s trees (and `streamed`), synced, then leaves its large
    /// values on disk only.
    fn replace_file(&self, state: &mut State, streamed: Option<Streamed<'_>>) -> io::Result<()> {
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let written = self.write_file(&tmp, state, streamed);
        if written.is_err() {
            // As large as the store: not left on the disk until the next snapshot.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn write_file(
        &self,
        tmp: &Path,
        state: &mut State,
        streamed: Option<Streamed<'_>>,
    ) -> io::Result<()> {
        let mut file = File::create(tmp)?;
        // Streamed into the file with its checksum computed on the way: the encoded trees are
        // as large as the store, and a buffer of them was one more copy at every snapshot.
        file.write_all(&[0; 4])?;
        let mut body = io::BufWriter::with_capacity(
            BUFFER,
            Checksummed {
                inner: file,
                crc: 0,
            },
        );
        layout::write(&mut body, &state.trees, streamed)?;
        let Checksummed {
            inner: mut file,
            crc,
        } = body.into_inner().map_err(|e| e.into_error())?;
        let len = file.stream_position()?;
        file.seek(io::SeekFrom::Start(0))?;
        file.write_all(&crc.to_le_bytes())?;
        file.sync_all()?;
        fs::rename(tmp, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()?;
        self.size.store(len, Ordering::Relaxed);
        state.dirty = false;
        let evicted = state.trees.evict_larger_than(RESIDENT_MAX);
        state.on_disk.extend(evicted);
        Ok(())
    }
}

/// Reads or writes through to `inner`, keeping the CRC-32C of the bytes that pass.
struct Checksummed<T> {
    inner: T,
    crc: u32,
}

impl<T: Write> Write for Checksummed<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Checksummed<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
}

fn damaged(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}: the snapshot file is damaged", path.display()),
    )
}

/// The snapshot file opened for reading. An open file keeps the bytes it had when a new
/// snapshot is renamed over it, so what is read is one snapshot, never a mix.
struct Opened {
    path: PathBuf,
    walker: Walker<Checksummed<BufReader<File>>>,
    /// What the body's checksum must come to.
    crc: u32,
    size: u64,
}

impl Opened {
    /// Reads the rest of the file and checks its checksum: what was read from it is sound only
    /// if this returns `Ok`.
    fn finish(self) -> io::Result<()> {
        let mut body = self
            .walker
            .into_inner()
            .map_err(|e| damaged(&self.path, &e.to_string()))?;
        // Trailing bytes were never refused; they count in the checksum.
        io::copy(&mut body, &mut io::sink())?;
        match body.crc == self.crc {
            true => Ok(()),
            false => Err(damaged(&self.path, "checksum mismatch")),
        }
    }
}

/// A value held in the file only, read from the file as it was when opened.
struct FileValue {
    opened: Opened,
    len: u64,
}

impl Read for FileValue {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.opened.walker.read(buf)
    }
}

impl ValueRead for FileValue {
    fn size(&self) -> u64 {
        self.len
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.opened.finish()
    }
}

impl Backend for SnapshotFile {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.open_value(tree, key)?.map(read_whole).transpose()
    }

    fn open_value(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Box<dyn ValueRead>>> {
        let state = self.lock();
        if !state.on_disk.contains(&(tree, key.to_vec())) {
            return Ok(state.trees.get(tree, key).map(HeldValue::boxed));
        }
        let mut opened = self.open_file()?;
        while let Some((t, k, len)) = opened.walker.next_entry()? {
            if t == tree && k == key {
                return Ok(Some(Box::new(FileValue { opened, len })));
            }
        }
        Err(damaged(
            &opened.path,
            "a value held in the file is missing from it",
        ))
    }

    fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let state = self.lock();
        let file = self.for_reading(&state, tree)?;
        Ok(file
            .as_ref()
            .unwrap_or(&state.trees)
            .scan(tree, from, to, limit))
    }

    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let state = self.lock();
        let resident = state.trees.last(tree);
        // The file is read only when the last key is one held there.
        let beyond = state
            .on_disk
            .iter()
            .any(|(t, k)| *t == tree && resident.as_ref().is_none_or(|(last, _)| k > last));
        match beyond {
            true => Ok(self.read_file()?.last(tree)),
            false => Ok(resident),
        }
    }

    fn write(&self, batch: Batch) -> io::Result<()> {
        let mut state = self.lock();
        self.take_batch(&mut state, batch, None)
    }

    fn write_streamed_and_sync(
        &self,
        batch: Batch,
        tree: Tree,
        key: &[u8],
        len: u64,
        fill: Fill<'_>,
    ) -> io::Result<()> {
        let mut state = self.lock();
        self.take_batch(&mut state, batch, Some((tree, key)))?;
        // A placeholder gives the streamed value its place among the keys.
        state.trees.insert(tree, key.to_vec(), Bytes::new());
        let streamed = Streamed {
            tree,
            key,
            len,
            fill,
        };
        let written = self.replace_file(&mut state, Some(streamed));
        state.trees.remove(tree, key);
        match written {
            Ok(()) => {
                state.on_disk.insert((tree, key.to_vec()));
                Ok(())
            }
            Err(e) => {
                // The batch taken above is in memory but not in the file: go back to what the
                // file holds, as if neither had been written.
                *state = self.load()?;
                Err(e)
            }
        }
    }

    fn scratch_file(&self) -> io::Result<Option<File>> {
        tempfile::tempfile_in(&self.dir).map(Some)
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        if !state.dirty {
            return Ok(());
        }
        self.replace_file(&mut state, None)
    }

    fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], value: &[u8]) -> Batch {
        let mut b = Batch::default();
        b.put(Tree::Snapshot, key.to_vec(), value.to_vec());
        b
    }

    #[test]
    fn a_synced_snapshot_replaces_the_last_and_an_unsynced_one_does_not() {
        // Goal: one file, replaced whole at sync; what was never synced is not on disk.
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotFile::open(dir.path()).unwrap();
        s.write(put(b"data", &[1; 1000])).unwrap();
        s.sync().unwrap();
        s.write(put(b"data", &[2; 10])).unwrap();
        s.sync().unwrap();
        s.write(put(b"data", &[3; 10])).unwrap();
        drop(s);
        let s = SnapshotFile::open(dir.path()).unwrap();
        assert_eq!(s.get(Tree::Snapshot, b"data").unwrap(), Some(vec![2; 10]));
        assert!(s.size_bytes() < 100, "the old snapshot's bytes are gone");
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no leftovers beside the file");
    }

    #[test]
    fn a_synced_large_value_is_read_from_the_file_and_kept_by_a_partial_write() {
        // Goal: once synced, a large value is not held in memory, yet every read still
        // returns it, and a later write of another key neither loses nor duplicates it.
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotFile::open(dir.path()).unwrap();
        let big = vec![7; RESIDENT_MAX + 1];
        let mut b = put(b"data", &big);
        b.put(Tree::Snapshot, b"meta".to_vec(), b"m1".to_vec());
        s.write(b).unwrap();
        assert!(
            s.lock().trees.size_bytes() > RESIDENT_MAX as u64,
            "unsynced: in memory"
        );
        s.sync().unwrap();
        assert!(s.lock().trees.size_bytes() < 100, "synced: on disk only");
        assert_eq!(s.get(Tree::Snapshot, b"data").unwrap(), Some(big.clone()));
        assert_eq!(
            s.get(Tree::Snapshot, b"meta").unwrap(),
            Some(b"m1".to_vec())
        );
        assert_eq!(s.last(Tree::Snapshot).unwrap().unwrap().0, b"meta".to_vec());
        assert_eq!(s.scan(Tree::Snapshot, b"", None, 10).unwrap().len(), 2);

        s.write(put(b"meta", b"m2")).unwrap();
        s.sync().unwrap();
        drop(s);
        let s = SnapshotFile::open(dir.path()).unwrap();
        assert_eq!(s.get(Tree::Snapshot, b"data").unwrap(), Some(big));
        assert_eq!(
            s.get(Tree::Snapshot, b"meta").unwrap(),
            Some(b"m2".to_vec())
        );
        assert!(s.lock().trees.size_bytes() < 100, "reopened: on disk only");
    }

    /// Streams `value` in as the data, with `meta`, synced.
    fn stream_in(s: &SnapshotFile, meta: &[u8], value: &[u8]) -> io::Result<()> {
        let mut fill = |w: &mut dyn Write| w.write_all(value);
        let batch = put(b"meta", meta);
        s.write_streamed_and_sync(
            batch,
            Tree::Snapshot,
            b"data",
            value.len() as u64,
            &mut fill,
        )
    }

    #[test]
    fn a_streamed_value_is_written_synced_and_a_failed_one_changes_nothing() {
        // Goal: a value streamed in is on disk only, whole, after the call; a value opened
        // reads what it was even after a newer one is written; one whose writer fails leaves
        // the file and every read as they were.
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotFile::open(dir.path()).unwrap();
        let big = vec![5; RESIDENT_MAX * 2];
        stream_in(&s, b"m1", &big).unwrap();
        assert!(s.lock().trees.size_bytes() < 100, "on disk only");
        assert_eq!(s.get(Tree::Snapshot, b"data").unwrap(), Some(big.clone()));

        let mut value = s.open_value(Tree::Snapshot, b"data").unwrap().unwrap();
        assert_eq!(value.size(), big.len() as u64);
        stream_in(&s, b"m0", &[6; RESIDENT_MAX * 2]).unwrap();
        let mut streamed = Vec::new();
        value.read_to_end(&mut streamed).unwrap();
        value.finish().unwrap();
        assert_eq!(streamed, big, "the file as it was opened");
        stream_in(&s, b"m1", &big).unwrap();

        let mut failing = |w: &mut dyn Write| {
            w.write_all(&[1; 100])?;
            Err(io::Error::other("encoder failed"))
        };
        let batch = put(b"meta", b"m2");
        let err = s
            .write_streamed_and_sync(batch, Tree::Snapshot, b"data", 200, &mut failing)
            .unwrap_err();
        assert!(err.to_string().contains("encoder failed"), "{err}");
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "the half-written file is not left behind");
        let m1 = Some(b"m1".to_vec());
        assert_eq!(s.get(Tree::Snapshot, b"meta").unwrap(), m1);
        assert_eq!(s.get(Tree::Snapshot, b"data").unwrap(), Some(big.clone()));
        drop(s);
        let s = SnapshotFile::open(dir.path()).unwrap();
        assert_eq!(s.get(Tree::Snapshot, b"data").unwrap(), Some(big));
        assert_eq!(s.get(Tree::Snapshot, b"meta").unwrap(), m1);
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotFile::open(dir.path()).unwrap();
        s.write(put(b"data", b"v")).unwrap();
        s.sync().unwrap();
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let err = SnapshotFile::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
