//! The watch hub: where the state machine announces each applied revision and its events.
//!
//! The hub knows the last applied revision (so readers can wait for one) and the registered
//! watchers. It never blocks the apply path: a watcher whose queue is full is marked unsynced and
//! catches up from the store's history later, so a slow watcher costs memory only up to its
//! queue bound and never loses an event.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::{mpsc, watch};

use crate::proto::mvccpb::Event;

/// Events of one revision for one watcher, never split.
#[derive(Debug, Clone)]
pub struct RevisionEvents {
    pub revision: i64,
    pub events: Vec<Event>,
}

/// How many revisions a watcher may have queued before it falls back to catching up from
/// history; bounds a slow watcher's memory.
pub const WATCHER_QUEUE_MAX: usize = 256;

pub(crate) struct Slot {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// The next revision this watcher must see; everything before was delivered.
    pub next_revision: i64,
    pub synced: bool,
    pub tx: mpsc::Sender<RevisionEvents>,
}

pub struct WatchHub {
    revision: watch::Sender<i64>,
    slots: Mutex<Slots>,
}

#[derive(Default)]
pub(crate) struct Slots {
    pub next_id: u64,
    pub by_id: BTreeMap<u64, Slot>,
}

impl Default for WatchHub {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchHub {
    pub fn new() -> Self {
        Self {
            revision: watch::Sender::new(1),
            slots: Mutex::new(Slots::default()),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // Only map updates happen under the lock.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last applied revision.
    pub fn revision(&self) -> i64 {
        *self.revision.borrow()
    }

    pub fn subscribe_revision(&self) -> watch::Receiver<i64> {
        self.revision.subscribe()
    }

    /// The state was replaced wholesale (start, snapshot install): every watcher re-reads history.
    pub fn reset(&self, revision: i64) {
        let mut slots = self.lock();
        for slot in slots.by_id.values_mut() {
            slot.synced = false;
        }
        self.revision.send_replace(revision);
    }

    /// Called by the state machine after each applied entry, in log order.
    pub fn notify(&self, revision: i64, events: Vec<Event>) {
        let mut slots = self.lock();
        if !events.is_empty() {
            for slot in slots.by_id.values_mut() {
                if !slot.synced || slot.next_revision > revision {
                    continue;
                }
                let mine: Vec<Event> = events
                    .iter()
                    .filter(|e| {
                        e.kv.as_ref()
                            .is_some_and(|kv| in_range(&kv.key, &slot.key, &slot.range_end))
                    })
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                match slot.tx.try_send(RevisionEvents {
                    revision,
                    events: mine,
                }) {
                    Ok(()) => slot.next_revision = revision + 1,
                    Err(_) => slot.synced = false,
                }
            }
        }
        self.revision.send_replace(revision);
    }
}

/// etcd's range convention: empty end = the key alone; "\0" = every key >= key.
pub fn in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        k == key
    } else if range_end == [0] {
        k >= key
    } else {
        k >= key && k < range_end
    }
}
