//! A member's local clock: the time its timers (Raft's election and heartbeat timers, the
//! lessor) run on.
//!
//! In production every member reads tokio's clock. The simulator gives each member a [`Clock`]
//! of its own, so a fault can make one member's clock run fast or slow (skew) or stop and then
//! jump (a process pause: the monotonic clock keeps counting while the process is stopped, so
//! on resume every overdue timer fires at once). A clock is bound to the tokio runtime a
//! member runs on, so every task of that member, tonic's handlers included, reads the same
//! clock without threading a handle through each call.
//!
//! Rates are integers (parts per million) so that every run computes the same instants.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Id;

/// A rate of 1.0: local time passes as true time does.
pub const RATE_ONE_PPM: u64 = 1_000_000;

/// An instant on the current member's local clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalInstant(tokio::time::Instant);

/// Where true time comes from: the simulation's elapsed time, say.
pub type TrueTime = Box<dyn Fn() -> Duration + Send + Sync>;

/// One member's clock: local time is `anchor_local + (true - anchor_true) * rate`.
pub struct Clock {
    true_time: TrueTime,
    state: Mutex<State>,
    /// Bumped on every rate change or jump, so sleepers recompute their wake-up.
    changed: tokio::sync::watch::Sender<u64>,
}

struct State {
    anchor_true: Duration,
    anchor_local: Duration,
    rate_ppm: u64,
    /// The tokio instant of local time zero on the runtime the member runs on now.
    origin: Option<tokio::time::Instant>,
}

