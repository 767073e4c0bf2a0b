//! Quorum: an embedded, etcd-compatible cluster-state store on Raft.
//!
//! Codemap, top down (a request's path):
//! - `api`: one file per etcd gRPC service; validates, calls `server`, maps errors in `status`.
//! - `server`: the facade: propose a `command::Command`, pass a read barrier, reach the leader.
//! - `peer`: traffic between members, both halves: peer channels, Raft network, peer service.
//! - `raft`: openraft glue: type config, codec, log store, state machine, runtime.
//! - `store`: the MVCC state machine proper: revisions, range/put/delete/txn/compact. Pure.
//! - `lease`: the replicated lease table and the leader-only `Lessor` clock.
//! - `watch`: the hub that fans applied events out to watchers.
//! - `auth`: users, roles, key-range permissions, tokens; checked on every request.
//! - `storage`: the `Backend` trait; a WAL and a snapshot file for production, memory for tests
//!   and simulation.
//! - `snapshot`: etcd 3.4's snapshot format (a bbolt file of etcd's buckets): write, read,
//!   status, restore into a member's data directory, verify.
//! - `node`: one member wired together; `cluster`: several in one process, with faults.
//! - `admin`: `quorum cluster`'s live web page and JSON fault API over a `cluster`.
//! - `config`: etcd's flags and the ids derived from them; `transport`: dialing and link faults.
//! - `sim`: the deterministic simulator (turmoil) running these same members, `quorum sim`.

pub mod admin;
pub mod api;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod cluster;
pub mod command;
pub mod config;
pub mod error;
pub mod leader_election;
pub mod lease;
pub mod metrics;
pub mod node;
pub mod peer;
pub mod plant;
pub mod proto;
pub mod raft;
pub mod server;
pub mod sim;
pub mod snapshot;
pub mod storage;
pub mod store;
pub mod tls;
pub mod transport;
pub mod watch;

pub use cluster::LocalCluster;
pub use config::Config;
pub use node::Node;
