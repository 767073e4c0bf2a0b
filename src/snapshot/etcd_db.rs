//! etcd 3.4's backend layout, both ways: Quorum's applied state as the buckets etcd keeps in
//! its bbolt file, and the parts of such a file Quorum can serve (keys with their whole
//! revision history, leases, alarms, the compact revision) read back.
//!
//! The buckets, as etcd 3.4 writes them: `key` maps a revision (`main` BE, `'_'`, `sub` BE, and
//! a trailing `'t'` for a tombstone) to an `mvccpb.KeyValue` (a tombstone's holds only the
//! key); `lease` maps the id (8 bytes BE) to `leasepb.Lease {ID, TTL}`; `meta` holds
//! `consistent_index` (8 bytes BE) and, once something was compacted, `scheduledCompactRev` and
//! `finishedCompactRev` as revision bytes; `members` maps an unpadded hex id to the member's
//! JSON; `alarm` keys are `AlarmMember` protobufs with empty values; `cluster` names the
//! cluster version; `auth` holds the auth revision.
//!
//! **Boundary:** reading never trusts the file: a malformed revision key or protobuf is an
//! error naming the bucket and key, and nothing here panics on bad bytes. Membership and auth
//! are not read back: a restore takes membership from its flags, as etcd's does.

use std::collections::BTreeSet;

use prost::Message;
use serde::Serialize;

use super::bolt::{Bucket, Db};
use crate::lease::LeaseTable;
use crate::proto::etcdserverpb::AlarmMember;
use crate::proto::mvccpb::KeyValue;
use crate::raft::state_machine::Applied;
use crate::store::{RevisionEntry, Store};

/// Every bucket etcd 3.4 creates, in byte order (the order bbolt keeps them in).
pub const BUCKETS: [&str; 10] = [
    "alarm",
    "auth",
    "authRoles",
    "authUsers",
    "cluster",
    "key",
    "lease",
    "members",
    "members_removed",
    "meta",
];
/// The cluster version a 3.4 cluster records once its members agree.
const CLUSTER_VERSION: &str = "3.4.0";
const REVISION_BYTES: usize = 17;
const TOMBSTONE_MARK: u8 = b't';

/// etcd's `leasepb.Lease`, the value of the `lease` bucket: the id and the granted TTL in
/// seconds. (Field 3, the remaining TTL, is only written with lease checkpointing, which etcd
/// 3.4 leaves off; prost skips it when reading.)
#[derive(Clone, PartialEq, Message)]
pub struct EtcdLease {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub ttl: i64,
}

/// A member as etcd's `members` bucket stores it: Go's JSON of its `Member`, fields in Go's
/// order, the optional ones left out when empty.
#[derive(Serialize)]
struct MemberJson<'a> {
    id: u64,
    #[serde(rename = "peerURLs")]
    peer_urls: &'a [String],
    #[serde(rename = "isLearner", skip_serializing_if = "std::ops::Not::not")]
    is_learner: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(rename = "clientURLs", skip_serializing_if = "<[String]>::is_empty")]
    client_urls: &'a [String],
}

/// etcd's revision key: `main` and `sub` big-endian around `'_'`, so byte order is revision
/// order.
pub fn revision_key(main: i64, sub: i64, tombstone: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(REVISION_BYTES + 1);
    k.extend_from_slice(&main.to_be_bytes());
    k.push(b'_');
    k.extend_from_slice(&sub.to_be_bytes());
    if tombstone {
        k.push(TOMBSTONE_MARK);
    }
    k
}

/// Parses a revision key: `(main, sub, tombstone)`.
pub fn parse_revision_key(k: &[u8]) -> Option<(i64, i64, bool)> {
    let tombstone = match k.len() {
        REVISION_BYTES => false,
        18 if k[REVISION_BYTES] == TOMBSTONE_MARK => true,
        _ => return None,
    };
    if k[8] != b'_' {
        return None;
    }
    let main = i64::from_be_bytes(k[0..8].try_into().ok()?);
    let sub = i64::from_be_bytes(k[9..17].try_into().ok()?);
    Some((main, sub, tombstone))
}

