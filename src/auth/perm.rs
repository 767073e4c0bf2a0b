//! Key permissions and the one question asked of them: does a user's set of granted intervals
//! cover the keys an operation touches?
//!
//! etcd's conventions, in our words: a permission with no `range_end` grants one key; a
//! `range_end` of `"\0"` grants every key from `key` on; otherwise the half-open
//! `[key, range_end)`. A request for one key passes when any granted interval holds it; a
//! request for a range passes only when the union of the granted intervals covers all of it
//! (so two adjacent grants together cover a range neither covers alone), and an empty range
//! (`range_end <= key`) never passes. READWRITE counts as both READ and WRITE.

use serde::{Deserialize, Serialize};

use crate::proto::authpb::{permission, Permission};

/// etcd's `authpb.Permission.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermType {
    Read,
    Write,
    ReadWrite,
}

/// What an operation needs on its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl PermType {
    /// The wire value; unknown numbers are refused rather than guessed.
    pub fn from_wire(v: i32) -> Option<Self> {
        match permission::Type::try_from(v).ok()? {
            permission::Type::Read => Some(PermType::Read),
            permission::Type::Write => Some(PermType::Write),
            permission::Type::Readwrite => Some(PermType::ReadWrite),
        }
    }

    pub fn to_wire(self) -> i32 {
        match self {
            PermType::Read => permission::Type::Read as i32,
            PermType::Write => permission::Type::Write as i32,
            PermType::ReadWrite => permission::Type::Readwrite as i32,
        }
    }

    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (PermType::ReadWrite, _)
                | (PermType::Read, Access::Read)
                | (PermType::Write, Access::Write)
        )
    }
}

/// One permission of a role, as granted: etcd's key and range_end encoding kept verbatim, so
/// RoleGet hands back exactly what was granted and revoke matches on the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPermission {
    pub perm_type: PermType,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

impl KeyPermission {
    pub fn to_wire(&self) -> Permission {
        Permission {
            perm_type: self.perm_type.to_wire(),
            key: self.key.clone(),
            range_end: self.range_end.clone(),
        }
    }
}

/// Half-open `[start, end)`; `end == None` is unbounded above.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interval<'a> {
    start: &'a [u8],
    end: Option<Vec<u8>>,
}

impl<'a> Interval<'a> {
    fn of(key: &'a [u8], range_end: &[u8]) -> Self {
        let end = match range_end {
            // One key: the interval up to its immediate successor, `key + "\0"`.
            [] => Some([key, &[0]].concat()),
            [0] => None,
            end => Some(end.to_vec()),
        };
        Interval { start: key, end }
    }

    fn contains(&self, k: &[u8]) -> bool {
        self.start <= k && self.end.as_deref().is_none_or(|e| k < e)
    }
}

