//! openraft's storage conformance suite, run against the log store and state machine on both
//! backends: the contract (ordering, purge, truncate, membership, snapshots) is openraft's own.

use std::sync::Arc;

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::typ::{Runtime, TypeConfig};
use crate::lease::Lessor;
use crate::storage::{MemberStorage, MemoryBackend, SharedBackend};
use crate::watch::WatchHub;

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    /// Production: the WAL for the log, sled for snapshots.
    Disk,
}

struct Builder {
    kind: Kind,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, Option<tempfile::TempDir>> for Builder {
    async fn build(
        &self,
    ) -> Result<(Option<tempfile::TempDir>, LogStore, StateMachine), StorageError<TypeConfig>> {
        let (guard, storage) = match self.kind {
            Kind::Disk => {
                let dir = tempfile::tempdir().expect("temp dir");
                let storage = MemberStorage::open(dir.path()).expect("open data dir");
                (Some(dir), storage)
            }
            Kind::Memory => {
                let backend: SharedBackend = Arc::new(MemoryBackend::new());
                (None, MemberStorage::single(backend))
            }
        };
        let sm = StateMachine::open(
            storage.snapshots.clone(),
            Arc::new(WatchHub::new()),
            Arc::new(Lessor::new()),
            None,
        )
        .expect("open state machine");
        Ok((guard, LogStore::new(storage.log), sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_openraft_storage_suite() {
    // Goal: the simulator's storage honours openraft's storage contract.
    Runtime::scope(1, Suite::test_all(Builder { kind: Kind::Memory }))
        .await
        .expect("suite passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_storage_passes_openraft_storage_suite() {
    // Goal: production storage (WAL and sled) honours openraft's storage contract.
    Runtime::scope(1, Suite::test_all(Builder { kind: Kind::Disk }))
        .await
        .expect("suite passes");
}
