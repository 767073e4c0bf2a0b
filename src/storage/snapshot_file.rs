//! State-machine snapshots in one file, `<data-dir>/snapshot`, replaced whole at each sync:
//! written beside it, synced, renamed over it, and the directory synced, so a crash leaves
//! either the old snapshot or the new one, never a mix.
//!
//! sled kept each snapshot as a blob file and never reclaimed the old ones: a 3-member cluster
//! loading a million keys had filled 28 GB of disk (9 GB a member, growing with every
//! snapshot) when it was stopped. A snapshot is one value written whole, so a file is all it
//! needs. On disk: `[crc32c: u32 LE][bincode of the trees]`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::trees::Trees;
use super::{Backend, Batch, Tree};

const FILE: &str = "snapshot";

pub struct SnapshotFile {
    dir: PathBuf,
    state: Mutex<State>,
}

struct State {
    trees: Trees,
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
        let (trees, size) = match fs::read(&path) {
            Ok(bytes) => (decode(&bytes, &path)?, bytes.len() as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Trees::default(), 0),
            Err(e) => return Err(e),
        };
        Ok(SnapshotFile {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                trees,
                dirty: false,
                size,
            }),
        })
    }

    /// Whether `dir` holds a snapshot file.
    pub fn exists(dir: &Path) -> bool {
        dir.join(FILE).exists()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
        Ok(self.lock().trees.get(tree, key))
    }

    fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.lock().trees.scan(tree, from, to, limit))
    }

    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.lock().trees.last(tree))
    }

    fn write(&self, batch: Batch) -> io::Result<()> {
        let mut state = self.lock();
        state.trees.apply(batch.ops);
        state.dirty = true;
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        if !state.dirty {
            return Ok(());
        }
        let body = bincode::serialize(&state.trees).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(&crc32c::crc32c(&body).to_le_bytes())?;
        file.write_all(&body)?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()?;
        state.size = 4 + body.len() as u64;
        state.dirty = false;
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
