//! Leases: the replicated lease table and the leader-only lessor that decides expiry.
//!
//! Split in two on purpose. `LeaseTable` is state-machine data: grants, revokes and which keys
//! each lease holds, changed only by applied commands, identical on every member. `Lessor` is the
//! leader's clock-driven view: deadlines in tokio time, refreshed by keep-alives, and the loop
//! that turns an expired deadline into a replicated `LeaseRevoke`. A member that is not leader
//! never revokes anything.

mod lessor;
mod table;

pub use lessor::{Lessor, Renewal};
pub use table::{LeaseRecord, LeaseTable};

/// etcd's floor: ceil(1.5 x default election timeout) seconds.
pub const MIN_TTL_SECS: i64 = 2;
/// etcd's ceiling, "etcdserver: too large lease TTL".
pub const MAX_TTL_SECS: i64 = 9_000_000_000;
