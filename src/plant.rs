//! Planted bugs: switches that make a member deliberately wrong, so the simulator can prove its
//! checkers catch each kind of mistake. All are off in production; `quorum serve` cannot set them.
//!
//! The watch plants break one of etcd's watch guarantees each (ordered, unique, atomic,
//! reliable, resumable, bookmarkable); the `etcd-*` plants put back a bug etcd's robustness
//! suite found, so the scenario named after it proves it would catch it again.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plants {
    /// Serve linearizable Range from local state without a read index.
    pub stale_read: bool,
    /// Acknowledge log appends to Raft before they are durable (never sync the log).
    pub ack_before_sync: bool,
    /// Expire leases on any member, from its own clock, without going through the leader.
    pub lease_without_leadership: bool,
    /// Lose one watch event in every few revisions (reliable).
    pub drop_watch_event: bool,
    /// Send a revision with several events as two responses (atomic).
    pub split_watch_revision: bool,
    /// Send some responses twice (unique).
    pub duplicate_watch_event: bool,
    /// Send catch-up history newest revision first (ordered).
    pub reorder_watch_events: bool,
    /// A watcher created at a past revision starts one revision later (resumable).
    pub skip_watch_resume: bool,
    /// Answer a progress request at once, before queued and catch-up events went out
    /// (bookmarkable).
    pub early_watch_progress: bool,
    /// etcd #15271: after a snapshot install, watchers replay revisions they already had.
    pub etcd_15271: bool,
    /// etcd #19179 (and #18089): compaction drops a DELETE at exactly the compact revision, so
    /// a watch from that revision misses it.
    pub etcd_19179: bool,
    /// etcd #17780: a member loading its state takes the revision from the newest version it
    /// stores, as etcd took it from the last key in its backend; after a DELETE at the head
    /// was compacted away, the revision falls.
    pub etcd_17780: bool,
}

impl Plants {
    pub const NAMES: [&'static str; 13] = [
        "stale-read",
        "ack-before-sync",
        "lease-without-leadership",
        "drop-watch-event",
        "split-watch-revision",
        "duplicate-watch-event",
        "reorder-watch-events",
        "skip-watch-resume",
        "early-watch-progress",
        "etcd-15271",
        "etcd-19179",
        "etcd-17780",
        // A 1-member cluster acknowledging before its log is synced (etcd #14370) is
        // `ack-before-sync` on one member; the name is kept for the scenario that shows it.
        "etcd-14370",
    ];

    /// Parses one bug name as the simulator's `--plant` takes it.
    pub fn parse(name: &str) -> Option<Plants> {
        let mut p = Plants::default();
        match name {
            "stale-read" => p.stale_read = true,
            "ack-before-sync" | "etcd-14370" => p.ack_before_sync = true,
            "lease-without-leadership" => p.lease_without_leadership = true,
            "drop-watch-event" => p.drop_watch_event = true,
            "split-watch-revision" => p.split_watch_revision = true,
            "duplicate-watch-event" => p.duplicate_watch_event = true,
            "reorder-watch-events" => p.reorder_watch_events = true,
            "skip-watch-resume" => p.skip_watch_resume = true,
            "early-watch-progress" => p.early_watch_progress = true,
            "etcd-15271" => p.etcd_15271 = true,
            "etcd-19179" => p.etcd_19179 = true,
            "etcd-17780" => p.etcd_17780 = true,
            _ => return None,
        }
        Some(p)
    }
}
