//! turmoil's simulated TCP behind Quorum's `Network` trait. Every call in the simulator, a
//! member's to another and a client's to a member, goes in `transport::frames`, not over
//! HTTP/2: the same tonic-generated clients and services, without h2's cost.

use std::io;
use std::sync::Arc;

use crate::config::url_host_port;
use crate::transport::frames::FrameChannel;
use crate::transport::{Conn, Incoming, Network};
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

    /// Every call here goes in frames (`frames()`), so nothing dials a gRPC channel.
    fn channel(&self, url: &str) -> io::Result<Channel> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{url}: the simulator's calls go in frames, not gRPC channels"),
        ))
    }
}
