//! What the harness may see of a running member, and the only file in the simulator that reaches
//! into `crate::server::Server` (or into a `Node` for its server). Checkers, the nemesis and the
//! verdicts ask these small functions for simulated facts (Raft metrics, applied leases, store
//! revision and hash, committed history) and never touch a member's fields themselves, so a
//! change inside `Server` is adapted here once.
//!
//! Every function only reads; none may change a member's state, or the run would differ from the
//! production code it simulates.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::Error;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::mvccpb::{Event, KeyValue};
use crate::raft::typ::RaftMetrics;
use crate::server::Server;
use crate::Node;
use openraft::ServerState;

/// Each member's running server, by member index; `None` while it is down or still starting.
/// Shared by the host factories (which fill a slot when a member starts), the nemesis (which
/// empties it on a crash) and the observers.
pub type Servers = Rc<RefCell<Vec<Option<Arc<Server>>>>>;

/// The server inside a started node, which the harness keeps to observe the member.
pub fn server(node: &Node) -> Arc<Server> {
    node.server.clone()
}

/// A snapshot of the member's Raft metrics: role, term, vote and log indexes.
pub fn metrics(server: &Server) -> RaftMetrics {
    server.metrics()
}

/// The last log index the member applied to its state machine (0 before any).
pub fn applied(server: &Server) -> u64 {
    metrics(server).last_applied.map_or(0, |l| l.index)
}

/// The leases in the member's applied state.
pub fn lease_ids(server: &Server) -> BTreeSet<i64> {
    server.lease_ids().into_iter().collect()
}

/// The member's applied store revision.
pub fn revision(server: &Server) -> i64 {
    server.revision()
}

/// A hash of the member's applied store: equal on members that applied the same history.
pub fn store_hash(server: &Server) -> u32 {
    server.kv_hash().hash
}

/// What a read of `key` at `revision` finds in the member's applied store.
pub fn range_at(server: &Server, key: &str, revision: i64) -> Result<Vec<KeyValue>, Error> {
    let req = RangeRequest {
        key: key.as_bytes().to_vec(),
        revision,
        ..Default::default()
    };
    Ok(server.range_local(&req)?.kvs)
}

/// Every event on every key from revision 1 through `revision`, as a watch from revision 1
/// would deliver them; `Err` with the compact revision when the member no longer holds
/// revision 1.
pub fn events_through(server: &Server, revision: i64) -> Result<Vec<Event>, i64> {
    server.events_between(&[0], &[0], 1, revision)
}

/// Every event on every key in `[from, through]`; `Err` with the compact revision when the
/// member no longer holds `from`.
pub fn events_from(server: &Server, from: i64, through: i64) -> Result<Vec<Event>, i64> {
    server.events_between(&[0], &[0], from, through)
}

/// The index of the first running member that believes it leads, if any. `ids` maps member
/// index to Raft node id.
pub fn current_leader(servers: &Servers, ids: &[u64]) -> Option<usize> {
    servers.borrow().iter().flatten().find_map(|s| {
        let m = metrics(s);
        (m.state == ServerState::Leader)
            .then(|| ids.iter().position(|x| *x == m.id))
            .flatten()
    })
}
