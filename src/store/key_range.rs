//! etcd's key-range conventions for reads, deletes, compares and watches, in one place.
//!
//! An empty `range_end` means the key alone; `"\0"` means every key from `key` on; otherwise
//! the half-open `[key, range_end)`, empty when `range_end <= key`. `key = "\0"` with
//! `range_end = "\0"` is the whole keyspace. (The txn duplicate-key check reads `range_end`
//! differently, as etcd does; see `validate`.)

use std::ops::Bound;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    /// Exclusive upper bound; `None`: unbounded above (or, when `single`, unused).
    pub end: Option<Vec<u8>>,
    /// The range is exactly `start`.
    pub single: bool,
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        let (end, single) = match range_end {
            [] => (None, true),
            [0] => (None, false),
            end => (Some(end.to_vec()), false),
        };
        KeyRange {
            start: key.to_vec(),
            end,
            single,
        }
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        if self.single {
            return k == self.start.as_slice();
        }
        k >= self.start.as_slice() && self.end.as_ref().is_none_or(|e| k < e.as_slice())
    }

    /// True when no key can match (`range_end <= key`).
    pub fn is_empty(&self) -> bool {
        !self.single && self.end.as_ref().is_some_and(|e| e <= &self.start)
    }

    /// Bounds for a `BTreeMap::range` scan; an empty range gives an empty (never inverted)
    /// scan, since an inverted one panics.
    pub fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        let lower = Bound::Included(self.start.as_slice());
        if self.is_empty() {
            return (lower, Bound::Excluded(self.start.as_slice()));
        }
        if self.single {
            return (lower, Bound::Included(self.start.as_slice()));
        }
        match &self.end {
            Some(e) => (lower, Bound::Excluded(e.as_slice())),
            None => (lower, Bound::Unbounded),
        }
    }
}
