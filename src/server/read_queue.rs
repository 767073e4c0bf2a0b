//! Linearizable reads share read barriers, as etcd's read loop does: one barrier (a round of
//! heartbeats that confirms the leader, or a read-index call to it) serves every read that
//! was waiting when it began.
//!
//! **Invariant:** a read is answered by a barrier that began after the read arrived; that is
//! what keeps it linearizable. A read that finds no barrier running runs one itself, on its
//! own task (a lone client pays no hop to another task); reads that arrive while one runs
//! queue, and when it ends the queue passes to `Server::read_loop`, which runs one barrier for
//! all of them, and again for any that queued meanwhile, until none wait. Before this every
//! read asked Raft's core for its own barrier, a message to the core task and back per read:
//! at 100 clients that was the core's largest load after replication.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{oneshot, Notify};

use super::Server;
use crate::clock::{self, LocalInstant};
use crate::error::{Error, Result};

type Waiter = oneshot::Sender<Result<()>>;

pub(super) struct ReadQueue {
    state: Mutex<State>,
    /// Hands the queue to the loop (`run`).
    handed: Notify,
}

#[derive(Default)]
struct State {
    /// A barrier is running (a read's own, or the loop's); later reads queue.
    busy: bool,
    waiting: Vec<Waiter>,
}

/// Releases the queue when a read's own barrier ends, however it ends (a dropped request
/// included).
struct Running<'a>(&'a ReadQueue);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if state.waiting.is_empty() {
            state.busy = false;
        } else {
            self.0.handed.notify_one();
        }
    }
}

impl ReadQueue {
    pub fn new() -> ReadQueue {
        ReadQueue {
            state: Mutex::new(State::default()),
            handed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One read: runs a barrier made by `barrier` if none is running, else waits until
    /// `deadline` for the loop's next one; `timed_out` names the failure after that. A maker,
    /// not a future: a barrier future is kilobytes (openraft's read path inside), and one
    /// taken by value sat in this future's state twice, whether it ran or not.
    pub async fn read<F, Fut>(
        &self,
        barrier: F,
        deadline: LocalInstant,
        timed_out: impl FnOnce() -> Error,
    ) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let queued = {
            let mut state = self.lock();
            if state.busy {
                let (tx, rx) = oneshot::channel();
                state.waiting.push(tx);
                Some(rx)
            } else {
                state.busy = true;
                None
            }
        };
        let Some(rx) = queued else {
            let _running = Running(self);
            return barrier().await;
        };
        match clock::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            // The loop ended: the member is stopping.
            Ok(Err(_)) => Err(Error::Stopped),
            Err(clock::Elapsed) => Err(timed_out()),
        }
    }

    /// The loop: for each hand-over, runs barriers (each begun after taking the reads it
    /// answers) until no read waits.
    pub async fn run<F, Fut>(&self, mut barrier: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        loop {
            self.handed.notified().await;
            loop {
                let mut batch = std::mem::take(&mut self.lock().waiting);
                // Reads whose callers gave up (a deadline, a closed stream) need no barrier.
                batch.retain(|w| !w.is_closed());
                if batch.is_empty() {
                    let mut state = self.lock();
                    if state.waiting.is_empty() {
                        state.busy = false;
                        break;
                    }
                    continue;
                }
                let answer = barrier().await;
                for waiter in batch {
                    let _ = waiter.send(answer.clone());
                }
            }
        }
    }
}

impl Server {
    /// Waits until this member has applied everything committed when the call began, as
    /// confirmed by the leader: after it returns, a local read is linearizable.
    pub async fn read_barrier(&self) -> Result<()> {
        // Boxed here, once for every caller: the barrier's future is kilobytes (openraft's
        // read path inside), and inline it would make each caller's future as large, copied
        // whenever tonic boxes and moves a call's future, whether the barrier runs or not.
        Box::pin(
            self.reads
                .read(|| self.barrier_now(), self.deadline(), || self.timed_out()),
        )
        .await
    }

    /// Runs the barriers of queued reads for the member's life.
    pub async fn read_loop(self: Arc<Self>) {
        self.reads.run(|| self.barrier_now()).await
    }
}

#[cfg(test)]
mod tests;
