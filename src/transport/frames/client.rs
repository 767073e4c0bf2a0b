//! The calling half: a tower service that tonic's generated clients take in place of a
//! `Channel`. It connects lazily, carries every call over one connection, and redials after
//! the connection breaks, as a `Channel` does.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::header::HeaderMap;
use http_body_util::BodyExt;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::codec::Framed;
use tonic::body::Body;
use tonic::Status;

use super::{
    codec, get_headers, put_headers, put_str, Frame, KeepAlive, CANCEL, DATA, END, HEAD, OPEN,
    PING, RESET, TRAILERS,
};
use crate::transport::{Conn, Network, CONNECT_TIMEOUT};

/// Calls to one peer URL. Clones share the connection.
#[derive(Clone)]
pub struct FrameChannel {
    shared: Arc<Shared>,
}

struct Shared {
    net: Arc<dyn Network>,
    url: String,
    link: tokio::sync::Mutex<Option<Link>>,
}

/// A live connection: its writer's queue, and whether it still runs.
#[derive(Clone)]
struct Link {
    out: UnboundedSender<Out>,
    alive: Arc<AtomicBool>,
    next_call: Arc<AtomicU64>,
}

enum Out {
    /// Route call `id`'s answers to this sender; queued before the call's first frame.
    Register(u64, UnboundedSender<In>),
    Forget(u64),
    Frame(Frame),
}

/// What arrives for one call.
enum In {
    Head(http::StatusCode, HeaderMap),
    Data(Bytes),
    Trailers(HeaderMap),
    Failed(String),
}

impl FrameChannel {
    /// A channel to `url` over `net`; nothing is dialled until the first call.
    pub fn new(net: Arc<dyn Network>, url: &str) -> FrameChannel {
        FrameChannel {
            shared: Arc::new(Shared {
                net,
                url: url.to_string(),
                link: tokio::sync::Mutex::new(None),
            }),
        }
    }
}

impl tower::Service<http::Request<Body>> for FrameChannel {
    type Response = http::Response<Body>;
    type Error = Status;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { shared.call(req).await })
    }
}

/// The call was surely not sent. The words matter: a follower retries a forwarded write only
/// when the failure names the connection (see `peer::leader`).
fn not_sent(why: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("cannot connect: {why}"))
}

/// The call may have reached the peer.
fn broke(why: &str) -> Status {
    Status::unavailable(format!("peer link broke: {why}"))
}

impl Shared {
    async fn link(&self) -> Result<Link, Status> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref() {
            if link.alive.load(Ordering::Acquire) {
                return Ok(link.clone());
            }
        }
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, self.net.connect(&self.url)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(not_sent(format_args!("{}: {e}", self.url))),
            Err(_) => return Err(not_sent(format_args!("{}: timed out", self.url))),
        };
        let link = Link::start(conn);
        *slot = Some(link.clone());
        Ok(link)
    }

    async fn call(&self, req: http::Request<Body>) -> Result<http::Response<Body>, Status> {
        let link = self.link().await?;
        let id = link.next_call.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut open = BytesMut::new();
        put_str(&mut open, parts.uri.path().as_bytes());
        put_headers(&mut open, &parts.headers);
        link.out
            .send(Out::Register(id, tx))
            .and_then(|_| {
                link.out
                    .send(Out::Frame(Frame::new(OPEN, id, open.freeze())))
            })
            .map_err(|_| not_sent("the link had just closed"))?;
        // The request body is sent beside the response, so a streaming call is answered as
        // its requests arrive.
        let pump = tokio::spawn(send_body(body, id, link.out.clone()));
        let mut answers = Answers {
            rx,
            call: Call {
                id,
                out: link.out,
                pump: pump.abort_handle(),
                done: false,
            },
        };
        match answers.rx.recv().await {
            Some(In::Head(status, headers)) => {
                let mut resp = http::Response::new(Body::new(answers));
                *resp.status_mut() = status;
                *resp.headers_mut() = headers;
                Ok(resp)
            }
            Some(In::Failed(why)) => Err(broke(&why)),
            Some(_) => Err(Status::internal("peer answered a call before its head")),
            None => Err(broke("closed")),
        }
    }
}

async fn send_body(mut body: Body, id: u64, out: UnboundedSender<Out>) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            let _ = out.send(Out::Frame(Frame::new(CANCEL, id, Bytes::new())));
            return;
        };
        if let Ok(data) = frame.into_data() {
            if out.send(Out::Frame(Frame::new(DATA, id, data))).is_err() {
                return;
            }
        }
    }
    let _ = out.send(Out::Frame(Frame::new(END, id, Bytes::new())));
}

/// One call in flight. Dropped before its trailers (a timeout, a dropped stream), it tells
/// the peer to stop serving it.
struct Call {
    id: u64,
    out: UnboundedSender<Out>,
    pump: tokio::task::AbortHandle,
    done: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.pump.abort();
        if !self.done {
            let _ = self.out.send(Out::Forget(self.id));
            let _ = self
                .out
                .send(Out::Frame(Frame::new(CANCEL, self.id, Bytes::new())));
        }
    }
}

