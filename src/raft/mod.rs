//! openraft glue: type configuration, the binary codec, log storage, the state machine and
//! the runtime. Nothing above this module names an openraft storage trait; peer traffic,
//! Raft's network included, lives in `peer`.

pub mod codec;
pub mod heard;
pub mod log_store;
pub mod rejoin;
pub mod removal;
pub mod runtime;
pub mod snapshot_data;
pub mod snapshot_pace;
pub mod state_machine;
#[cfg(test)]
mod storage_suite;
pub mod typ;

pub use typ::{Member, NodeId, Raft, TypeConfig};
