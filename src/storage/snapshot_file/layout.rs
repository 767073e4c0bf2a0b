//! A snapshot file's body, written and read one value at a time.
//!
//! The body is bincode of `Trees`: a `u64` count of trees, then per tree its `Tree` tag and a
//! `u64` count of entries, and per entry the key and the value, each a `u64` length and the
//! bytes. Walking that layout here, rather than through serde, lets the one value as large as
//! the store (the state machine's encoding) go from its encoder straight into the file and
//! from the file straight into its decoder: a buffer of it was 360 MB at a million keys, on
//! top of the store, at every snapshot and every start. Files serde wrote read back here and
//! the reverse; the tests pin that.

use std::io::{self, Read, Write};

use bytes::Bytes;
use serde::Serialize;

use super::super::trees::Trees;
use super::super::{Fill, Tree};

/// A value written by `fill` as the body is written, never held whole.
pub struct Streamed<'a> {
    pub tree: Tree,
    pub key: &'a [u8],
    /// Exactly the bytes `fill` writes: the length comes before them in the file.
    pub len: u64,
    pub fill: Fill<'a>,
}

/// Writes `trees` as a body, with `streamed` in place of the value its key holds in `trees`.
pub fn write(
    w: &mut dyn Write,
    trees: &Trees,
    mut streamed: Option<Streamed<'_>>,
) -> io::Result<()> {
    let maps = trees.maps();
    put(w, &(maps.len() as u64))?;
    for (tree, map) in maps {
        put(w, tree)?;
        put(w, &(map.len() as u64))?;
        for (key, value) in map {
            put(w, serde_bytes::Bytes::new(key))?;
            match streamed.take_if(|s| s.tree == *tree && s.key == key.as_slice()) {
                Some(s) => write_streamed(w, s)?,
                None => put(w, serde_bytes::Bytes::new(value))?,
            }
        }
    }
    match streamed {
        None => Ok(()),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a streamed value's key must be among the trees written",
        )),
    }
}

fn write_streamed(w: &mut dyn Write, s: Streamed<'_>) -> io::Result<()> {
    put(w, &s.len)?;
    let mut counted = Counted { inner: w, n: 0 };
    (s.fill)(&mut counted)?;
    if counted.n != s.len {
        return Err(io::Error::other(format!(
            "a streamed value wrote {} bytes where it promised {}",
            counted.n, s.len
        )));
    }
    Ok(())
}

fn put<T: Serialize + ?Sized>(w: &mut dyn Write, v: &T) -> io::Result<()> {
    bincode::serialize_into(w, v).map_err(io::Error::other)
}

struct Counted<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One entry of a body as it is walked: `value` reads exactly its value's `len` bytes.
pub struct Entry<'a> {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub len: u64,
    pub value: &'a mut dyn Read,
}

impl Entry<'_> {
    /// The value, read whole.
    pub fn read_value(&mut self) -> io::Result<Bytes> {
        let mut buf = Vec::with_capacity(self.len as usize);
        self.value.read_to_end(&mut buf)?;
        Ok(buf.into())
    }
}

/// A body read one entry at a time: `next_entry` gives an entry's tree, key and value length,
/// and reading the walker then reads that value (and nothing past it). A length running past
/// the body is damage, refused before anything is allocated for it.
pub struct Walker<R> {
    r: Bounded<R>,
    trees_left: u64,
    tree: Option<Tree>,
    entries_left: u64,
    value_left: u64,
}

impl<R: Read> Walker<R> {
    pub fn new(r: R, size: u64) -> io::Result<Self> {
        let mut r = Bounded {
            inner: r,
            left: size,
        };
        let trees_left = r.u64()?;
        Ok(Walker {
            r,
            trees_left,
            tree: None,
            entries_left: 0,
            value_left: 0,
        })
    }

    /// The next entry, past whatever of the last one's value was left unread.
    pub fn next_entry(&mut self) -> io::Result<Option<(Tree, Vec<u8>, u64)>> {
        io::copy(self, &mut io::sink())?;
        if self.value_left > 0 {
            return Err(damaged("a value is cut short"));
        }
        while self.entries_left == 0 {
            if self.trees_left == 0 {
                return Ok(None);
            }
            self.trees_left -= 1;
            let tag = self.r.by_ref().take(4);
            self.tree = Some(bincode::deserialize_from(tag).map_err(damaged)?);
            self.entries_left = self.r.u64()?;
        }
        self.entries_left -= 1;
        let tree = self.tree.expect("set with the entry count");
        let mut key = vec![0; self.r.len()? as usize];
        self.r.read_exact(&mut key)?;
        self.value_left = self.r.len()?;
        Ok(Some((tree, key, self.value_left)))
    }

