//! Ordered trees in memory: the shape both in-memory backends keep, and what a WAL checkpoint
//! holds. `BTreeMap` throughout, so iteration order is fixed.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::{Op, Tree};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Trees(BTreeMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>);

impl Trees {
    pub fn get(&self, tree: Tree, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(&tree).and_then(|t| t.get(key).cloned())
    }

    pub fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(t) = self.0.get(&tree) else {
            return Vec::new();
        };
        let upper = match to {
            Some(to) => Bound::Excluded(to.to_vec()),
            None => Bound::Unbounded,
        };
        t.range((Bound::Included(from.to_vec()), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn last(&self, tree: Tree) -> Option<(Vec<u8>, Vec<u8>)> {
        self.0
            .get(&tree)
            .and_then(|t| t.iter().next_back())
            .map(|(k, v)| (k.clone(), v.clone()))
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
        for op in ops {
            match op {
                Op::Put(tree, k, v) => {
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
