//! The Raft state machine: applies committed commands to the MVCC store and the lease table.
//!
//! The applied state lives in memory and is made durable by snapshots: `build_snapshot` writes the
//! whole state to the backend and syncs, and a restarted member loads that snapshot and lets Raft
//! replay the log after it. So `applied_state` after a restart reports only what a snapshot made
//! durable, as openraft's contract asks.
//!
//! Invariant: applying is a pure function of (state, command, log index); no clock, no RNG.
//! Boundary: readers take the `RwLock` briefly and never across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread;

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use serde::{Deserialize, Serialize};

use super::codec::{decode_from, encode, encode_into, encoded_len};
use super::snapshot_data::{stored_meta, SnapshotData};
use super::snapshot_pace;
use super::typ::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use crate::auth::{check_command, AuthOutcome, AuthStore, TokenTable};
use crate::command::{Command, CommandResult};
use crate::lease::{LeaseTable, Lessor, MIN_TTL_SECS};
use crate::plant::Plants;
use crate::proto::etcdserverpb::{
    request_op, AlarmMember, AlarmResponse, AlarmType, CompactionResponse, LeaseGrantResponse,
    LeaseRevokeResponse, ResponseHeader, TxnRequest,
};
use crate::proto::mvccpb::Event;
use crate::raft::rejoin::Admission;
use crate::raft::{Member, NodeId};
use crate::storage::schema::snapshot_keys;
use crate::storage::{blocking, Backend, Batch, Fill, SharedBackend, Tree};
use crate::store::{KeyRange, Store, StoreError};
use crate::watch::{History, WatchHub};

/// What a member published about itself (etcd's member attributes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberAttrs {
    pub name: String,
    pub client_urls: Vec<String>,
}

/// Everything the log builds, and what a snapshot carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub store: Store,
    pub leases: LeaseTable,
    pub members: BTreeMap<u64, MemberAttrs>,
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    /// Raised alarms: (member id, `AlarmType`), as etcd's alarm store keeps them.
    pub alarms: BTreeSet<(u64, i32)>,
    /// Users, roles and permissions; snapshotted with the rest, so auth survives restarts.
    pub auth: AuthStore,
}

impl Applied {
    /// What a snapshot of this state says of itself.
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
        }
    }
}

struct Shared {
    state: RwLock<Applied>,
    backend: SharedBackend,
    hub: Arc<WatchHub>,
    /// Told of each applied grant so the leader's clock starts when the lease exists, not at
    /// its next scan. A follower's lessor ignores it.
    lessor: Arc<Lessor>,
    /// How long each snapshot write took (etcd's backend commit), when observed.
    commit_seconds: Option<prometheus::Histogram>,
    /// This member's simple tokens, fed by applied Authenticate (not replicated state).
    tokens: Arc<TokenTable>,
    /// Told of every applied membership (see `raft::heard`), once the member wires it.
    heard: std::sync::OnceLock<Arc<Admission>>,
    /// Log index of the last snapshot loaded, built or installed: how much log a new one
    /// would cover (see `snapshot_pace`).
    snapshot_index: AtomicU64,
    /// The log index applied through, for a member waiting on its own apply of a write it
    /// forwarded: straight from here, not through Raft's metrics, which the core task
    /// publishes a hand-off later.
    applied_index: tokio::sync::watch::Sender<u64>,
    /// Signalled when pacing puts off a snapshot Raft's policy asked for.
    deferred: tokio::sync::Notify,
    /// Set when writes have paused: the next snapshot asked for is written whatever pacing
    /// says (see `server::idle_snapshot`).
    idle: AtomicBool,
    /// Held while a snapshot is persisted, so that one is never written over a newer one.
    persisting: std::sync::Mutex<()>,
}

/// Cheap to clone; every clone is the same state machine.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

