//! Segment files: `<seq>.wal` in the WAL directory, numbered in creation order.
//!
//! A segment is preallocated (zeros) so that `fdatasync` after an append does not also have to
//! persist a new file size, the way etcd preallocates its WAL files. A new segment is written
//! under a temporary name, synced, then renamed: a segment that has its final name always
//! starts with a complete checkpoint.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".wal";
const TEMP_SUFFIX: &str = ".wal.tmp";

pub struct Segment {
    file: File,
    seq: u64,
    /// Bytes written from the start; the next append goes here.
    len: u64,
}

fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SUFFIX}"))
}

/// The sequence numbers of the segments in `dir`, oldest first. Leftover temporary files (a
/// crash while a segment was being created) are removed: nothing in them was acknowledged.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMP_SUFFIX) {
            std::fs::remove_file(entry.path())?;
        } else if let Some(seq) = name.strip_suffix(SUFFIX).and_then(|s| s.parse().ok()) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

pub fn read(dir: &Path, seq: u64) -> io::Result<Vec<u8>> {
    std::fs::read(path(dir, seq))
}

pub fn remove(dir: &Path, seq: u64) -> io::Result<()> {
    std::fs::remove_file(path(dir, seq))?;
    sync_dir(dir)
}

/// Makes a directory's entries (created, renamed, removed files) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reserves `len` bytes of zeros. Best effort: a file system without `fallocate` grows the
/// file on append instead, which is slower to sync but as safe.
fn preallocate(file: &File, len: u64) {
    let Ok(len) = libc::off_t::try_from(len) else {
        return;
    };
    // SAFETY: `fallocate` on a valid open descriptor; it reads no memory of ours.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "wal: preallocation skipped");
    }
}

impl Segment {
    /// Creates segment `seq` holding `first` (a framed checkpoint), durable when this returns.
    pub fn create(dir: &Path, seq: u64, first: &[u8], reserve: u64) -> io::Result<Segment> {
        let temp = dir.join(format!("{seq:020}{TEMP_SUFFIX}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)?;
        preallocate(&file, reserve.max(first.len() as u64));
        file.write_all_at(first, 0)?;
        file.sync_all()?;
        std::fs::rename(&temp, path(dir, seq))?;
        sync_dir(dir)?;
        Ok(Segment {
            file,
            seq,
            len: first.len() as u64,
        })
    }

    /// Opens segment `seq` to append after its first `valid_len` bytes. Whatever lies beyond
    /// (a torn write) is replaced by zeros first, so that no stale frame can ever follow the
    /// frames appended from here on.
    pub fn reopen(dir: &Path, seq: u64, valid_len: u64, reserve: u64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path(dir, seq))?;
        let size = file.metadata()?.len();
        if size > valid_len {
            file.set_len(valid_len)?;
            preallocate(&file, reserve.max(valid_len));
            file.sync_all()?;
        }
        Ok(Segment {
            file,
            seq,
            len: valid_len,
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// `fdatasync`: the appended bytes are durable when this returns.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}