impl Clock {
    pub fn new(true_time: TrueTime) -> Arc<Clock> {
        let now = true_time();
        Arc::new(Clock {
            true_time,
            state: Mutex::new(State {
                anchor_true: now,
                anchor_local: Duration::ZERO,
                rate_ppm: RATE_ONE_PPM,
                origin: None,
            }),
            changed: tokio::sync::watch::Sender::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn local_elapsed(state: &State, true_now: Duration) -> Duration {
        let passed = true_now.saturating_sub(state.anchor_true);
        if state.rate_ppm == RATE_ONE_PPM {
            // Nearly every read; the u128 multiply and divide below cost ~30 instructions.
            return state.anchor_local + passed;
        }
        let passed = passed.as_nanos();
        let scaled = passed * u128::from(state.rate_ppm) / u128::from(RATE_ONE_PPM);
        state.anchor_local + Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
    }

    /// Re-anchors at the present so a change applies from now on, not retroactively.
    fn reanchor(state: &mut State, true_now: Duration) {
        state.anchor_local = Self::local_elapsed(state, true_now);
        state.anchor_true = true_now;
    }

    /// Local time runs at `rate_ppm` millionths of true time from now on (0 stops it).
    pub fn set_rate(&self, rate_ppm: u64) {
        let true_now = (self.true_time)();
        {
            let mut state = self.lock();
            Self::reanchor(&mut state, true_now);
            state.rate_ppm = rate_ppm;
        }
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn rate_ppm(&self) -> u64 {
        self.lock().rate_ppm
    }

    /// Moves local time forward by `by` at once.
    pub fn jump(&self, by: Duration) {
        let true_now = (self.true_time)();
        {
            let mut state = self.lock();
            Self::reanchor(&mut state, true_now);
            state.anchor_local += by;
        }
        self.changed.send_modify(|v| *v += 1);
    }

    fn now(&self) -> LocalInstant {
        let true_now = (self.true_time)();
        let mut state = self.lock();
        let local = Self::local_elapsed(&state, true_now);
        let origin = *state.origin.get_or_insert_with(|| {
            let tokio_now = tokio::time::Instant::now();
            tokio_now.checked_sub(local).unwrap_or(tokio_now)
        });
        LocalInstant(origin + local)
    }

    /// True time until `deadline` on this clock, at the current rate; `None` if it is stopped.
    fn true_wait(&self, deadline: LocalInstant) -> Option<Duration> {
        let now = self.now();
        let local = deadline.0.saturating_duration_since(now.0);
        if local.is_zero() {
            return Some(Duration::ZERO);
        }
        let rate = self.lock().rate_ppm;
        if rate == 0 {
            return None;
        }
        // Round up so one sleep normally reaches the deadline.
        let nanos = (local.as_nanos() * u128::from(RATE_ONE_PPM)).div_ceil(u128::from(rate));
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    async fn sleep_until(self: Arc<Self>, deadline: LocalInstant) {
        let mut changed = self.changed.subscribe();
        loop {
            match self.true_wait(deadline) {
                Some(d) if d.is_zero() => return,
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = changed.changed() => {}
                    }
                }
                None => {
                    let _ = changed.changed().await;
                }
            }
        }
    }
}

/// Clocks by the runtime their member runs on. A handful of entries, looked up by equality,
/// never iterated for anything but the lookup.
static CLOCKS: Mutex<Vec<(Id, Arc<Clock>)>> = Mutex::new(Vec::new());
/// Lets production, which never binds a clock, skip the lock.
static ANY_BOUND: AtomicBool = AtomicBool::new(false);

/// Makes `clock` the clock of every task on the current tokio runtime. Call it from inside the
/// member's runtime, before the member starts (again after each restart, on the new runtime).
pub fn bind_to_current_runtime(clock: Arc<Clock>) {
    let id = tokio::runtime::Handle::current().id();
    clock.lock().origin = None;
    let mut clocks = CLOCKS.lock().unwrap_or_else(|e| e.into_inner());
    clocks.retain(|(other, c)| *other != id && !Arc::ptr_eq(c, &clock));
    clocks.push((id, clock));
    ANY_BOUND.store(true, Ordering::Release);
}

/// Forgets every binding (a simulation run starts from none).
pub fn unbind_all() {
    CLOCKS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

fn current() -> Option<Arc<Clock>> {
    if !ANY_BOUND.load(Ordering::Acquire) {
        return None;
    }
    let id = tokio::runtime::Handle::try_current().ok()?.id();
    let clocks = CLOCKS.lock().unwrap_or_else(|e| e.into_inner());
    clocks
        .iter()
        .find(|(other, _)| *other == id)
        .map(|(_, c)| c.clone())
}

/// Now, on the current member's clock.
pub fn now() -> LocalInstant {
    match current() {
        Some(clock) => clock.now(),
        None => LocalInstant(tokio::time::Instant::now()),
    }
}

/// Sleeps until `deadline` on the current member's clock.
pub fn sleep_until(deadline: LocalInstant) -> Sleep {
    match current() {
        Some(clock) => Box::pin(clock.sleep_until(deadline)),
        None => Box::pin(tokio::time::sleep_until(deadline.0)),
    }
}

pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(now() + duration)
}

pub type Sleep = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A wait that ran past its deadline on the member's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Runs `fut` until `deadline` on the current member's clock. `fut` is polled first, so a
/// result that is ready at the deadline still counts.
pub async fn timeout_at<F: std::future::Future>(
    deadline: LocalInstant,
    fut: F,
) -> Result<F::Output, Elapsed> {
    tokio::select! {
        biased;
        out = fut => Ok(out),
        _ = sleep_until(deadline) => Err(Elapsed),
    }
}

/// Runs `fut` for at most `duration` of the current member's time.
pub async fn timeout<F: std::future::Future>(
    duration: Duration,
    fut: F,
) -> Result<F::Output, Elapsed> {
    timeout_at(now() + duration, fut).await
}

/// A periodic tick on the member's clock. Ticks missed while the clock jumped are skipped, not
/// burst, and `tick` is cancel-safe: a tick not waited out is not consumed.
pub struct Interval {
    next: LocalInstant,
    period: Duration,
}

impl Interval {
    /// The first tick is immediate, as tokio's interval's is.
    pub fn new(period: Duration) -> Interval {
        Interval {
            next: now(),
            period,
        }
    }

    pub async fn tick(&mut self) {
        sleep_until(self.next).await;
        self.next = (self.next + self.period).max(now());
    }
}

impl LocalInstant {
    pub fn now() -> LocalInstant {
        now()
    }

    pub fn saturating_duration_since(&self, earlier: LocalInstant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    pub fn elapsed(&self) -> Duration {
        now().saturating_duration_since(*self)
    }
}

impl std::ops::Add<Duration> for LocalInstant {
    type Output = LocalInstant;
    fn add(self, d: Duration) -> LocalInstant {
        LocalInstant(self.0 + d)
    }
}

impl std::ops::AddAssign<Duration> for LocalInstant {
    fn add_assign(&mut self, d: Duration) {
        self.0 += d;
    }
}

impl std::ops::Sub<Duration> for LocalInstant {
    type Output = LocalInstant;
    fn sub(self, d: Duration) -> LocalInstant {
        LocalInstant(self.0 - d)
    }
}

impl std::ops::SubAssign<Duration> for LocalInstant {
    fn sub_assign(&mut self, d: Duration) {
        self.0 -= d;
    }
}

impl std::ops::Sub<LocalInstant> for LocalInstant {
    type Output = Duration;
    fn sub(self, other: LocalInstant) -> Duration {
        self.0.saturating_duration_since(other.0)
    }
}

impl openraft_rt::Instant for LocalInstant {
    fn now() -> Self {
        now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual() -> (Arc<Mutex<Duration>>, Arc<Clock>) {
        let t = Arc::new(Mutex::new(Duration::from_secs(10)));
        let src = t.clone();
        let clock = Clock::new(Box::new(move || *src.lock().unwrap()));
        (t, clock)
    }

    #[tokio::test]
    async fn a_fast_clock_runs_ahead_and_a_stopped_one_jumps_on_resume() {
        let (t, clock) = manual();
        bind_to_current_runtime(clock.clone());
        let start = now();
        *t.lock().unwrap() += Duration::from_secs(1);
        assert_eq!(now() - start, Duration::from_secs(1));

        clock.set_rate(1_500_000);
        *t.lock().unwrap() += Duration::from_secs(2);
        assert_eq!(now() - start, Duration::from_secs(4));

        clock.set_rate(0);
        *t.lock().unwrap() += Duration::from_secs(5);
        assert_eq!(
            now() - start,
            Duration::from_secs(4),
            "a paused clock stands still"
        );

        clock.jump(Duration::from_secs(5));
        clock.set_rate(RATE_ONE_PPM);
        assert_eq!(now() - start, Duration::from_secs(9));
        unbind_all();
    }
}