impl StateMachine {
    /// Opens the state machine from the latest durable snapshot, if any.
    pub fn open(
        backend: SharedBackend,
        hub: Arc<WatchHub>,
        lessor: Arc<Lessor>,
        commit_seconds: Option<prometheus::Histogram>,
    ) -> io::Result<Self> {
        // The snapshot's bytes stay in the backend only, decoded as they are read: a buffer of
        // them was as large again as the state, at every start.
        let mut state = match backend.open_value(Tree::Snapshot, snapshot_keys::DATA)? {
            Some(mut data) => {
                let len = data.size();
                let state = decode_from::<Applied>(&mut data, len)?;
                data.finish()?;
                state
            }
            None => Applied {
                store: Store::new(),
                ..Applied::default()
            },
        };
        plant_on_load(&mut state, hub.plants());
        hub.reset(state.store.revision());
        let applied = state.last_applied.map_or(0, |l| l.index);
        let snapshot_index = AtomicU64::new(applied);
        Ok(Self {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                backend,
                hub,
                lessor,
                commit_seconds,
                tokens: Arc::new(TokenTable::default()),
                heard: std::sync::OnceLock::new(),
                snapshot_index,
                applied_index: tokio::sync::watch::Sender::new(applied),
                deferred: tokio::sync::Notify::new(),
                idle: AtomicBool::new(false),
                persisting: std::sync::Mutex::new(()),
            }),
        })
    }

    /// Read access to the applied state.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        // A panic while applying would already have stopped Raft; reading what is there is fine.
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Revokes a lease on this member only, bypassing Raft. Exists solely for the planted
    /// `lease-without-leadership` bug, which the simulator must catch.
    pub fn revoke_locally(&self, id: i64) {
        let (events, revision) = {
            let mut state = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
            let index = state.last_applied.map_or(0, |l| l.index);
            let (_, events) = apply_command(&mut state, Command::LeaseRevoke { id }, index);
            (events, state.store.revision())
        };
        self.shared.hub.notify(revision, events);
    }

    /// Every applied membership drops the heard-from records of members it leaves out: a
    /// member removed and added back while this one was down or lagging is forgotten as it
    /// replays the removal, not only if it happened to see the removal as current.
    pub fn forget_removed_into(&self, admission: Arc<Admission>) {
        let _ = self.shared.heard.set(admission);
    }

    /// A scratch file beside the stored snapshot (see `Backend::scratch_file`).
    pub fn scratch_file(&self) -> io::Result<Option<std::fs::File>> {
        self.shared.backend.scratch_file()
    }

    pub fn lessor(&self) -> &Arc<Lessor> {
        &self.shared.lessor
    }

    pub fn hub(&self) -> &Arc<WatchHub> {
        &self.shared.hub
    }

    /// The log index applied through, as it changes.
    pub fn subscribe_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.applied_index.subscribe()
    }

    /// Resolves once pacing has put off a snapshot (at once if it did since the last call).
    pub async fn snapshot_deferred(&self) {
        self.shared.deferred.notified().await
    }

    /// Lets the next snapshot Raft asks for be written even if pacing would put it off
    /// (`true`), or takes that back (`false`).
    pub fn allow_next_snapshot(&self, allow: bool) {
        self.shared.idle.store(allow, Ordering::Relaxed);
    }

    /// The log index applied through, and how many entries past the last snapshot that is.
    pub fn applied_and_since_snapshot(&self) -> (u64, u64) {
        let applied = *self.shared.applied_index.borrow();
        let snapshot = self.shared.snapshot_index.load(Ordering::Relaxed);
        (applied, applied.saturating_sub(snapshot))
    }

    pub fn tokens(&self) -> &Arc<TokenTable> {
        &self.shared.tokens
    }

    /// Keeps this member's token table in step with an applied auth change.
    fn track_tokens(&self, outcome: &AuthOutcome) {
        let tokens = &self.shared.tokens;
        match outcome {
            AuthOutcome::Done => {}
            AuthOutcome::Token { user, token } => {
                tokens.issue(token.clone(), user.clone(), crate::clock::now())
            }
            AuthOutcome::UserTokensVoid(user) => tokens.forget_user(user),
            AuthOutcome::AllTokensVoid => tokens.clear(),
        }
    }

    /// Drops the heard-from records of members `membership` leaves out (see `raft::heard`).
    fn forget_removed(&self, membership: &openraft::Membership<NodeId, Member>) -> io::Result<()> {
        match self.shared.heard.get() {
            Some(admission) => {
                let members = membership.nodes().map(|(id, _)| *id).collect();
                admission.heard.keep_only(&members)
            }
            None => Ok(()),
        }
    }

    fn snapshot_taken(&self, meta: &SnapshotMeta) {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        self.shared.snapshot_index.store(index, Ordering::Relaxed);
    }

    /// Persists, synced, the snapshot `meta` describes, its `len` bytes written by `fill`
    /// straight into the backend: a built snapshot encoded into a buffer first was 360 MB more
    /// at a million keys while it was written. Returns false, writing nothing, when the stored
    /// snapshot is as new: a snapshot built from a state cloned just before a newer one was
    /// installed from the leader would otherwise land on top of it, and leave the stored
    /// snapshot behind a log already purged past it.
    fn persist(&self, meta: &SnapshotMeta, len: u64, fill: Fill<'_>) -> io::Result<bool> {
        let _one_at_a_time = self
            .shared
            .persisting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(stored) = stored_meta(self.shared.backend.as_ref())? {
            if stored.last_log_id.is_some() && stored.last_log_id >= meta.last_log_id {
                return Ok(false);
            }
        }
        let started = crate::clock::now();
        write_snapshot(self.shared.backend.as_ref(), meta, len, fill)?;
        if let Some(h) = &self.shared.commit_seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        Ok(true)
    }
}

