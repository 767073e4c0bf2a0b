//! quorum-sim: the unmodified Quorum member code run as turmoil hosts, with only the network,
//! the clock and the storage swapped, so a whole cluster run is a pure function of one seed.
//!
//! Codemap: `net` (turmoil behind `quorum::transport::Network`), `schedule` (faults as data,
//! drawn from the seed or read from a file), `clocks` (each member's skewable, pausable clock),
//! `lease_check` (no lease expires before its TTL), `log_check` (committed entries never change
//! or vanish), `history` (client operations as recorded),
//! `linearizability` (a Wing–Gong register checker, per key, memoised), `run` (one seed: hosts,
//! workload, nemesis, invariants, report).

pub mod clocks;
pub mod history;
pub mod lease_check;
pub mod linearizability;
pub mod log_check;
pub mod net;
pub mod run;
pub mod schedule;