/// The response body: data frames, then the trailers.
struct Answers {
    rx: UnboundedReceiver<In>,
    call: Call,
}

impl http_body::Body for Answers {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        if self.call.done {
            return Poll::Ready(None);
        }
        let next = ready!(self.rx.poll_recv(cx));
        let frame = match next {
            Some(In::Data(data)) => return Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
            Some(In::Trailers(trailers)) if trailers.is_empty() => None,
            Some(In::Trailers(trailers)) => Some(Ok(http_body::Frame::trailers(trailers))),
            Some(In::Failed(why)) => Some(Err(broke(&why))),
            Some(In::Head(..)) => Some(Err(Status::internal("peer sent a second head"))),
            None => Some(Err(broke("closed"))),
        };
        self.call.done = true;
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.call.done
    }
}

impl Link {
    fn start(conn: Conn) -> Link {
        let (out, rx) = mpsc::unbounded_channel();
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(conn, rx, alive.clone()));
        Link {
            out,
            alive,
            next_call: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// The connection's one task: writes what calls queue, routes what the peer answers, and
/// pings. It ends when every channel and call has let go of it, or the connection breaks;
/// then each call still waiting is told why.
async fn run(conn: Conn, mut rx: UnboundedReceiver<Out>, alive: Arc<AtomicBool>) {
    let mut framed = Framed::new(conn, codec());
    let mut calls: BTreeMap<u64, UnboundedSender<In>> = BTreeMap::new();
    let mut keepalive = KeepAlive::new();
    let why: String = 'conn: loop {
        tokio::select! {
            biased;
            frame = framed.next() => match frame {
                Some(Ok(bytes)) => {
                    keepalive.heard();
                    match Frame::decode(bytes.freeze()) {
                        Some(frame) => route(&mut calls, frame),
                        None => break "a malformed frame".into(),
                    }
                }
                Some(Err(e)) => break io_failure("read", e),
                None => break "the peer hung up".into(),
            },
            out = rx.recv() => {
                let Some(out) = out else { return };
                let mut next = Some(out);
                // Everything queued goes out in one flush.
                while let Some(out) = next {
                    match out {
                        Out::Register(id, tx) => {
                            calls.insert(id, tx);
                        }
                        Out::Forget(id) => {
                            calls.remove(&id);
                        }
                        Out::Frame(frame) => {
                            if let Err(e) = framed.feed(frame.encode()).await {
                                break 'conn io_failure("write", e);
                            }
                        }
                    }
                    next = rx.try_recv().ok();
                }
                if let Err(e) = SinkExt::<Bytes>::flush(&mut framed).await {
                    break io_failure("write", e);
                }
            }
            silent = keepalive.due() => {
                if silent {
                    break "no answer to keep-alives".into();
                }
                if let Err(e) = framed.send(Frame::new(PING, 0, Bytes::new()).encode()).await {
                    break io_failure("write", e);
                }
            }
        }
    };
    alive.store(false, Ordering::Release);
    fail(calls, &why);
}

/// The operating system's words ("connection reset") would read as a refusal to
/// `peer::leader`; the call may have been delivered, so they stay in the log.
fn io_failure(what: &str, e: std::io::Error) -> String {
    tracing::debug!(error = %e, "peer link {what} failed");
    format!("{what} failed")
}

fn fail(calls: BTreeMap<u64, UnboundedSender<In>>, why: &str) {
    for tx in calls.into_values() {
        let _ = tx.send(In::Failed(why.to_string()));
    }
}

fn route(calls: &mut BTreeMap<u64, UnboundedSender<In>>, frame: Frame) {
    let id = frame.call;
    let answer = match frame.kind {
        HEAD => {
            let mut payload = frame.payload;
            let status = (payload.remaining() >= 2)
                .then(|| payload.get_u16())
                .and_then(|s| http::StatusCode::from_u16(s).ok());
            match (status, get_headers(payload)) {
                (Some(status), Some(headers)) => In::Head(status, headers),
                _ => In::Failed("a malformed head".into()),
            }
        }
        DATA => In::Data(frame.payload),
        TRAILERS => match get_headers(frame.payload) {
            Some(trailers) => In::Trailers(trailers),
            None => In::Failed("malformed trailers".into()),
        },
        RESET => In::Failed(String::from_utf8_lossy(&frame.payload).into_owned()),
        // A pong has done its work by arriving (`heard`); unknown kinds are ignored.
        _ => return,
    };
    let last = matches!(answer, In::Trailers(_) | In::Failed(_));
    if let Some(tx) = calls.get(&id) {
        let _ = tx.send(answer);
    }
    if last {
        calls.remove(&id);
    }
}
