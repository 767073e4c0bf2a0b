//! Prometheus metrics under etcd's own names, so dashboards and alerts written for etcd read
//! a Quorum member unchanged (`/metrics` on the client URLs and `--listen-metrics-urls`).
//!
//! One registry per member (an in-process cluster runs several). Gauges that mirror state
//! (leader, indexes, sizes, keys) are read when scraped; counters and histograms are fed where
//! the event happens. Types follow etcd 3.4, even where the name misleads
//! (`etcd_server_proposals_committed_total` is a gauge there, and here).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The version label `etcd_server_version` carries: the one clients are told.
const SERVER_VERSION: &str = crate::api::maintenance::ETCD_VERSION;

pub struct Metrics {
    registry: Registry,
    pub has_leader: IntGauge,
    pub is_leader: IntGauge,
    pub leader_changes: IntCounter,
    pub proposals_committed: IntGauge,
    pub proposals_applied: IntGauge,
    pub proposals_pending: IntGauge,
    pub proposals_failed: IntCounter,
    pub db_total_size_bytes: IntGauge,
    pub db_in_use_bytes: IntGauge,
    pub keys: IntGauge,
    /// Raft log syncs (etcd's WAL fsync).
    pub wal_fsync_seconds: Histogram,
    /// State-machine snapshot writes (etcd's backend commit).
    pub backend_commit_seconds: Histogram,
    pub grpc_received_bytes: IntCounter,
    pub grpc_sent_bytes: IntCounter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        // Names and help are constants: registering them cannot fail but on a duplicate,
        // which this one function would have to write twice.
        Self::build().expect("etcd's metric names are valid and registered once")
    }

    fn build() -> prometheus::Result<Arc<Metrics>> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        // etcd's buckets for both disk histograms: 1 ms doubling to 8.192 s.
        let histogram = |name: &str, help: &str| -> prometheus::Result<Histogram> {
            let opts = HistogramOpts::new(name, help).buckets(exponential_buckets(0.001, 2.0, 14)?);
            let h = Histogram::with_opts(opts)?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let version = IntGaugeVec::new(
            Opts::new(
                "etcd_server_version",
                "Which version is running. 1 for 'server_version' label with current version.",
            ),
            &["server_version"],
        )?;
        registry.register(Box::new(version.clone()))?;
        version.with_label_values(&[SERVER_VERSION]).set(1);
        Ok(Arc::new(Metrics {
            has_leader: gauge(
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            )?,
            is_leader: gauge(
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            )?,
            leader_changes: counter(
                "etcd_server_leader_changes_seen_total",
                "The number of leader changes seen.",
            )?,
            proposals_committed: gauge(
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
            )?,
            proposals_applied: gauge(
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
            )?,
            proposals_pending: gauge(
                "etcd_server_proposals_pending",
                "The current number of pending proposals to commit.",
            )?,
            proposals_failed: counter(
                "etcd_server_proposals_failed_total",
                "The total number of failed proposals seen.",
            )?,
            db_total_size_bytes: gauge(
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
            )?,
            db_in_use_bytes: gauge(
                "etcd_mvcc_db_total_size_in_use_in_bytes",
                "Total size of the underlying database logically in use in bytes.",
            )?,
            keys: gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.")?,
            wal_fsync_seconds: histogram(
                "etcd_disk_wal_fsync_duration_seconds",
                "The latency distributions of fsync called by WAL.",
            )?,
            backend_commit_seconds: histogram(
                "etcd_disk_backend_commit_duration_seconds",
                "The latency distributions of commit called by backend.",
            )?,
            grpc_received_bytes: counter(
                "etcd_network_client_grpc_received_bytes_total",
                "The total number of bytes received from grpc clients.",
            )?,
            grpc_sent_bytes: counter(
                "etcd_network_client_grpc_sent_bytes_total",
                "The total number of bytes sent to grpc clients.",
            )?,
            registry,
        }))
    }

    /// The registry in Prometheus' text format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
    }
}

/// A client connection that counts the bytes it carries into the gRPC byte counters.
pub struct Counted<T> {
    inner: T,
    metrics: Arc<Metrics>,
}

impl<T> Counted<T> {
    pub fn new(inner: T, metrics: Arc<Metrics>) -> Self {
        Counted { inner, metrics }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.metrics.grpc_received_bytes.inc_by(read as u64);
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Only `poll_write`: client connections are written through `transport::Coalesce`,
        // which sends one buffer at a time.
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            self.metrics.grpc_sent_bytes.inc_by(*n as u64);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_etcds_names_and_types() {
        // Goal: what a dashboard written for etcd looks up is there, typed as etcd types it.
        let m = Metrics::new();
        m.leader_changes.inc();
        m.wal_fsync_seconds.observe(0.003);
        let text = m.render();
        for line in [
            "# TYPE etcd_server_has_leader gauge",
            "# TYPE etcd_server_leader_changes_seen_total counter",
            "etcd_server_leader_changes_seen_total 1",
            "# TYPE etcd_server_proposals_committed_total gauge",
            "# TYPE etcd_disk_wal_fsync_duration_seconds histogram",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 1",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 0",
            "etcd_server_version{server_version=\"3.5.16\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }
}
