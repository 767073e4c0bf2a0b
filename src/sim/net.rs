//! turmoil's simulated TCP behind Quorum's `Network` trait. Every call in the simulator, a
//! member's to another and a client's to a member, goes in `transport::frames`, not over
//! HTTP/2: the same tonic-generated clients and services, without h2's cost.

use std::io;
use std::sync::Arc;

use crate::config::url_host_port;
use crate::transport::frames::FrameChannel;
use crate::transport::{endpoint, Conn, Incoming, Network};
use futures::StreamExt;
use tonic::transport::Channel;

pub struct TurmoilNetwork;

/// A simulated client's channel to a member's client URL: lazy, redialled after a break.
pub fn client_channel(url: &str) -> FrameChannel {
    FrameChannel::new(Arc::new(TurmoilNetwork), url)
}

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

    fn frames(&self) -> bool {
        true
    }

    async fn connect(&self, url: &str) -> io::Result<Conn> {
        let (host, port) = url_host_port(url).map_err(invalid)?;
        let s = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
        Ok(Conn::new(s))
    }

    fn channel(&self, url: &str) -> io::Result<Channel> {
        let (host, port) = url_host_port(url).map_err(invalid)?;
        // The production endpoint, timeouts and keep-alives included: turmoil's TCP never
        // retransmits, so a connection cut by a partition stays dead after the repair, and the
        // keep-alives are what notice it, as they notice a silent partition in production.
        let endpoint = endpoint(url).map_err(invalid)?;
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
