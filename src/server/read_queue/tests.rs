use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ReadQueue;
use crate::clock;
use crate::error::{Error, Result};

/// Barriers the test ends by hand. A barrier counts as begun when first polled, as a real one
/// starts its heartbeat round then, not when its future is made.
#[derive(Clone, Default)]
struct Barriers(Arc<Mutex<Vec<Option<End>>>>);

/// Ends one barrier with the answer sent.
type End = oneshot::Sender<Result<()>>;

impl Barriers {
    fn barrier(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let all = self.0.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            all.lock().unwrap().push(Some(tx));
            rx.await.unwrap_or(Err(Error::Stopped))
        }
    }

    fn begun(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn end(&self, which: usize, answer: Result<()>) {
        let tx = self.0.lock().unwrap()[which].take().expect("ended once");
        let _ = tx.send(answer);
    }
}

fn read(queue: &Arc<ReadQueue>, barriers: &Barriers) -> JoinHandle<Result<()>> {
    let (queue, barriers) = (queue.clone(), barriers.clone());
    tokio::spawn(async move {
        let deadline = clock::now() + Duration::from_secs(60);
        queue
            .read(|| barriers.barrier(), deadline, || Error::Timeout)
            .await
    })
}

fn start_loop(queue: &Arc<ReadQueue>, barriers: &Barriers) -> JoinHandle<()> {
    let (queue, barriers) = (queue.clone(), barriers.clone());
    tokio::spawn(async move { queue.run(|| barriers.barrier()).await })
}

/// Lets every spawned task run until it waits (one thread: nothing runs in between).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_lone_read_runs_its_own_barrier() {
    let (queue, barriers) = (Arc::new(ReadQueue::new()), Barriers::default());
    let _loop = start_loop(&queue, &barriers);
    let r = read(&queue, &barriers);
    settle().await;
    assert_eq!(barriers.begun(), 1);
    barriers.end(0, Ok(()));
    assert_eq!(r.await.unwrap(), Ok(()));
    // Idle again: the next read runs its own barrier too.
    let r = read(&queue, &barriers);
    settle().await;
    assert_eq!(barriers.begun(), 2);
    barriers.end(1, Err(Error::NoLeader));
    assert_eq!(r.await.unwrap(), Err(Error::NoLeader));
}

#[tokio::test]
async fn reads_that_arrive_during_a_barrier_share_one_begun_after_them() {
    let (queue, barriers) = (Arc::new(ReadQueue::new()), Barriers::default());
    let _loop = start_loop(&queue, &barriers);
    let first = read(&queue, &barriers);
    settle().await;
    let (second, third) = (read(&queue, &barriers), read(&queue, &barriers));
    settle().await;
    // Barrier 0 began before the two arrived: it must not answer them.
    assert_eq!(barriers.begun(), 1);
    barriers.end(0, Ok(()));
    assert_eq!(first.await.unwrap(), Ok(()));
    settle().await;
    assert_eq!(barriers.begun(), 2, "one barrier for both queued reads");
    assert!(!second.is_finished() && !third.is_finished());
    barriers.end(1, Err(Error::NoLeader));
    assert_eq!(second.await.unwrap(), Err(Error::NoLeader));
    assert_eq!(third.await.unwrap(), Err(Error::NoLeader));
    // A read arriving while the loop's barrier ran waits for the next one, not that one.
    let fourth = read(&queue, &barriers);
    settle().await;
    assert_eq!(
        barriers.begun(),
        3,
        "the queue was idle, so the read ran its own"
    );
    barriers.end(2, Ok(()));
    assert_eq!(fourth.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn a_read_that_gives_up_hands_its_queue_to_the_loop() {
    let (queue, barriers) = (Arc::new(ReadQueue::new()), Barriers::default());
    let _loop = start_loop(&queue, &barriers);
    let first = read(&queue, &barriers);
    settle().await;
    let second = read(&queue, &barriers);
    settle().await;
    // The first read's request is dropped mid-barrier (a client hung up).
    first.abort();
    settle().await;
    assert_eq!(
        barriers.begun(),
        2,
        "the loop began a barrier for the queued read"
    );
    barriers.end(1, Ok(()));
    assert_eq!(second.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_queued_read_times_out_at_its_deadline() {
    let (queue, barriers) = (Arc::new(ReadQueue::new()), Barriers::default());
    let _loop = start_loop(&queue, &barriers);
    let _first = read(&queue, &barriers);
    settle().await;
    let second = read(&queue, &barriers);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(second.await.unwrap(), Err(Error::Timeout));
}
