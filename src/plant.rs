//! Planted bugs: switches that make a member deliberately wrong, so the simulator can prove its
//! checkers catch each kind of mistake. All are off in production; `quorum serve` cannot set them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plants {
    /// Serve linearizable Range from local state without a read index.
    pub stale_read: bool,
    /// Acknowledge log appends to Raft before they are durable (never sync the log).
    pub ack_before_sync: bool,
    /// Expire leases on any member, from its own clock, without going through the leader.
    pub lease_without_leadership: bool,
    /// Lose one watch event in every few revisions.
    pub drop_watch_event: bool,
}

impl Plants {
    pub const NAMES: [&'static str; 4] = [
        "stale-read",
        "ack-before-sync",
        "lease-without-leadership",
        "drop-watch-event",
    ];

    /// Parses one bug name as the simulator's `--plant` takes it.
    pub fn parse(name: &str) -> Option<Plants> {
        let mut p = Plants::default();
        match name {
            "stale-read" => p.stale_read = true,
            "ack-before-sync" => p.ack_before_sync = true,
            "lease-without-leadership" => p.lease_without_leadership = true,
            "drop-watch-event" => p.drop_watch_event = true,
            _ => return None,
        }
        Some(p)
    }
}
