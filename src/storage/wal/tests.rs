use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::storage::Op;

fn put(k: &[u8], v: &[u8]) -> Batch {
    let mut b = Batch::default();
    b.put(Tree::Log, k.to_vec(), v.to_vec());
    b
}

fn all(w: &WalBackend) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rows = w.scan(Tree::Log, b"", None, usize::MAX).unwrap();
    rows.extend(w.scan(Tree::RaftMeta, b"", None, usize::MAX).unwrap());
    rows
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A crash: the backend is dropped with whatever it had not synced, as a killed process
/// would leave it.
fn crash_and_reopen(w: WalBackend, dir: &Path, segment_bytes: u64) -> WalBackend {
    drop(w);
    WalBackend::open_with(dir, segment_bytes).unwrap()
}

#[test]
fn synced_writes_survive_a_crash_and_unsynced_ones_do_not() {
    // Goal: the durability contract Raft relies on: after `sync`, yes; before, no.
    let dir = tempfile::tempdir().unwrap();
    let w = WalBackend::open(dir.path()).unwrap();
    assert!(w.created());
    w.write(put(b"a", b"1")).unwrap();
    w.sync().unwrap();
    w.write(put(b"b", b"2")).unwrap();
    assert_eq!(w.get(Tree::Log, b"b").unwrap(), Some(b"2".to_vec()));
    let w = crash_and_reopen(w, dir.path(), DEFAULT_SEGMENT_BYTES);
    assert!(!w.created());
    assert_eq!(all(&w), vec![(b"a".to_vec(), b"1".to_vec())]);
}

#[test]
fn rotation_keeps_the_state_and_one_segment() {
    // Goal: the WAL's size follows the live state: old segments go once a checkpoint covers
    // them, and replay from the newest one gives back the same trees.
    let dir = tempfile::tempdir().unwrap();
    let w = WalBackend::open_with(dir.path(), 4096).unwrap();
    for i in 0u32..500 {
        w.write(put(&i.to_be_bytes(), &[7; 100])).unwrap();
        if i % 3 == 0 {
            let mut purge = Batch::default();
            purge.delete_range(
                Tree::Log,
                0u32.to_be_bytes(),
                Some(i.to_be_bytes().to_vec()),
            );
            w.write(purge).unwrap();
        }
        w.sync().unwrap();
    }
    let before = all(&w);
    let seq = lock(&w.disk).segment.seq();
    assert!(
        seq > 5,
        "only {seq} rotations for 50 KB written in 4 KB segments"
    );
    let w = crash_and_reopen(w, dir.path(), 4096);
    assert_eq!(all(&w), before);
    assert_eq!(segment_files(dir.path()), vec![format!("{seq:020}.wal")]);
}

