//! Raft's log and vote over a `Backend`.
//!
//! Invariant: `save_vote` returns, and `append` signals, only after `Backend::sync`, so a vote
//! or an entry Raft counts on is on disk first; IO is done in call order, never reordered.
//! Entries are bincode-encoded under big-endian index keys so a scan is index order.
//!
//! `append` returns once the entries are written and leaves the sync to a flusher task, which
//! signals openraft when they are durable. openraft starts replicating an entry only after its
//! `append` returns: syncing inside `append` made the leader's fsync and the followers' run one
//! after the other instead of at once, as etcd runs them. The flusher also folds appends that
//! queue up behind one sync into that sync (group commit). Syncing out of line is safe because
//! a sync makes every earlier write durable: the backend keeps writes in order.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;

use tokio::sync::mpsc;

use super::codec::{decode, encode};
use super::typ::{Entry, LogId, TypeConfig, Vote};
use crate::storage::schema::{log_key, meta_keys};
use crate::storage::{Batch, SharedBackend, Tree};

/// How many entries one read pulls at most; Raft asks for bounded ranges anyway.
const READ_BATCH_MAX: usize = 4096;

#[derive(Clone)]
pub struct LogStore {
    backend: SharedBackend,
    /// True until Raft first asks for the log state: the reads Raft makes while starting.
    restarting: bool,
    /// Planted bug: acknowledge appends without syncing them.
    ack_before_sync: bool,
    /// How long each log sync took (etcd's WAL fsync), when observed.
    fsync_seconds: Option<prometheus::Histogram>,
    /// Appends waiting for their sync; the flusher task starts with the first append.
    /// `None` asks for a sync when idle (see `flusher`).
    flusher: Option<mpsc::UnboundedSender<Option<IOFlushed<TypeConfig>>>>,
}

impl LogStore {
    pub fn new(backend: SharedBackend) -> Self {
        Self {
            backend,
            restarting: true,
            ack_before_sync: false,
            fsync_seconds: None,
            flusher: None,
        }
    }

    /// Records every log sync's duration in `h`.
    pub fn with_fsync_histogram(mut self, h: prometheus::Histogram) -> Self {
        self.fsync_seconds = Some(h);
        self
    }

    /// The planted `ack-before-sync` bug; see `plant::Plants`.
    pub fn with_ack_before_sync(mut self, on: bool) -> Self {
        self.ack_before_sync = on;
        self
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        self.backend
            .get(Tree::RaftMeta, key)?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Hands `callback` to the flusher task, starting it on first use (inside the runtime
    /// Raft's storage task runs on, so in the simulator it is one more task of the member).
    fn flush_later(&mut self, callback: Option<IOFlushed<TypeConfig>>) {
        let tx = self.flusher.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(flusher(
                self.backend.clone(),
                rx,
                self.fsync_seconds.clone(),
            ));
            tx
        });
        if let Err(mpsc::error::SendError(Some(callback))) = tx.send(callback) {
            // Only if the flusher panicked; never acknowledge without a sync.
            callback.io_completed(Err(io::Error::other("log flusher stopped")));
        }
    }

    fn last_log_id(&self) -> io::Result<Option<LogId>> {
        match self.backend.last(Tree::Log)? {
            Some((_, v)) => Ok(Some(decode::<Entry>(&v)?.log_id)),
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Some(i + 1),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        let end_key = end.map(log_key);
        let values = self.backend.scan_values(
            Tree::Log,
            &log_key(start),
            end_key.as_ref().map(|k| k.as_slice()),
            READ_BATCH_MAX,
        )?;
        values.iter().map(|v| decode(v)).collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        let vote: Option<Vote> = self.read_meta(meta_keys::VOTE)?;
        if !self.restarting {
            return Ok(vote);
        }
        // At start, a vote is handed back as merely granted, never as an established
        // leadership. A member that led before a crash otherwise resumes as leader of its old
        // term without learning which entries were committed (that index is not durable), and
        // serves read-index reads that miss writes it had already acknowledged: the simulator
        // caught exactly that after a power loss of every member. Forgetting the "committed"
        // flag keeps the term and the vote, so safety is intact; it only forces a new election.
        Ok(vote.map(|v| Vote::new(v.leader_id().term, v.leader_id().voted_for)))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.read_meta(meta_keys::LAST_PURGED)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        let reader = self.clone();
        // Readers handed out after start-up see votes as they are.
        self.restarting = false;
        reader
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut batch = Batch::default();
        batch.put(Tree::RaftMeta, meta_keys::VOTE, encode(vote)?);
        self.backend.write(batch)?;
        self.backend.sync()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced now: losing it only makes a restarted member wait for the leader to tell
        // it the commit index again. The next append's sync carries it; when none comes (an
        // idle cluster), the flusher syncs it shortly, so a member restarted after a quiet
        // spell serves everything it had applied at once, as etcd's does.
        let mut batch = Batch::default();
        batch.put(Tree::RaftMeta, meta_keys::COMMITTED, encode(&committed)?);
        self.backend.write(batch)?;
        if !self.ack_before_sync {
            self.flush_later(None);
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self
            .read_meta::<Option<LogId>>(meta_keys::COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Batch::default();
        for entry in entries {
            batch.put(Tree::Log, log_key(entry.log_id.index), encode(&entry)?);
        }
        if let Err(e) = self.backend.write(batch) {
            callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(e);
        }
        if self.ack_before_sync {
            callback.io_completed(Ok(()));
        } else {
            self.flush_later(Some(callback));
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let mut batch = Batch::default();
        batch.delete_range(Tree::Log, log_key(from), None);
        self.backend.write(batch)?;
        self.backend.sync()
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Record the purge point first: a crash between the two writes leaves extra entries,
        // never a hole.
        let mut batch = Batch::default();
        batch.put(Tree::RaftMeta, meta_keys::LAST_PURGED, encode(&log_id)?);
        self.backend.write(batch)?;
        let mut batch = Batch::default();
        batch.delete_range(
            Tree::Log,
            log_key(0),
            Some(log_key(log_id.index + 1).to_vec()),
        );
        self.backend.write(batch)
    }
}

/// How long a sync asked for when idle (the commit index) waits for an append to ride on.
const IDLE_SYNC_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// Syncs the backend for every batch of queued appends and then signals them, in order. A
/// failed sync fails every append it covered; the backend refuses all IO after that. A batch
/// of idle-sync requests alone waits `IDLE_SYNC_AFTER` for an append first: under load the
/// commit index rides on append syncs and costs no fsync of its own.
async fn flusher(
    backend: SharedBackend,
    mut rx: mpsc::UnboundedReceiver<Option<IOFlushed<TypeConfig>>>,
    fsync_seconds: Option<prometheus::Histogram>,
) {
    let mut waiting = Vec::new();
    while rx.recv_many(&mut waiting, usize::MAX).await > 0 {
        if waiting.iter().all(Option::is_none) {
            match crate::clock::timeout(IDLE_SYNC_AFTER, rx.recv()).await {
                Ok(Some(next)) => waiting.push(next),
                Ok(None) => return,
                Err(_) => {}
            }
        }
        let started = crate::clock::now();
        let delay = backend.sync_delay();
        if !delay.is_zero() {
            crate::clock::sleep(delay).await;
        }
        let synced = backend.sync();
        if let Some(h) = &fsync_seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        for callback in waiting.drain(..).flatten() {
            let result = match &synced {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            callback.io_completed(result);
        }
    }
}
