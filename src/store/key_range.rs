//! etcd's key-range conventions in one place.
//!
//! An empty `range_end` means the key alone; `"\0"` means every key from `key` on; otherwise the
//! half-open `[key, range_end)`. `key = "\0"` with `range_end = "\0"` is the whole keyspace.

use std::ops::Bound;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    /// `None`: unbounded above.
    pub end: Option<Vec<u8>>,
    pub single: bool,
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        if range_end.is_empty() {
            KeyRange {
                start: key.to_vec(),
                end: None,
                single: true,
            }
        } else if range_end == [0] {
            KeyRange {
                start: key.to_vec(),
                end: None,
                single: false,
            }
        } else {
            KeyRange {
                start: key.to_vec(),
                end: Some(range_end.to_vec()),
                single: false,
            }
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

    pub fn bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        if self.is_empty() {
            // An empty scan: [start, start).
            return (
                Bound::Included(self.start.clone()),
                Bound::Excluded(self.start.clone()),
            );
        }
        if self.single {
            return (
                Bound::Included(self.start.clone()),
                Bound::Included(self.start.clone()),
            );
        }
        let upper = match &self.end {
            Some(e) => Bound::Excluded(e.clone()),
            None => Bound::Unbounded,
        };
        (Bound::Included(self.start.clone()), upper)
    }

    pub fn intersects(&self, other: &KeyRange) -> bool {
        if self.is_empty() || other.is_empty() {
            return false;
        }
        let self_hi_above = |k: &[u8]| self.contains(k);
        if self.single {
            return other.contains(&self.start);
        }
        if other.single {
            return self_hi_above(&other.start);
        }
        let a_lo = &self.start;
        let b_lo = &other.start;
        let lo_ok = |lo: &Vec<u8>, hi: &Option<Vec<u8>>| hi.as_ref().is_none_or(|h| lo < h);
        lo_ok(a_lo, &other.end) && lo_ok(b_lo, &self.end)
    }
}
