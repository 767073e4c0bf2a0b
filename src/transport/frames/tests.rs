//! Frames against the real generated peer client and server, over loopback TCP.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};

use super::{serve, FrameChannel};
use crate::proto::peer::peer_client::PeerClient;
use crate::proto::peer::peer_server::{Peer, PeerServer};
use crate::proto::peer::Payload;
use crate::transport::{Conn, Incoming, Network};

/// Dials loopback TCP for frames; listens nowhere (tests bind their own listeners).
struct Loopback;

#[tonic::async_trait]
impl Network for Loopback {
    async fn listen(&self, url: &str) -> io::Result<Incoming> {
        Err(io::Error::other(format!("{url}: not in this test")))
    }
    fn channel(&self, url: &str) -> io::Result<Channel> {
        Err(io::Error::other(format!("{url}: not in this test")))
    }
    fn frames(&self) -> bool {
        true
    }
    async fn connect(&self, url: &str) -> io::Result<Conn> {
        let addr = url.trim_start_matches("http://");
        Ok(Conn::new(tokio::net::TcpStream::connect(addr).await?))
    }
}

/// Echoes; `fail` and `wait` payloads fail or never answer (telling `dropped` when the
/// server gives the call up).
struct Echo {
    dropped: mpsc::UnboundedSender<()>,
}

struct TellOnDrop(mpsc::UnboundedSender<()>);

impl Drop for TellOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

fn unimplemented() -> Status {
    Status::unimplemented("not in this test")
}

type Answers = Pin<Box<dyn Stream<Item = Result<Payload, Status>> + Send>>;

#[tonic::async_trait]
impl Peer for Echo {
    type StreamAppendStream = Answers;
    type CallsStream = Answers;

    async fn append_entries(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let p = req.into_inner();
        match p.data.as_slice() {
            b"fail" => Err(Status::failed_precondition("told to fail")),
            b"wait" => {
                let _tell = TellOnDrop(self.dropped.clone());
                std::future::pending().await
            }
            _ => Ok(Response::new(p)),
        }
    }
    async fn stream_append(
        &self,
        req: Request<Streaming<Payload>>,
    ) -> Result<Response<Answers>, Status> {
        let answers = req.into_inner().map_ok(|mut p| {
            p.data.insert(0, b'>');
            p
        });
        Ok(Response::new(Box::pin(answers)))
    }
    async fn install_snapshot(
        &self,
        req: Request<Streaming<Payload>>,
    ) -> Result<Response<Payload>, Status> {
        let chunks: Vec<Payload> = req.into_inner().try_collect().await?;
        let total: usize = chunks.iter().map(|c| c.data.len()).sum();
        Ok(Response::new(Payload {
            data: total.to_string().into_bytes(),
        }))
    }
    async fn vote(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn pre_vote(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn transfer_leader(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn forward(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn read_index(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn lease_keep_alive(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn heard(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn calls(&self, _: Request<Streaming<Payload>>) -> Result<Response<Answers>, Status> {
        Err(unimplemented())
    }
}

/// Serves `Echo` in frames on `listener`; returns what tells of calls the server gave up.
fn serve_echo(listener: tokio::net::TcpListener) -> mpsc::UnboundedReceiver<()> {
    let (dropped, rx) = mpsc::unbounded_channel();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener)
        .map_ok(Conn::new)
        .boxed();
    let svc = PeerServer::new(Echo { dropped }).max_decoding_message_size(64 << 20);
    tokio::spawn(serve(incoming, svc, std::future::pending()));
    rx
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

fn client(url: &str) -> PeerClient<FrameChannel> {
    PeerClient::new(FrameChannel::new(Arc::new(Loopback), url))
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

fn payload(data: &[u8]) -> Payload {
    Payload {
        data: data.to_vec(),
    }
}

#[tokio::test]
async fn unary_streaming_and_failing_calls_answer_as_over_http2() {
    let (l, url) = listener().await;
    serve_echo(l);
    let mut c = client(&url);

    let echo = c.append_entries(payload(b"hello")).await.unwrap();
    assert_eq!(echo.into_inner().data, b"hello");

    // A message far larger than one TCP segment or frame buffer arrives whole.
    let big = vec![7u8; 5 << 20];
    let echo = c.append_entries(payload(&big)).await.unwrap();
    assert_eq!(echo.into_inner().data, big);

    let err = c.append_entries(payload(b"fail")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "told to fail");

    let err = c.vote(payload(b"")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // Each answer of a bidirectional stream arrives while the request stream is still open.
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(payload(b"one")).unwrap();
    let mut answers = c
        .stream_append(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answers.message().await.unwrap().unwrap().data, b">one");
    tx.send(payload(b"two")).unwrap();
    assert_eq!(answers.message().await.unwrap().unwrap().data, b">two");
    drop(tx);
    assert!(
        answers.message().await.unwrap().is_none(),
        "the stream ends"
    );

    let chunks = futures::stream::iter([payload(&[1; 1000]), payload(&[2; 24])]);
    let total = c.install_snapshot(chunks).await.unwrap().into_inner();
    assert_eq!(total.data, b"1024");
}

#[tokio::test]
async fn a_refused_connection_says_so_and_the_next_call_redials() {
    // Goal: a follower retries a forwarded write only when the failure names the connection
    // (peer::leader), so a refusal must say "connect"; after it, the channel dials again.
    let (l, url) = listener().await;
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut c = client(&url);
    let err = c.append_entries(payload(b"x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("connect"), "{}", err.message());

    serve_echo(tokio::net::TcpListener::bind(addr).await.unwrap());
    let echo = c.append_entries(payload(b"back")).await.unwrap();
    assert_eq!(echo.into_inner().data, b"back");
}

#[tokio::test]
async fn a_link_that_breaks_mid_call_fails_it_without_claiming_a_refusal() {
    // Goal: a call that may have reached the peer must not look refused, or a forwarded
    // write could be proposed twice.
    let (l, url) = listener().await;
    let (accepted, got) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        let _ = accepted.send(());
        // Hangs up with the call unanswered.
    });
    let mut c = client(&url);
    let err = c.append_entries(payload(b"x")).await.unwrap_err();
    got.await.unwrap();
    assert_eq!(err.code(), Code::Unavailable);
    let msg = err.message().to_ascii_lowercase();
    assert!(
        !msg.contains("connect") && !msg.contains("refused"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_caller_that_gives_up_stops_the_call_on_the_server() {
    let (l, url) = listener().await;
    let mut dropped = serve_echo(l);
    let mut c = client(&url);
    let call = c.append_entries(payload(b"wait"));
    assert!(tokio::time::timeout(Duration::from_millis(100), call)
        .await
        .is_err());
    tokio::time::timeout(Duration::from_secs(5), dropped.recv())
        .await
        .expect("the server drops the abandoned call")
        .unwrap();
    // The connection still serves.
    let echo = c.append_entries(payload(b"after")).await.unwrap();
    assert_eq!(echo.into_inner().data, b"after");
}
