use std::time::Duration;

use super::*;
use crate::proto::etcdserverpb::PutRequest;
use crate::raft::codec::decode;
use crate::raft::snapshot_data::Receiving;
use crate::storage::{MemoryBackend, SnapshotFile};

/// A state machine holding `mib` keys of 1 MiB each, applied at log indices 1..=mib.
fn with_state_of(mib: u64) -> StateMachine {
    let sm = open_on(Arc::new(MemoryBackend::new()));
    {
        let mut state = sm.shared.state.write().unwrap();
        for i in 1..=mib {
            let put = PutRequest {
                key: format!("k{i}").into_bytes(),
                value: vec![0; 1 << 20],
                ..Default::default()
            };
            apply_command(&mut state, Command::Put(put), i);
            state.last_applied = Some(LogId::new_term_index(1, i));
        }
    }
    sm.shared.applied_index.send_replace(mib);
    sm
}

#[tokio::test]
async fn a_large_states_snapshot_is_put_off_until_the_member_is_idle() {
    // Goal: pacing defers a policy snapshot of a large state and says so, and the idle task's
    // go-ahead lets exactly the next one through. Method: a 70 MiB state (past pacing's
    // ~41 MB) with 70 entries since its last snapshot, far short of its share of log.
    let mut sm = with_state_of(70);
    assert!(
        sm.try_create_snapshot_builder(false).await.is_none(),
        "pacing puts the snapshot off"
    );
    tokio::time::timeout(Duration::from_secs(1), sm.snapshot_deferred())
        .await
        .expect("the deferral is signalled");
    assert_eq!(sm.applied_and_since_snapshot(), (70, 70));

    sm.allow_next_snapshot(true);
    sm.allow_next_snapshot(false);
    assert!(
        sm.try_create_snapshot_builder(false).await.is_none(),
        "a go-ahead taken back lets none through"
    );
    sm.allow_next_snapshot(true);
    let mut builder = sm
        .try_create_snapshot_builder(false)
        .await
        .expect("written once the member is idle");
    assert!(
        sm.try_create_snapshot_builder(false).await.is_none(),
        "the go-ahead is for one snapshot only"
    );

    let snapshot = builder.build_snapshot().await.expect("snapshot built");
    assert_eq!(sm.applied_and_since_snapshot(), (70, 0));
    // The bytes are read back from where they were persisted, not held twice.
    let stored = sm
        .get_current_snapshot()
        .await
        .expect("read back")
        .expect("a snapshot is stored");
    assert_eq!(stored.meta, snapshot.meta);
    let restored: Applied = decode(&stored.snapshot.into_bytes().unwrap()).expect("decodes");
    assert_eq!(restored.store.revision(), sm.read().store.revision());
}

#[tokio::test]
async fn a_snapshot_streamed_into_its_file_restarts_the_same_state() {
    // Goal: a snapshot encoded straight into the snapshot file (never buffered whole) and
    // decoded straight from it at start gives back the state it was built from, and still
    // reads back whole for a follower or a backup.
    let dir = tempfile::tempdir().unwrap();
    let open = || open_on(Arc::new(SnapshotFile::open(dir.path()).unwrap()));
    let sm = open();
    {
        let mut state = sm.shared.state.write().unwrap();
        for i in 1..=300u64 {
            let put = PutRequest {
                key: format!("k{i}").into_bytes(),
                value: vec![i as u8; 1000],
                ..Default::default()
            };
            apply_command(&mut state, Command::Put(put), i);
            state.last_applied = Some(LogId::new_term_index(1, i));
        }
    }
    let built = encode(&*sm.read()).unwrap();
    assert!(
        built.len() > 300_000,
        "large enough to live in the file only"
    );
    sm.clone().build_snapshot().await.expect("snapshot built");
    drop(sm);

    let mut reopened = open();
    assert_eq!(encode(&*reopened.read()).unwrap(), built);
    let stored = reopened
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("a snapshot is stored");
    assert_eq!(stored.snapshot.clone().into_bytes().unwrap(), built);

    // A snapshot handed out before a newer one replaced it is not read as the newer one's
    // bytes under its older meta.
    {
        let mut state = reopened.shared.state.write().unwrap();
        let put = PutRequest {
            key: b"later".to_vec(),
            ..Default::default()
        };
        apply_command(&mut state, Command::Put(put), 301);
        state.last_applied = Some(LogId::new_term_index(1, 301));
    }
    reopened
        .clone()
        .build_snapshot()
        .await
        .expect("snapshot built");
    let err = stored.snapshot.into_bytes().unwrap_err();
    assert!(err.to_string().contains("replaced"), "{err}");
    let newer = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(newer.meta.last_log_id.unwrap().index, 301);
    assert_eq!(
        newer.snapshot.into_bytes().unwrap(),
        encode(&*reopened.read()).unwrap()
    );
}

