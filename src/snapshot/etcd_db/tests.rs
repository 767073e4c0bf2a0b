//! etcd's bucket layout: Quorum's state written and read back, and a real etcd 3.4 file read.

use super::*;
use crate::command::Command;
use crate::proto::etcdserverpb::{DeleteRangeRequest, PutRequest};
use crate::raft::state_machine::apply_command;
use crate::snapshot::bolt;

fn put(key: &str, value: &str, lease: i64) -> Command {
    Command::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..Default::default()
    })
}

/// A state with puts, an overwrite, a delete, a lease with a key, a compaction and an alarm.
fn sample_state() -> Applied {
    let mut s = Applied::default();
    let mut index = 0;
    let mut apply = |s: &mut Applied, cmd| {
        index += 1;
        apply_command(s, cmd, index)
    };
    apply(&mut s, put("foo", "bar", 0));
    apply(&mut s, put("a", "1", 0));
    apply(
        &mut s,
        Command::LeaseGrant {
            id: 77,
            ttl_secs: 600,
        },
    );
    apply(&mut s, put("lk", "v", 77));
    apply(
        &mut s,
        Command::DeleteRange(DeleteRangeRequest {
            key: "a".into(),
            ..Default::default()
        }),
    );
    apply(&mut s, put("foo", "baz", 0));
    apply(
        &mut s,
        Command::Compact(crate::proto::etcdserverpb::CompactionRequest {
            revision: 3,
            physical: false,
        }),
    );
    apply(
        &mut s,
        Command::Alarm {
            member_id: 9,
            alarm: 1,
            activate: true,
        },
    );
    s.last_applied = Some(crate::raft::typ::LogId::new_term_index(2, 42));
    s
}

#[test]
fn quorum_state_round_trips_through_etcd_buckets() {
    // Goal: every revision (tombstones too), the compact revision, leases with their keys and
    // alarms survive encode → bbolt → decode; the store answers reads alike.
    let state = sample_state();
    let db = bolt::read(&bolt::write(&encode(&state)).unwrap()).unwrap();
    let names: Vec<String> = db
        .buckets
        .iter()
        .map(|b| String::from_utf8_lossy(&b.name).into_owned())
        .collect();
    assert_eq!(names, BUCKETS);
    let back = decode(&db).unwrap();
    assert_eq!(back.store, state.store);
    assert_eq!(back.leases, state.leases);
    assert_eq!(back.alarms, state.alarms);
    assert_eq!(back.consistent_index, 42);
    assert_eq!(back.store.compact_revision(), 3);
    assert_eq!(back.leases.get(77).unwrap().keys.len(), 1);
}

#[test]
fn key_bucket_holds_etcd_bytes() {
    // Goal: the bytes etcd 3.4 writes for `put foo bar` at revision 2 (seen on a real etcd) and
    // a tombstone's key with its `t` mark.
    let state = sample_state();
    let buckets = encode(&state);
    let key = buckets.iter().find(|b| b.name == b"key").unwrap();
    let (k, v) = &key.entries[0];
    assert_eq!(k, &revision_key(2, 0, false));
    assert_eq!(hex(v), "0a03666f6f1002180220012a03626172");
    let tomb = key.entries.iter().find(|(k, _)| k.len() == 18).unwrap();
    assert_eq!(parse_revision_key(&tomb.0), Some((5, 0, true)));
    assert_eq!(hex(&tomb.1), "0a0161");
    let meta = buckets.iter().find(|b| b.name == b"meta").unwrap();
    assert_eq!(meta.entries[1].0, b"finishedCompactRev");
    assert_eq!(meta.entries[1].1, revision_key(3, 0, false));
}

#[test]
fn reads_the_state_of_a_real_etcd_snapshot() {
    // Goal: a file saved from etcd 3.4.23 (foo=bar, a=1, b=2, del a, lk=v on a 600 s lease)
    // decodes to the same key space.
    let file = include_bytes!("../../../tests/fixtures/etcd-3.4.23.snapshot.db");
    let db = bolt::read(&file[..file.len() - 32]).unwrap();
    let s = decode(&db).unwrap();
    assert_eq!(s.store.revision(), 6);
    let live: Vec<Vec<u8>> = s.store.live().map(|kv| kv.key).collect();
    assert_eq!(live, [&b"b"[..], b"foo", b"lk"]);
    assert_eq!(s.leases.len(), 1);
    let (id, lease) = s.leases.iter().next().unwrap();
    assert_eq!(lease.ttl_secs, 600);
    assert!(
        lease.keys.contains(b"lk".as_slice()),
        "lease {id:x} keeps its key"
    );
    assert_eq!(s.consistent_index, 12);
}

#[test]
fn malformed_buckets_are_named_errors() {
    // Goal: a bad revision key or a bad protobuf is an error naming bucket and key.
    let mut buckets = encode(&sample_state());
    let key = buckets.iter_mut().find(|b| b.name == b"key").unwrap();
    key.entries.push((b"not-a-revision".to_vec(), vec![]));
    key.entries.sort();
    let db = bolt::read(&bolt::write(&buckets).unwrap()).unwrap();
    let err = decode(&db).unwrap_err();
    assert_eq!(err.bucket, "key");
    assert!(err.to_string().contains("not a revision key"), "{err}");

    let mut buckets = encode(&sample_state());
    let lease = buckets.iter_mut().find(|b| b.name == b"lease").unwrap();
    lease.entries[0].1 = vec![0xff, 0xff];
    let db = bolt::read(&bolt::write(&buckets).unwrap()).unwrap();
    assert!(decode(&db)
        .unwrap_err()
        .to_string()
        .contains("not a leasepb.Lease"));
}