#[test]
fn a_torn_tail_is_dropped_and_never_shadows_later_appends() {
    // Goal: a crash mid-append loses only that append, and the stale bytes it left behind are
    // zeroed so they cannot be replayed after newer, shorter frames.
    let dir = tempfile::tempdir().unwrap();
    let w = WalBackend::open(dir.path()).unwrap();
    w.write(put(b"a", b"1")).unwrap();
    w.sync().unwrap();
    // A long batch of which only a prefix reached the disk.
    let mut torn = Vec::new();
    frame::push(
        &mut torn,
        &RecordRef::Batch(&[Op::Put(Tree::Log, b"z".to_vec(), vec![9; 3000])]),
    )
    .unwrap();
    lock(&w.disk).segment.append(&torn[..2000]).unwrap();
    let w = crash_and_reopen(w, dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(all(&w), vec![(b"a".to_vec(), b"1".to_vec())]);
    w.write(put(b"b", b"2")).unwrap();
    w.sync().unwrap();
    let w = crash_and_reopen(w, dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(
        all(&w),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
}

#[test]
fn damage_inside_synced_data_refuses_to_open() {
    // Goal: a member whose acknowledged log went bad stops with a clear error instead of
    // starting without the writes after the damage.
    let dir = tempfile::tempdir().unwrap();
    let w = WalBackend::open(dir.path()).unwrap();
    for k in [b"a", b"b", b"c"] {
        w.write(put(k, b"1")).unwrap();
        w.sync().unwrap();
    }
    let end = lock(&w.disk).segment.len() as usize;
    drop(w);
    let file = dir.path().join(format!("{:020}.wal", 0));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[end - 60] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let err = WalBackend::open(dir.path()).err().expect("open must fail");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("damaged record"), "{err}");
}

#[test]
fn a_leftover_temporary_segment_is_ignored() {
    // Goal: a crash while a new segment was being written leaves the old one in charge.
    let dir = tempfile::tempdir().unwrap();
    let w = WalBackend::open(dir.path()).unwrap();
    w.write(put(b"a", b"1")).unwrap();
    w.sync().unwrap();
    drop(w);
    std::fs::write(
        dir.path().join(format!("{:020}.wal.tmp", 1)),
        b"half a checkpoint",
    )
    .unwrap();
    let w = WalBackend::open(dir.path()).unwrap();
    assert_eq!(all(&w), vec![(b"a".to_vec(), b"1".to_vec())]);
    assert_eq!(segment_files(dir.path()), vec![format!("{:020}.wal", 0)]);
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8),
    DeleteRange(u8, u8),
    Sync,
    /// Crash, with this many bytes of the unsynced tail (mod its length) reaching the disk.
    Crash(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Step::Put(k % 32, v)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::DeleteRange(a % 32, b % 32)),
        3 => Just(Step::Sync),
        1 => any::<usize>().prop_map(Step::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn after_any_crash_the_state_is_the_last_synced_one(steps in proptest::collection::vec(step(), 1..80)) {
        // Goal: against a model (a map updated on sync), every crash, torn tail included,
        // reopens to what was last synced plus whole unsynced batches in order (a disk may
        // keep some of what was never synced; never a part of a batch, never out of order),
        // across segment rotations.
        let dir = tempfile::tempdir().unwrap();
        let segment_bytes = 512;
        let mut w = WalBackend::open_with(dir.path(), segment_bytes).unwrap();
        let mut model = Trees::default();
        let mut unsynced: Vec<Vec<Op>> = Vec::new();
        for s in steps {
            match s {
                Step::Put(k, v) => {
                    let b = put(&[k], &[v; 40]);
                    unsynced.push(b.ops.clone());
                    w.write(b).unwrap();
                }
                Step::DeleteRange(a, b) => {
                    let mut batch = Batch::default();
                    batch.delete_range(Tree::Log, vec![a.min(b)], Some(vec![a.max(b)]));
                    unsynced.push(batch.ops.clone());
                    w.write(batch).unwrap();
                }
                Step::Sync => {
                    w.sync().unwrap();
                    for ops in unsynced.drain(..) {
                        model.apply(ops);
                    }
                }
                Step::Crash(n) => {
                    let pending = std::mem::take(&mut lock(&w.state).pending);
                    if !pending.is_empty() {
                        let cut = n % pending.len();
                        lock(&w.disk).segment.append(&pending[..cut]).unwrap();
                    }
                    w = crash_and_reopen(w, dir.path(), segment_bytes);
                    let reopened = lock(&w.state).trees.clone();
                    let mut candidate = model.clone();
                    let mut matched = candidate == reopened;
                    for ops in unsynced.drain(..) {
                        candidate.apply(ops);
                        matched |= candidate == reopened;
                    }
                    prop_assert!(matched, "reopened to {:?}, last synced {:?}", reopened, model);
                    model = reopened;
                }
            }
        }
    }
}

#[test]
fn size_follows_synced_bytes_and_survives_a_reopen() {
    // Goal: `size_bytes` (read without the disk lock) counts what reached the segment: it grows
    // at a sync, not at a write, and a reopened WAL reports the same.
    let dir = tempfile::tempdir().unwrap();
    let w = WalBackend::open(dir.path()).unwrap();
    let empty = w.size_bytes();
    w.write(put(b"k", &[7; 1000])).unwrap();
    assert_eq!(w.size_bytes(), empty);
    w.sync().unwrap();
    let synced = w.size_bytes();
    assert!(synced >= empty + 1000, "{empty} -> {synced}");
    let w = crash_and_reopen(w, dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(w.size_bytes(), synced);
}
