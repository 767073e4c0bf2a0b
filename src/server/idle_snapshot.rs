//! Writes the snapshot that pacing put off, once writes pause.
//!
//! At a large state `raft::snapshot_pace` lets Raft's log run past `--snapshot-count`, so that
//! writing the whole state costs a bounded share of a heavy load. That log is held in memory
//! and replayed at a restart: up to ~80,000 entries (~30 MB) at a million keys. When a member
//! has applied nothing for a while and its log is still past the count, the load that made
//! the snapshot expensive is over, so it writes the snapshot then; the purge that follows gives
//! the log's memory back, and a restart replays no more than the count asked for.
//!
//! At most one snapshot per `--snapshot-count` entries, as the count alone would have written.
//! Until pacing first puts one off (never below ~41 MB of state) the task only waits.

use std::sync::Arc;
use std::time::Duration;

use super::Server;

/// How long nothing must be applied before the member counts as idle.
const QUIET: Duration = Duration::from_secs(1);

impl Server {
    /// Runs until the member stops: after pacing puts off a snapshot, looks once per `QUIET`
    /// and writes it when nothing was applied since the last look.
    pub async fn idle_snapshot_loop(self: Arc<Self>, count: u64) {
        let count = count.max(1);
        loop {
            self.sm.snapshot_deferred().await;
            // A timer rather than a watch on the applied index: a waiter woken by every apply
            // would cost each write a wake-up.
            let mut tick = crate::clock::Interval::new(QUIET);
            let mut last_applied = None;
            // Asked in this quiet spell already: the snapshot takes seconds at this size.
            let mut asked = false;
            loop {
                tick.tick().await;
                let (applied, since_snapshot) = self.sm.applied_and_since_snapshot();
                if since_snapshot < count {
                    // Written meanwhile, by the policy or by us. A go-ahead not used (a
                    // snapshot was already being built) must not let a later one past pacing.
                    self.sm.allow_next_snapshot(false);
                    break;
                }
                let quiet = last_applied == Some(applied);
                last_applied = Some(applied);
                if !quiet {
                    asked = false;
                } else if !asked {
                    asked = true;
                    tracing::debug!(applied, since_snapshot, "idle: writing a deferred snapshot");
                    self.sm.allow_next_snapshot(true);
                    if let Err(e) = self.raft.trigger().snapshot().await {
                        tracing::warn!(error = %e, "idle snapshot not started");
                        return;
                    }
                }
            }
        }
    }
}
