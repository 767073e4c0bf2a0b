//! A read-side shim that repairs HTTP/2 `:authority` headers carrying a URL scheme.
//!
//! etcdctl 3.4 dials per-endpoint Maintenance calls (`endpoint status`, `hashkv`, `defrag`,
//! `move-leader`) through gRPC's passthrough resolver with the endpoint as given, so a user who
//! writes `--endpoints=http://127.0.0.1:2379` sends `:authority: http://127.0.0.1:2379`. Go's
//! server tolerates that; the `h2` crate rejects it with a PROTOCOL_ERROR reset and offers no
//! switch. So each client connection's inbound bytes pass through here. The first header block
//! is HPACK-decoded: a gRPC client names one authority per connection, so when that one is
//! fine the block and everything after it flow unchanged (decoding every block cost a third of
//! a member's CPU under load: HPACK's Huffman tables are rebuilt per string). When it carries
//! a scheme, every header block of the connection is decoded (with the client's table), the
//! authority stripped, and re-encoded (with our own table toward the server), so the two HPACK
//! tables never diverge; other frames are copied as they are. A connection that does not open
//! with the HTTP/2 preface (plain HTTP/1.1, e.g. `/version`) passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which the server side never raises here.
const MAX_FRAME_LEN: usize = 16_384;
/// A header block larger than this is refused; h2's own header list limit is far smaller.
const MAX_HEADER_BLOCK_LEN: usize = 1 << 20;

enum Mode {
    /// Still reading the connection preface.
    Preface,
    /// Reading frames up to the end of the first header block.
    FirstBlock,
    /// The connection's authority carries a scheme: every header block is rewritten.
    Rewrite,
    /// Not HTTP/2, or its authority needs no repair: bytes flow unchanged.
    Passthrough,
}

pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    input: BytesMut,
    output: BytesMut,
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    /// A header block split over CONTINUATION frames: (stream id, END_STREAM, fragments).
    pending: Option<(u32, bool, BytesMut)>,
    /// The first header block's frames as they came, sent on unchanged if it needs no repair.
    first_frames: BytesMut,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            mode: Mode::Preface,
            input: BytesMut::new(),
            output: BytesMut::new(),
            decoder: loona_hpack::Decoder::new(),
            encoder: loona_hpack::Encoder::new(),
            pending: None,
            first_frames: BytesMut::new(),
            eof: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Moves every complete unit of `input` to `output`, rewriting header blocks.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match self.mode {
                Mode::Passthrough => {
                    let all = self.input.split();
                    self.output.extend_from_slice(&all);
                    return Ok(());
                }
                Mode::Preface => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    let preface = self.input.split_to(PREFACE.len());
                    self.output.extend_from_slice(&preface);
                    self.mode = Mode::FirstBlock;
                }
                Mode::FirstBlock | Mode::Rewrite => {
                    if self.input.len() < FRAME_HEADER_LEN {
                        return Ok(());
                    }
                    let len = frame_len(&self.input);
                    if self.input.len() < FRAME_HEADER_LEN + len {
                        return Ok(());
                    }
                    let kind = self.input[3];
                    let flags = self.input[4];
                    let stream = u32::from_be_bytes([
                        self.input[5],
                        self.input[6],
                        self.input[7],
                        self.input[8],
                    ]) & 0x7fff_ffff;
                    let frame = self.input.split_to(FRAME_HEADER_LEN + len);
                    if matches!(self.mode, Mode::FirstBlock)
                        && matches!(kind, TYPE_HEADERS | TYPE_CONTINUATION)
                    {
                        if self.first_frames.len() + frame.len() > MAX_HEADER_BLOCK_LEN {
                            return Err(bad("header block too large"));
                        }
                        self.first_frames.extend_from_slice(&frame);
                    }
                    match kind {
                        TYPE_HEADERS => self.headers(stream, flags, &frame[FRAME_HEADER_LEN..])?,
                        TYPE_CONTINUATION => {
                            self.continuation(flags, &frame[FRAME_HEADER_LEN..])?
                        }
                        _ => self.output.extend_from_slice(&frame),
                    }
                }
            }
        }
    }

    fn headers(&mut self, stream: u32, flags: u8, mut payload: &[u8]) -> io::Result<()> {
        let mut pad = 0usize;
        if flags & FLAG_PADDED != 0 {
            pad = *payload.first().ok_or_else(|| bad("empty padded HEADERS"))? as usize;
            payload = &payload[1..];
        }
        if flags & FLAG_PRIORITY != 0 {
            payload = payload
                .get(5..)
                .ok_or_else(|| bad("short HEADERS priority"))?;
        }
        let fragment = payload
            .get(..payload.len().saturating_sub(pad))
            .ok_or_else(|| bad("bad HEADERS padding"))?;
        let block = BytesMut::from(fragment);
        let end_stream = flags & FLAG_END_STREAM != 0;
        if flags & FLAG_END_HEADERS != 0 {
            self.emit(stream, end_stream, &block)
        } else {
            self.pending = Some((stream, end_stream, block));
            Ok(())
        }
    }

    fn continuation(&mut self, flags: u8, payload: &[u8]) -> io::Result<()> {
        let (stream, end_stream, mut block) = self
            .pending
            .take()
            .ok_or_else(|| bad("CONTINUATION without HEADERS"))?;
        if block.len() + payload.len() > MAX_HEADER_BLOCK_LEN {
            return Err(bad("header block too large"));
        }
        block.extend_from_slice(payload);
        if flags & FLAG_END_HEADERS != 0 {
            self.emit(stream, end_stream, &block)
        } else {
            self.pending = Some((stream, end_stream, block));
            Ok(())
        }
    }

    fn emit(&mut self, stream: u32, end_stream: bool, block: &[u8]) -> io::Result<()> {
        let headers = self
            .decoder
            .decode(block)
            .map_err(|e| bad(&format!("hpack: {e:?}")))?;
        if matches!(self.mode, Mode::FirstBlock) {
            let frames = std::mem::take(&mut self.first_frames);
            let needs_repair = headers
                .iter()
                .any(|(name, value)| name == b":authority" && strip_scheme(value) != *value);
            if !needs_repair {
                self.output.extend_from_slice(&frames);
                self.mode = Mode::Passthrough;
                return Ok(());
            }
            self.mode = Mode::Rewrite;
        }
        let headers: Vec<(Vec<u8>, Vec<u8>)> = headers
            .into_iter()
            .map(|(name, value)| {
                if name == b":authority" {
                    (name, strip_scheme(&value))
                } else {
                    (name, value)
                }
            })
            .collect();
        let encoded = self
            .encoder
            .encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
        let chunks: Vec<&[u8]> = if encoded.is_empty() {
            vec![&encoded[..]]
        } else {
            encoded.chunks(MAX_FRAME_LEN).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let kind = if i == 0 {
                TYPE_HEADERS
            } else {
                TYPE_CONTINUATION
            };
            let mut flags = 0;
            if i == 0 && end_stream {
                flags |= FLAG_END_STREAM;
            }
            if i == last {
                flags |= FLAG_END_HEADERS;
            }
            put_frame_header(&mut self.output, chunk.len(), kind, flags, stream);
            self.output.extend_from_slice(chunk);
        }
        Ok(())
    }
}

