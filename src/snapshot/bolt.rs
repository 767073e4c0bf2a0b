//! A minimal bbolt (go.etcd.io/bbolt 1.3) file writer and reader: enough to write a fresh
//! database of top-level buckets in one shot, and to read any such database back, as etcd's
//! backend and `etcdctl snapshot status` see it.
//!
//! The file is a sequence of pages of `page_size` bytes. Pages 0 and 1 are meta pages (the
//! reader takes the valid one with the higher transaction id); the meta names the root page of
//! the bucket tree and the page count. A tree node is one leaf or branch page, plus overflow
//! pages right after it when its elements do not fit in one page. A bucket's value in its
//! parent leaf is `{root pgid, sequence}`; root 0 means the bucket is inline: a leaf page image
//! follows inside the value. All integers are little-endian (x86-64 and arm64 layout).
//!
//! **Invariant (writer):** every page below the high-water mark is reachable from the root,
//! so bbolt's `tx.Check()` finds no unreachable or doubly referenced page. The freelist is not
//! written (`freelist = u64::MAX`), as etcd's backend runs with `NoFreelistSync`: bbolt rebuilds
//! it by scanning. **Boundary (reader):** it trusts nothing in the file; every offset is checked
//! against the page it lies in, every page id against the high-water mark, and a page seen twice
//! is an error (so a cycle cannot loop). It never panics on bad bytes.

use std::collections::BTreeSet;

/// bbolt's page size on x86-64 Linux (the OS page size), which etcd's files carry.
pub const PAGE_SIZE: usize = 4096;
const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER_BYTES: usize = 16;
const ELEMENT_BYTES: usize = 16;
const BUCKET_HEADER_BYTES: usize = 16;
/// Bytes of the meta body covered by its checksum: everything before the checksum field.
const META_CHECKED_BYTES: usize = 56;
const META_BYTES: usize = 64;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
/// Leaf element flag: the value is a bucket header.
const BUCKET_ELEMENT: u32 = 0x01;
/// bbolt's `pgidNoFreelist`: the freelist is not stored and is rebuilt on open.
const NO_FREELIST: u64 = u64::MAX;
/// bbolt inlines a bucket whose leaf image is at most a quarter page; doing the same keeps a
/// small database as small as etcd's.
const INLINE_BUCKET_MAX_BYTES: usize = PAGE_SIZE / 4;
/// Trees deeper than this are corrupt: with 16-byte elements even 2^64 keys need far fewer.
const MAX_TREE_DEPTH: usize = 32;
/// Page sizes a reader accepts (bbolt uses the OS page size: 4 KiB to 64 KiB).
const PAGE_SIZE_MIN: u32 = 1024;
const PAGE_SIZE_MAX: u32 = 64 * 1024;

/// One top-level bucket: its name and its key/values in strictly ascending key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bucket {
    pub name: Vec<u8>,
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A database read back: its buckets in name order and what its meta page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Db {
    pub buckets: Vec<Bucket>,
    pub page_size: u32,
    /// The high-water mark: pages in use, so `pages * page_size` is bbolt's `tx.Size()`.
    pub pages: u64,
    pub txid: u64,
}

impl Db {
    pub fn bucket(&self, name: &[u8]) -> Option<&Bucket> {
        self.buckets.iter().find(|b| b.name == name)
    }

