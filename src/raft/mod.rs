//! openraft glue: type configuration, log storage, state machine, peer network and the peer
//! gRPC service. Nothing above this module names an openraft storage or network trait.

pub mod log_store;
pub mod network;
pub mod peer_service;
pub mod runtime;
pub mod state_machine;
#[cfg(test)]
mod storage_suite;
pub mod typ;

pub use typ::{Member, NodeId, Raft, TypeConfig};