/// The payload length a frame header (at least its first three bytes) announces.
fn frame_len(header: &[u8]) -> usize {
    ((header[0] as usize) << 16) | ((header[1] as usize) << 8) | header[2] as usize
}

fn put_frame_header(out: &mut impl BufMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_u8((len >> 16) as u8);
    out.put_u8((len >> 8) as u8);
    out.put_u8(len as u8);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// `http://host:port/` -> `host:port`; anything else unchanged.
fn strip_scheme(value: &[u8]) -> Vec<u8> {
    let s = value
        .strip_prefix(b"http://")
        .or_else(|| value.strip_prefix(b"https://"))
        .unwrap_or(value);
    let s = s.strip_suffix(b"/").unwrap_or(s);
    s.to_vec()
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Passthrough) && this.input.is_empty() {
                // Nothing on this connection needs repair: read into the caller's buffer, with
                // no copy through ours (a zeroed 16 KiB scratch buffer and two copies per read
                // had cost 2 % of a member's CPU serving one-client gets).
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            this.input.reserve(MAX_FRAME_LEN);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.input) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    this.eof = true;
                    // Whatever is left is an incomplete frame; hand it over as is.
                    let rest = this.input.split();
                    this.output.extend_from_slice(&rest);
                }
                Poll::Ready(Ok(_)) => this.process()?,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S> tonic::transport::server::Connected for AuthorityFix<S> {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_stripped_from_authority_only_when_present() {
        // Goal: etcdctl's `http://host:port` becomes `host:port`; good values stay.
        assert_eq!(strip_scheme(b"http://127.0.0.1:2379"), b"127.0.0.1:2379");
        assert_eq!(strip_scheme(b"https://h:1/"), b"h:1");
        assert_eq!(strip_scheme(b"127.0.0.1:2379"), b"127.0.0.1:2379");
    }

    #[tokio::test]
    async fn header_block_is_rewritten_and_other_frames_pass() {
        // Goal: a HEADERS frame with a bad authority comes out decodable and fixed; a DATA
        // frame after it is untouched.
        use tokio::io::AsyncReadExt;
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode(vec![
            (&b":method"[..], &b"POST"[..]),
            (&b":authority"[..], &b"http://127.0.0.1:2379"[..]),
        ]);
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&headers_frame(1, &block));
        wire.extend_from_slice(&[0, 0, 2, 0x0, 0x1, 0, 0, 0, 1, b'h', b'i']);
        let mut fix = AuthorityFix::new(&wire[..]);
        let mut out = Vec::new();
        fix.read_to_end(&mut out).await.unwrap();
        assert_eq!(&out[..PREFACE.len()], PREFACE);
        let rest = &out[PREFACE.len()..];
        let hlen = frame_len(rest);
        let mut dec = loona_hpack::Decoder::new();
        let headers = dec.decode(&rest[9..9 + hlen]).unwrap();
        assert!(headers.contains(&(b":authority".to_vec(), b"127.0.0.1:2379".to_vec())));
        assert_eq!(
            &rest[9 + hlen..],
            &[0, 0, 2, 0x0, 0x1, 0, 0, 0, 1, b'h', b'i']
        );
    }

    /// A HEADERS frame (END_HEADERS) on `stream` holding `block`.
    fn headers_frame(stream: u8, block: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        put_frame_header(
            &mut f,
            block.len(),
            TYPE_HEADERS,
            FLAG_END_HEADERS,
            stream.into(),
        );
        f.extend_from_slice(block);
        f
    }

    /// The header blocks of every HEADERS frame after the preface in `wire`, decoded in order
    /// with one table, as the server decodes them.
    fn decoded_blocks(wire: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut dec = loona_hpack::Decoder::new();
        let mut rest = &wire[PREFACE.len()..];
        let mut blocks = Vec::new();
        while rest.len() >= FRAME_HEADER_LEN {
            let len = frame_len(rest);
            if rest[3] == TYPE_HEADERS {
                let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
                blocks.push(dec.decode(payload).expect("a block the server can decode"));
            }
            rest = &rest[FRAME_HEADER_LEN + len..];
        }
        blocks
    }

    async fn through_fix(wire: &[u8]) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        AuthorityFix::new(wire)
            .read_to_end(&mut out)
            .await
            .expect("the shim reads");
        out
    }

    #[tokio::test]
    async fn a_connection_with_a_plain_authority_passes_byte_for_byte() {
        // Goal: only the first block is looked at; a good connection is not re-encoded. The
        // blocks are written by hand: the first adds the authority to the dynamic table
        // (literal with incremental indexing), the later ones name it by index 62 and are one
        // byte long, which a re-encoding would not reproduce.
        let authority = b"127.0.0.1:2379";
        let mut first = vec![0x83, 0x41, authority.len() as u8];
        first.extend_from_slice(authority);
        let mut wire = PREFACE.to_vec();
        for stream in [1u8, 3, 5] {
            let block = if stream == 1 {
                first.clone()
            } else {
                vec![0x83, 0xbe]
            };
            wire.extend_from_slice(&headers_frame(stream, &block));
            wire.extend_from_slice(&[0, 0, 2, 0x0, 0x1, 0, 0, 0, stream, b'h', b'i']);
        }
        assert_eq!(
            decoded_blocks(&wire)[2],
            vec![
                (b":method".to_vec(), b"POST".to_vec()),
                (b":authority".to_vec(), authority.to_vec())
            ]
        );
        assert_eq!(through_fix(&wire).await, wire);
    }

    #[tokio::test]
    async fn every_block_of_a_connection_with_a_scheme_is_repaired_and_stays_decodable() {
        // Goal: after the first block is rewritten, later blocks (which refer to the client's
        // dynamic table) still decode on the server's side, with the authority repaired.
        let mut enc = loona_hpack::Encoder::new();
        let mut wire = PREFACE.to_vec();
        for stream in [1u8, 3, 5] {
            let block = enc.encode(vec![
                (&b":method"[..], &b"POST"[..]),
                (&b":authority"[..], &b"http://127.0.0.1:2379"[..]),
                (&b"x-stream"[..], format!("s{stream}").as_bytes()),
            ]);
            wire.extend_from_slice(&headers_frame(stream, &block));
        }
        let blocks = decoded_blocks(&through_fix(&wire).await);
        assert_eq!(blocks.len(), 3);
        for (block, stream) in blocks.iter().zip([1u8, 3, 5]) {
            assert!(
                block.contains(&(b":authority".to_vec(), b"127.0.0.1:2379".to_vec())),
                "{block:?}"
            );
            assert!(
                block.contains(&(b"x-stream".to_vec(), format!("s{stream}").into_bytes())),
                "{block:?}"
            );
        }
    }
}
