//! One client Watch stream: many watchers multiplexed, served by one loop.
//!
//! Everything a stream sends leaves from this loop, so ordering is simple: a watcher's
//! `created` response precedes its events; catch-up from history is sent before anything the hub
//! enqueued later for that watcher (the hub does not enqueue for an unsynced watcher, and the loop
//! catches up only when the stream's queue is empty); a progress response is sent only when the
//! queue is empty and every watcher is synced, so every event up to its revision was sent.
//!
//! Boundary: the session knows the hub and a `History` to read from, not the server or Raft.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::{mpsc, Notify};
use tonic::Status;

use super::hub::{RevisionEvents, Slot, WatchHub};
use crate::clock::{self, LocalInstant};
use crate::error::Error;
use crate::proto::etcdserverpb::watch_create_request::FilterType;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse};
use crate::proto::mvccpb::{event::EventType, Event};
use crate::store::{KeyRange, StoreError};

/// Revisions queued per stream before its watchers fall back to catching up from history.
pub const STREAM_QUEUE_MAX: usize = 1024;
/// etcd's default `--experimental-watch-progress-notify-interval`.
pub const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(600);
/// At most this many revisions go into one catch-up response, as etcd batches history
/// (`watchBatchMaxRevs`): a watcher starting at an old revision gets its history in a few
/// large responses, each revision whole, not one response per revision.
pub const CATCH_UP_REVISIONS_PER_RESPONSE: usize = 1000;
/// How often idle-progress and pending progress requests are re-checked.
const PROGRESS_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Where a session reads history for catch-up.
pub trait History: Send + Sync {
    /// Events in `[start, end]` for the range, or `Err(compact_revision)` if compacted.
    fn events_between(&self, range: &KeyRange, start: i64, end: i64) -> Result<Vec<Event>, i64>;
    fn compact_revision(&self) -> i64;
}

pub struct SessionContext {
    pub hub: Arc<WatchHub>,
    pub history: Arc<dyn History>,
    /// Builds a response header for this member at the given revision.
    pub header: Arc<dyn Fn(i64) -> ResponseHeader + Send + Sync>,
    /// clientv3's `WithRequireLeader`: end the stream with "no leader" once this is false, so
    /// the client moves to another member (etcd: after three leaderless election timeouts).
    pub require_leader: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    /// Whether the stream's caller may read a key range, asked as each watcher is created.
    pub permit: WatchPermit,
}

/// `None` when a watcher may be created on `key`..`range_end`, else the reason to cancel it.
pub type WatchPermit = Arc<dyn Fn(&[u8], &[u8]) -> Option<String> + Send + Sync>;

struct Watcher {
    slot: u64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    /// The client accepts one revision's events split over several responses.
    fragment: bool,
    last_sent: LocalInstant,
}

struct Session {
    ctx: SessionContext,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    tx: mpsc::Sender<RevisionEvents>,
    wake: Arc<Notify>,
    watchers: BTreeMap<i64, Watcher>,
    by_slot: BTreeMap<u64, i64>,
    next_auto_id: i64,
    pending_progress: bool,
}

/// etcd splits a fragmenting watcher's response above max-request-bytes plus gRPC's 512 KiB
/// headroom: what a client accepts in one message.
pub const FRAGMENT_BYTES_MAX: usize = crate::api::MAX_GRPC_RECV_BYTES;

struct Fragment {
    events: Vec<Event>,
    is_last: bool,
}

/// Greedy split of one revision's events into pieces under `limit` bytes each (a single event
/// larger than the limit travels alone).
fn fragments(events: Vec<Event>, limit: usize) -> Vec<Fragment> {
    let mut out: Vec<Fragment> = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    let mut size = 0usize;
    for e in events {
        let len = e.encoded_len() + 8;
        if !current.is_empty() && size + len > limit {
            out.push(Fragment {
                events: std::mem::take(&mut current),
                is_last: false,
            });
            size = 0;
        }
        size += len;
        current.push(e);
    }
    out.push(Fragment {
        events: current,
        is_last: true,
    });
    out
}

