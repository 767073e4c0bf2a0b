//! Range: reads at a revision with every etcd option.

use std::cmp::Ordering;

use super::{live_at, KeyRange, Store, StoreError};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse};
use crate::proto::mvccpb::KeyValue;

impl Store {
    /// Resolves a requested revision (0 = current) and checks it against compaction.
    pub(crate) fn read_revision(&self, requested: i64) -> Result<i64, StoreError> {
        if requested <= 0 {
            return Ok(self.revision);
        }
        if requested > self.revision {
            return Err(StoreError::FutureRevision);
        }
        if requested < self.compact_revision {
            return Err(StoreError::Compacted);
        }
        Ok(requested)
    }

    /// Live versions in the range at `revision`, in key order.
    pub(crate) fn scan_at(&self, range: &KeyRange, revision: i64) -> Vec<KeyValue> {
        self.keys
            .range(range.bounds())
            .filter_map(|(_, vs)| live_at(vs, revision).cloned())
            .collect()
    }

    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, StoreError> {
        if req.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let rev = self.read_revision(req.revision)?;
        let range = KeyRange::new(&req.key, &req.range_end);
        let unfiltered = req.min_mod_revision == 0
            && req.max_mod_revision == 0
            && req.min_create_revision == 0
            && req.max_create_revision == 0;
        let key_order = req.sort_target == SortTarget::Key as i32
            && (req.sort_order == SortOrder::None as i32
                || req.sort_order == SortOrder::Ascend as i32);
        if unfiltered && key_order || req.count_only {
            return Ok(self.range_in_key_order(req, &range, rev));
        }
        let mut kvs = self.scan_at(&range, rev);
        let count = kvs.len() as i64;
        if req.count_only {
            return Ok(RangeResponse {
                header: None,
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        kvs.retain(|kv| {
            (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
                && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
                && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
                && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
        });
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
}

impl Store {
    /// The common case (key order, no filters): count every live key but clone only the ones
    /// returned, so a paginated list of a large prefix costs a walk, not a copy.
    fn range_in_key_order(&self, req: &RangeRequest, range: &KeyRange, rev: i64) -> RangeResponse {
        let limit = if req.limit > 0 {
            req.limit as usize
        } else {
            usize::MAX
        };
        let mut kvs = Vec::new();
        let mut count = 0usize;
        for (_, versions) in self.keys.range(range.bounds()) {
            let Some(kv) = live_at(versions, rev) else {
                continue;
            };
            count += 1;
            if !req.count_only && kvs.len() < limit {
                let mut kv = kv.clone();
                if req.keys_only {
                    kv.value.clear();
                }
                kvs.push(kv);
            }
        }
        RangeResponse {
            header: None,
            more: !req.count_only && count > kvs.len(),
            kvs,
            count: count as i64,
        }
    }
}

/// etcd 3.4's rule: a non-key target with order NONE sorts ascending; unknown values are
/// accepted and leave key order.
fn sort(kvs: &mut [KeyValue], order: i32, target: i32) {
    let target = SortTarget::try_from(target).unwrap_or(SortTarget::Key);
    let order = match SortOrder::try_from(order) {
        Ok(SortOrder::None) if target != SortTarget::Key => SortOrder::Ascend,
        Ok(o) => o,
        Err(_) => SortOrder::None,
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
