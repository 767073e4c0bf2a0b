//! A key as the key map holds it. Keys of up to 15 bytes (most test suites' keys, and every key
//! a load generator writes) live inside the map's node, in the 16 bytes a `Box<[u8]>` would take
//! there, so they cost no allocation of their own; a longer key is one boxed slice, as before.
//! At a million short keys that is 32 MB less: a 13-byte key boxed took a 32-byte malloc chunk.
//!
//! It orders, compares and borrows as the bytes it holds, so the map is searched with `&[u8]`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

use compact_bytes::CompactBytesSlice;

/// Equality comes from `CompactBytesSlice`, which compares the bytes whichever form holds them.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct StoredKey(CompactBytesSlice);

impl Deref for StoredKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Borrow<[u8]> for StoredKey {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for StoredKey {
    fn from(key: &[u8]) -> Self {
        StoredKey(CompactBytesSlice::new(key))
    }
}

impl From<Vec<u8>> for StoredKey {
    /// A long key keeps the vector's allocation (trimmed to its length); a short one is copied
    /// in and the vector freed.
    fn from(key: Vec<u8>) -> Self {
        if key.len() <= CompactBytesSlice::MAX_INLINE {
            Self::from(&key[..])
        } else {
            StoredKey(CompactBytesSlice::from(key.into_boxed_slice()))
        }
    }
}

impl PartialOrd for StoredKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StoredKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_held_inline_and_long_ones_on_the_heap_and_both_read_back() {
        for len in [0, 1, 15, 16, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let from_vec = StoredKey::from(bytes.clone());
            let from_slice = StoredKey::from(&bytes[..]);
            assert_eq!(&*from_vec, &bytes[..]);
            assert_eq!(&*from_slice, &bytes[..]);
            assert!(from_vec == from_slice && from_vec.cmp(&from_slice).is_eq());
            assert_eq!(from_vec.0.spilled(), len > 15, "len {len}");
            assert_eq!(&*from_vec.clone(), &bytes[..]);
        }
    }

    #[test]
    fn keys_order_as_their_bytes_across_the_inline_and_heap_forms() {
        let mut raw: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"abcdefghijklmno".to_vec(),
            b"abcdefghijklmnop".to_vec(),
            b"abcdefghijklmnoq-and-more".to_vec(),
            vec![0xff; 15],
            vec![0xff; 16],
        ];
        raw.sort();
        let mut keys: Vec<StoredKey> = raw.iter().rev().cloned().map(StoredKey::from).collect();
        keys.sort();
        let back: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        assert_eq!(back, raw);
        let map: imbl::OrdMap<StoredKey, usize> = keys.into_iter().zip(0usize..).collect();
        for (i, k) in raw.iter().enumerate() {
            assert_eq!(map.get(&k[..]), Some(&i));
        }
    }
}