    /// bbolt's `tx.Size()`: the bytes of the pages in use.
    pub fn size_bytes(&self) -> u64 {
        self.pages * u64::from(self.page_size)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoltError {
    #[error("file size too small: {len} bytes, a bbolt database needs at least two pages")]
    TooSmall { len: usize },
    #[error("not a bbolt database: no valid meta page (meta 0: {meta0}; meta 1: {meta1})")]
    NoValidMeta { meta0: String, meta1: String },
    #[error("truncated: the meta page counts {pages} pages of {page_size} bytes ({needed} bytes) but the file has {len}")]
    Truncated {
        pages: u64,
        page_size: u32,
        needed: u64,
        len: usize,
    },
    #[error("page {pgid}: {reason}")]
    BadPage { pgid: u64, reason: String },
    #[error("bucket {bucket:?}: {reason}")]
    BadBucket { bucket: String, reason: String },
    #[error("cannot write: {0}")]
    Unwritable(String),
}

fn bad_page(pgid: u64, reason: impl Into<String>) -> BoltError {
    BoltError::BadPage {
        pgid,
        reason: reason.into(),
    }
}

fn bad_bucket(name: &[u8], reason: impl Into<String>) -> BoltError {
    BoltError::BadBucket {
        bucket: String::from_utf8_lossy(name).into_owned(),
        reason: reason.into(),
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------------------------
// Writer

/// One element of a leaf node: flags, key, value.
type LeafElement<'a> = (u32, &'a [u8], &'a [u8]);

/// A leaf node's image: page header (id and overflow filled in when placed), elements, data.
fn leaf_node(elements: &[LeafElement<'_>]) -> Vec<u8> {
    let data_start = PAGE_HEADER_BYTES + ELEMENT_BYTES * elements.len();
    let mut node = vec![0u8; data_start];
    node[8..10].copy_from_slice(&LEAF_PAGE.to_le_bytes());
    // Callers split nodes by page size, so the count fits bbolt's u16 (checked in `write`).
    node[10..12].copy_from_slice(&(elements.len() as u16).to_le_bytes());
    for (i, (flags, key, value)) in elements.iter().enumerate() {
        let at = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
        // `pos` is relative to the element itself, as bbolt reads it.
        let pos = (node.len() - at) as u32;
        node[at..at + 4].copy_from_slice(&flags.to_le_bytes());
        node[at + 4..at + 8].copy_from_slice(&pos.to_le_bytes());
        node[at + 8..at + 12].copy_from_slice(&(key.len() as u32).to_le_bytes());
        node[at + 12..at + 16].copy_from_slice(&(value.len() as u32).to_le_bytes());
        node.extend_from_slice(key);
        node.extend_from_slice(value);
    }
    node
}

fn branch_node(children: &[(&[u8], u64)]) -> Vec<u8> {
    let data_start = PAGE_HEADER_BYTES + ELEMENT_BYTES * children.len();
    let mut node = vec![0u8; data_start];
    node[8..10].copy_from_slice(&BRANCH_PAGE.to_le_bytes());
    node[10..12].copy_from_slice(&(children.len() as u16).to_le_bytes());
    for (i, (key, pgid)) in children.iter().enumerate() {
        let at = PAGE_HEADER_BYTES + ELEMENT_BYTES * i;
        let pos = (node.len() - at) as u32;
        node[at..at + 4].copy_from_slice(&pos.to_le_bytes());
        node[at + 4..at + 8].copy_from_slice(&(key.len() as u32).to_le_bytes());
        node[at + 8..at + 16].copy_from_slice(&pgid.to_le_bytes());
        node.extend_from_slice(key);
    }
    node
}

/// Splits items into runs whose node image fits a page (a lone oversized item gets its own
/// run, and overflow pages).
fn page_runs<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = PAGE_HEADER_BYTES;
    for (i, item) in items.iter().enumerate() {
        let s = ELEMENT_BYTES + size(item);
        if i > start && bytes + s > PAGE_SIZE {
            runs.push(&items[start..i]);
            start = i;
            bytes = PAGE_HEADER_BYTES;
        }
        bytes += s;
    }
    runs.push(&items[start..]);
    runs
}

struct PageWriter {
    file: Vec<u8>,
    /// The next free page id; pages 0 and 1 are the metas.
    next: u64,
}

impl PageWriter {
    /// Appends a node at the next page id, with as many overflow pages as it needs.
    fn place(&mut self, mut node: Vec<u8>) -> Result<u64, BoltError> {
        let pgid = self.next;
        let pages = node.len().div_ceil(PAGE_SIZE).max(1);
        let overflow = u32::try_from(pages - 1)
            .map_err(|_| BoltError::Unwritable("a node needs more than 2^32 pages".into()))?;
        node[0..8].copy_from_slice(&pgid.to_le_bytes());
        node[12..16].copy_from_slice(&overflow.to_le_bytes());
        node.resize(pages * PAGE_SIZE, 0);
        self.file.extend_from_slice(&node);
        self.next += pages as u64;
        Ok(pgid)
    }

    /// Writes a B+tree of the elements (sorted) and returns its root page.
    fn tree(&mut self, elements: &[LeafElement<'_>]) -> Result<u64, BoltError> {
        let mut level: Vec<(Vec<u8>, u64)> = Vec::new();
        for run in page_runs(elements, |(_, k, v)| k.len() + v.len()) {
            let first = run.first().map_or(Vec::new(), |(_, k, _)| k.to_vec());
            level.push((first, self.place(leaf_node(run))?));
        }
        while level.len() > 1 {
            let mut up = Vec::new();
            for run in page_runs(&level, |(k, _)| k.len()) {
                let children: Vec<(&[u8], u64)> =
                    run.iter().map(|(k, id)| (k.as_slice(), *id)).collect();
                up.push((run[0].0.clone(), self.place(branch_node(&children))?));
            }
            level = up;
        }
        // `page_runs` yields at least one run, so the level is never empty.
        Ok(level[0].1)
    }

    fn meta(&self, root: u64, txid: u64, slot: u64) -> Vec<u8> {
        let mut page = vec![0u8; PAGE_SIZE];
        page[0..8].copy_from_slice(&slot.to_le_bytes());
        page[8..10].copy_from_slice(&META_PAGE.to_le_bytes());
        let mut m = Vec::with_capacity(META_BYTES);
        m.extend_from_slice(&MAGIC.to_le_bytes());
        m.extend_from_slice(&VERSION.to_le_bytes());
        m.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes()); // flags
        m.extend_from_slice(&root.to_le_bytes());
        m.extend_from_slice(&0u64.to_le_bytes()); // root bucket sequence
        m.extend_from_slice(&NO_FREELIST.to_le_bytes());
        m.extend_from_slice(&self.next.to_le_bytes());
        m.extend_from_slice(&txid.to_le_bytes());
        let sum = fnv1a64(&m);
        m.extend_from_slice(&sum.to_le_bytes());
        page[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BYTES].copy_from_slice(&m);
        page
    }
}

fn check_sorted(name: &[u8], keys: impl Iterator<Item = impl AsRef<[u8]>>) -> Result<(), String> {
    let mut prev: Option<Vec<u8>> = None;
    for k in keys {
        let k = k.as_ref();
        if prev.as_deref().is_some_and(|p| p >= k) {
            return Err(format!(
                "{:?}: keys must be strictly ascending",
                String::from_utf8_lossy(name)
            ));
        }
        prev = Some(k.to_vec());
    }
    Ok(())
}

/// Writes a database of the given top-level buckets. Buckets must be in strictly ascending name
/// order and each one's keys strictly ascending; the result is whole pages, ready to stream.
pub fn write(buckets: &[Bucket]) -> Result<Vec<u8>, BoltError> {
    check_sorted(b"(top level)", buckets.iter().map(|b| &b.name)).map_err(BoltError::Unwritable)?;
    for b in buckets {
        check_sorted(&b.name, b.entries.iter().map(|(k, _)| k)).map_err(BoltError::Unwritable)?;
        if b.entries.iter().any(|(k, _)| k.is_empty()) {
            return Err(BoltError::Unwritable("bbolt keys cannot be empty".into()));
        }
    }
    let mut w = PageWriter {
        file: vec![0u8; 2 * PAGE_SIZE],
        next: 2,
    };
    let mut headers: Vec<Vec<u8>> = Vec::with_capacity(buckets.len());
    for b in buckets {
        let elements: Vec<LeafElement<'_>> = b
            .entries
            .iter()
            .map(|(k, v)| (0, k.as_slice(), v.as_slice()))
            .collect();
        let image = leaf_node(&elements);
        let mut header = Vec::with_capacity(BUCKET_HEADER_BYTES + image.len());
        if image.len() <= INLINE_BUCKET_MAX_BYTES {
            header.extend_from_slice(&[0u8; BUCKET_HEADER_BYTES]);
            header.extend_from_slice(&image);
        } else {
            header.extend_from_slice(&w.tree(&elements)?.to_le_bytes());
            header.extend_from_slice(&0u64.to_le_bytes());
        }
        headers.push(header);
    }
    let top: Vec<LeafElement<'_>> = buckets
        .iter()
        .zip(&headers)
        .map(|(b, h)| (BUCKET_ELEMENT, b.name.as_slice(), h.as_slice()))
        .collect();
    let root = w.tree(&top)?;
    // Two metas, as a fresh bbolt file has; the reader and bbolt pick txid 1.
    let meta0 = w.meta(root, 0, 0);
    let meta1 = w.meta(root, 1, 1);
    w.file[..PAGE_SIZE].copy_from_slice(&meta0);
    w.file[PAGE_SIZE..2 * PAGE_SIZE].copy_from_slice(&meta1);
    Ok(w.file)
}

// ---------------------------------------------------------------------------------------------
// Reader

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

struct Meta {
    page_size: u32,
    root: u64,
    pages: u64,
    txid: u64,
}

/// Parses the meta page at `offset`, or says why it is not valid.
fn meta_at(file: &[u8], offset: usize) -> Result<Meta, String> {
    let body = file
        .get(offset + PAGE_HEADER_BYTES..offset + PAGE_HEADER_BYTES + META_BYTES)
        .ok_or("beyond the end of the file")?;
    let field = |at| u64_at(body, at).unwrap_or(0);
    let magic = u32_at(body, 0).unwrap_or(0);
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#010x}"));
    }
    let version = u32_at(body, 4).unwrap_or(0);
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    if fnv1a64(&body[..META_CHECKED_BYTES]) != field(META_CHECKED_BYTES) {
        return Err("checksum mismatch".into());
    }
    let page_size = u32_at(body, 8).unwrap_or(0);
    if !(PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("implausible page size {page_size}"));
    }
    Ok(Meta {
        page_size,
        root: field(16),
        pages: field(40),
        txid: field(48),
    })
}

struct Reader<'a> {
    file: &'a [u8],
    page_size: usize,
    pages: u64,
    /// Pages already visited: a second visit means a corrupt (or cyclic) tree.
    seen: BTreeSet<u64>,
}

/// A node: a page image (from the file, or inline in a bucket value) and where it came from.
struct Node<'a> {
    bytes: &'a [u8],
    pgid: u64,
}