/// Serves one Watch stream until the call ends (the client cancels it or goes away, or sends
/// an error) or the client stops reading.
pub async fn run_session<S>(
    ctx: SessionContext,
    mut inbound: S,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
) where
    S: Stream<Item = Result<WatchRequest, Status>> + Unpin,
{
    let (tx, mut rx) = mpsc::channel(STREAM_QUEUE_MAX);
    let mut s = Session {
        ctx,
        out,
        tx,
        wake: Arc::new(Notify::new()),
        watchers: BTreeMap::new(),
        by_slot: BTreeMap::new(),
        next_auto_id: 0,
        pending_progress: false,
    };
    let mut ticker = clock::Interval::new(PROGRESS_CHECK_INTERVAL);
    let wake = s.wake.clone();
    let response_closed = s.out.clone();
    let mut inbound_open = true;
    loop {
        let alive = tokio::select! {
            biased;
            Some(batch) = rx.recv() => s.deliver(batch).await,
            _ = wake.notified() => s.catch_up_all(&rx).await,
            req = inbound.next(), if inbound_open => match req {
                Some(Ok(req)) => s.handle(req).await,
                // The client closed its sending half: as on etcd, its watches go on until
                // the call ends (a client that sends one create and ends its request stream
                // still gets every event).
                None => {
                    inbound_open = false;
                    true
                }
                // A client error ends the stream, as etcd treats it.
                Some(Err(_)) => false,
            },
            // With the client's half closed, only this tells that the call has ended.
            _ = response_closed.closed(), if !inbound_open => false,
            _ = ticker.tick() => {
                if s.ctx.require_leader.as_ref().is_some_and(|has_leader| !has_leader()) {
                    let _ = s.out.send(Err(Error::NoLeader.into())).await;
                    break;
                }
                s.idle_progress(&rx).await
            }
        };
        if !alive {
            break;
        }
        if s.pending_progress && !s.try_progress(&rx).await {
            break;
        }
    }
    let mut slots = s.ctx.hub.lock();
    for w in s.watchers.values() {
        slots.by_id.remove(&w.slot);
    }
}

/// History (in revision order) cut into responses of at most `revisions_max` whole revisions.
fn catch_up_batches(events: Vec<Event>, revisions_max: usize) -> Vec<Vec<Event>> {
    let mut out: Vec<Vec<Event>> = Vec::new();
    let mut revisions_in_last = 0;
    let mut last_revision = None;
    for e in events {
        let rev = e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
        if last_revision != Some(rev) {
            last_revision = Some(rev);
            if out.is_empty() || revisions_in_last == revisions_max {
                out.push(Vec::new());
                revisions_in_last = 0;
            }
            revisions_in_last += 1;
        }
        // Just pushed when empty.
        out.last_mut().expect("a batch is open").push(e);
    }
    out
}

