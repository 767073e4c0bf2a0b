//! A digest of all MVCC data, for comparing members (etcd's Hash / HashKV).
//!
//! FNV-1a (32 bit) over an ordered walk: the revisions, then every key and each of its stored
//! versions. Every variable-length field is preceded by its length so that different contents
//! cannot feed the same bytes. Values differ from etcd's (its hash covers its backend's
//! layout); only equality between members that applied the same log matters.

use super::Store;

const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

struct Fnv1a(u32);

impl Fnv1a {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    fn int(&mut self, n: i64) {
        self.bytes(&n.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        self.int(bytes.len() as i64);
        self.bytes(bytes);
    }
}

impl Store {
    pub fn hash(&self) -> u32 {
        let mut h = Fnv1a(FNV_OFFSET_BASIS);
        h.int(self.revision);
        h.int(self.compact_revision);
        for (key, history) in &self.keys {
            h.field(key);
            h.int(history.versions().len() as i64);
            for v in history.versions() {
                h.int(v.mod_revision);
                h.int(i64::from(v.sub));
                match &v.live {
                    Some(live) => {
                        h.bytes(&[1]);
                        h.int(live.create_revision);
                        h.int(live.version);
                        h.int(live.lease);
                        h.field(&live.value);
                    }
                    None => h.bytes(&[0]),
                }
            }
        }
        h.0
    }
}