impl<'a> Reader<'a> {
    fn page(&mut self, pgid: u64) -> Result<Node<'a>, BoltError> {
        if pgid < 2 || pgid >= self.pages {
            return Err(bad_page(
                pgid,
                format!("out of bounds (the database has {} pages)", self.pages),
            ));
        }
        if !self.seen.insert(pgid) {
            return Err(bad_page(pgid, "referenced twice"));
        }
        let start = pgid as usize * self.page_size;
        let head = &self.file[start..start + PAGE_HEADER_BYTES];
        let id = u64_at(head, 0).unwrap_or(u64::MAX);
        if id != pgid {
            return Err(bad_page(pgid, format!("header names page {id}")));
        }
        let overflow = u64::from(u32_at(head, 12).unwrap_or(0));
        if pgid + overflow >= self.pages {
            return Err(bad_page(
                pgid,
                format!("{overflow} overflow pages run past the end"),
            ));
        }
        let end = start + (overflow as usize + 1) * self.page_size;
        Ok(Node {
            bytes: &self.file[start..end],
            pgid,
        })
    }

    /// Appends the leaf elements of the tree under `node` to `out`, in order.
    fn walk(
        &mut self,
        node: Node<'a>,
        depth: usize,
        out: &mut Vec<(u32, &'a [u8], &'a [u8])>,
    ) -> Result<(), BoltError> {
        if depth > MAX_TREE_DEPTH {
            return Err(bad_page(node.pgid, "tree deeper than any real database"));
        }
        let b = node.bytes;
        let flags = u16_at(b, 8).unwrap_or(0);
        let count = usize::from(u16_at(b, 10).unwrap_or(0));
        if PAGE_HEADER_BYTES + count * ELEMENT_BYTES > b.len() {
            return Err(bad_page(
                node.pgid,
                format!("{count} elements overrun the page"),
            ));
        }
        let slice = |at: usize, len: usize| -> Result<&'a [u8], BoltError> {
            at.checked_add(len)
                .and_then(|end| b.get(at..end))
                .ok_or_else(|| bad_page(node.pgid, "an element points outside its page"))
        };
        for i in 0..count {
            let at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
            let e = &b[at..at + ELEMENT_BYTES];
            let word = |o| u32_at(e, o).unwrap_or(0) as usize;
            match flags {
                LEAF_PAGE => {
                    let key = slice(at + word(4), word(8))?;
                    let value = slice(at + word(4) + word(8), word(12))?;
                    out.push((word(0) as u32, key, value));
                }
                BRANCH_PAGE => {
                    let child = u64_at(e, 8).unwrap_or(0);
                    slice(at + word(0), word(4))?;
                    let child = self.page(child)?;
                    self.walk(child, depth + 1, out)?;
                }
                other => {
                    return Err(bad_page(
                        node.pgid,
                        format!("invalid page type {other:#x} in a tree"),
                    ))
                }
            }
        }
        Ok(())
    }

    fn bucket(&mut self, name: &[u8], header: &'a [u8]) -> Result<Bucket, BoltError> {
        let root = u64_at(header, 0).ok_or_else(|| bad_bucket(name, "header too short"))?;
        let mut elements = Vec::new();
        if root == 0 {
            let image = &header[BUCKET_HEADER_BYTES.min(header.len())..];
            if image.len() < PAGE_HEADER_BYTES || u16_at(image, 8) != Some(LEAF_PAGE) {
                return Err(bad_bucket(name, "inline bucket is not a leaf page"));
            }
            // An inline image has no page id of its own (its header says 0): name the bucket.
            let inline = Node {
                bytes: image,
                pgid: 0,
            };
            self.walk(inline, 0, &mut elements).map_err(|e| match e {
                BoltError::BadPage { reason, .. } => bad_bucket(name, format!("inline: {reason}")),
                other => other,
            })?;
        } else {
            let node = self.page(root)?;
            self.walk(node, 0, &mut elements)?;
        }
        let mut entries = Vec::with_capacity(elements.len());
        for (flags, k, v) in elements {
            if flags & BUCKET_ELEMENT != 0 {
                return Err(bad_bucket(
                    name,
                    format!(
                        "holds a nested bucket {:?} (etcd never makes one)",
                        String::from_utf8_lossy(k)
                    ),
                ));
            }
            entries.push((k.to_vec(), v.to_vec()));
        }
        check_sorted(name, entries.iter().map(|(k, _)| k))
            .map_err(|reason| bad_bucket(name, reason))?;
        Ok(Bucket {
            name: name.to_vec(),
            entries,
        })
    }
}

