//! One WAL record on disk: `[len: u32 LE][crc: u32 LE][payload]`, the CRC-32C covering the
//! length bytes and the payload.
//!
//! A length of zero marks the end of the written part: segments are preallocated with zeros and
//! no payload is empty. A frame whose length runs past the file or whose CRC disagrees is a torn
//! write: everything from it on was never completely written.

use serde::{Deserialize, Serialize};

use crate::storage::trees::Trees;
use crate::storage::Op;

pub const HEADER_BYTES: usize = 8;

/// What a record says. Every segment starts with a `Checkpoint`: the whole state as of that
/// point, so a segment can be replayed without the ones before it.
#[derive(Debug, Serialize, Deserialize)]
pub enum Record {
    Checkpoint(Trees),
    Batch(Vec<Op>),
}

/// The borrowing twin of `Record`, for writing without cloning; bincode encodes both alike.
#[derive(Serialize)]
pub enum RecordRef<'a> {
    Checkpoint(&'a Trees),
    Batch(&'a [Op]),
}

/// Appends `record`, framed, to `out`.
pub fn push(out: &mut Vec<u8>, record: &RecordRef<'_>) -> std::io::Result<()> {
    let payload = bincode::serialize(record).map_err(std::io::Error::other)?;
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::other("wal record larger than 4 GiB"))?
        .to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// How the frames of a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// At the zero end marker or the end of the file.
    Clean,
    /// At a frame that was never completely written: a crash during an append nobody was told
    /// had succeeded.
    Torn,
    /// At a damaged frame that complete frames follow: written data went bad afterwards.
    Corrupt,
}

/// What reading frames from the start of a segment found.
#[derive(Debug)]
pub struct Scan {
    pub records: Vec<Record>,
    /// Bytes of whole, valid frames from the start; appends continue here.
    pub valid_len: usize,
    pub end: End,
}

/// Disks write whole sectors; a torn multi-sector write shows as a sector of zeros.
const SECTOR: usize = 512;

/// Decodes the frame at `at`, if a whole and valid one is there.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let header = bytes.get(at..at + HEADER_BYTES)?;
    let len_bytes: [u8; 4] = header[..4].try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let payload = bytes.get(at + HEADER_BYTES..at + HEADER_BYTES + len)?;
    if len == 0 || crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
        return None;
    }
    let record = bincode::deserialize::<Record>(payload).ok()?;
    Some((record, HEADER_BYTES + len))
}

/// Whether the bad frame at `at` looks torn rather than damaged: it runs past the file, holds
/// a whole zero sector (etcd's test for a torn entry), or nothing valid follows it.
fn torn_at(bytes: &[u8], at: usize) -> bool {
    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    let end = at + HEADER_BYTES + len;
    if end > bytes.len() {
        return true;
    }
    let mut sector = (at / SECTOR + 1) * SECTOR;
    while sector + SECTOR <= end {
        if bytes[sector..sector + SECTOR].iter().all(|b| *b == 0) {
            return true;
        }
        sector += SECTOR;
    }
    frame_at(bytes, end).is_none()
}

