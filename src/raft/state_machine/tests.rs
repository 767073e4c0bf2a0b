use std::time::Duration;

use super::*;
use crate::proto::etcdserverpb::PutRequest;
use crate::storage::MemoryBackend;

/// A state machine holding `mib` keys of 1 MiB each, applied at log indices 1..=mib.
fn with_state_of(mib: u64) -> StateMachine {
    let backend: SharedBackend = Arc::new(MemoryBackend::new());
    let sm = StateMachine::open(
        backend,
        Arc::new(WatchHub::new()),
        Arc::new(Lessor::new()),
        None,
    )
    .expect("open state machine");
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
    // 64 MiB) with 70 entries since its last snapshot, far short of its share of log.
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
    let restored: Applied = decode(&stored.snapshot).expect("decodes");
    assert_eq!(restored.store.revision(), sm.read().store.revision());
}
