//! Watch fan-out: `watchers` watch one prefix (spread over `connections`), while puts arrive
//! at a fixed rate; every event's delivery latency is measured from just before its put was
//! sent (the put carries that instant in its value) to its arrival at each watcher, and every
//! acknowledged put must reach every watcher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::load::connect;
use super::Latencies;
use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::watch_client::WatchClient;
use crate::proto::etcdserverpb::{watch_request, PutRequest, WatchCreateRequest, WatchRequest};

const PREFIX: &[u8] = b"fanout/";
/// `PREFIX` with its last byte incremented: the end of the prefix range.
const PREFIX_END: &[u8] = b"fanout0";
/// Putters sharing the rate, so one slow put does not stall the schedule.
const PUTTERS: usize = 10;

#[derive(Debug, Clone)]
pub struct FanoutSpec {
    pub endpoints: Vec<String>,
    pub watchers: usize,
    pub connections: usize,
    pub puts_per_sec: u64,
    pub duration: Duration,
    pub value_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct FanoutReport {
    pub puts_ok: u64,
    pub put_errors: u64,
    /// Events every watcher should have seen: acknowledged puts × watchers.
    pub expected: u64,
    pub delivered: u64,
    pub latencies: Latencies,
}

impl FanoutReport {
    pub fn summary(&self) -> String {
        format!(
            "puts={} put_errors={} delivered={}/{} {}",
            self.puts_ok,
            self.put_errors,
            self.delivered,
            self.expected,
            self.latencies.summary()
        )
    }
}

pub async fn run(spec: FanoutSpec) -> anyhow::Result<FanoutReport> {
    anyhow::ensure!(!spec.endpoints.is_empty(), "no endpoints");
    let watchers = spec.watchers.max(1);
    let channels = connect(&spec.endpoints, spec.connections.clamp(1, watchers)).await?;
    let origin = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let (created_tx, mut created_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for w in 0..watchers {
        let mut client = WatchClient::new(channels[w % channels.len()].clone());
        let created_tx = created_tx.clone();
        let delivered = delivered.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let create = WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(
                    WatchCreateRequest {
                        key: PREFIX.to_vec(),
                        range_end: PREFIX_END.to_vec(),
                        ..Default::default()
                    },
                )),
            };
            // The request stream stays open until the run stops, and then closes, which ends
            // the watch on the server too. Left open (a pending stream), the watches outlived
            // the run: the server kept sending the next run's events to them.
            let mut closing = stop.clone();
            let close = futures::stream::once(async move {
                let _ = closing.wait_for(|stopped| *stopped).await;
            })
            .filter_map(|()| async { None });
            let requests = futures::stream::iter([create]).chain(close);
            let mut stream = client.watch(requests).await?.into_inner();
            let mut samples = Vec::new();
            loop {
                let resp = tokio::select! {
                    r = stream.next() => match r {
                        Some(r) => r?,
                        None => break,
                    },
                    _ = stop.changed() => break,
                };
                if resp.created {
                    created_tx.send(()).await.ok();
                }
                let now = origin.elapsed().as_micros() as u64;
                for ev in resp.events {
                    let sent = ev
                        .kv
                        .as_ref()
                        .and_then(|kv| kv.value.get(..8))
                        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .unwrap_or(now);
                    samples.push(now.saturating_sub(sent));
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(samples)
        }));
    }
    drop(created_tx);
    for _ in 0..watchers {
        created_rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("a watcher ended before it was created"))?;
    }

    let total_puts = (spec.puts_per_sec as f64 * spec.duration.as_secs_f64()).ceil() as u64;
    let bar = super::progress(total_puts, "watch fan-out");
    let puts_ok = Arc::new(AtomicU64::new(0));
    let put_errors = Arc::new(AtomicU64::new(0));
    let mut putters = Vec::new();
    for p in 0..PUTTERS as u64 {
        let mut kv = KvClient::new(channels[p as usize % channels.len()].clone());
        let (ok, errs, bar) = (puts_ok.clone(), put_errors.clone(), bar.clone());
        let period = Duration::from_secs_f64(PUTTERS as f64 / spec.puts_per_sec.max(1) as f64);
        let value_bytes = spec.value_bytes.max(8);
        putters.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut i = p;
            while i < total_puts {
                tick.tick().await;
                let mut value = vec![b'v'; value_bytes];
                let sent = origin.elapsed().as_micros() as u64;
                value[..8].copy_from_slice(&sent.to_le_bytes());
                let mut key = PREFIX.to_vec();
                key.extend_from_slice(format!("{i}").as_bytes());
                match kv
                    .put(PutRequest {
                        key,
                        value,
                        ..Default::default()
                    })
                    .await
                {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errs.fetch_add(1, Ordering::Relaxed),
                };
                bar.inc(1);
                i += PUTTERS as u64;
            }
        }));
    }
    for p in putters {
        p.await?;
    }
    bar.finish_and_clear();
    let puts_ok = puts_ok.load(Ordering::Relaxed);
    let expected = puts_ok * watchers as u64;
    // Give delivery a bounded while to catch up, then stop the watchers where they are.
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).ok();
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    Ok(FanoutReport {
        puts_ok,
        put_errors: put_errors.load(Ordering::Relaxed),
        expected,
        delivered: delivered.load(Ordering::Relaxed),
        latencies: Latencies::new(samples),
    })
}