fn bucket(name: &str, mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Bucket {
    entries.sort();
    Bucket {
        name: name.as_bytes().to_vec(),
        entries,
    }
}

/// The applied state as etcd 3.4's buckets, all ten, in name order. `consistent_index` is the
/// Raft index the state was applied up to.
pub fn encode(state: &Applied) -> Vec<Bucket> {
    let consistent_index = state.last_applied.map_or(0, |l| l.index);
    let (auth, auth_roles, auth_users) = super::etcd_auth::encode(&state.auth);
    BUCKETS
        .iter()
        .map(|name| {
            let entries = match *name {
                "alarm" => state
                    .alarms
                    .iter()
                    .map(|(member_id, alarm)| {
                        let key = AlarmMember {
                            member_id: *member_id,
                            alarm: *alarm,
                        };
                        (key.encode_to_vec(), Vec::new())
                    })
                    .collect(),
                "auth" => auth.clone(),
                "authRoles" => auth_roles.clone(),
                "authUsers" => auth_users.clone(),
                "cluster" => vec![(
                    b"clusterVersion".to_vec(),
                    CLUSTER_VERSION.as_bytes().to_vec(),
                )],
                "key" => key_entries(&state.store),
                "lease" => state
                    .leases
                    .iter()
                    .map(|(id, r)| {
                        let v = EtcdLease {
                            id,
                            ttl: r.ttl_secs,
                        };
                        (id.to_be_bytes().to_vec(), v.encode_to_vec())
                    })
                    .collect(),
                "members" => member_entries(state),
                "meta" => {
                    let mut m = vec![(
                        b"consistent_index".to_vec(),
                        consistent_index.to_be_bytes().to_vec(),
                    )];
                    let compacted = state.store.compact_revision();
                    if compacted > 0 {
                        let rev = revision_key(compacted, 0, false);
                        m.push((b"finishedCompactRev".to_vec(), rev.clone()));
                        m.push((b"scheduledCompactRev".to_vec(), rev));
                    }
                    m
                }
                // members_removed: Quorum keeps no removed-member list.
                _ => Vec::new(),
            };
            bucket(name, entries)
        })
        .collect()
}

fn key_entries(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .revisions()
        .into_iter()
        .map(|e| {
            let key = revision_key(e.main, e.sub, e.kv.is_none());
            let value = match e.kv {
                Some(kv) => kv.encode_to_vec(),
                None => KeyValue {
                    key: e.key,
                    ..Default::default()
                }
                .encode_to_vec(),
            };
            (key, value)
        })
        .collect()
}

fn member_entries(state: &Applied) -> Vec<(Vec<u8>, Vec<u8>)> {
    let membership = state.last_membership.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| {
            let published = state.members.get(id);
            let name = published
                .map(|p| p.name.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or(&node.name);
            let json = MemberJson {
                id: *id,
                peer_urls: &node.peer_urls,
                is_learner: !voters.contains(id),
                name,
                client_urls: published.map_or(&[][..], |p| &p.client_urls),
            };
            // Serializing a struct of strings and integers cannot fail.
            let value = serde_json::to_vec(&json).unwrap_or_default();
            (format!("{id:x}").into_bytes(), value)
        })
        .collect()
}

/// What Quorum takes from an etcd database.
#[derive(Debug, Clone)]
pub struct EtcdState {
    pub store: Store,
    pub leases: LeaseTable,
    /// Raised alarms: (member id, `AlarmType`).
    pub alarms: BTreeSet<(u64, i32)>,
    pub auth: crate::auth::AuthStore,
    pub consistent_index: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{bucket} bucket, key {key}: {reason}")]
pub struct LayoutError {
    pub bucket: &'static str,
    /// The offending key, hex.
    pub key: String,
    pub reason: String,
}

pub(super) fn layout(bucket: &'static str, key: &[u8], reason: impl Into<String>) -> LayoutError {
    LayoutError {
        bucket,
        key: hex(key),
        reason: reason.into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn compact_rev(db: &Db, name: &'static str) -> Result<i64, LayoutError> {
    let Some(v) = db
        .bucket(b"meta")
        .and_then(|m| m.entries.iter().find(|(k, _)| k == name.as_bytes()))
        .map(|(_, v)| v)
    else {
        return Ok(0);
    };
    match parse_revision_key(v) {
        Some((main, _, false)) if main >= 0 => Ok(main),
        _ => Err(layout("meta", name.as_bytes(), "not a revision")),
    }
}

/// Reads what Quorum can serve out of an etcd 3.4 database.
pub fn decode(db: &Db) -> Result<EtcdState, LayoutError> {
    let Some(keys) = db.bucket(b"key") else {
        return Err(layout(
            "key",
            b"",
            "no `key` bucket: not an etcd v3 database",
        ));
    };
    let mut entries = Vec::with_capacity(keys.entries.len());
    for (k, v) in &keys.entries {
        let (main, sub, tombstone) =
            parse_revision_key(k).ok_or_else(|| layout("key", k, "not a revision key"))?;
        let kv = KeyValue::decode(v.as_slice())
            .map_err(|e| layout("key", k, format!("not an mvccpb.KeyValue: {e}")))?;
        entries.push(RevisionEntry {
            main,
            sub,
            key: kv.key.clone(),
            kv: if tombstone { None } else { Some(kv) },
        });
    }
    let finished = compact_rev(db, "finishedCompactRev")?;
    let scheduled = compact_rev(db, "scheduledCompactRev")?;
    let mut store =
        Store::from_revisions(entries, finished).map_err(|reason| layout("key", b"", reason))?;
    // A compaction scheduled but not finished is finished on restore, as etcd does at start.
    if scheduled > finished {
        store
            .compact(scheduled)
            .map_err(|e| layout("meta", b"scheduledCompactRev", e.to_string()))?;
    }

    let mut leases = LeaseTable::default();
    for (k, v) in db.bucket(b"lease").map_or(&[][..], |b| &b.entries) {
        let id: [u8; 8] = k
            .as_slice()
            .try_into()
            .map_err(|_| layout("lease", k, "not an 8-byte lease id"))?;
        let record = EtcdLease::decode(v.as_slice())
            .map_err(|e| layout("lease", k, format!("not a leasepb.Lease: {e}")))?;
        leases.grant(i64::from_be_bytes(id), record.ttl);
    }
    // etcd keeps a lease's keys only in the keys' own `lease` field; attach them the same way
    // (a key naming a lease that is gone stays unattached, as etcd's lessor leaves it).
    for kv in store.live() {
        if kv.lease != 0 {
            leases.attach(kv.lease, &kv.key);
        }
    }

    let mut alarms = BTreeSet::new();
    for (k, _) in db.bucket(b"alarm").map_or(&[][..], |b| &b.entries) {
        let a = AlarmMember::decode(k.as_slice())
            .map_err(|e| layout("alarm", k, format!("not an AlarmMember: {e}")))?;
        alarms.insert((a.member_id, a.alarm));
    }

    let consistent_index = match db
        .bucket(b"meta")
        .and_then(|m| m.entries.iter().find(|(k, _)| k == b"consistent_index"))
    {
        Some((k, v)) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| layout("meta", k, "consistent_index is not 8 bytes"))?,
        ),
        None => 0,
    };
    Ok(EtcdState {
        store,
        leases,
        alarms,
        auth: super::etcd_auth::decode(db)?,
        consistent_index,
    })
}

#[cfg(test)]
mod tests;