/// Reads a whole database, validating its meta, page bounds and key order.
pub fn read(file: &[u8]) -> Result<Db, BoltError> {
    if file.len() < 2 * PAGE_SIZE_MIN as usize {
        return Err(BoltError::TooSmall { len: file.len() });
    }
    let meta0 = meta_at(file, 0);
    // Meta 1 sits one page in; if meta 0 is broken, bbolt assumes the OS page size.
    let size1 = meta0.as_ref().map_or(PAGE_SIZE, |m| m.page_size as usize);
    let meta1 = meta_at(file, size1);
    let meta = match (meta0, meta1) {
        (Ok(a), Ok(b)) => {
            if b.txid > a.txid {
                b
            } else {
                a
            }
        }
        (Ok(m), Err(_)) | (Err(_), Ok(m)) => m,
        (Err(meta0), Err(meta1)) => return Err(BoltError::NoValidMeta { meta0, meta1 }),
    };
    let needed = meta.pages.saturating_mul(u64::from(meta.page_size));
    if meta.pages < 3 || needed > file.len() as u64 {
        return Err(BoltError::Truncated {
            pages: meta.pages,
            page_size: meta.page_size,
            needed,
            len: file.len(),
        });
    }
    let mut r = Reader {
        file,
        page_size: meta.page_size as usize,
        pages: meta.pages,
        seen: BTreeSet::new(),
    };
    let root = r.page(meta.root)?;
    let mut top = Vec::new();
    r.walk(root, 0, &mut top)?;
    let mut buckets = Vec::with_capacity(top.len());
    for (flags, name, header) in top {
        if flags & BUCKET_ELEMENT == 0 {
            return Err(bad_bucket(name, "a top-level key that is not a bucket"));
        }
        buckets.push(r.bucket(name, header)?);
    }
    check_sorted(b"(top level)", buckets.iter().map(|b| &b.name))
        .map_err(|reason| bad_bucket(b"(top level)", reason))?;
    Ok(Db {
        buckets,
        page_size: meta.page_size,
        pages: meta.pages,
        txid: meta.txid,
    })
}

#[cfg(test)]
mod tests;
