//! The load generator: `clients` concurrent clients over `connections` HTTP/2 connections
//! (etcd's benchmark `--clients` and `--conns`), each issuing sequential requests: puts of
//! unique keys, or linearizable / serializable ranges of one preloaded key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};

use super::Latencies;
use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::{PutRequest, RangeRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Put,
    GetLinearizable,
    GetSerializable,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::GetLinearizable => "get",
            Workload::GetSerializable => "get-serializable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub endpoints: Vec<String>,
    pub clients: usize,
    /// HTTP/2 connections the clients share (at most `clients`; spread over the endpoints).
    pub connections: usize,
    pub requests: usize,
    pub value_bytes: usize,
    pub workload: Workload,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests_ok: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.requests_ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn summary(&self) -> String {
        format!(
            "ok={} errors={} elapsed={:.2}s throughput={:.0}/s {}",
            self.requests_ok,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.latencies.summary(),
        )
    }
}

/// Opens `n` connections, round-robin over `endpoints`.
pub async fn connect(endpoints: &[String], n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        let ep = &endpoints[i % endpoints.len()];
        channels.push(Endpoint::from_shared(ep.clone())?.connect().await?);
    }
    Ok(channels)
}

/// Uncounted requests each client sends before the measured ones.
const WARMUP_PER_CLIENT: usize = 2;

/// One request of `workload`; `key` names a put's key, and is not built for a read (reads
/// read the preloaded key).
async fn call(
    kv: &mut KvClient<Channel>,
    workload: Workload,
    key: impl FnOnce() -> String,
    value: &[u8],
) -> Result<(), tonic::Status> {
    match workload {
        Workload::Put => kv
            .put(PutRequest {
                key: key().into_bytes(),
                value: value.to_vec(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Workload::GetLinearizable | Workload::GetSerializable => kv
            .range(RangeRequest {
                key: b"bench/read".to_vec(),
                serializable: workload == Workload::GetSerializable,
                ..Default::default()
            })
            .await
            .map(|_| ()),
    }
}

pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!spec.endpoints.is_empty(), "no endpoints");
    let clients = spec.clients.max(1);
    let channels = connect(&spec.endpoints, spec.connections.clamp(1, clients)).await?;
    let value = vec![b'v'; spec.value_bytes];
    KvClient::new(channels[0].clone())
        .put(PutRequest {
            key: b"bench/read".to_vec(),
            value: value.clone(),
            ..Default::default()
        })
        .await?;
    let per_client = spec.requests.div_ceil(clients);
    // Each run puts keys of its own (this process's id, then its count of runs), so a
    // comparison's later rounds, or another `quorum bench` against the same cluster, create
    // keys as the first run did instead of overwriting them.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = format!(
        "{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let bar = super::progress((per_client * clients) as u64, spec.workload.name());
    // Every client's first requests open its HTTP/2 stream state and header tables; they are
    // sent, uncounted, before the clock starts for all clients at once.
    let warmed = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        let value = value.clone();
        let workload = spec.workload;
        let bar = bar.clone();
        let warmed = warmed.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..WARMUP_PER_CLIENT {
                let _ = call(
                    &mut kv,
                    workload,
                    || format!("bench/{run}/warmup/{c}/{i}"),
                    &value,
                )
                .await;
            }
            warmed.wait().await;
            let mut lat = Vec::with_capacity(per_client);
            let mut errors = 0usize;
            for i in 0..per_client {
                let t = Instant::now();
                match call(&mut kv, workload, || format!("bench/{run}/{c}/{i}"), &value).await {
                    Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
                bar.inc(1);
            }
            (lat, errors)
        }));
    }
    warmed.wait().await;
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        samples.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(LoadReport {
        requests_ok: samples.len(),
        errors,
        elapsed,
        latencies: Latencies::new(samples),
    })
}
