//! Txn compares, evaluated as etcd's `applyCompare` does.
//!
//! A compare over a range holds only if every live key in it satisfies it; an empty range (or
//! a missing key) is compared as the zero KeyValue, except that a VALUE compare on no key is
//! always false. The operand is read from `target_union` only when its variant matches the
//! target (a MOD compare carrying a `version` operand compares against 0), an unknown target
//! compares as equal, and an unknown result holds: all as etcd.

use std::cmp::Ordering;

use super::key_history::Visible;
use super::{KeyRange, Store};
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::Compare;

/// The fields a compare reads; all zero (and an empty value) for a missing key.
#[derive(Default)]
struct Fields<'a> {
    value: &'a [u8],
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

impl<'a> From<Visible<'a>> for Fields<'a> {
    fn from(v: Visible<'a>) -> Self {
        Fields {
            value: &v.live.value,
            create_revision: v.live.create_revision,
            mod_revision: v.mod_revision,
            version: v.live.version,
            lease: v.live.lease,
        }
    }
}

impl Store {
    /// Whether `c` holds at `revision`.
    pub(crate) fn compare_holds(&self, c: &Compare, revision: i64) -> bool {
        let range = KeyRange::new(&c.key, &c.range_end);
        let mut kvs = self.live_at(&range, revision).peekable();
        if kvs.peek().is_none() {
            if c.target == CompareTarget::Value as i32 {
                return false;
            }
            return compare_kv(c, &Fields::default());
        }
        kvs.all(|(_, visible)| compare_kv(c, &visible.into()))
    }
}

fn compare_kv(c: &Compare, kv: &Fields) -> bool {
    let ord = match (CompareTarget::try_from(c.target), &c.target_union) {
        (Ok(CompareTarget::Value), u) => kv.value.cmp(match u {
            Some(TargetUnion::Value(v)) => v.as_slice(),
            _ => &[],
        }),
        (Ok(CompareTarget::Create), u) => kv.create_revision.cmp(&match u {
            Some(TargetUnion::CreateRevision(r)) => *r,
            _ => 0,
        }),
        (Ok(CompareTarget::Mod), u) => kv.mod_revision.cmp(&match u {
            Some(TargetUnion::ModRevision(r)) => *r,
            _ => 0,
        }),
        (Ok(CompareTarget::Version), u) => kv.version.cmp(&match u {
            Some(TargetUnion::Version(v)) => *v,
            _ => 0,
        }),
        (Ok(CompareTarget::Lease), u) => kv.lease.cmp(&match u {
            Some(TargetUnion::Lease(l)) => *l,
            _ => 0,
        }),
        (Err(_), _) => Ordering::Equal,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord.is_eq(),
        Ok(CompareResult::NotEqual) => ord.is_ne(),
        Ok(CompareResult::Greater) => ord.is_gt(),
        Ok(CompareResult::Less) => ord.is_lt(),
        Err(_) => true,
    }
}
