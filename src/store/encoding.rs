//! The store's snapshot encoding. Versions are held slim in memory (no key, no repeated
//! `mod_revision`), but are written in the shape every earlier release wrote — a key maps to
//! `{versions: [{mod_revision, sub, kv: Option<KeyValue>}]}` — so data dirs and snapshots from
//! before keep loading, and a new snapshot is byte for byte what an old member would write.
//!
//! Keys and values go through `serde_bytes`: bincode writes a byte string exactly as it writes
//! a `Vec<u8>` (a length, then the bytes), but in one copy instead of one call per byte, which
//! made encoding most of a busy member's CPU at a million keys.

use std::fmt;

use imbl::OrdMap;
use serde::de::{MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::key_history::{KeyHistory, Live, Version};
use super::stored_key::StoredKey;

/// `Store.keys` as a map of key to history, each version with its whole `KeyValue`.
pub(super) fn serialize_keys<S: Serializer>(
    keys: &OrdMap<StoredKey, KeyHistory>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(keys.len()))?;
    for (key, history) in keys {
        map.serialize_entry(serde_bytes::Bytes::new(key), &HistoryOut { key, history })?;
    }
    map.end()
}

/// `Store.keys` read back, each key as one byte string.
pub(super) fn deserialize_keys<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<OrdMap<StoredKey, KeyHistory>, D::Error> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = OrdMap<StoredKey, KeyHistory>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of keys to their histories")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // Gathered first and built in one go, with nodes filled (see `bulk_load`). The
            // length comes from the input, so it only hints.
            let mut keys = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
            while let Some((key, history)) = map.next_entry::<serde_bytes::ByteBuf, KeyHistory>()? {
                keys.push((key.into_vec().into(), history));
            }
            Ok(super::bulk_load::key_map(keys))
        }
    }
    deserializer.deserialize_map(Keys)
}

/// A history as the struct `{versions}` it was.
struct HistoryOut<'a> {
    key: &'a [u8],
    history: &'a KeyHistory,
}

impl Serialize for HistoryOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct KeyHistory<'a> {
            versions: VersionsOut<'a>,
        }
        KeyHistory {
            versions: VersionsOut {
                key: self.key,
                versions: self.history.versions(),
            },
        }
        .serialize(serializer)
    }
}

struct VersionsOut<'a> {
    key: &'a [u8],
    versions: &'a [Version],
}

impl Serialize for VersionsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.versions.len()))?;
        for v in self.versions {
            seq.serialize_element(&VersionOut {
                mod_revision: v.mod_revision,
                sub: v.sub,
                kv: v.visible().map(|vis| KeyValueOut {
                    key: self.key,
                    create_revision: vis.live.create_revision,
                    mod_revision: vis.mod_revision,
                    version: vis.live.version,
                    value: &vis.live.value,
                    lease: vis.live.lease,
                }),
            })?;
        }
        seq.end()
    }
}

/// Field names and order are those of `Version` and of the generated `KeyValue`.
#[derive(Serialize)]
struct VersionOut<'a> {
    mod_revision: i64,
    sub: u32,
    kv: Option<KeyValueOut<'a>>,
}

#[derive(Serialize)]
struct KeyValueOut<'a> {
    #[serde(with = "serde_bytes")]
    key: &'a [u8],
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    #[serde(with = "serde_bytes")]
    value: &'a [u8],
    lease: i64,
}

/// A version as written; the key and `mod_revision` inside `kv` repeat what the map key and
/// the version already say, so they are dropped on the way in.
#[derive(Deserialize)]
pub(super) struct VersionOnDisk {
    mod_revision: i64,
    sub: u32,
    kv: Option<KeyValueOnDisk>,
}

/// The generated `KeyValue`'s fields, in its order.
#[derive(Deserialize)]
struct KeyValueOnDisk {
    #[serde(with = "serde_bytes")]
    _key: serde_bytes::ByteBuf,
    create_revision: i64,
    _mod_revision: i64,
    version: i64,
    #[serde(with = "serde_bytes")]
    value: Box<[u8]>,
    lease: i64,
}

impl From<VersionOnDisk> for Version {
    fn from(v: VersionOnDisk) -> Self {
        Version {
            mod_revision: v.mod_revision,
            sub: v.sub,
            live: v.kv.map(|kv| Live {
                create_revision: kv.create_revision,
                version: kv.version,
                lease: kv.lease,
                value: kv.value,
            }),
        }
    }
}
