//! quorum-sim: the unmodified Quorum member code run as turmoil hosts, with only the network,
//! the clock and the storage swapped, so a whole cluster run is a pure function of one seed.
//!
//! Codemap: `net` (turmoil behind `quorum::transport::Network`), `schedule` (faults as data,
//! drawn from the seed or read from a file), `history` (client operations as recorded),
//! `linearizability` (a Wing–Gong register checker, per key, memoised), `run` (one seed: hosts,
//! workload, nemesis, invariants, report).

pub mod history;
pub mod linearizability;
pub mod net;
pub mod run;
pub mod schedule;