#[tokio::test]
async fn a_snapshot_older_than_the_stored_one_is_not_written_over_it() {
    // Goal: a snapshot built from a state cloned before a newer snapshot was installed from the
    // leader does not land on top of it (the stored snapshot would then lag a log already
    // purged past it). Method: store a snapshot at index 3, then persist one at index 2.
    let sm = with_state_of(3);
    sm.clone().build_snapshot().await.expect("snapshot built");
    let stored = |sm: &StateMachine| stored_meta(sm.shared.backend.as_ref()).unwrap().unwrap();
    assert_eq!(stored(&sm).last_log_id.unwrap().index, 3);

    let older = SnapshotMeta {
        last_log_id: Some(LogId::new_term_index(1, 2)),
        ..stored(&sm)
    };
    let mut never = |_: &mut dyn io::Write| -> io::Result<()> { panic!("nothing is written") };
    assert!(!sm.persist(&older, 1, &mut never).unwrap());
    assert!(
        !sm.persist(&stored(&sm), 1, &mut never).unwrap(),
        "nor the same one again"
    );
    assert_eq!(stored(&sm).last_log_id.unwrap().index, 3);
}

/// A state machine over `backend`, as a member opens it at start.
fn open_on(backend: SharedBackend) -> StateMachine {
    StateMachine::open(
        backend,
        Arc::new(WatchHub::new()),
        Arc::new(Lessor::new()),
        None,
    )
    .expect("open state machine")
}

/// Installs `bytes` under `meta` as the peer service hands a leader's snapshot over: received
/// chunk by chunk, to a scratch file if the backend has one.
async fn receive_and_install(
    sm: &mut StateMachine,
    meta: &SnapshotMeta,
    bytes: &[u8],
    spooled: bool,
) -> io::Result<()> {
    let mut data = Receiving::new(sm.scratch_file().unwrap(), bytes.len() as u64);
    for chunk in bytes.chunks(4096) {
        data.push(chunk).unwrap();
    }
    let data = data.finish();
    assert_eq!(
        matches!(data, SnapshotData::Spooled { .. }),
        spooled,
        "{data:?}"
    );
    sm.install_snapshot(meta, data).await
}

#[tokio::test]
async fn a_received_snapshot_is_installed_and_bytes_that_do_not_decode_are_never_stored() {
    // Goal: a leader's snapshot, whether it went to a scratch file as it arrived (a member on
    // disk) or was held (the simulator's, in memory), installs the state it was built from,
    // durably; bytes that do not decode are refused and leave the stored snapshot and the state
    // as they were. Nothing is left beside the snapshot file.
    let leader = with_state_of(3);
    let snapshot = leader
        .clone()
        .build_snapshot()
        .await
        .expect("snapshot built");
    let built = encode(&*leader.read()).unwrap();
    let later = SnapshotMeta {
        last_log_id: Some(LogId::new_term_index(1, 400)),
        ..snapshot.meta.clone()
    };
    let garbage = vec![0xff; built.len()];
    let stored = |sm: &StateMachine| stored_meta(sm.shared.backend.as_ref()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let memory: SharedBackend = Arc::new(MemoryBackend::new());
    let on_disk = || -> SharedBackend { Arc::new(SnapshotFile::open(dir.path()).unwrap()) };
    for (backend, spooled) in [(on_disk(), true), (memory.clone(), false)] {
        let mut sm = open_on(backend);
        receive_and_install(&mut sm, &snapshot.meta, &built, spooled)
            .await
            .expect("installed");
        assert_eq!(encode(&*sm.read()).unwrap(), built);
        assert_eq!(stored(&sm), Some(snapshot.meta.clone()));

        let err = receive_and_install(&mut sm, &later, &garbage, spooled)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert_eq!(
            stored(&sm),
            Some(snapshot.meta.clone()),
            "the stored one stays"
        );
        assert_eq!(encode(&*sm.read()).unwrap(), built, "and so does the state");
    }

    for backend in [on_disk(), memory] {
        let reopened = open_on(backend);
        assert_eq!(encode(&*reopened.read()).unwrap(), built);
        assert_eq!(stored(&reopened), Some(snapshot.meta.clone()));
    }
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["snapshot"], "no scratch file is left behind");
}
