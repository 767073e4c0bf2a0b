//! The simulator: the unmodified Quorum member code run as turmoil hosts, with only the network,
//! the clock and the storage swapped, so a whole cluster run is a pure function of one seed.
//! It is part of the `quorum` binary (`quorum sim ...`), so it runs from a fresh clone.
//!
//! Codemap: `cli` (`quorum sim run|sweep|merge`), `sweep` (many seeds, sharded, with JSON
//! summaries), `run` (one seed: build, step, observe, judge; only wiring), `net` (turmoil behind
//! `crate::transport::Network`), `schedule` (faults as data, drawn from the seed or read from a
//! file), `churn` (membership changes mixed into a generated schedule, `--membership`),
//! `nemesis` (applies the schedule to the simulation), `host` (a member's turmoil host: how
//! it starts, spare hosts, refusals to start), `operator` (membership runbooks, one job at a
//! time) with `admin` (the client-host side making the Cluster/Maintenance calls), `clocks` (each member's skewable,
//! pausable clock), `workload` (the client host: register clients, lease keeper, watcher),
//! `history` (client operations as recorded), `observe` (the only door into a member's
//! `Server`), the checkers run after every step — `raft_check` (one leader per term, terms and
//! votes never regress), `log_check` (committed entries never change or vanish), `lease_check`
//! (no lease expires before its TTL), with `committed` recording the committed events as they
//! come — and at the end, `verdict` (convergence, liveness, serializable reads, the report) with
//! `linearizability` (a Wing–Gong register checker, per key, memoised), `watch_check` (etcd's
//! watch guarantees, per stream) and `revision_check` (the revision never goes back). The
//! workload's `watchers` start at old revisions, resume across members and meet compaction. Every violation names its checker (`verdict::Checker`).
//!
//! Teaching: `scenario` (named schedules in `sim/schedules/` with a description and settings),
//! `scenario_cmd` (`quorum sim scenario list|run`), `elector` (control-plane controllers
//! campaigning with lease 15 s / renew 10 s / retry 2 s), `story` (a run as data: lanes,
//! gaps, cut links, operations, quorum arithmetic), `narrate` (the story as text), `picture`
//! (the story as SVG) and `timeline` (the story as one self-contained HTML page).

pub mod admin;
pub mod churn;
pub mod cli;
pub mod clocks;
pub mod committed;
pub mod elector;
pub mod fork;
pub mod history;
pub mod host;
pub mod lease_check;
pub mod linearizability;
pub mod log_check;
pub mod log_watch;
pub mod narrate;
pub mod nemesis;
pub mod net;
pub mod observe;
pub mod operator;
pub mod picture;
pub mod quiet;
pub mod raft_check;
pub mod revision_check;
pub mod run;
pub mod scenario;
pub mod scenario_cmd;
pub mod schedule;
pub mod story;
pub mod sweep;
pub mod timeline;
pub mod verdict;
pub mod watch_check;
pub mod watchers;
pub mod workload;