impl StateMachine {
    /// Decodes a leader's snapshot and stores it. Spooled to disk, the bytes are decoded on
    /// another thread while this one copies them into the stored snapshot (one after the
    /// other, a million keys' snapshot took 1.9 s to install); held in memory (the simulator's
    /// members), they are decoded first, here, as nothing on the simulated path runs on a
    /// thread of its own. Either way the copy is committed only once they decoded, so bytes
    /// that do not decode are never stored. Returns the state and the snapshot's length.
    fn decode_and_store(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotData,
    ) -> io::Result<(Applied, u64)> {
        let on_disk = matches!(data, SnapshotData::Spooled { .. });
        let mut copy = data.clone().open()?;
        let to_decode = data.open()?;
        let len = copy.size();
        let decode = move || {
            let mut r = io::BufReader::with_capacity(1 << 16, to_decode);
            decode_from::<Applied>(&mut r, len)
        };
        // The memberships a snapshot skips are never applied here: once it decodes, forget
        // whoever the last one leaves out, as applying them would have.
        let settle = |state: io::Result<Applied>| {
            let state = state?;
            self.forget_removed(meta.last_membership.membership())?;
            Ok::<_, io::Error>(state)
        };
        let join = |decoding: thread::ScopedJoinHandle<'_, io::Result<Applied>>| {
            decoding
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("decoding a snapshot panicked")))
        };
        thread::scope(|s| {
            let (mut decoding, mut decoded) = match on_disk {
                true => (Some(s.spawn(decode)), None),
                false => (None, Some(settle(decode())?)),
            };
            self.persist(meta, len, &mut |w| {
                io::copy(&mut copy, w)?;
                if let Some(decoding) = decoding.take() {
                    decoded = Some(settle(join(decoding))?);
                }
                Ok(())
            })?;
            // Not persisted (the stored snapshot is as new): decoded all the same.
            let state = match (decoded, decoding) {
                (Some(state), _) => state,
                (None, Some(decoding)) => settle(join(decoding))?,
                (None, None) => return Err(io::Error::other("a snapshot's decoding was lost")),
            };
            Ok((state, len))
        })
    }
}

/// Writes, synced, the snapshot `meta` describes, its `len` bytes written by `fill` straight
/// into the backend.
pub(crate) fn write_snapshot(
    backend: &dyn Backend,
    meta: &SnapshotMeta,
    len: u64,
    fill: Fill<'_>,
) -> io::Result<()> {
    let mut batch = Batch::default();
    batch.put(Tree::Snapshot, snapshot_keys::META, encode(meta)?);
    backend.write_streamed_and_sync(batch, Tree::Snapshot, snapshot_keys::DATA, len, fill)
}

/// The last snapshot in `backend`, if one was persisted; its bytes are read when sent.
fn stored_snapshot(backend: &SharedBackend) -> io::Result<Option<Snapshot>> {
    let Some(meta) = stored_meta(backend.as_ref())? else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        meta: meta.clone(),
        snapshot: SnapshotData::Stored {
            backend: backend.clone(),
            meta,
        },
    }))
}

/// Puts the planted bugs that act on a loaded state into it (never serialized, so every load,
/// at start or from an installed snapshot, sets them again).
fn plant_on_load(state: &mut Applied, plants: Plants) {
    state
        .store
        .plant_compaction_drops_tombstone(plants.etcd_19179);
    if plants.etcd_17780 {
        state.store.plant_revision_from_versions();
    }
}

