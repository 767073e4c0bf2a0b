//! The watch hub: where the state machine announces each applied revision and its events.
//!
//! The hub knows the last applied revision and every registered watcher (a "slot"). It never
//! blocks the apply path: events go into the owning stream's bounded queue with `try_send`, and a
//! watcher whose stream queue is full is marked unsynced; its stream then catches it up from the
//! store's history. A slow watcher therefore costs memory only up to its queue bound and never
//! loses an event.
//!
//! Invariant: for a synced slot, every event with revision < `next_revision` was enqueued, in
//! revision order; an unsynced slot is never enqueued to until its stream re-syncs it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Notify};

use crate::plant::Plants;
use crate::proto::mvccpb::Event;
use crate::store::KeyRange;

/// Events of one revision for one watcher, never split.
#[derive(Debug, Clone)]
pub struct RevisionEvents {
    pub slot: u64,
    pub revision: i64,
    pub events: Vec<Event>,
}

pub struct Slot {
    pub range: KeyRange,
    /// The next revision this watcher must see; everything before was enqueued.
    pub next_revision: i64,
    pub synced: bool,
    pub tx: mpsc::Sender<RevisionEvents>,
    /// Wakes the owning stream when this slot falls out of sync.
    pub wake: Arc<Notify>,
}

#[derive(Default)]
pub struct Slots {
    next_id: u64,
    pub by_id: BTreeMap<u64, Slot>,
}

impl Slots {
    pub fn insert(&mut self, slot: Slot) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(id, slot);
        id
    }
}

/// How far the planted etcd #15271 bug sends a watcher back on a snapshot install.
const ETCD_15271_REWIND: i64 = 5;

pub struct WatchHub {
    revision: watch::Sender<i64>,
    slots: Mutex<Slots>,
    /// Planted bugs (`plant::Plants`); all off outside the simulator.
    plants: Plants,
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
            plants: Plants::default(),
        }
    }

    /// The planted watch bugs; see `plant::Plants`.
    pub fn with_plants(mut self, plants: Plants) -> Self {
        self.plants = plants;
        self
    }

    pub fn plants(&self) -> Plants {
        self.plants
    }

    /// The slot table. Lock order: the hub, then the state machine; never the reverse.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // Only map updates happen under the lock; a poisoned lock still holds valid data.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last applied revision.
    pub fn revision(&self) -> i64 {
        *self.revision.borrow()
    }

    pub fn subscribe_revision(&self) -> watch::Receiver<i64> {
        self.revision.subscribe()
    }

    /// The state was replaced wholesale (snapshot install): every watcher re-reads history.
    pub fn reset(&self, revision: i64) {
        let mut slots = self.lock();
        for slot in slots.by_id.values_mut() {
            if self.plants.etcd_15271 {
                // etcd #15271: the restored watchers resume from before what they were sent.
                slot.next_revision = (slot.next_revision - ETCD_15271_REWIND).max(1);
            }
            slot.synced = false;
            slot.wake.notify_one();
        }
        self.revision.send_replace(revision);
    }

    /// Called by the state machine after each applied entry, in log order.
    pub fn notify(&self, revision: i64, events: Vec<Event>) {
        let mut slots = self.lock();
        let planted_drop = self.plants.drop_watch_event && revision % 7 == 0;
        if !events.is_empty() {
            for (id, slot) in slots.by_id.iter_mut() {
                if planted_drop {
                    slot.next_revision = slot.next_revision.max(revision + 1);
                    continue;
                }
                if !slot.synced || slot.next_revision > revision {
                    continue;
                }
                let mine: Vec<Event> = events
                    .iter()
                    .filter(|e| e.kv.as_ref().is_some_and(|kv| slot.range.contains(&kv.key)))
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let batch = RevisionEvents {
                    slot: *id,
                    revision,
                    events: mine,
                };
                match slot.tx.try_send(batch) {
                    Ok(()) => slot.next_revision = revision + 1,
                    Err(_) => {
                        slot.synced = false;
                        slot.wake.notify_one();
                    }
                }
            }
        }
        // Under the lock, so a stream that reads the revision under the lock sees a state in
        // which every event up to it was either enqueued or left for catch-up.
        self.revision.send_replace(revision);
    }
}
