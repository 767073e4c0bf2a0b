//! The sled backend: production storage, one sled database per member under `--data-dir`.
//!
//! sled 0.34's `flush_async` deadlocks when several runtimes flush at once, so durability goes
//! through the blocking `flush()`; on a multi-threaded tokio runtime it runs under
//! `block_in_place` so the other tasks of this worker move elsewhere while the disk syncs.
//! Batches are atomic per tree and applied in `Tree` order.

use std::io;
use std::path::Path;

use super::{Backend, Batch, Op, Tree};

pub struct SledBackend {
    db: sled::Db,
    trees: Vec<(Tree, sled::Tree)>,
}

fn io_err(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl SledBackend {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("sled"))
            // We sync explicitly at the points Raft needs; sled's periodic flusher would only
            // add background disk traffic.
            .flush_every_ms(None)
            .open()
            .map_err(io_err)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| Ok((*t, db.open_tree(t.name()).map_err(io_err)?)))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { db, trees })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        // Every variant is opened in `open`, so the lookup cannot miss.
        &self
            .trees
            .iter()
            .find(|(t, _)| *t == tree)
            .expect("every tree is opened at start")
            .1
    }
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(io_err)?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.tree(tree);
        let iter = match to {
            Some(to) => t.range(from..to),
            None => t.range(from..),
        };
        iter.take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io_err))
            .collect()
    }

    fn last(&self, tree: Tree) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .tree(tree)
            .last()
            .map_err(io_err)?
            .map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn write(&self, batch: Batch) -> io::Result<()> {
        for tree in Tree::ALL {
            let mut b = sled::Batch::default();
            let mut any = false;
            for op in &batch.ops {
                match op {
                    Op::Put(t, k, v) if *t == tree => {
                        b.insert(k.as_slice(), v.as_slice());
                        any = true;
                    }
                    Op::Delete(t, k) if *t == tree => {
                        b.remove(k.as_slice());
                        any = true;
                    }
                    Op::DeleteRange(t, from, to) if *t == tree => {
                        let st = self.tree(tree);
                        let iter = match to {
                            Some(to) => st.range(from.as_slice()..to.as_slice()),
                            None => st.range(from.as_slice()..),
                        };
                        for kv in iter {
                            let (k, _) = kv.map_err(io_err)?;
                            b.remove(k);
                            any = true;
                        }
                    }
                    _ => {}
                }
            }
            if any {
                self.tree(tree).apply_batch(b).map_err(io_err)?;
            }
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        super::blocking(|| self.db.flush().map(|_| ()).map_err(io_err))
    }

    fn size_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
