//! A type-erased connection, so servers accept TCP and simulated streams alike. It carries
//! what the TLS layer learnt of the client (its certificate's common name) up to the requests
//! served on it, where auth takes that name as the user when no token is sent.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

pub struct Conn(Box<dyn Io>, ClientCertCn);

/// The common name of the client certificate the TLS handshake verified, if any; tonic copies
/// it into every request's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertCn(pub Option<String>);

impl Conn {
    pub fn new(io: impl Io) -> Self {
        Conn(Box::new(io), ClientCertCn::default())
    }

    /// A connection whose client presented a verified certificate naming `cn`.
    pub fn with_cert_cn(io: impl Io, cn: ClientCertCn) -> Self {
        Conn(Box::new(io), cn)
    }

    pub fn cert_cn(&self) -> ClientCertCn {
        self.1.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    // Forwarded so h2 still sees a socket that takes several buffers at once: without it, a
    // frame over 1 KiB goes out as two writes (its header, then its payload).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ClientCertCn;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.1.clone()
    }
}
