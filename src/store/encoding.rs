//! The store's snapshot encoding. Versions are held slim in memory (no key, no repeated
//! `mod_revision`), but are written in the shape every earlier release wrote — a key maps to
//! `{versions: [{mod_revision, sub, kv: Option<KeyValue>}]}` — so data dirs and snapshots from
//! before keep loading, and a new snapshot is byte for byte what an old member would write.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};

use super::key_history::{KeyHistory, Version};
use crate::proto::mvccpb::KeyValue;

/// `Store.keys` as a map of key to history, each version with its whole `KeyValue`.
pub(super) fn serialize_keys<S: Serializer>(
    keys: &imbl::OrdMap<Vec<u8>, KeyHistory>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(keys.len()))?;
    for (key, history) in keys {
        map.serialize_entry(key, &HistoryOut { key, history })?;
    }
    map.end()
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
    key: &'a [u8],
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    value: &'a [u8],
    lease: i64,
}

/// A version as written; the key and `mod_revision` inside `kv` repeat what the map key and
/// the version already say, so they are dropped on the way in.
#[derive(Deserialize)]
pub(super) struct VersionOnDisk {
    mod_revision: i64,
    sub: u32,
    kv: Option<KeyValue>,
}

impl From<VersionOnDisk> for Version {
    fn from(v: VersionOnDisk) -> Self {
        Version {
            mod_revision: v.mod_revision,
            sub: v.sub,
            live: v.kv.map(Into::into),
        }
    }
}