impl Session {
    fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some((self.ctx.header)(revision))
    }

    async fn send(&self, resp: WatchResponse) -> bool {
        self.out.send(Ok(resp)).await.is_ok()
    }

    /// Sends one revision's events to a watcher after its filters; false if the client is gone.
    async fn send_events(&mut self, watch_id: i64, events: Vec<Event>) -> bool {
        let Some(w) = self.watchers.get_mut(&watch_id) else {
            return true;
        };
        let events: Vec<Event> = events
            .into_iter()
            .filter(|e| {
                let put = e.r#type == EventType::Put as i32;
                !(put && w.no_put || !put && w.no_delete)
            })
            .map(|mut e| {
                if !w.prev_kv {
                    e.prev_kv = None;
                }
                e
            })
            .collect();
        if events.is_empty() {
            return true;
        }
        w.last_sent = clock::now();
        let fragment = w.fragment;
        let header = self.header(self.ctx.hub.revision());
        let resp = WatchResponse {
            header,
            watch_id,
            events,
            ..Default::default()
        };
        let plants = self.ctx.hub.plants();
        if plants.split_watch_revision && !fragment && resp.events.len() > 1 {
            let mut first = resp.clone();
            let rest = first.events.split_off(1);
            return self.send(first).await
                && self
                    .send(WatchResponse {
                        events: rest,
                        ..resp
                    })
                    .await;
        }
        let revision = resp.events[0].kv.as_ref().map_or(0, |kv| kv.mod_revision);
        if plants.duplicate_watch_event && revision % 5 == 0 && !self.send(resp.clone()).await {
            return false;
        }
        if !fragment || resp.events.len() < 2 || resp.encoded_len() <= FRAGMENT_BYTES_MAX {
            return self.send(resp).await;
        }
        for part in fragments(resp.events, FRAGMENT_BYTES_MAX) {
            let last = part.is_last;
            let piece = WatchResponse {
                header,
                watch_id,
                events: part.events,
                fragment: !last,
                ..Default::default()
            };
            if !self.send(piece).await {
                return false;
            }
        }
        true
    }

    async fn deliver(&mut self, batch: RevisionEvents) -> bool {
        match self.by_slot.get(&batch.slot) {
            Some(id) => self.send_events(*id, batch.events).await,
            None => true,
        }
    }

    async fn handle(&mut self, req: WatchRequest) -> bool {
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
            Some(RequestUnion::CancelRequest(c)) => {
                let Some(w) = self.watchers.remove(&c.watch_id) else {
                    // etcd answers nothing for an unknown id.
                    return true;
                };
                self.by_slot.remove(&w.slot);
                self.ctx.hub.lock().by_id.remove(&w.slot);
                let resp = WatchResponse {
                    header: self.header(self.ctx.hub.revision()),
                    watch_id: c.watch_id,
                    canceled: true,
                    ..Default::default()
                };
                self.send(resp).await
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                self.pending_progress = true;
                true
            }
            None => true,
        }
    }

    async fn create(&mut self, c: WatchCreateRequest) -> bool {
        if let Some(cancel_reason) = (self.ctx.permit)(&c.key, &c.range_end) {
            // etcd answers a denied watch as created and at once canceled, with no id.
            let resp = WatchResponse {
                header: self.header(self.ctx.hub.revision()),
                watch_id: -1,
                created: true,
                canceled: true,
                cancel_reason,
                ..Default::default()
            };
            return self.send(resp).await;
        }
        let id = if c.watch_id != 0 {
            if self.watchers.contains_key(&c.watch_id) {
                let resp = WatchResponse {
                    header: self.header(self.ctx.hub.revision()),
                    watch_id: -1,
                    created: true,
                    canceled: true,
                    cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream".into(),
                    ..Default::default()
                };
                return self.send(resp).await;
            }
            c.watch_id
        } else {
            while self.watchers.contains_key(&self.next_auto_id) {
                self.next_auto_id += 1;
            }
            let id = self.next_auto_id;
            self.next_auto_id += 1;
            id
        };
        let key = if c.key.is_empty() {
            vec![0]
        } else {
            c.key.clone()
        };
        let range = KeyRange::new(&key, &c.range_end);
        let (slot, current) = {
            let mut slots = self.ctx.hub.lock();
            let current = self.ctx.hub.revision();
            let start = if c.start_revision == 0 {
                current + 1
            } else if self.ctx.hub.plants().skip_watch_resume && c.start_revision <= current {
                c.start_revision + 1
            } else {
                c.start_revision
            };
            let slot = slots.insert(Slot {
                range,
                next_revision: start,
                synced: start > current,
                tx: self.tx.clone(),
                wake: self.wake.clone(),
            });
            (slot, current)
        };
        let filters = |f: FilterType| c.filters.contains(&(f as i32));
        self.watchers.insert(
            id,
            Watcher {
                slot,
                prev_kv: c.prev_kv,
                no_put: filters(FilterType::Noput),
                no_delete: filters(FilterType::Nodelete),
                progress_notify: c.progress_notify,
                fragment: c.fragment,
                last_sent: clock::now(),
            },
        );
        self.by_slot.insert(slot, id);
        let created = WatchResponse {
            header: self.header(current),
            watch_id: id,
            created: true,
            ..Default::default()
        };
        if !self.send(created).await {
            return false;
        }
        if self.ctx.hub.plants().early_watch_progress && c.start_revision != 0 {
            // The planted bug: a watcher still to catch up is told it has seen `current`.
            let early = WatchResponse {
                header: self.header(current),
                watch_id: id,
                ..Default::default()
            };
            if !self.send(early).await {
                return false;
            }
        }
        self.catch_up(id).await
    }

    /// Brings an unsynced watcher up to date from history; cancels it if compacted.
    async fn catch_up(&mut self, watch_id: i64) -> bool {
        let Some(slot_id) = self.watchers.get(&watch_id).map(|w| w.slot) else {
            return true;
        };
        let result = {
            let mut slots = self.ctx.hub.lock();
            let current = self.ctx.hub.revision();
            let Some(slot) = slots.by_id.get_mut(&slot_id) else {
                return true;
            };
            if slot.synced {
                return true;
            }
            match self
                .ctx
                .history
                .events_between(&slot.range, slot.next_revision, current)
            {
                Ok(events) => {
                    slot.next_revision = current + 1;
                    slot.synced = true;
                    Ok(events)
                }
                Err(compacted) => {
                    slots.by_id.remove(&slot_id);
                    Err(compacted)
                }
            }
        };
        match result {
            Ok(events) => {
                for mut batch in catch_up_batches(events, CATCH_UP_REVISIONS_PER_RESPONSE) {
                    if self.ctx.hub.plants().reorder_watch_events {
                        batch.reverse();
                    }
                    if !self.send_events(watch_id, batch).await {
                        return false;
                    }
                }
                true
            }
            Err(compact_revision) => {
                self.watchers.remove(&watch_id);
                self.by_slot.remove(&slot_id);
                let mut header = (self.ctx.header)(0);
                header.revision = 0;
                let resp = WatchResponse {
                    header: Some(header),
                    watch_id,
                    canceled: true,
                    compact_revision,
                    cancel_reason: StoreError::Compacted.to_string(),
                    ..Default::default()
                };
                self.send(resp).await
            }
        }
    }

    async fn catch_up_all(&mut self, rx: &mpsc::Receiver<RevisionEvents>) -> bool {
        // Queued batches must go out first; the loop drains them before waking us, but a batch
        // may have arrived since.
        if !rx.is_empty() {
            self.wake.notify_one();
            return true;
        }
        let ids: Vec<i64> = self.watchers.keys().copied().collect();
        for id in ids {
            if !self.catch_up(id).await {
                return false;
            }
        }
        true
    }

    /// True when every watcher is synced and nothing is queued: all events up to the hub's
    /// revision have been sent. Returns that revision.
    fn all_synced(&self, rx: &mpsc::Receiver<RevisionEvents>) -> Option<i64> {
        if !rx.is_empty() {
            return None;
        }
        let slots = self.ctx.hub.lock();
        let synced = self
            .watchers
            .values()
            .all(|w| slots.by_id.get(&w.slot).is_none_or(|s| s.synced));
        synced.then(|| self.ctx.hub.revision())
    }

    async fn try_progress(&mut self, rx: &mpsc::Receiver<RevisionEvents>) -> bool {
        let Some(revision) = self.all_synced(rx) else {
            return true;
        };
        self.pending_progress = false;
        let resp = WatchResponse {
            header: self.header(revision),
            watch_id: -1,
            ..Default::default()
        };
        self.send(resp).await
    }

    async fn idle_progress(&mut self, rx: &mpsc::Receiver<RevisionEvents>) -> bool {
        let now = clock::now();
        let due: Vec<i64> = self
            .watchers
            .iter()
            .filter(|(_, w)| {
                w.progress_notify
                    && now.saturating_duration_since(w.last_sent) >= PROGRESS_NOTIFY_INTERVAL
            })
            .map(|(id, _)| *id)
            .collect();
        if due.is_empty() {
            return true;
        }
        let Some(revision) = self.all_synced(rx) else {
            return true;
        };
        for id in due {
            if let Some(w) = self.watchers.get_mut(&id) {
                w.last_sent = now;
            }
            let resp = WatchResponse {
                header: self.header(revision),
                watch_id: id,
                ..Default::default()
            };
            if !self.send(resp).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mvccpb::KeyValue;

    fn event_at(key: &str, revision: i64) -> Event {
        Event {
            kv: Some(KeyValue {
                key: key.as_bytes().to_vec(),
                mod_revision: revision,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn catch_up_batches_hold_whole_revisions_up_to_the_limit() {
        // Goal: etcd's history batching: as few responses as the revision limit allows, and a
        // revision (a txn's several events) never split between two.
        let mut events = Vec::new();
        for rev in 2..=6 {
            events.push(event_at("a", rev));
            if rev == 4 {
                events.push(event_at("b", rev));
            }
        }
        let batches = catch_up_batches(events.clone(), 2);
        let revs = |b: &Vec<Event>| -> Vec<i64> {
            b.iter()
                .map(|e| e.kv.as_ref().unwrap().mod_revision)
                .collect()
        };
        assert_eq!(
            batches.iter().map(revs).collect::<Vec<_>>(),
            vec![vec![2, 3], vec![4, 4, 5], vec![6]]
        );
        assert_eq!(catch_up_batches(events.clone(), 1000).len(), 1);
        assert_eq!(batches.concat(), events);
        assert!(catch_up_batches(Vec::new(), 5).is_empty());
    }

    #[test]
    fn large_revisions_split_into_fragments_under_the_limit_and_only_the_last_is_final() {
        // Goal: etcd's fragment semantics: every piece but the last is marked, none exceeds
        // the limit, nothing is lost or reordered.
        let events: Vec<Event> = (0..10)
            .map(|i| Event {
                kv: Some(KeyValue {
                    key: format!("k{i}").into_bytes(),
                    value: vec![b'x'; 1000],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let parts = fragments(events.clone(), 3000);
        assert!(parts.len() > 1);
        assert!(parts[..parts.len() - 1].iter().all(|p| !p.is_last));
        assert!(parts.last().unwrap().is_last);
        assert!(parts
            .iter()
            .all(|p| p.events.iter().map(|e| e.encoded_len() + 8).sum::<usize>() <= 3000));
        let joined: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(joined, events);
    }
}
