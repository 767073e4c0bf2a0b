//! gRPC calls between members without HTTP/2, for the simulator.
//!
//! Inside `quorum sim` every peer message (heartbeats above all: a leader sends one to each
//! follower every 50 ms) went through hyper and h2 twice, client and server side, over
//! turmoil's TCP; that framing was about a third of a simulated run's CPU. Here the same
//! tonic-generated client and server (and so the same codecs, size limits and status codes)
//! talk over one turmoil TCP connection in length-delimited frames: a call is opened with its
//! path and headers, its request and response bodies go as data frames, and its trailers end
//! it. Partitions, delays and crashes still act on the bytes in turmoil, as they did on h2's.
//!
//! Frame layout, after the length prefix: a kind byte, the call's id (u64, big-endian), then
//! the kind's payload. There is no flow control: the simulator's members and load are small,
//! and turmoil's socket capacity still pushes back on the writer.

mod client;
mod server;

pub use client::FrameChannel;
pub use server::serve;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::codec::LengthDelimitedCodec;

/// Client to server: a new call; payload is the path, then the request headers.
const OPEN: u8 = 1;
/// Either way: a chunk of a body.
const DATA: u8 = 2;
/// Client to server: the request body is complete.
const END: u8 = 3;
/// Client to server: the caller gave up; stop serving the call.
const CANCEL: u8 = 4;
/// Server to client: the response status and headers.
const HEAD: u8 = 5;
/// Server to client: the response trailers, which end the call.
const TRAILERS: u8 = 6;
/// Server to client: the call failed without a response.
const RESET: u8 = 7;
/// Keep-alive question and answer (call id 0): a connection whose peer went silent (a
/// partition drops turmoil's segments without a reset) must be noticed, as h2's pings do.
const PING: u8 = 8;
const PONG: u8 = 9;

/// As h2's keep-alives on a production channel (`transport::endpoint`): a ping a second, and
/// a connection that has said nothing for three more is dead.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// When a link has been silent too long. Time is tokio's, not the member's clock: the h2
/// keep-alives this stands in for ran on tokio's timer too, and in the simulator tokio's time
/// is turmoil's.
struct KeepAlive {
    checks: tokio::time::Interval,
    heard: tokio::time::Instant,
}

impl KeepAlive {
    fn new() -> KeepAlive {
        let now = tokio::time::Instant::now();
        KeepAlive {
            checks: tokio::time::interval_at(now + KEEPALIVE_INTERVAL, KEEPALIVE_INTERVAL),
            heard: now,
        }
    }

    /// The peer said something.
    fn heard(&mut self) {
        self.heard = tokio::time::Instant::now();
    }

    /// Waits for the next check (one a second); true when the peer has been silent too long.
    async fn due(&mut self) -> bool {
        self.checks.tick().await;
        self.heard.elapsed() > KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT
    }
}

/// A decoded frame.
struct Frame {
    kind: u8,
    call: u64,
    payload: Bytes,
}

impl Frame {
    fn new(kind: u8, call: u64, payload: Bytes) -> Frame {
        Frame {
            kind,
            call,
            payload,
        }
    }

    fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(9 + self.payload.len());
        b.put_u8(self.kind);
        b.put_u64(self.call);
        b.put_slice(&self.payload);
        b.freeze()
    }

    fn decode(mut b: Bytes) -> Option<Frame> {
        if b.len() < 9 {
            return None;
        }
        let kind = b.get_u8();
        let call = b.get_u64();
        Some(Frame::new(kind, call, b))
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        // A frame holds at most one gRPC message (which tonic already bounds) and its header.
        .max_frame_length(crate::peer::PEER_MESSAGE_MAX_BYTES + 1024)
        .new_codec()
}

/// Headers as (u16 length, name, u16 length, value) pairs.
fn put_headers(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        put_str(out, name.as_str().as_bytes());
        put_str(out, value.as_bytes());
    }
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    // Header names and values are far below 64 KiB; a longer one is cut, not sent corrupt.
    let s = &s[..s.len().min(u16::MAX as usize)];
    out.put_u16(s.len() as u16);
    out.put_slice(s);
}

fn get_str(b: &mut Bytes) -> Option<Bytes> {
    if b.len() < 2 {
        return None;
    }
    let n = b.get_u16() as usize;
    (b.len() >= n).then(|| b.split_to(n))
}

fn get_headers(mut b: Bytes) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    while b.has_remaining() {
        let name = HeaderName::from_bytes(&get_str(&mut b)?).ok()?;
        let value = HeaderValue::from_maybe_shared(get_str(&mut b)?).ok()?;
        headers.append(name, value);
    }
    Some(headers)
}

#[cfg(test)]
mod tests;
