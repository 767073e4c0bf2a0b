//! openraft's async runtime: tokio, with election jitter from a seeded RNG and time from the
//! member's [`clock`](crate::clock), so the simulator can skew or stop one member's timers.
//! In production the clock is tokio's and this is tokio plus a seeded RNG.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openraft_rt::deterministic_rng::DeterministicRng;
use openraft_rt::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::TokioRuntime;

use crate::clock::{self, LocalInstant};

type Inner = DeterministicRng<TokioRuntime>;

#[derive(Debug)]
pub struct Runtime {
    inner: Inner,
}

impl Runtime {
    /// Runs `f` with `seed` as the root of the RNG seeds of every task it spawns.
    pub fn scope<F: Future>(
        seed: u64,
        f: F,
    ) -> openraft_rt::task_local::TaskLocalFuture<std::cell::Cell<u64>, F> {
        Inner::scope(seed, f)
    }
}

/// A timeout on the member's clock.
pub struct Timeout<T> {
    future: Pin<Box<T>>,
    sleep: clock::Sleep,
}

/// The deadline of a [`Timeout`] passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed;

impl<T: Future> Future for Timeout<T> {
    type Output = Result<T::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRuntime for Runtime {
    type JoinError = <Inner as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Inner as AsyncRuntime>::JoinHandle<T>;
    type Sleep = clock::Sleep;
    type Instant = LocalInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = <Inner as AsyncRuntime>::ThreadLocalRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Inner::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        clock::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        clock::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future: Box::pin(future),
            sleep: clock::sleep(duration),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future: Box::pin(future),
            sleep: clock::sleep_until(deadline),
        }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Inner::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        Inner::thread_rng()
    }

    type Mpsc = <Inner as AsyncRuntime>::Mpsc;
    type Watch = <Inner as AsyncRuntime>::Watch;
    type Oneshot = <Inner as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Inner as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        Runtime {
            inner: Inner::new(threads),
        }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, std::io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Inner::spawn_blocking(f)
    }
}

#[cfg(test)]
mod tests {
    use openraft_rt::AsyncRuntime;

    /// The suite's `test_all` also wraps the runtime in a second `DeterministicRng`, whose seed
    /// scope ours would shadow; the conformance checks proper are these.
    #[test]
    fn passes_openraft_runtime_conformance_suite() {
        let mut rt = super::Runtime::new(1);
        openraft_rt::testing::Suite::<super::Runtime>::test_all_on(&mut rt);
    }
}
