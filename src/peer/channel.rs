//! What a member's calls go through (to a peer, or relayed to the leader's client URL): a
//! gRPC channel in production, `transport::frames` in the simulator. Both carry the same
//! tonic-generated calls; only the framing differs.

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;

use crate::transport::frames::FrameChannel;
use crate::transport::Network;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub enum PeerChannel {
    Grpc(Channel),
    Frames(FrameChannel),
}

impl PeerChannel {
    /// A lazily-connecting channel to `url` on `net`: in frames where the network's calls go
    /// so, otherwise gRPC (over TLS with `tls` for `https://`).
    pub fn dial(
        net: &Arc<dyn Network>,
        url: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> io::Result<PeerChannel> {
        if net.frames() {
            return Ok(PeerChannel::Frames(FrameChannel::new(net.clone(), url)));
        }
        crate::transport::dial(&**net, url, tls).map(PeerChannel::Grpc)
    }
}

impl Service<http::Request<Body>> for PeerChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            PeerChannel::Grpc(c) => c.poll_ready(cx).map_err(Into::into),
            PeerChannel::Frames(c) => c.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match self {
            PeerChannel::Grpc(c) => {
                let call = c.call(req);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            PeerChannel::Frames(c) => {
                let call = c.call(req);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
        }
    }
}