/// Reads frames from `bytes` until the end marker, the end of the bytes, or a bad frame.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut at = 0;
    let end = loop {
        if bytes.len() - at < HEADER_BYTES {
            // Less than a header left: the end if it is all zero, a torn header otherwise.
            break if bytes[at..].iter().all(|b| *b == 0) {
                End::Clean
            } else {
                End::Torn
            };
        }
        if bytes[at..at + 4] == [0; 4] {
            break End::Clean;
        }
        match frame_at(bytes, at) {
            Some((record, size)) => {
                records.push(record);
                at += size;
            }
            None if torn_at(bytes, at) => break End::Torn,
            None => break End::Corrupt,
        }
    };
    Scan {
        records,
        valid_len: at,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Tree;

    fn batch(k: &[u8]) -> Vec<Op> {
        vec![Op::Put(Tree::Log, k.to_vec(), b"v".to_vec())]
    }

    /// `Op` as serde derived it before its keys and values coded as bytes.
    #[derive(Serialize)]
    enum OpAsSequences {
        Put(Tree, Vec<u8>, Vec<u8>),
        Delete(Tree, Vec<u8>),
        DeleteRange(Tree, Vec<u8>, Option<Vec<u8>>),
    }

    #[test]
    fn ops_encode_as_they_did_as_sequences() {
        // Goal: a WAL written before keys and values coded as bytes replays unchanged.
        let ops = [
            Op::Put(Tree::Log, b"key".to_vec(), vec![3; 200]),
            Op::Delete(Tree::RaftMeta, b"gone".to_vec()),
            Op::DeleteRange(Tree::Log, b"a".to_vec(), Some(b"z".to_vec())),
            Op::DeleteRange(Tree::Snapshot, b"a".to_vec(), None),
        ];
        let old = [
            OpAsSequences::Put(Tree::Log, b"key".to_vec(), vec![3; 200]),
            OpAsSequences::Delete(Tree::RaftMeta, b"gone".to_vec()),
            OpAsSequences::DeleteRange(Tree::Log, b"a".to_vec(), Some(b"z".to_vec())),
            OpAsSequences::DeleteRange(Tree::Snapshot, b"a".to_vec(), None),
        ];
        for (op, old) in ops.iter().zip(&old) {
            let bytes = bincode::serialize(old).unwrap();
            assert_eq!(bincode::serialize(op).unwrap(), bytes);
            let back: Op = bincode::deserialize(&bytes).unwrap();
            assert_eq!(format!("{back:?}"), format!("{op:?}"));
        }
    }

    fn two_records() -> Vec<u8> {
        let mut out = Vec::new();
        push(&mut out, &RecordRef::Batch(&batch(b"a"))).unwrap();
        push(&mut out, &RecordRef::Batch(&batch(b"b"))).unwrap();
        out
    }

    #[test]
    fn zeros_after_the_records_end_the_scan_cleanly() {
        // Goal: a preallocated segment's zero tail is the end, not a torn write.
        let mut bytes = two_records();
        let len = bytes.len();
        bytes.resize(len + 4096, 0);
        let scan = scan(&bytes);
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.valid_len, len);
        assert_eq!(scan.end, End::Clean);
    }

    #[test]
    fn every_cut_inside_the_last_frame_is_torn_and_keeps_the_first() {
        // Goal: a write cut anywhere keeps the whole frames before it and nothing after.
        let bytes = two_records();
        let mut one = Vec::new();
        push(&mut one, &RecordRef::Batch(&batch(b"a"))).unwrap();
        for cut in one.len() + 1..bytes.len() {
            let scan = scan(&bytes[..cut]);
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.valid_len, one.len());
            assert_eq!(scan.end, End::Torn, "cut at {cut}");
        }
    }

    #[test]
    fn a_prefix_of_the_last_frame_followed_by_zeros_is_torn() {
        // Goal: the simulator's torn write (a prefix survives in a preallocated file) is read
        // as torn, not as damage.
        let bytes = two_records();
        let mut one = Vec::new();
        push(&mut one, &RecordRef::Batch(&batch(b"a"))).unwrap();
        for cut in one.len() + 1..bytes.len() {
            let mut disk = bytes[..cut].to_vec();
            disk.resize(bytes.len() + 4096, 0);
            let scan = scan(&disk);
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.end, End::Torn, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_before_good_frames_is_corruption_not_a_tear() {
        // Goal: damage to written data is never replayed, nor silently cut off with the
        // acknowledged frames after it.
        let mut bytes = two_records();
        bytes[HEADER_BYTES + 2] ^= 0x40;
        let scan = scan(&bytes);
        assert!(scan.records.is_empty());
        assert_eq!(scan.end, End::Corrupt);
    }

    #[test]
    fn a_flipped_bit_in_the_last_frame_stops_the_scan_there() {
        // Goal: a damaged last frame is never replayed as data.
        let mut bytes = two_records();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let scan = scan(&bytes);
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.end, End::Torn);
    }
}
