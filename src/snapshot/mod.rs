//! Snapshots in etcd 3.4's format: a bbolt database laid out as etcd's backend, followed (in a
//! `snapshot save` file) by the SHA-256 of the database bytes.
//!
//! `bolt` reads and writes the page format; `etcd_db` maps etcd's buckets to and from Quorum's
//! applied state; this file holds what `etcdctl snapshot status` reports and the trailer check;
//! `restore` builds a member's data directory from a snapshot file and `verify` proves a file
//! restores to the same keys and revisions.
//!
//! **Boundary:** a snapshot file is untrusted input. Every failure is a `SnapshotError` naming
//! what is wrong, and nothing is written anywhere until the whole file has been read and
//! checked.

pub mod bolt;
pub mod etcd_auth;
pub mod etcd_db;
pub mod restore;
pub mod verify;

use sha2::Digest;

pub use restore::{restore, RestoreOptions};
pub use verify::verify;

/// `etcdctl snapshot save` requires the database to be whole 512-byte sectors followed by the
/// 32-byte SHA-256; a file of that shape has a trailer.
const SECTOR_BYTES: usize = 512;
const SHA256_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bolt(#[from] bolt::BoltError),
    #[error("not an etcd 3.4 database: {0}")]
    Layout(#[from] etcd_db::LayoutError),
    #[error("expected sha256 {expected}, got {actual}: the snapshot is corrupted")]
    HashMismatch { expected: String, actual: String },
    #[error("snapshot missing hash but --skip-hash-check=false")]
    MissingHash,
    #[error("data-dir {0:?} exists")]
    DataDirExists(String),
    #[error("bad restore flags: {0}")]
    Flags(String),
    #[error("restored member: {0}")]
    Member(String),
}

pub type Result<T> = std::result::Result<T, SnapshotError>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Appends etcd's trailer: the SHA-256 of exactly the database bytes.
pub fn with_trailer(mut db: Vec<u8>) -> Vec<u8> {
    let digest = sha2::Sha256::digest(&db);
    db.extend_from_slice(&digest);
    db
}

/// The database bytes of a snapshot file, its trailer checked (when it has one) and cut off,
/// as `etcdctl snapshot restore` does. A file without a trailer is accepted only with
/// `skip_hash_check` (a raw `member/snap/db` copy).
pub fn database_bytes(file: &[u8], skip_hash_check: bool) -> Result<&[u8]> {
    let has_trailer = file.len() % SECTOR_BYTES == SHA256_BYTES;
    if !has_trailer {
        if skip_hash_check {
            return Ok(file);
        }
        return Err(SnapshotError::MissingHash);
    }
    let (db, trailer) = file.split_at(file.len() - SHA256_BYTES);
    if !skip_hash_check {
        let actual = sha2::Sha256::digest(db);
        if actual.as_slice() != trailer {
            return Err(SnapshotError::HashMismatch {
                expected: hex(trailer),
                actual: hex(&actual),
            });
        }
    }
    Ok(db)
}

/// What `etcdctl snapshot status` reports of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// CRC-32C over, bucket by bucket in order, the bucket name then each key and value.
    pub hash: u32,
    /// The main revision of the last entry of the `key` bucket (0 if it is empty).
    pub revision: i64,
    /// Key/value pairs across all buckets.
    pub total_key: u64,
    /// The bytes of the pages in use (bbolt's `tx.Size()`).
    pub total_size: u64,
}

impl Status {
    pub fn of(db: &bolt::Db) -> Status {
        let mut hash = 0u32;
        let mut total_key = 0u64;
        let mut revision = 0i64;
        for b in &db.buckets {
            hash = crc32c::crc32c_append(hash, &b.name);
            for (k, v) in &b.entries {
                hash = crc32c::crc32c_append(hash, k);
                hash = crc32c::crc32c_append(hash, v);
                total_key += 1;
            }
            if b.name == b"key" {
                if let Some((k, _)) = b.entries.last() {
                    revision = etcd_db::parse_revision_key(k).map_or(0, |(main, _, _)| main);
                }
            }
        }
        Status {
            hash,
            revision,
            total_key,
            total_size: db.size_bytes(),
        }
    }

    /// The status printed as etcdctl prints it: `table`, `json` or `simple`.
    pub fn render(&self, format: &str) -> String {
        let size = human_bytes(self.total_size);
        match format {
            "json" => format!(
                "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
                self.hash, self.revision, self.total_key, self.total_size
            ),
            "table" => table(
                &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
                &[
                    format!("{:x}", self.hash),
                    self.revision.to_string(),
                    self.total_key.to_string(),
                    size,
                ],
            ),
            _ => format!(
                "{:x}, {}, {}, {}\n",
                self.hash, self.revision, self.total_key, size
            ),
        }
    }
}

/// Reads a snapshot file's database (trailer ignored, as `snapshot status` ignores it) and
/// reports its status.
pub fn status(file: &[u8]) -> Result<Status> {
    let db = if file.len() % SECTOR_BYTES == SHA256_BYTES {
        &file[..file.len() - SHA256_BYTES]
    } else {
        file
    };
    let db = bolt::read(db)?;
    Ok(Status::of(&db))
}

/// Sizes in SI units with one decimal below 10, as the Go `humanize.Bytes` etcdctl uses.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let mut e = 0;
    let mut scaled = n as f64;
    while scaled >= 1000.0 && e + 1 < UNITS.len() {
        scaled /= 1000.0;
        e += 1;
    }
    let value = (scaled * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[e])
    } else {
        format!("{value:.0} {}", UNITS[e])
    }
}

/// One-row table as etcdctl draws it: centered headers, right-aligned cells.
fn table(headers: &[&str], row: &[String]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .zip(row)
        .map(|(h, c)| h.len().max(c.len()))
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let head: String = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| {
            let pad = w - h.len();
            let left = pad / 2;
            format!("| {}{}{} ", " ".repeat(left), h, " ".repeat(pad - left))
        })
        .collect::<String>()
        + "|\n";
    let cells: String = row
        .iter()
        .zip(&widths)
        .map(|(c, w)| format!("| {c:>w$} "))
        .collect::<String>()
        + "|\n";
    format!("{rule}{head}{rule}{cells}{rule}")
}

#[cfg(test)]
mod tests;