/// Whether applying `cmd` can take space: etcd's capped applier refuses these (a txn only if
/// some branch, nested ones included, puts).
fn writes_space(cmd: &Command) -> bool {
    fn txn_puts(txn: &TxnRequest) -> bool {
        txn.success
            .iter()
            .chain(&txn.failure)
            .any(|op| match &op.request {
                Some(request_op::Request::RequestPut(_)) => true,
                Some(request_op::Request::RequestTxn(t)) => txn_puts(t),
                _ => false,
            })
    }
    match cmd {
        Command::Put(_) | Command::LeaseGrant { .. } => true,
        Command::Txn(t) => txn_puts(t),
        _ => false,
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// A lease id chosen by the cluster: derived from the log index, so every member picks the same,
/// positive and non-zero as etcd's are.
fn fresh_lease_id(leases: &LeaseTable, index: u64) -> i64 {
    let mut x = index;
    loop {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let id = (z & (i64::MAX as u64)) as i64;
        if id != 0 && leases.get(id).is_none() {
            return id;
        }
    }
}

/// Applies one command; returns the result and the events it produced.
pub(crate) fn apply_command(
    state: &mut Applied,
    cmd: Command,
    index: u64,
) -> (CommandResult, Vec<Event>) {
    let nospace = state
        .alarms
        .iter()
        .any(|(_, a)| *a == AlarmType::Nospace as i32);
    if nospace && writes_space(&cmd) {
        // etcd's capped applier: with NOSPACE raised, nothing that takes space applies;
        // deletes and compaction still do, so space can be freed.
        return (CommandResult::Failed(StoreError::NoSpace), Vec::new());
    }
    let Applied {
        store,
        leases,
        auth,
        ..
    } = state;
    match cmd {
        Command::Put(req) => match store.put(&req, leases) {
            Ok((mut resp, events)) => {
                leases.observe(&events);
                resp.header = header(store.revision());
                (CommandResult::Put(resp), events)
            }
            Err(e) => (CommandResult::Failed(e), Vec::new()),
        },
        Command::DeleteRange(req) => match store.delete_range(&req) {
            Ok((mut resp, events)) => {
                leases.observe(&events);
                resp.header = header(store.revision());
                (CommandResult::DeleteRange(resp), events)
            }
            Err(e) => (CommandResult::Failed(e), Vec::new()),
        },
        Command::Txn(req) => match store.txn(&req, leases) {
            Ok((mut resp, events)) => {
                leases.observe(&events);
                resp.header = header(store.revision());
                (CommandResult::Txn(resp), events)
            }
            Err(e) => (CommandResult::Failed(e), Vec::new()),
        },
        Command::Compact(req) => match store.compact(req.revision) {
            Ok(()) => (
                CommandResult::Compact(CompactionResponse {
                    header: header(store.revision()),
                }),
                Vec::new(),
            ),
            Err(e) => (CommandResult::Failed(e), Vec::new()),
        },
        Command::LeaseGrant { id, ttl_secs } => {
            let id = if id == 0 {
                fresh_lease_id(leases, index)
            } else {
                id
            };
            let ttl_secs = ttl_secs.max(MIN_TTL_SECS);
            if !leases.grant(id, ttl_secs) {
                return (CommandResult::Failed(StoreError::LeaseExists), Vec::new());
            }
            (
                CommandResult::LeaseGrant(LeaseGrantResponse {
                    header: header(store.revision()),
                    id,
                    ttl: ttl_secs,
                    error: String::new(),
                }),
                Vec::new(),
            )
        }
        Command::LeaseRevoke { id } => {
            let Some(record) = leases.revoke(id) else {
                return (CommandResult::Failed(StoreError::LeaseNotFound), Vec::new());
            };
            let keys: Vec<Vec<u8>> = record.keys.into_iter().collect();
            let events = store.delete_keys(&keys);
            leases.observe(&events);
            (
                CommandResult::LeaseRevoke(LeaseRevokeResponse {
                    header: header(store.revision()),
                }),
                events,
            )
        }
        Command::Alarm {
            member_id,
            alarm,
            activate,
        } => {
            let key = (member_id, alarm);
            let changed = if activate {
                state.alarms.insert(key)
            } else {
                state.alarms.remove(&key)
            };
            let alarms = if changed {
                vec![AlarmMember { member_id, alarm }]
            } else {
                Vec::new()
            };
            (
                CommandResult::Alarm(AlarmResponse {
                    header: header(state.store.revision()),
                    alarms,
                }),
                Vec::new(),
            )
        }
        Command::PublishMember {
            id,
            name,
            client_urls,
        } => {
            state.members.insert(id, MemberAttrs { name, client_urls });
            (CommandResult::Done, Vec::new())
        }
        Command::As { caller, cmd } => {
            let lease_keys = |id: i64| {
                leases
                    .get(id)
                    .map(|r| r.keys.iter().cloned().collect())
                    .unwrap_or_default()
            };
            if let Err(e) = check_command(auth, caller.as_ref(), &cmd, lease_keys) {
                return (CommandResult::AuthFailed(e), Vec::new());
            }
            apply_command(state, *cmd, index)
        }
        Command::Auth(change) => match change.apply(auth, index) {
            Ok(outcome) => (CommandResult::Auth(outcome), Vec::new()),
            Err(e) => (CommandResult::AuthFailed(e), Vec::new()),
        },
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        // A clone is cheap (the key map is persistent) and lets the writes go on while the
        // O(keys) encoding runs: encoding under the lock stalled every write for its length.
        let state = self.read().clone();
        let meta = state.snapshot_meta();
        let len = encoded_len(&state)?;
        if self.persist(&meta, len, &mut |w| encode_into(w, &state))? {
            self.snapshot_taken(&meta);
        }
        drop(state);
        // The bytes are in the backend now, read from there if this is ever sent: openraft
        // keeps only the meta of a snapshot it had built (the core's `BuildSnapshotDone`, the
        // start-up rebuild), and a copy in hand held the whole encoded state twice while it
        // was written: 360 MB more at a million keys.
        Ok(Snapshot {
            meta: meta.clone(),
            snapshot: SnapshotData::Stored {
                backend: self.shared.backend.clone(),
                meta,
            },
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.read();
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let log_id = entry.log_id;
            let (result, events, revision) = {
                let mut state = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
                state.last_applied = Some(log_id);
                let (result, events) = match entry.payload {
                    EntryPayload::Blank => (CommandResult::Done, Vec::new()),
                    EntryPayload::Normal(cmd) => apply_command(&mut state, cmd, log_id.index),
                    EntryPayload::Membership(m) => {
                        self.forget_removed(&m)?;
                        state.last_membership = StoredMembership::new(Some(log_id), m);
                        (CommandResult::Done, Vec::new())
                    }
                };
                (result, events, state.store.revision())
            };
            if let CommandResult::LeaseGrant(g) = &result {
                self.shared.lessor.start(g.id, g.ttl, crate::clock::now());
            }
            if let CommandResult::Auth(outcome) = &result {
                self.track_tokens(outcome);
            }
            // Watchers hear of a revision only after it is applied, and before the client's
            // response is released, so a client that reads its own write then watches from it
            // never misses it.
            self.shared.hub.notify(revision, events);
            self.shared.applied_index.send_replace(log_id.index);
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, force: bool) -> Option<Self> {
        let idle = self.shared.idle.swap(false, Ordering::Relaxed);
        let due = idle || {
            let (_, since) = self.applied_and_since_snapshot();
            snapshot_pace::worth_writing(since, self.read().store.approximate_size_bytes())
        };
        // Deferred, Raft's policy asks again after as many entries as it waited for this time.
        if !(force || due) {
            self.shared.deferred.notify_one();
        }
        (force || due).then(|| self.clone())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        data: SnapshotData,
    ) -> Result<(), io::Error> {
        let started = crate::clock::now();
        let (mut state, len) = blocking(|| self.decode_and_store(meta, data))?;
        plant_on_load(&mut state, self.shared.hub.plants());
        self.snapshot_taken(meta);
        tracing::info!(
            bytes = len,
            index = meta.last_log_id.as_ref().map_or(0, |l| l.index),
            "installed a snapshot from the leader in {:?}",
            started.elapsed()
        );
        let revision = state.store.revision();
        *self.shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        self.shared.hub.reset(revision);
        let applied = meta.last_log_id.as_ref().map_or(0, |l| l.index);
        self.shared.applied_index.send_replace(applied);
        // The snapshot may have skipped deletions and password changes this member's tokens
        // would have had to hear of; clients re-authenticate on "invalid auth token".
        self.shared.tokens.clear();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        stored_snapshot(&self.shared.backend)
    }
}

impl History for StateMachine {
    fn events_between(&self, range: &KeyRange, start: i64, end: i64) -> Result<Vec<Event>, i64> {
        let state = self.read();
        let range_end = match (&range.end, range.single) {
            (_, true) => Vec::new(),
            (Some(e), false) => e.clone(),
            (None, false) => vec![0],
        };
        state
            .store
            .events_between(&range.start, &range_end, start, end)
            .map_err(|_| state.store.compact_revision())
    }

    fn compact_revision(&self) -> i64 {
        self.read().store.compact_revision()
    }
}

#[cfg(test)]
mod tests;
