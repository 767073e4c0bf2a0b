//! Ordered trees in memory: the shape both in-memory backends keep, and what a WAL checkpoint
//! holds. `BTreeMap` throughout, so iteration order is fixed.
//!
//! Values are `Bytes`, taken from a batch's `Vec` without a copy: Raft's log is read back
//! once per follower by replication and once more by apply, and `values` hands those reads
//! shared handles instead of copying every entry each time.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Op, Tree};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Trees(#[serde(with = "as_bytes")] BTreeMap<Tree, BTreeMap<Vec<u8>, Bytes>>);

/// Keys and values code as bytes: serde sees a `Vec<u8>` as a sequence and visits it a byte at
/// a time, which made reading a million keys' snapshot (one value of hundreds of MB) a loop of
/// hundreds of millions of calls. bincode writes both alike (length, then the bytes), so files
/// written before read back.
mod as_bytes {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_bytes::{ByteBuf, Bytes};

    use crate::storage::Tree;

    type Maps = BTreeMap<Tree, BTreeMap<Vec<u8>, bytes::Bytes>>;

    struct Map<'a>(&'a BTreeMap<Vec<u8>, bytes::Bytes>);

    impl Serialize for Map<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (Bytes::new(k), Bytes::new(v))))
        }
    }

    pub fn serialize<S: Serializer>(maps: &Maps, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(maps.iter().map(|(tree, map)| (tree, Map(map))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Maps, D::Error> {
        let maps = BTreeMap::<Tree, BTreeMap<ByteBuf, ByteBuf>>::deserialize(d)?;
        Ok(maps
            .into_iter()
            .map(|(tree, map)| {
                let map = map
                    .into_iter()
                    .map(|(k, v)| (k.into_vec(), bytes::Bytes::from(v.into_vec())))
                    .collect();
                (tree, map)
            })
            .collect())
    }
}

impl Trees {
    pub fn get(&self, tree: Tree, key: &[u8]) -> Option<Vec<u8>> {
        self.0
            .get(&tree)
            .and_then(|t| t.get(key).map(|v| v.to_vec()))
    }

    pub fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.range(tree, from, to)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect()
    }

    /// The values `scan` would return, shared rather than copied.
    pub fn values(&self, tree: Tree, from: &[u8], to: Option<&[u8]>, limit: usize) -> Vec<Bytes> {
        self.range(tree, from, to)
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Entries with `from <= key < to` (`to = None`: to the end), in key order.
    fn range<'a>(
        &'a self,
        tree: Tree,
        from: &'a [u8],
        to: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Bytes)> + 'a {
        let upper = match to {
            Some(to) => Bound::Excluded(to),
            None => Bound::Unbounded,
        };
        self.0
            .get(&tree)
            .into_iter()
            .flat_map(move |t| t.range::<[u8], _>((Bound::Included(from), upper)))
    }

    pub fn last(&self, tree: Tree) -> Option<(Vec<u8>, Vec<u8>)> {
        self.0
            .get(&tree)
            .and_then(|t| t.iter().next_back())
            .map(|(k, v)| (k.clone(), v.to_vec()))
    }

    /// Every tree held, in order, with its entries.
    pub fn maps(&self) -> &BTreeMap<Tree, BTreeMap<Vec<u8>, Bytes>> {
        &self.0
    }

    pub fn insert(&mut self, tree: Tree, key: Vec<u8>, value: Bytes) {
        self.0.entry(tree).or_default().insert(key, value);
    }

    pub fn remove(&mut self, tree: Tree, key: &[u8]) {
        if let Some(t) = self.0.get_mut(&tree) {
            t.remove(key);
        }
    }

    /// Bytes of keys and values held.
    pub fn size_bytes(&self) -> u64 {
        self.0
            .values()
            .flat_map(|t| t.iter())
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }

    /// Removes every value longer than `limit` bytes and returns where they were.
    pub fn evict_larger_than(&mut self, limit: usize) -> Vec<(Tree, Vec<u8>)> {
        let mut evicted = Vec::new();
        for (tree, t) in self.0.iter_mut() {
            t.retain(|k, v| {
                let keep = v.len() <= limit;
                if !keep {
                    evicted.push((*tree, k.clone()));
                }
                keep
            });
        }
        evicted
    }

    /// Applies `ops` in order, taking their keys and values (no copy).
    pub fn apply(&mut self, ops: impl IntoIterator<Item = Op>) {
        self.apply_placing(ops, |_, v| Bytes::from(v));
    }

    /// Applies `ops` in order, storing each put's value where `place` puts it.
    pub fn apply_placing(
        &mut self,
        ops: impl IntoIterator<Item = Op>,
        mut place: impl FnMut(Tree, Vec<u8>) -> Bytes,
    ) {
        for op in ops {
            match op {
                Op::Put(tree, k, v) => {
                    let v = place(tree, v);
                    self.0.entry(tree).or_default().insert(k, v);
                }
                Op::Delete(tree, k) => {
                    self.0.entry(tree).or_default().remove(&k);
                }
                Op::DeleteRange(tree, from, to) => {
                    let t = self.0.entry(tree).or_default();
                    // Split off [from, ..), then give back [to, ..): what stays split off is
                    // exactly the range, removed without a key-by-key walk.
                    let mut doomed = t.split_off(from.as_slice());
                    if let Some(to) = to {
                        let mut kept = doomed.split_off(to.as_slice());
                        t.append(&mut kept);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_encode_as_they_did_as_sequences() {
        // Goal: snapshot files and WAL checkpoints written before keys and values coded as
        // bytes read back unchanged, and decode to the same trees.
        let mut trees = Trees::default();
        trees.apply([
            Op::Put(Tree::Log, b"a".to_vec(), vec![1; 70_000]),
            Op::Put(Tree::Log, b"b".to_vec(), Vec::new()),
            Op::Put(Tree::Snapshot, b"data".to_vec(), b"xyz".to_vec()),
        ]);
        let old: BTreeMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>> = trees
            .0
            .iter()
            .map(|(tree, t)| {
                (
                    *tree,
                    t.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect(),
                )
            })
            .collect();
        let bytes = bincode::serialize(&old).unwrap();
        assert_eq!(bincode::serialize(&trees).unwrap(), bytes);
        assert_eq!(bincode::deserialize::<Trees>(&bytes).unwrap(), trees);
    }
}
