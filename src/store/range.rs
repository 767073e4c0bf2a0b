//! Range: reads at a revision with every etcd option, in etcd 3.4's order of work.
//!
//! etcd first fetches from its index, then filters, sorts and truncates. What it fetches
//! depends on the *requested* sort order: with an order (or any min/max filter) it fetches
//! every key, otherwise only the first `limit + 1` keys in key order. So a request with a
//! non-key sort target, order NONE (which then sorts ascending) and a limit sorts just those
//! `limit + 1` keys. We reproduce that, quirk included. `count` is the number of keys in the
//! range at that revision, whatever the limit and the filters.
//!
//! Ties in a sort target keep key order (a stable sort): deterministic on every member, and
//! what etcd's insertion sort yields for the small results where it is stable.

use std::cmp::Ordering;

use super::key_history::Visible;
use super::{validate, KeyRange, Store, StoreError};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse};
use crate::proto::mvccpb::KeyValue;

impl Store {
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, StoreError> {
        validate::range(req)?;
        self.range_at(req, self.revision)
    }

    /// A range whose newest visible revision is `current`: the store's, or inside a txn that
    /// has written, the txn's own.
    pub(crate) fn range_at(
        &self,
        req: &RangeRequest,
        current: i64,
    ) -> Result<RangeResponse, StoreError> {
        let rev = self.resolve_read(req.revision, current)?;
        let range = KeyRange::new(&req.key, &req.range_end);
        let filtered = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        let fetch_all = req.sort_order != SortOrder::None as i32 || filtered;
        let fetch = if req.count_only {
            0
        } else if req.limit > 0 && !fetch_all {
            // One beyond the limit tells whether there is more.
            usize::try_from(req.limit).map_or(usize::MAX, |l| l.saturating_add(1))
        } else {
            usize::MAX
        };

        // Count every live key, clone only the ones that may be returned: a paginated list of
        // a large prefix costs a walk, not a copy.
        let mut kvs = Vec::new();
        let mut count = 0i64;
        for (key, visible) in self.live_at(&range, rev) {
            count += 1;
            if kvs.len() < fetch {
                kvs.push(visible.to_kv(key));
            }
        }

        if filtered {
            kvs.retain(|kv| {
                (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
                    && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
                    && (req.max_create_revision == 0
                        || kv.create_revision <= req.max_create_revision)
                    && (req.min_create_revision == 0
                        || kv.create_revision >= req.min_create_revision)
            });
        }
        sort(&mut kvs, req.sort_order, req.sort_target);
        let mut more = false;
        if req.limit > 0 && kvs.len() as i64 > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeResponse {
            header: None,
            kvs,
            more,
            count,
        })
    }

    /// The revision a read at `requested` sees, 0 (or less) meaning `current`.
    fn resolve_read(&self, requested: i64, current: i64) -> Result<i64, StoreError> {
        if requested > current {
            return Err(StoreError::FutureRevision);
        }
        if requested <= 0 {
            return Ok(current);
        }
        // Reading exactly at the compact revision is allowed: its state was kept.
        if requested < self.compact_revision {
            return Err(StoreError::Compacted);
        }
        Ok(requested)
    }

    /// Live keys in the range at `revision`, in key order, with their values borrowed.
    pub(crate) fn live_at<'a>(
        &'a self,
        range: &KeyRange,
        revision: i64,
    ) -> impl Iterator<Item = (&'a [u8], Visible<'a>)> + 'a {
        self.keys
            .range::<_, [u8]>(range.bounds())
            .filter_map(move |(key, h)| Some((&**key, h.at(revision)?)))
    }
}

/// etcd's rule: a non-key target with order NONE sorts ascending. An unknown order (3.4
/// accepts any number) sorts nothing; an unknown target was rejected by `validate::range`.
fn sort(kvs: &mut [KeyValue], order: i32, target: i32) {
    let Ok(target) = SortTarget::try_from(target) else {
        return;
    };
    let order = match SortOrder::try_from(order) {
        Ok(SortOrder::None) if target != SortTarget::Key => SortOrder::Ascend,
        Ok(order) => order,
        Err(_) => return,
    };
    let cmp = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => kvs.sort_by(cmp),
        SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
    }
}
