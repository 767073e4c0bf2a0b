//! A member's own runtime: one OS thread driving a current-thread tokio runtime, so every task the
//! member spawns (Raft, its gRPC servers and peer channels, the lessor, their timers) runs there
//! and nowhere else.
//!
//! That is what makes `pause` real: one task that blocks the thread freezes the whole member at
//! once (timers, Raft, socket reads and writes) while its sockets stay open, as SIGSTOP or a long
//! stop-the-world GC pause would. Peers see silence and time out; they see no closed connection.
//!
//! Dropping a `MemberRuntime` releases a pause, ends the thread's `block_on` and drops the runtime
//! there, which cancels every task the member still had (what a crash does).

use std::sync::mpsc;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub struct MemberRuntime {
    handle: Handle,
    /// Sending (or dropping) it ends the thread's `block_on`; the thread then drops the runtime.
    stop: Option<oneshot::Sender<()>>,
    /// Fires once the runtime is dropped, so whatever storage its tasks held is released.
    stopped: Option<oneshot::Receiver<()>>,
    /// Present while paused: the blocked thread waits for this sender to go away.
    release: Option<mpsc::Sender<()>>,
}

impl MemberRuntime {
    /// Starts the thread, named after the member so a debugger or `top -H` shows whose it is.
    pub fn start(name: &str) -> std::io::Result<MemberRuntime> {
        let rt = Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("member-{name}"))
            .spawn(move || {
                // A current-thread runtime runs its spawned tasks only while some thread is
                // inside `block_on`: this one, for the member's whole life.
                let _ = rt.block_on(stop_rx);
                drop(rt);
                let _ = stopped_tx.send(());
            })?;
        Ok(MemberRuntime {
            handle,
            stop: Some(stop),
            stopped: Some(stopped),
            release: None,
        })
    }

    /// Runs `fut` on the member's thread and waits for its output. `None` when the runtime went
    /// away first (it was shut down meanwhile).
    pub async fn run<F>(&self, fut: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut).await.ok()
    }

    /// Freezes the member: returns once its thread is blocked. Pausing twice is one pause.
    pub async fn pause(&mut self) {
        if self.release.is_some() {
            return;
        }
        let (release, wait) = mpsc::channel::<()>();
        let (frozen_tx, frozen) = oneshot::channel();
        self.handle.spawn(async move {
            let _ = frozen_tx.send(());
            // Blocking the runtime's only thread is the point: nothing else of this member runs
            // until the sender is dropped (`recv` then returns an error).
            let _ = wait.recv();
        });
        // Between the send and `recv` this task does not yield, so once the message arrives the
        // thread is blocked, or about to be with nothing else scheduled before it.
        let _ = frozen.await;
        self.release = Some(release);
    }

    /// Lets a paused member run again; its timers that came due meanwhile fire at once.
    pub fn resume(&mut self) {
        self.release = None;
    }

    pub fn is_paused(&self) -> bool {
        self.release.is_some()
    }

    /// Releases a pause, ends the thread and waits until the runtime and its tasks are dropped.
    pub async fn shut_down(mut self) {
        self.resume();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }
}

impl Drop for MemberRuntime {
    fn drop(&mut self) {
        // A blocked thread could never leave `block_on`: release it before the stop is dropped.
        self.release = None;
        self.stop = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::MemberRuntime;

    #[tokio::test]
    async fn a_paused_runtime_runs_nothing_until_resumed() {
        // Goal: pause freezes every task of the member, resume lets them go on. Method: a task
        // counts on the member's runtime every millisecond; while paused the count must not move
        // for 100 ms; after resume it must move again; shut_down ends the thread.
        let mut rt = MemberRuntime::start("t").expect("runtime starts");
        let ticks = Arc::new(AtomicU64::new(0));
        let counter = ticks.clone();
        rt.run(async move {
            tokio::spawn(async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        })
        .await
        .expect("runtime alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(ticks.load(Ordering::SeqCst) > 0, "the ticker runs");

        rt.pause().await;
        assert!(rt.is_paused());
        let frozen = ticks.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            frozen,
            "nothing ran while paused"
        );

        rt.resume();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            ticks.load(Ordering::SeqCst) > frozen,
            "runs again after resume"
        );

        rt.pause().await;
        tokio::time::timeout(Duration::from_secs(5), rt.shut_down())
            .await
            .expect("a paused runtime still shuts down");
    }
}
