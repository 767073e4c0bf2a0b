//! The workload's watchers: a few clients following every key as Kubernetes' informers do.
//! Each starts at an old revision, asks for progress now and then, drops its stream after a
//! while and resumes on another member from the revision after the last one it knew (an event
//! or a progress notification), and, when its start was compacted, starts again at the compact
//! revision, the oldest a member still serves. Everything a stream answers is recorded, response
//! by response, for `watch_check`.
//!
//! Runs in the client host on simulated time with seeded randomness, like the rest of the
//! workload.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::proto::etcdserverpb::watch_client::WatchClient;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::{
    WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use crate::sim::net::client_channel;
use crate::sim::workload::{watched, Watched};

/// Watchers in a run: enough that starts, resumes and compaction cancels overlap.
pub const WATCHERS: usize = 3;
/// A stream silent this long may be a dead member behind a partition: resume elsewhere.
const SILENT_MAX: Duration = Duration::from_secs(3);
/// Range of a stream's life before the watcher resumes on another member, ms.
const STREAM_LIFE_MS: std::ops::Range<u64> = 500..4_000;
/// How often a stream's end is followed by a start from an old revision rather than a resume.
const RELIST_PROBABILITY: f64 = 0.25;
/// How often a watcher asks for a progress notification, ms.
const PROGRESS_EVERY_MS: std::ops::Range<u64> = 200..1_000;

/// One response (or the opening of a stream) as a watcher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A stream opened on `member` (index), asking to start at `start_revision`.
    Start { member: usize, start_revision: i64 },
    /// Events, with the response header's revision.
    Events { header: i64, events: Vec<Watched> },
    /// A progress notification: every event up to `header` was sent.
    Progress { header: i64 },
    /// The watch was canceled because its start was compacted.
    Compacted { compact_revision: i64 },
}

/// Per watcher, everything it saw, in arrival order.
pub type WatchLog = Rc<RefCell<Vec<Vec<Seen>>>>;

pub fn new_log() -> WatchLog {
    Rc::new(RefCell::new(vec![Vec::new(); WATCHERS]))
}

/// Runs watcher `w` forever (the caller aborts it at the end).
pub async fn watch_loop(w: usize, urls: Vec<String>, seed: u64, log: WatchLog) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x3a7c_4000 ^ w as u64);
    // Later watchers join later, from a revision some way back: a start in the past.
    tokio::time::sleep(Duration::from_millis(
        w as u64 * rng.random_range(500..3_000),
    ))
    .await;
    let mut next = if w == 0 {
        1
    } else {
        let known = known_revision(&log);
        rng.random_range(1..=known.max(1))
    };
    loop {
        let member = rng.random_range(0..urls.len());
        log.borrow_mut()[w].push(Seen::Start {
            member,
            start_revision: next,
        });
        let life = Duration::from_millis(rng.random_range(STREAM_LIFE_MS));
        let progress_every = Duration::from_millis(rng.random_range(PROGRESS_EVERY_MS));
        let end = stream(&urls[member], next, life, progress_every, &log, w).await;
        next = match end {
            StreamEnd::Compacted(c) => c,
            StreamEnd::Over => {
                let resume = resume_from(&log.borrow()[w]).unwrap_or(next);
                // Now and then a watcher relists from an old revision instead, as a restarted
                // informer may: a start in the past that compaction may already have taken.
                if rng.random_bool(RELIST_PROBABILITY) {
                    rng.random_range(1..=resume)
                } else {
                    resume
                }
            }
        };
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
    }
}

enum StreamEnd {
    Compacted(i64),
    Over,
}

/// The highest revision any watcher heard of: where a late watcher picks an old start below.
fn known_revision(log: &WatchLog) -> i64 {
    log.borrow()
        .iter()
        .flatten()
        .filter_map(|s| match s {
            Seen::Events { header, .. } | Seen::Progress { header } => Some(*header),
            _ => None,
        })
        .max()
        .unwrap_or(1)
}

/// Where a resumed stream starts: after the newest revision this watcher knows it has all of
/// (its last event, or a later progress notification), as etcd's client resumes.
pub fn resume_from(seen: &[Seen]) -> Option<i64> {
    seen.iter().rev().find_map(|s| match s {
        Seen::Events { events, .. } => events.last().map(|e| e.1 + 1),
        Seen::Progress { header } => Some(header + 1),
        Seen::Start { start_revision, .. } => Some(*start_revision),
        Seen::Compacted { .. } => None,
    })
}

async fn stream(
    url: &str,
    start_revision: i64,
    life: Duration,
    progress_every: Duration,
    log: &WatchLog,
    w: usize,
) -> StreamEnd {
    let mut client = WatchClient::new(client_channel(url));
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: vec![0],
            range_end: vec![0],
            start_revision,
            ..Default::default()
        })),
    };
    let _ = tx.send(create).await;
    let opened = tokio::time::timeout(SILENT_MAX, client.watch(stream_of(rx))).await;
    let Ok(Ok(resp)) = opened else {
        return StreamEnd::Over;
    };
    let mut inbound = resp.into_inner();
    let until = tokio::time::Instant::now() + life;
    let mut progress_at = tokio::time::Instant::now() + progress_every;
    loop {
        let wake = progress_at.min(until);
        tokio::select! {
            got = tokio::time::timeout(SILENT_MAX, inbound.message()) => match got {
                Ok(Ok(Some(r))) => {
                    if let Some(end) = record(log, w, r) {
                        return end;
                    }
                }
                _ => return StreamEnd::Over,
            },
            _ = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= until {
                    return StreamEnd::Over;
                }
                progress_at += progress_every;
                let ask = WatchRequest {
                    request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
                };
                if tx.try_send(ask).is_err() {
                    return StreamEnd::Over;
                }
            }
        }
    }
}

/// Records one response; `Some` when it ends the stream.
fn record(log: &WatchLog, w: usize, r: WatchResponse) -> Option<StreamEnd> {
    let header = r.header.as_ref().map_or(0, |h| h.revision);
    let seen = if r.canceled {
        if r.compact_revision > 0 {
            log.borrow_mut()[w].push(Seen::Compacted {
                compact_revision: r.compact_revision,
            });
            return Some(StreamEnd::Compacted(r.compact_revision));
        }
        return Some(StreamEnd::Over);
    } else if r.created {
        return None;
    } else if r.events.is_empty() {
        Seen::Progress { header }
    } else {
        Seen::Events {
            header,
            events: r.events.into_iter().map(watched).collect(),
        }
    };
    log.borrow_mut()[w].push(seen);
    None
}

fn stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
