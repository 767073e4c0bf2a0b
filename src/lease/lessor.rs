//! The leader's lease clock.
//!
//! Deadlines live only in the memory of the member that leads; they are never replicated. When a
//! member becomes leader it `promote`s: every lease gets its full TTL plus one election timeout
//! from now, as etcd does, because the old leader's deadlines died with its term. Expiry is then
//! proposed as an ordinary `LeaseRevoke` through Raft, which fails on a deposed leader, so a
//! member that lost leadership cannot delete keys. Time is passed in (tokio's clock), never read
//! here, which keeps this testable and simulator-friendly.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::LocalInstant as Instant;

use super::LeaseTable;

/// What a keep-alive did to a lease's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// The deadline had passed: the lease is being revoked, and renewing it now would tell
    /// the client it lives while the revoke commits (etcd's lessor refuses too).
    Expired,
    /// This member does not hold the lease clock.
    NotPrimary,
}

#[derive(Debug, Default)]
pub struct Lessor {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    primary: bool,
    deadlines: BTreeMap<i64, Instant>,
}

impl Lessor {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Only plain map updates happen under the lock; a poisoned lock still holds valid data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_primary(&self) -> bool {
        self.lock().primary
    }

    /// Becoming leader: every lease restarts its full TTL, extended by `extend`.
    pub fn promote(&self, table: &LeaseTable, now: Instant, extend: Duration) {
        let mut inner = self.lock();
        inner.primary = true;
        inner.deadlines = table
            .iter()
            .map(|(id, r)| (id, now + ttl(r.ttl_secs) + extend))
            .collect();
    }

    pub fn demote(&self) {
        let mut inner = self.lock();
        inner.primary = false;
        inner.deadlines.clear();
    }

    /// Brings deadlines in line with the table: new grants start now, revoked leases go.
    pub fn sync_with(&self, table: &LeaseTable, now: Instant) {
        let mut inner = self.lock();
        if !inner.primary {
            return;
        }
        inner.deadlines.retain(|id, _| table.get(*id).is_some());
        for (id, r) in table.iter() {
            inner
                .deadlines
                .entry(id)
                .or_insert_with(|| now + ttl(r.ttl_secs));
        }
    }

    /// A keep-alive: the lease gets its full TTL again, unless it has already expired.
    pub fn renew(&self, id: i64, ttl_secs: i64, now: Instant) -> Renewal {
        let mut inner = self.lock();
        if !inner.primary {
            return Renewal::NotPrimary;
        }
        if inner.deadlines.get(&id).is_some_and(|d| *d <= now) {
            return Renewal::Expired;
        }
        inner.deadlines.insert(id, now + ttl(ttl_secs));
        Renewal::Renewed
    }

    /// A grant just applied: the lease's clock starts now.
    pub fn start(&self, id: i64, ttl_secs: i64, now: Instant) {
        let mut inner = self.lock();
        if inner.primary {
            inner.deadlines.insert(id, now + ttl(ttl_secs));
        }
    }

    pub fn remaining(&self, id: i64, now: Instant) -> Option<Duration> {
        let inner = self.lock();
        inner
            .deadlines
            .get(&id)
            .map(|d| d.saturating_duration_since(now))
    }

    /// Leases whose deadline has passed, oldest deadline first, at most `max`.
    pub fn expired(&self, now: Instant, max: usize) -> Vec<i64> {
        let inner = self.lock();
        if !inner.primary {
            return Vec::new();
        }
        let mut due: Vec<(Instant, i64)> = inner
            .deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, d)| (*d, *id))
            .collect();
        due.sort();
        due.into_iter().take(max).map(|(_, id)| id).collect()
    }
}

fn ttl(secs: i64) -> Duration {
    Duration::from_secs(secs.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_lessor_never_reports_expiry() {
        // Goal: only a promoted lessor expires leases; a follower's view is always empty.
        let mut table = LeaseTable::default();
        table.grant(7, 2);
        let lessor = Lessor::new();
        let now = Instant::now();
        lessor.sync_with(&table, now);
        assert!(lessor.expired(now + Duration::from_secs(60), 10).is_empty());
    }

    #[test]
    fn promote_extends_every_lease_and_renew_restarts_ttl() {
        // Goal: a new leader grants TTL + extension; a keep-alive restarts the full TTL.
        let mut table = LeaseTable::default();
        table.grant(1, 2);
        table.grant(2, 10);
        let lessor = Lessor::new();
        let t0 = Instant::now();
        lessor.promote(&table, t0, Duration::from_secs(1));
        assert!(lessor.expired(t0 + Duration::from_secs(2), 10).is_empty());
        assert_eq!(lessor.expired(t0 + Duration::from_secs(3), 10), vec![1]);
        assert_eq!(
            lessor.renew(1, 2, t0 + Duration::from_secs(3)),
            Renewal::Expired,
            "an expired lease awaits its revoke; a keep-alive cannot bring it back"
        );
        assert_eq!(
            lessor.renew(2, 10, t0 + Duration::from_secs(3)),
            Renewal::Renewed
        );
        assert!(lessor
            .expired(t0 + Duration::from_secs(12), 10)
            .contains(&1));
        assert!(!lessor
            .expired(t0 + Duration::from_secs(12), 10)
            .contains(&2));
        lessor.demote();
        assert_eq!(lessor.renew(1, 2, t0), Renewal::NotPrimary);
    }
}
