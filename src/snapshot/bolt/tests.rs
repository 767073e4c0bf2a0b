//! The bbolt writer and reader: round trips (small, inline buckets; thousands of keys over
//! branch pages; values larger than a page on overflow pages), and the reader's refusal of
//! corrupt files with an error rather than a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn bucket(name: &str, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Bucket {
    Bucket {
        name: name.as_bytes().to_vec(),
        entries,
    }
}

fn numbered(n: usize, value_bytes: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("key-{i:08}").into_bytes(),
                vec![(i % 251) as u8; value_bytes],
            )
        })
        .collect()
}

#[test]
fn small_buckets_round_trip_inline_in_one_root_page() {
    // Goal: the common case (etcd's ten small buckets) reads back equal, in four pages.
    let buckets = vec![
        bucket("alarm", vec![]),
        bucket("key", numbered(3, 5)),
        bucket("meta", vec![(b"consistent_index".to_vec(), vec![0; 8])]),
    ];
    let file = write(&buckets).unwrap();
    let db = read(&file).unwrap();
    assert_eq!(db.buckets, buckets);
    assert_eq!(db.pages, 3, "two metas and the root leaf");
    assert_eq!(file.len() as u64, db.size_bytes());
}

#[test]
fn thousands_of_keys_span_leaf_and_branch_pages() {
    // Goal: a bucket too big for a page is written as a B+tree (leaves under branches, two
    // levels of branches at this size) and reads back equal.
    let buckets = vec![bucket("key", numbered(50_000, 40))];
    let file = write(&buckets).unwrap();
    let db = read(&file).unwrap();
    assert_eq!(db.buckets, buckets);
    assert!(db.pages > 500, "{} pages", db.pages);
}

#[test]
fn values_larger_than_a_page_use_overflow_pages() {
    // Goal: one value of 3.5 pages and its neighbours survive the round trip.
    let mut entries = numbered(10, 10);
    entries[4].1 = vec![7u8; PAGE_SIZE * 7 / 2];
    let buckets = vec![bucket("key", entries)];
    let db = read(&write(&buckets).unwrap()).unwrap();
    assert_eq!(db.buckets, buckets);
}

#[test]
fn writer_refuses_unsorted_input() {
    // Goal: a caller's ordering bug is an error, not a corrupt file.
    let unsorted = vec![(b"b".to_vec(), vec![]), (b"a".to_vec(), vec![])];
    assert!(write(&[bucket("key", unsorted)]).is_err());
    assert!(write(&[bucket("z", vec![]), bucket("a", vec![])]).is_err());
}

#[test]
fn reads_a_snapshot_written_by_etcd() {
    // Goal: a file from a real etcd 3.4.23 (`snapshot save`, trailer cut) reads with its ten
    // buckets, and the bucket holding five revisions.
    let file = include_bytes!("../../../tests/fixtures/etcd-3.4.23.snapshot.db");
    let db = read(&file[..file.len() - 32]).unwrap();
    let names: Vec<&[u8]> = db.buckets.iter().map(|b| b.name.as_slice()).collect();
    assert_eq!(names.len(), 10);
    assert_eq!(names[5], b"key");
    assert_eq!(db.bucket(b"key").unwrap().entries.len(), 5);
    assert_eq!(db.pages, 5);
}

#[test]
fn truncated_and_corrupt_files_are_named_errors() {
    // Goal: each kind of damage gives the error that names it.
    let file = write(&[bucket("key", numbered(2_000, 30))]).unwrap();
    assert!(matches!(
        read(&file[..100]),
        Err(BoltError::TooSmall { .. })
    ));
    assert!(matches!(
        read(&file[..file.len() - PAGE_SIZE]),
        Err(BoltError::Truncated { .. })
    ));
    let mut bad_meta = file.clone();
    for m in [0, PAGE_SIZE] {
        bad_meta[m + 48] ^= 0xff; // the freelist field, covered by the checksum
    }
    let err = read(&bad_meta).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    // Page 2's header names another page.
    let mut bad_page = file.clone();
    bad_page[2 * PAGE_SIZE] ^= 0x01;
    assert!(matches!(read(&bad_page), Err(BoltError::BadPage { .. })));
}

#[test]
fn a_page_referenced_twice_is_an_error_not_a_loop() {
    // Goal: a branch pointing back at itself ends in `referenced twice`.
    let file = write(&[bucket("key", numbered(2_000, 30))]).unwrap();
    let db = read(&file).unwrap();
    let mut looped = file.clone();
    // The root of the top-level tree is the last page; point the "key" bucket's root at it.
    let root = db.pages - 1;
    let at = root as usize * PAGE_SIZE;
    let pos = u32::from_le_bytes(looped[at + 20..at + 24].try_into().unwrap()) as usize;
    let ksize = u32::from_le_bytes(looped[at + 24..at + 28].try_into().unwrap()) as usize;
    let value = at + 16 + pos + ksize;
    looped[value..value + 8].copy_from_slice(&root.to_le_bytes());
    let err = read(&looped).unwrap_err();
    assert!(err.to_string().contains("referenced twice"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_sorted_buckets_round_trip(
        buckets in prop::collection::btree_map(
            "[a-z]{1,12}",
            prop::collection::btree_map(
                prop::collection::vec(any::<u8>(), 1..40),
                prop::collection::vec(any::<u8>(), 0..3000),
                0..60,
            ),
            0..6,
        )
    ) {
        // Goal: whatever the shape (inline or not, overflow or not), what is written reads back.
        let buckets: Vec<Bucket> = buckets
            .into_iter()
            .map(|(name, entries): (String, BTreeMap<Vec<u8>, Vec<u8>>)| Bucket {
                name: name.into_bytes(),
                entries: entries.into_iter().collect(),
            })
            .collect();
        let file = write(&buckets).unwrap();
        prop_assert_eq!(read(&file).unwrap().buckets, buckets);
    }

    #[test]
    fn damaged_files_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20),
        cut in any::<prop::sample::Index>(),
    ) {
        // Goal: random byte damage and truncation end in `Ok` or an error, never a panic.
        let mut file = write(&[bucket("a", numbered(300, 50)), bucket("b", numbered(3, 2000))])
            .unwrap();
        for (i, b) in flips {
            let i = i.index(file.len());
            file[i] ^= b;
        }
        let _ = read(&file);
        let _ = read(&file[..cut.index(file.len())]);
    }
}
