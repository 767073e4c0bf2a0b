//! How a member listens and dials: real TCP in production, the simulator's network in `sim/`,
//! both behind the `Network` trait, plus a `Faults` switchboard that cuts links between members
//! of an in-process cluster.
//!
//! Every channel connects lazily and reconnects by itself; every call made on it is bounded by a
//! timeout at the call site, because a dead peer must cost a timeout, never a hang.

mod authority;
mod coalesce;
mod conn;
pub mod frames;

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tonic::transport::{Channel, Endpoint};

pub use authority::AuthorityFix;
pub use coalesce::Coalesce;
pub use conn::{ClientCertCn, Conn};

/// Accepted connections of one listener.
pub type Incoming = BoxStream<'static, io::Result<Conn>>;

/// Where connections come from and go to.
#[tonic::async_trait]
pub trait Network: Send + Sync + 'static {
    /// Listens on the host and port of `url` (`http://host:port`).
    async fn listen(&self, url: &str) -> io::Result<Incoming>;
    /// A lazily-connecting channel to `url` (`http://`).
    fn channel(&self, url: &str) -> io::Result<Channel>;
    /// A lazily-connecting TLS channel to `url` (`https://`). The simulator has none.
    fn tls_channel(&self, url: &str, _tls: Arc<rustls::ClientConfig>) -> io::Result<Channel> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{url}: TLS is not available on this network"),
        ))
    }
    /// Whether calls on this network (members' to each other, clients' to members) go in
    /// `frames` (gRPC without HTTP/2) instead of over gRPC channels; the simulator's network
    /// does, to spare h2's cost.
    fn frames(&self) -> bool {
        false
    }
    /// A raw connection to the host and port of `url`, for `frames`.
    async fn connect(&self, url: &str) -> io::Result<Conn> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{url}: this network dials gRPC channels only"),
        ))
    }
}

/// Dials `url` on `net`: over TLS with `tls` when the URL says `https://`.
pub fn dial(
    net: &dyn Network,
    url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Channel> {
    if !url.starts_with("https://") {
        return net.channel(url);
    }
    let tls = tls.cloned().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: https needs TLS settings (certificate flags)"),
        )
    })?;
    net.tls_channel(url, tls)
}

/// The operating system's TCP.
pub struct TcpNetwork;

#[tonic::async_trait]
impl Network for TcpNetwork {
    async fn listen(&self, url: &str) -> io::Result<Incoming> {
        let addr = crate::config::url_addr(url)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map_ok(|s| {
            // Small RPCs dominate; do not wait to coalesce them.
            let _ = s.set_nodelay(true);
            Conn::new(s)
        });
        Ok(incoming.boxed())
    }

    fn channel(&self, url: &str) -> io::Result<Channel> {
        channel(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
    }

    fn tls_channel(&self, url: &str, tls: Arc<rustls::ClientConfig>) -> io::Result<Channel> {
        let invalid =
            |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let plain = url.strip_prefix("https://").unwrap_or(url);
        let addr = crate::config::url_addr(url).map_err(|e| invalid(&e))?;
        let (host, _) = crate::config::url_host_port(url).map_err(|e| invalid(&e))?;
        // TLS is done in the connector, so tonic is handed the plain scheme.
        let endpoint = endpoint(&format!("http://{plain}")).map_err(|e| invalid(&e))?;
        Ok(
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
                let (tls, host) = (tls.clone(), host.clone());
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    let _ = tcp.set_nodelay(true);
                    let stream = crate::tls::connect(tls, &host, tcp).await?;
                    Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            })),
        )
    }
}

/// A member's view of the network: how to reach peers, and which links are cut.
#[derive(Clone)]
pub struct Transport {
    pub net: Arc<dyn Network>,
    pub faults: Faults,
    /// How to dial `https://` peer URLs (`--peer-*` TLS flags).
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// How to dial `https://` client URLs, to relay to the leader (client TLS flags).
    pub client_tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            net: Arc::new(TcpNetwork),
            faults: Faults::default(),
            peer_tls: None,
            client_tls: None,
        }
    }
}

impl Transport {
    /// Plain http over `net` (TLS settings are added from a member's flags at start).
    pub fn new(net: Arc<dyn Network>) -> Self {
        Transport {
            net,
            ..Default::default()
        }
    }

    pub fn with_faults(faults: Faults) -> Self {
        Transport {
            faults,
            ..Default::default()
        }
    }
}

/// Connect attempts give up after this long, so a dead peer costs little per retry.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How every member dials `url`, whatever carries the bytes (the OS's TCP or the simulator's):
/// connects fail fast, and HTTP/2 keep-alives notice a connection that died silently (a
/// partition drops packets without a reset), so the channel redials.
pub fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(3))
        .keep_alive_while_idle(true))
}

/// Opens a lazily-connecting TCP channel to `url` (e.g. `http://127.0.0.1:12380`).
pub fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(endpoint(url)?.connect_lazy())
}

/// Which directed links between members are cut. Shared by every member of an in-process
/// cluster so a test can partition and heal while it runs.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    cut: Arc<RwLock<BTreeSet<(u64, u64)>>>,
}

impl Faults {
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(from, to))
    }

    /// Cuts both directions between every member of `a` and every member of `b`.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut cut = self.cut.write().unwrap_or_else(|e| e.into_inner());
        for x in a {
            for y in b {
                cut.insert((*x, *y));
                cut.insert((*y, *x));
            }
        }
    }

    /// Cuts the one direction from `from` to `to`: `to` stops hearing `from`'s calls, while its
    /// own calls to `from` (and their answers) still go through.
    pub fn cut(&self, from: u64, to: u64) {
        self.cut
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((from, to));
    }

    pub fn heal(&self) {
        self.cut.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Restores every link to and from `member`, leaving cuts between the others in place.
    pub fn heal_member(&self, member: u64) {
        self.cut
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(from, to)| *from != member && *to != member);
    }

    /// The directed links cut now, as (from, to) member ids; for views of the cluster.
    pub fn cut_links(&self) -> Vec<(u64, u64)> {
        self.cut
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}