    /// Skips every entry left; what reads on from the inner reader is past the body.
    pub fn into_inner(mut self) -> io::Result<R> {
        while self.next_entry()?.is_some() {}
        Ok(self.r.inner)
    }
}

impl<R: Read> Read for Walker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(self.value_left.try_into().unwrap_or(usize::MAX));
        let n = self.r.read(&mut buf[..max])?;
        self.value_left -= n as u64;
        Ok(n)
    }
}

fn damaged(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A reader that knows how many bytes are left of what it reads.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Bounded<R> {
    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A length, no longer than what is left.
    fn len(&mut self) -> io::Result<u64> {
        let len = self.u64()?;
        match len <= self.left {
            true => Ok(len),
            false => Err(damaged(format!(
                "a length of {len} bytes with {} left",
                self.left
            ))),
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf.len().min(self.left.try_into().unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Op;

    fn sample() -> Trees {
        let mut trees = Trees::default();
        trees.apply([
            Op::Put(Tree::Log, b"a".to_vec(), vec![1; 70_000]),
            Op::Put(Tree::Log, b"b".to_vec(), Vec::new()),
            Op::Put(Tree::Snapshot, b"data".to_vec(), b"xyz".to_vec()),
            Op::Put(Tree::Snapshot, b"meta".to_vec(), b"m".to_vec()),
        ]);
        trees
    }

    fn read_all(body: &[u8]) -> io::Result<Trees> {
        let mut trees = Trees::default();
        let mut walker = Walker::new(body, body.len() as u64)?;
        while let Some((tree, key, len)) = walker.next_entry()? {
            let mut value = Vec::new();
            (&mut walker).take(len).read_to_end(&mut value)?;
            trees.insert(tree, key, value.into());
        }
        Ok(trees)
    }

    #[test]
    fn a_body_written_here_is_what_serde_writes_and_reads_back_both_ways() {
        // Goal: files written before streaming read back, and files written now read with
        // serde, byte for byte the same.
        let trees = sample();
        let by_serde = bincode::serialize(&trees).unwrap();
        let mut here = Vec::new();
        write(&mut here, &trees, None).unwrap();
        assert_eq!(here, by_serde);
        assert_eq!(read_all(&by_serde).unwrap(), trees);
    }

    #[test]
    fn a_streamed_value_lands_where_its_key_is() {
        // Goal: the streamed value is written in its key's place, and a fill that writes
        // other than the length it promised is refused rather than leaving a bad file.
        let mut trees = sample();
        trees.insert(Tree::Snapshot, b"data".to_vec(), Bytes::new());
        let here = streaming(&trees, Tree::Snapshot, b"data", 5000, &[9; 5000]).unwrap();
        trees.insert(Tree::Snapshot, b"data".to_vec(), Bytes::from(vec![9; 5000]));
        assert_eq!(here, bincode::serialize(&trees).unwrap());

        assert!(streaming(&trees, Tree::Snapshot, b"data", 11, &[9; 10]).is_err());
        assert!(streaming(&trees, Tree::RaftMeta, b"nowhere", 1, b"x").is_err());
    }

    /// `trees` written with `bytes` streamed in at `(tree, key)`, promised as `len` bytes.
    fn streaming(
        trees: &Trees,
        tree: Tree,
        key: &[u8],
        len: u64,
        bytes: &[u8],
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut fill = |w: &mut dyn Write| w.write_all(bytes);
        let streamed = Streamed {
            tree,
            key,
            len,
            fill: &mut fill,
        };
        write(&mut out, trees, Some(streamed))?;
        Ok(out)
    }

    #[test]
    fn a_length_past_the_end_is_refused_before_it_is_allocated() {
        // Goal: a damaged length reads as damage, not as an attempt to allocate exabytes.
        let mut body = bincode::serialize(&sample()).unwrap();
        // The first tree's first key length sits after the tree count, tag and entry count.
        body[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = read_all(&body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let cut = bincode::serialize(&sample()).unwrap();
        assert!(read_all(&cut[..cut.len() - 1]).is_err());
    }
}
