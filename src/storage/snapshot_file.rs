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
//! are read at start, to send to a member that needs a snapshot, and for a backup, so holding
//! them in memory as well doubled a big member's resident size for nothing.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::trees::Trees;
use super::{Backend, Batch, Op, Tree};

const FILE: &str = "snapshot";

/// Synced values longer than this stay on disk only.
const RESIDENT_MAX: usize = 64 << 10;

pub struct SnapshotFile {
    dir: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// What the file holds, less the values in `on_disk`.
    trees: Trees,
    /// Keys whose (large) values are in the file only. Empty while `dirty`.
    on_disk: BTreeSet<(Tree, Vec<u8>)>,
    /// Written since the last sync.
    dirty: bool,
    /// Bytes of the file on disk.
    size: u64,
}

impl SnapshotFile {
    /// Opens `dir/snapshot`, or starts empty when there is none yet.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let (mut trees, size) = match fs::read(&path) {
            Ok(bytes) => (decode(&bytes, &path)?, bytes.len() as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Trees::default(), 0),
            Err(e) => return Err(e),
        };
        let on_disk = trees.evict_larger_than(RESIDENT_MAX).into_iter().collect();
        Ok(SnapshotFile {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                trees,
                on_disk,
                dirty: false,
                size,
            }),
        })
    }

    /// Everything the file holds, large values included.
    fn read_file(&self) -> io::Result<Trees> {
        let path = self.dir.join(FILE);
        decode(&fs::read(&path)?, &path)
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
}

/// A file that keeps the CRC-32C and length of what is written through it.
struct Checksummed {
    file: File,
    crc: u32,
    len: u64,
}

impl Write for Checksummed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn decode(bytes: &[u8], path: &Path) -> io::Result<Trees> {
    let damaged = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}: the snapshot file is damaged", path.display()),
        )
    };
    let (crc, body) = bytes
        .split_at_checked(4)
        .ok_or_else(|| damaged("too short"))?;
    let crc = u32::from_le_bytes(crc.try_into().expect("four bytes"));
    if crc32c::crc32c(body) != crc {
        return Err(damaged("checksum mismatch"));
    }
    bincode::deserialize(body).map_err(|e| damaged(&e.to_string()))
}

impl Backend for SnapshotFile {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let state = self.lock();
        if state.on_disk.contains(&(tree, key.to_vec())) {
            return Ok(self.read_file()?.get(tree, key));
        }
        Ok(state.trees.get(tree, key))
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
        // A batch that puts every value held on disk only replaces them all (a new snapshot
        // does); any other needs them back in memory, to be written out whole at the sync.
        let replaced = state.on_disk.iter().all(|(tree, key)| {
            batch
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

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        if !state.dirty {
            return Ok(());
        }
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let mut file = File::create(&tmp)?;
        // Streamed into the file with its checksum computed on the way: the encoded trees are
        // as large as the store, and a buffer of them was one more copy at every snapshot.
        file.write_all(&[0; 4])?;
        let mut body = io::BufWriter::new(Checksummed {
            file,
            crc: 0,
            len: 0,
        });
        bincode::serialize_into(&mut body, &state.trees).map_err(io::Error::other)?;
        let Checksummed { mut file, crc, len } = body.into_inner().map_err(|e| e.into_error())?;
        file.seek(io::SeekFrom::Start(0))?;
        file.write_all(&crc.to_le_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()?;
        state.size = 4 + len;
        state.dirty = false;
        let evicted = state.trees.evict_larger_than(RESIDENT_MAX);
        state.on_disk.extend(evicted);
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.lock().size
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
