//! The serving half: each call's frames become an `http::Request` handed to the same tower
//! service tonic's server would call (a `PeerServer`), and its response goes back as frames.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::header::HeaderMap;
use http_body_util::BodyExt;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::codec::Framed;
use tonic::body::Body;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};

use super::{
    codec, get_headers, get_str, put_headers, Frame, KeepAlive, CANCEL, DATA, END, HEAD, OPEN,
    PING, PONG, RESET, TRAILERS,
};
use crate::transport::{Conn, Incoming};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The served calls, with their types erased once at `serve`.
type Calls = BoxCloneService<http::Request<Requests>, http::Response<Body>, BoxError>;

/// Serves `svc` on every connection `incoming` yields until `shutdown` resolves; then the
/// open connections are dropped with their calls.
pub async fn serve<S, B>(mut incoming: Incoming, svc: S, shutdown: impl Future<Output = ()>)
where
    S: Service<http::Request<Requests>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let svc: Calls =
        BoxCloneService::new(svc.map_response(|r| r.map(Body::new)).map_err(Into::into));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            next = incoming.next() => match next {
                Some(Ok(conn)) => {
                    conns.spawn(serve_conn(conn, svc.clone()));
                }
                Some(Err(e)) => tracing::debug!(error = %e, "peer connection not accepted"),
                None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    shutdown.await;
}

/// A call's request body, as the peer sends it.
pub struct Requests {
    rx: UnboundedReceiver<Bytes>,
}

impl http_body::Body for Requests {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|data| data.map(|d| Ok(http_body::Frame::data(d))))
    }
}

/// A call being served: where its request data goes (until the request ends), and its task.
struct Call {
    body: Option<UnboundedSender<Bytes>>,
    task: AbortHandle,
}

enum Reply {
    Frame(Frame),
    Done(u64),
}

async fn serve_conn(conn: Conn, svc: Calls) {
    let mut framed = Framed::new(conn, codec());
    let (out, mut replies) = mpsc::unbounded_channel();
    let mut calls: BTreeMap<u64, Call> = BTreeMap::new();
    // Dropping the set when the connection ends cancels every call still being served.
    let mut tasks = JoinSet::new();
    let mut keepalive = KeepAlive::new();
    loop {
        tokio::select! {
            biased;
            frame = framed.next() => {
                let Some(Ok(bytes)) = frame else { return };
                keepalive.heard();
                let Some(frame) = Frame::decode(bytes.freeze()) else { return };
                let id = frame.call;
                match frame.kind {
                    OPEN => {
                        let Some((req, body)) = request(frame.payload) else { return };
                        let task = tasks.spawn(answer(svc.clone(), req, id, out.clone()));
                        calls.insert(id, Call { body: Some(body), task });
                    }
                    DATA => {
                        if let Some(tx) = calls.get(&id).and_then(|c| c.body.as_ref()) {
                            let _ = tx.send(frame.payload);
                        }
                    }
                    END => {
                        if let Some(call) = calls.get_mut(&id) {
                            call.body = None;
                        }
                    }
                    CANCEL => {
                        if let Some(call) = calls.remove(&id) {
                            call.task.abort();
                        }
                    }
                    PING => {
                        let pong = Frame::new(PONG, 0, Bytes::new()).encode();
                        if framed.send(pong).await.is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
            reply = replies.recv() => {
                let mut next = reply;
                while let Some(reply) = next {
                    match reply {
                        Reply::Frame(frame) => {
                            if framed.feed(frame.encode()).await.is_err() {
                                return;
                            }
                        }
                        Reply::Done(id) => {
                            calls.remove(&id);
                        }
                    }
                    next = replies.try_recv().ok();
                }
                if SinkExt::<Bytes>::flush(&mut framed).await.is_err() {
                    return;
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            // The caller pings every second; silence means a partition ate the link.
            silent = keepalive.due() => {
                if silent {
                    return;
                }
            }
        }
    }
}

/// The request an OPEN frame describes, and where its body's data goes.
fn request(mut payload: Bytes) -> Option<(http::Request<Requests>, UnboundedSender<Bytes>)> {
    let path = get_str(&mut payload)?;
    let headers = get_headers(payload)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .version(http::Version::HTTP_2)
        .uri(http::Uri::from_maybe_shared(path).ok()?)
        .body(Requests { rx })
        .ok()?;
    *req.headers_mut() = headers;
    Some((req, tx))
}

/// Serves one call and queues its answer: the head, the body's data, then the trailers.
async fn answer(svc: Calls, req: http::Request<Requests>, id: u64, out: UnboundedSender<Reply>) {
    let send = |kind, payload| out.send(Reply::Frame(Frame::new(kind, id, payload)));
    let resp = match svc.oneshot(req).await {
        Ok(resp) => resp,
        Err(e) => {
            let _ = send(RESET, Bytes::from(e.to_string()));
            let _ = out.send(Reply::Done(id));
            return;
        }
    };
    let (parts, mut body) = resp.into_parts();
    let mut head = BytesMut::new();
    head.put_u16(parts.status.as_u16());
    put_headers(&mut head, &parts.headers);
    let _ = send(HEAD, head.freeze());
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => {
                    let _ = send(DATA, data);
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = t;
                    }
                }
            },
            Err(e) => {
                let _ = send(RESET, Bytes::from(e.to_string()));
                let _ = out.send(Reply::Done(id));
                return;
            }
        }
    }
    let mut end = BytesMut::new();
    put_headers(&mut end, &trailers);
    let _ = send(TRAILERS, end.freeze());
    let _ = out.send(Reply::Done(id));
}
