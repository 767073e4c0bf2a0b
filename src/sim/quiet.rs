//! A quiet spell (`quiet MS` in a schedule): the clients hold their writes for a while (reads
//! go on), and once the writes already in flight have had time to land, a DELETE is made at the
//! head and compacted at once. The cluster then rests on a head revision that no stored version
//! holds any more, which is what etcd #17780 needed: a member that took its revision from its
//! newest stored version, after a crash, went back in time.
//!
//! Only runs whose schedule names `quiet` get one, so every other seed keeps its history.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest};
use crate::transport::frames::FrameChannel;

/// The key the still head is made with.
const STILL_KEY: &str = "still-head";
/// Writes in flight when the spell starts have answered or timed out by then, ms.
const SETTLE_MS: u64 = 2_500;
/// How often the still-head task looks for a new spell.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// The spell, as (from, until) in ms of simulated time; set by the nemesis, read by clients.
#[derive(Clone, Default)]
pub struct Quiet(Rc<Cell<(u64, u64)>>);

impl Quiet {
    pub fn begin(&self, now_ms: u64, for_ms: u64) {
        self.0.set((now_ms, now_ms + for_ms));
    }

    /// Whether clients hold their writes at `now_ms`.
    pub fn holds(&self, now_ms: u64) -> bool {
        let (from, until) = self.0.get();
        from <= now_ms && now_ms < until
    }
}

/// Whether `quiet` (a run may have none) holds writes at `now_ms`.
pub fn holds(quiet: &Option<Quiet>, now_ms: u64) -> bool {
    quiet.as_ref().is_some_and(|q| q.holds(now_ms))
}

/// In each spell, once it settled: a put and a delete of `STILL_KEY`, then a compaction at the
/// delete's revision, each tried on one member after another until answered or the spell ends.
pub async fn still_head(kvs: Vec<KvClient<FrameChannel>>, quiet: Quiet, now: impl Fn() -> u64) {
    let mut done_for = None;
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let (from, until) = quiet.0.get();
        if done_for == Some(from) || !quiet.holds(now()) || now() < from + SETTLE_MS {
            continue;
        }
        done_for = Some(from);
        let key = || STILL_KEY.as_bytes().to_vec();
        let put = |mut kv: KvClient<FrameChannel>| async move {
            let req = PutRequest {
                key: key(),
                value: b"still".to_vec(),
                ..Default::default()
            };
            Some(kv.put(req).await.ok()?.into_inner().header?.revision)
        };
        let delete = |mut kv: KvClient<FrameChannel>| async move {
            let req = DeleteRangeRequest {
                key: key(),
                ..Default::default()
            };
            Some(
                kv.delete_range(req)
                    .await
                    .ok()?
                    .into_inner()
                    .header?
                    .revision,
            )
        };
        if first_answer(&kvs, until, &now, put).await.is_none() {
            continue;
        }
        let Some(head) = first_answer(&kvs, until, &now, delete).await else {
            continue;
        };
        let compact = |mut kv: KvClient<FrameChannel>| async move {
            let req = CompactionRequest {
                revision: head,
                physical: true,
            };
            kv.compact(req).await.ok().map(|_| head)
        };
        first_answer(&kvs, until, &now, compact).await;
    }
}

/// `call` on one member after another, each given a second, until one answers or `until`.
async fn first_answer<F, Fut>(
    kvs: &[KvClient<FrameChannel>],
    until: u64,
    now: &impl Fn() -> u64,
    call: F,
) -> Option<i64>
where
    F: Fn(KvClient<FrameChannel>) -> Fut,
    Fut: std::future::Future<Output = Option<i64>>,
{
    for kv in kvs.iter().cycle() {
        if now() >= until {
            return None;
        }
        let attempt = tokio::time::timeout(Duration::from_secs(1), call(kv.clone())).await;
        if let Ok(Some(revision)) = attempt {
            return Some(revision);
        }
    }
    None
}
