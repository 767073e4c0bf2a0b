//! A load generator that speaks etcd's gRPC API, so the same run can measure Quorum and etcd.
//!
//! `clients` concurrent connections each issue `requests / clients` sequential requests (puts of
//! unique keys, or linearizable/serializable gets of a preloaded key) and record latencies; the
//! report gives throughput and latency percentiles. Wall-clock time is fine here: this is a
//! measuring tool, never part of a member or the simulator.

use std::time::{Duration, Instant};

use tonic::transport::Endpoint;

use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::{PutRequest, RangeRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Put,
    GetLinearizable,
    GetSerializable,
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub endpoints: Vec<String>,
    pub clients: usize,
    pub requests: usize,
    pub value_bytes: usize,
    pub workload: Workload,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests_ok: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.requests_ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_us(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i]
    }

    pub fn summary(&self) -> String {
        format!(
            "ok={} errors={} elapsed={:.2}s throughput={:.0}/s p50={}us p99={}us max={}us",
            self.requests_ok,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.percentile_us(0.5),
            self.percentile_us(0.99),
            self.latencies_us.last().copied().unwrap_or(0),
        )
    }
}

pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    let value = vec![b'v'; spec.value_bytes];
    let mut setup = KvClient::new(
        Endpoint::from_shared(spec.endpoints[0].clone())?
            .connect()
            .await?,
    );
    setup
        .put(PutRequest {
            key: b"bench/read".to_vec(),
            value: value.clone(),
            ..Default::default()
        })
        .await?;
    let per_client = spec.requests.div_ceil(spec.clients.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..spec.clients {
        let ep = spec.endpoints[c % spec.endpoints.len()].clone();
        let value = value.clone();
        let workload = spec.workload;
        tasks.push(tokio::spawn(async move {
            let mut kv = KvClient::new(Endpoint::from_shared(ep)?.connect().await?);
            let mut lat = Vec::with_capacity(per_client);
            let mut errors = 0usize;
            for i in 0..per_client {
                let t = Instant::now();
                let res = match workload {
                    Workload::Put => kv
                        .put(PutRequest {
                            key: format!("bench/{c}/{i}").into_bytes(),
                            value: value.clone(),
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
                };
                match res {
                    Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await??;
        latencies_us.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Ok(LoadReport {
        requests_ok: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
    })
}
