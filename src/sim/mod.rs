//! The simulator: the unmodified Quorum member code run as turmoil hosts, with only the network,
//! the clock and the storage swapped, so a whole cluster run is a pure function of one seed.
//! It is part of the `quorum` binary (`quorum sim ...`), so it runs from a fresh clone.
//!
//! Codemap: `cli` (`quorum sim run|sweep|merge`), `sweep` (many seeds, sharded, with JSON
//! summaries), `run` (one seed: build, step, observe, judge; only wiring), `net` (turmoil behind
//! `crate::transport::Network`), `schedule` (faults as data, drawn from the seed or read from a
//! file), `nemesis` (applies the schedule to the simulation), `clocks` (each member's skewable,
//! pausable clock), `workload` (the client host: register clients, lease keeper, watcher),
//! `history` (client operations as recorded), `observe` (the only door into a member's
//! `Server`), the checkers run after every step — `raft_check` (one leader per term, terms and
//! votes never regress), `log_check` (committed entries never change or vanish), `lease_check`
//! (no lease expires before its TTL) — and at the end, `verdict` (convergence, liveness, watch,
//! serializable reads, the report) with `linearizability` (a Wing–Gong register checker, per
//! key, memoised). Every violation names its checker (`verdict::Checker`).

pub mod cli;
pub mod clocks;
pub mod history;
pub mod lease_check;
pub mod linearizability;
pub mod log_check;
pub mod nemesis;
pub mod net;
pub mod observe;
pub mod raft_check;
pub mod run;
pub mod schedule;
pub mod sweep;
pub mod verdict;
pub mod workload;
