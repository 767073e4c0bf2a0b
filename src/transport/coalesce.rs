//! A write side that holds what is written until the writer flushes, and tells h2 it takes
//! one buffer at a time, so a response with a value of a few hundred bytes leaves in one
//! write.
//!
//! h2 writes a data frame's payload of 256 bytes or more as a buffer of its own when the
//! socket takes vectored writes (1 KiB or more when it does not), and then must flush, which
//! writes it out, before it can buffer the next frame. So a unary gRPC response with a value
//! of a few hundred bytes went out as two writes, its headers and data and then its trailers
//! (10 bytes): 1.75-1.8 `writev` calls per linearizable get at 100 clients (`strace -f -e
//! trace=writev` on the leader). Reporting no vectored writes raises h2's mark to 1 KiB, so
//! smaller payloads are copied into its buffer with the frames around them; a larger one is
//! still written on its own, as a frame header and then the payload, and holding those two
//! until the flush that follows sends them in one write, as a vectored write did. Both h2
//! and hyper's HTTP/1 flush after every batch they write, so holding costs no latency, only a
//! copy.
//!
//! Invariant: bytes are written in the order given; what `poll_write` accepted is on its way
//! after the next `poll_flush` or `poll_shutdown` returns ready. At most `HELD_MAX` bytes are
//! held: past that, what is held goes out first, and a larger write passes straight through.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held before a write forces them out: a few responses' worth, well under a socket's
/// send buffer.
const HELD_MAX: usize = 64 * 1024;

pub struct Coalesce<S> {
    inner: S,
    held: Vec<u8>,
    /// How much of `held` is already written.
    sent: usize,
}

impl<S> Coalesce<S> {
    pub fn new(inner: S) -> Coalesce<S> {
        Coalesce {
            inner,
            held: Vec::new(),
            sent: 0,
        }
    }

    #[cfg(test)]
    fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes out everything held.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        if self.held.capacity() > 2 * HELD_MAX {
            self.held.shrink_to(HELD_MAX);
        }
        Poll::Ready(Ok(()))
    }

    /// Makes room for `len` more bytes; `Ready(true)` when they should bypass the hold.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<bool>> {
        if self.held.len() + len > HELD_MAX {
            ready!(self.poll_send_held(cx))?;
        }
        Poll::Ready(Ok(len > HELD_MAX))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if ready!(me.poll_room(cx, buf.len()))? {
            return Pin::new(&mut me.inner).poll_write(cx, buf);
        }
        me.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let len = bufs.iter().map(|b| b.len()).sum();
        if ready!(me.poll_room(cx, len))? {
            return Pin::new(&mut me.inner).poll_write_vectored(cx, bufs);
        }
        for b in bufs {
            me.held.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }

    /// No: h2 then copies payloads under 1 KiB into its own buffer with their frames, instead
    /// of writing each one of 256 bytes or more out before the frame after it (module docs).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send_held(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send_held(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Records each write it is given; takes at most `limit` bytes per write.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        limit: Option<usize>,
        flushes: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = self.limit.map_or(buf.len(), |l| l.min(buf.len()));
            self.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn all(r: &Recorder) -> Vec<u8> {
        r.writes.concat()
    }

    #[tokio::test]
    async fn a_response_written_in_pieces_leaves_in_one_write_at_the_flush() {
        let mut c = Coalesce::new(Recorder::default());
        c.write_all(b"headers+data-head").await.unwrap();
        let payload = [7u8; 300];
        let parts = [io::IoSlice::new(b"frame-head"), io::IoSlice::new(&payload)];
        assert_eq!(c.write_vectored(&parts).await.unwrap(), 310);
        c.write_all(b"trailers").await.unwrap();
        assert!(
            c.get_ref().writes.is_empty(),
            "nothing leaves before the flush"
        );
        c.flush().await.unwrap();
        assert_eq!(c.get_ref().writes.len(), 1);
        assert_eq!(c.get_ref().flushes, 1);
        let mut want = b"headers+data-headframe-head".to_vec();
        want.extend_from_slice(&payload);
        want.extend_from_slice(b"trailers");
        assert_eq!(all(c.get_ref()), want);
    }

    #[tokio::test]
    async fn partial_writes_resume_in_order_and_shutdown_sends_what_is_held() {
        let mut c = Coalesce::new(Recorder {
            limit: Some(3),
            ..Default::default()
        });
        c.write_all(b"abcdefgh").await.unwrap();
        c.flush().await.unwrap();
        assert_eq!(all(c.get_ref()), b"abcdefgh");
        c.write_all(b"ij").await.unwrap();
        c.shutdown().await.unwrap();
        assert_eq!(all(c.get_ref()), b"abcdefghij");
    }

    #[tokio::test]
    async fn past_the_limit_what_is_held_goes_first_and_a_large_write_passes_through() {
        let mut c = Coalesce::new(Recorder::default());
        c.write_all(b"small").await.unwrap();
        let large = vec![1u8; HELD_MAX + 1];
        c.write_all(&large).await.unwrap();
        let r = c.get_ref();
        assert_eq!(
            r.writes.len(),
            2,
            "the held bytes, then the large write itself"
        );
        assert_eq!(r.writes[0], b"small");
        assert_eq!(r.writes[1], large);
        // Filling up to the limit holds; one byte more sends the held bytes first.
        let mut c = Coalesce::new(Recorder::default());
        c.write_all(&vec![2u8; HELD_MAX]).await.unwrap();
        assert!(c.get_ref().writes.is_empty());
        c.write_all(b"x").await.unwrap();
        assert_eq!(c.get_ref().writes.len(), 1);
        c.flush().await.unwrap();
        assert_eq!(c.get_ref().writes[1], b"x");
    }
}
