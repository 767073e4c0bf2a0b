//! openraft's storage conformance suite, run against the log store and state machine on both
//! backends: the contract (ordering, purge, truncate, membership, snapshots) is openraft's own.

use std::sync::Arc;

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::typ::{Runtime, TypeConfig};
use crate::lease::Lessor;
use crate::storage::{MemoryBackend, SharedBackend, SledBackend};
use crate::watch::WatchHub;

struct Builder {
    sled: bool,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, Option<tempfile::TempDir>> for Builder {
    async fn build(
        &self,
    ) -> Result<(Option<tempfile::TempDir>, LogStore, StateMachine), StorageError<TypeConfig>> {
        let (guard, backend): (_, SharedBackend) = if self.sled {
            let dir = tempfile::tempdir().expect("temp dir");
            let backend = SledBackend::open(dir.path()).expect("open sled");
            (Some(dir), Arc::new(backend))
        } else {
            (None, Arc::new(MemoryBackend::new()))
        };
        let sm = StateMachine::open(
            backend.clone(),
            Arc::new(WatchHub::new()),
            Arc::new(Lessor::new()),
            None,
        )
        .expect("open state machine");
        Ok((guard, LogStore::new(backend), sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_openraft_storage_suite() {
    // Goal: the simulator's storage honours openraft's storage contract.
    Runtime::scope(1, Suite::test_all(Builder { sled: false }))
        .await
        .expect("suite passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_backend_passes_openraft_storage_suite() {
    // Goal: production storage honours openraft's storage contract.
    Runtime::scope(1, Suite::test_all(Builder { sled: true }))
        .await
        .expect("suite passes");
}
