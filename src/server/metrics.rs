//! This member's metrics: gauges read from its state when scraped, and the loop that counts
//! leader changes as Raft reports them.

use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;

use super::Server;

impl Server {
    /// The member's metrics in Prometheus' text format, gauges brought up to date first.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        let status = self.raft_status();
        m.has_leader.set(i64::from(status.leader.is_some()));
        m.is_leader.set(i64::from(self.is_leader()));
        m.proposals_committed.set(status.commit_index as i64);
        m.proposals_applied.set(status.applied_index as i64);
        let (total, in_use) = self.db_size_bytes();
        m.db_total_size_bytes.set(total as i64);
        m.db_in_use_bytes.set(in_use as i64);
        m.keys.set(self.sm.read().store.key_count() as i64);
        m.render()
    }

    /// Counts every change of leader this member sees (a new leader, or losing one), as
    /// etcd's `etcd_server_leader_changes_seen_total` does. Runs for the member's life. It
    /// watches Raft's server metrics (role, vote, leader, membership), not all of its metrics,
    /// which change with every entry and would wake it for each.
    pub async fn leader_changes_loop(self: Arc<Self>) {
        let mut rx = self.raft.server_metrics();
        let mut last = rx.borrow_watched().current_leader;
        while rx.changed().await.is_ok() {
            let now = rx.borrow_watched().current_leader;
            if now != last && now.is_some() {
                self.metrics.leader_changes.inc();
            }
            last = now;
        }
    }
}
