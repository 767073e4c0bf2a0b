//! Status and trailer checks, against what a real etcdctl 3.4.23 printed for the same file.

use super::*;

const ETCD_FILE: &[u8] = include_bytes!("../../tests/fixtures/etcd-3.4.23.snapshot.db");

#[test]
fn status_matches_what_etcdctl_printed() {
    // Goal: hash, revision, total keys and size as `etcdctl snapshot status` gave for this file,
    // in its three output forms.
    let s = status(ETCD_FILE).unwrap();
    assert_eq!(
        s,
        Status {
            hash: 148_851_303,
            revision: 6,
            total_key: 10,
            total_size: 20480
        }
    );
    assert_eq!(s.render("simple"), "8df4a67, 6, 10, 20 kB\n");
    assert_eq!(
        s.render("json"),
        "{\"hash\":148851303,\"revision\":6,\"totalKey\":10,\"totalSize\":20480}\n"
    );
    assert_eq!(
        s.render("table"),
        "+---------+----------+------------+------------+\n\
         |  HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
         +---------+----------+------------+------------+\n\
         | 8df4a67 |        6 |         10 |      20 kB |\n\
         +---------+----------+------------+------------+\n"
    );
}

#[test]
fn trailer_is_checked_cut_or_required() {
    // Goal: etcdctl restore's three cases: a good trailer is cut off, a bad one names both
    // hashes, none is refused unless the check is skipped.
    let db = &ETCD_FILE[..ETCD_FILE.len() - 32];
    assert_eq!(database_bytes(ETCD_FILE, false).unwrap(), db);
    assert!(matches!(
        database_bytes(db, false),
        Err(SnapshotError::MissingHash)
    ));
    assert_eq!(database_bytes(db, true).unwrap(), db);
    let mut bad = ETCD_FILE.to_vec();
    bad[100] ^= 1;
    let err = database_bytes(&bad, false).unwrap_err();
    assert!(err.to_string().starts_with("expected sha256 "), "{err}");
    assert_eq!(with_trailer(db.to_vec()), ETCD_FILE);
}

#[test]
fn sizes_read_as_go_humanize_prints_them() {
    // Goal: etcdctl's size column: SI units, one decimal under ten.
    assert_eq!(human_bytes(5), "5 B");
    assert_eq!(human_bytes(12288), "12 kB");
    assert_eq!(human_bytes(20480), "20 kB");
    assert_eq!(human_bytes(1_500_000), "1.5 MB");
}

#[test]
fn restore_refuses_bad_files_and_writes_nothing() {
    // Goal: a truncated or corrupt file, or an existing data dir, fails before anything is
    // written.
    let dir = tempfile::tempdir().unwrap();
    let opts = |d: &str| RestoreOptions {
        name: "m1".into(),
        data_dir: dir.path().join(d),
        initial_cluster: "m1=http://127.0.0.1:2380".into(),
        initial_cluster_token: "t".into(),
        initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
        skip_hash_check: false,
    };
    let cut = &ETCD_FILE[..8000];
    assert!(restore(cut, &opts("cut")).is_err());
    let mut cut_ok_trailer = ETCD_FILE[..8192].to_vec();
    cut_ok_trailer = with_trailer(cut_ok_trailer);
    let err = restore(&cut_ok_trailer, &opts("cut2")).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(!dir.path().join("cut").exists() && !dir.path().join("cut2").exists());

    let restored = restore(ETCD_FILE, &opts("ok")).unwrap();
    assert_eq!((restored.revision, restored.live_keys), (6, 3));
    let err = restore(ETCD_FILE, &opts("ok")).unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
}
