//! turmoil's simulated TCP behind Quorum's `Network` trait.

use std::io;
use std::time::Duration;

use futures::StreamExt;
use quorum::config::url_host_port;
use quorum::transport::{Conn, Incoming, Network};
use tonic::transport::{Channel, Endpoint};

/// Dials fail fast in the simulator too: a partitioned peer costs a timeout, never a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

pub struct TurmoilNetwork;

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

#[tonic::async_trait]
impl Network for TurmoilNetwork {
    async fn listen(&self, url: &str) -> io::Result<Incoming> {
        let (_, port) = url_host_port(url).map_err(invalid)?;
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
        let incoming = futures::stream::unfold(listener, |l| async move {
            let next = l.accept().await.map(|(s, _)| Conn::new(s));
            Some((next, l))
        });
        Ok(incoming.boxed())
    }

    fn channel(&self, url: &str) -> io::Result<Channel> {
        let (host, port) = url_host_port(url).map_err(invalid)?;
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(invalid)?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(Duration::from_secs(3))
            // turmoil's TCP never retransmits: a connection cut by a partition stays dead after
            // the repair, so keepalives must notice and let the channel redial.
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2))
            .keep_alive_while_idle(true);
        Ok(
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
                let host = host.clone();
                async move {
                    let s = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
                    Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            })),
        )
    }
}