/// Whether `perms` grant `access` on `key`..`range_end` (etcd's range encoding).
pub fn permits<'a>(
    perms: impl IntoIterator<Item = &'a KeyPermission>,
    access: Access,
    key: &[u8],
    range_end: &[u8],
) -> bool {
    let mut granted: Vec<Interval<'_>> = perms
        .into_iter()
        .filter(|p| p.perm_type.grants(access))
        .map(|p| Interval::of(&p.key, &p.range_end))
        .collect();
    if range_end.is_empty() {
        return granted.iter().any(|i| i.contains(key));
    }
    let want = Interval::of(key, range_end);
    if want.end.as_deref().is_some_and(|e| e <= want.start) {
        return false;
    }
    granted.sort_by(|a, b| a.start.cmp(b.start));
    // `reach` is the first key of `want` not yet known to be covered; each interval that
    // starts at or before it pushes it further, and a gap before the next one ends the walk.
    let mut reach: Vec<u8> = want.start.to_vec();
    for iv in &granted {
        if iv.start > reach.as_slice() {
            return false;
        }
        match &iv.end {
            None => return true,
            Some(e) if e.as_slice() > reach.as_slice() => reach = e.clone(),
            Some(_) => {}
        }
        if want.end.as_deref().is_some_and(|we| reach.as_slice() >= we) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: PermType, key: &str, end: &str) -> KeyPermission {
        KeyPermission {
            perm_type: t,
            key: key.into(),
            range_end: end.into(),
        }
    }

    #[test]
    fn a_single_key_grant_covers_that_key_only() {
        // Goal: a grant without range_end is one key, not a prefix.
        let p = [perm(PermType::Read, "foo", "")];
        assert!(permits(&p, Access::Read, b"foo", b""));
        assert!(!permits(&p, Access::Read, b"foo1", b""));
        assert!(!permits(&p, Access::Read, b"fo", b""));
        // A range of exactly that key, [foo, foo\0), is covered too.
        assert!(permits(&p, Access::Read, b"foo", b"foo\0"));
        assert!(!permits(&p, Access::Read, b"foo", b"fop"));
    }

    #[test]
    fn types_grant_their_access_and_readwrite_grants_both() {
        // Goal: READ does not write, WRITE does not read, READWRITE does both.
        let r = [perm(PermType::Read, "k", "")];
        let w = [perm(PermType::Write, "k", "")];
        let rw = [perm(PermType::ReadWrite, "k", "")];
        assert!(permits(&r, Access::Read, b"k", b"") && !permits(&r, Access::Write, b"k", b""));
        assert!(!permits(&w, Access::Read, b"k", b"") && permits(&w, Access::Write, b"k", b""));
        assert!(permits(&rw, Access::Read, b"k", b"") && permits(&rw, Access::Write, b"k", b""));
    }

    #[test]
    fn a_range_must_be_covered_entirely() {
        // Goal: etcd's observed case: READ [x, y) denies `get x z`, allows `get x y`.
        let p = [perm(PermType::Read, "x", "y")];
        assert!(permits(&p, Access::Read, b"x", b"y"));
        assert!(permits(&p, Access::Read, b"x1", b"x9"));
        assert!(!permits(&p, Access::Read, b"x", b"z"));
        assert!(!permits(&p, Access::Read, b"w", b"y"));
        // From-key (range_end "\0") reaches past any bounded grant.
        assert!(!permits(&p, Access::Read, b"x", b"\0"));
    }

    #[test]
    fn adjacent_and_overlapping_grants_merge() {
        // Goal: coverage is by the union of grants, across roles and types.
        let p = [
            perm(PermType::Read, "a", "c"),
            perm(PermType::ReadWrite, "b", "e"),
            perm(PermType::Read, "e", "f"),
        ];
        assert!(permits(&p, Access::Read, b"a", b"f"));
        assert!(!permits(&p, Access::Read, b"a", b"g"));
        assert!(!permits(&p, Access::Write, b"a", b"e"));
        assert!(permits(&p, Access::Write, b"b", b"e"));
        let gap = [
            perm(PermType::Read, "a", "b"),
            perm(PermType::Read, "c", "d"),
        ];
        assert!(!permits(&gap, Access::Read, b"a", b"d"));
    }

    #[test]
    fn from_key_grants_reach_the_end_of_the_keyspace() {
        // Goal: range_end "\0" on a grant is unbounded; it covers from-key and prefix reads.
        let p = [perm(PermType::Read, "m", "\0")];
        assert!(permits(&p, Access::Read, b"m", b"\0"));
        assert!(permits(&p, Access::Read, b"zzz", b""));
        assert!(permits(&p, Access::Read, b"n", b"o"));
        assert!(!permits(&p, Access::Read, b"l", b"\0"));
        let all = [perm(PermType::Read, "", "\0")];
        assert!(permits(&all, Access::Read, b"\0", b"\0"));
    }

    #[test]
    fn empty_ranges_and_no_grants_are_denied() {
        // Goal: nothing is granted by default; an inverted range never passes.
        assert!(!permits(&[], Access::Read, b"a", b""));
        let p = [perm(PermType::Read, "", "\0")];
        assert!(!permits(&p, Access::Read, b"b", b"a"));
        assert!(!permits(&p, Access::Read, b"b", b"b"));
    }
}
