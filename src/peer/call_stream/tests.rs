//! The call stream against a stand-in leader served by tonic over loopback TCP.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::borrow::Cow;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{LeaderAnswer, LeaderCall};
use crate::command::{Command, CommandResult};
use crate::peer::{LeaseCall, LeaseReply, PeerClients, Refusal, LOG_INDEX_KEY};
use crate::proto::peer::peer_server::{Peer, PeerServer};
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};
use crate::raft::Member;
use crate::transport::Transport;

/// How the stand-in leader treats the call stream.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers forwards in pairs, the second call of each pair first.
    Reversed,
    /// A release without the call stream: unary calls only.
    Older,
    /// Takes one call, then ends the stream with an error, unanswered.
    Breaks,
}

struct Leader {
    mode: Mode,
    streams: Arc<AtomicUsize>,
    unary: Arc<AtomicUsize>,
}

type Answers = Pin<Box<dyn Stream<Item = Result<Payload, Status>> + Send>>;

fn unimplemented() -> Status {
    Status::unimplemented("not in this test")
}

/// A forward of a revoke of lease `id` is answered as applied at index `id`.
fn answer(call: LeaderCall<'_>) -> LeaderAnswer {
    match call {
        LeaderCall::Forward(cmd) => match cmd.into_owned() {
            Command::LeaseRevoke { id } => {
                LeaderAnswer::Forward(Ok((CommandResult::Done, id as u64)))
            }
            _ => LeaderAnswer::Forward(Err(Refusal::Stopped)),
        },
        LeaderCall::ReadIndex => LeaderAnswer::ReadIndex(None),
        LeaderCall::Lease(LeaseCall::KeepAlive(id)) => {
            LeaderAnswer::Lease(LeaseReply::KeepAlive(id * 10))
        }
        LeaderCall::Lease(_) => LeaderAnswer::Lease(LeaseReply::NotLeader),
    }
}

fn tagged(id: u64, answer: LeaderAnswer) -> Result<Payload, Status> {
    Ok(Payload {
        data: encode(&(id, answer)).unwrap(),
    })
}

#[tonic::async_trait]
impl Peer for Leader {
    type StreamAppendStream = Answers;
    type CallsStream = Answers;

    async fn calls(&self, req: Request<Streaming<Payload>>) -> Result<Response<Answers>, Status> {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let calls = req.into_inner().map(|p| {
            let p = p.expect("a call");
            decode::<(u64, LeaderCall)>(&p.data).expect("a call decodes")
        });
        match self.mode {
            Mode::Older => Err(unimplemented()),
            Mode::Reversed => {
                let answers = calls.chunks(2).flat_map(|pair| {
                    let answers: Vec<_> = pair
                        .into_iter()
                        .rev()
                        .map(|(id, call)| tagged(id, answer(call)))
                        .collect();
                    futures::stream::iter(answers)
                });
                Ok(Response::new(answers.boxed()))
            }
            Mode::Breaks => {
                let answers = calls
                    .take(1)
                    .map(|_| Err(Status::internal("the leader went away")));
                Ok(Response::new(answers.boxed()))
            }
        }
    }

    async fn forward(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        self.unary.fetch_add(1, Ordering::SeqCst);
        let cmd: Command = decode(&req.into_inner().data).unwrap();
        let LeaderAnswer::Forward(answer) = answer(LeaderCall::Forward(Cow::Owned(cmd))) else {
            unreachable!()
        };
        let index = answer.as_ref().map_or(0, |a| a.1);
        let body = answer.map(|a| a.0);
        let mut resp = Response::new(Payload {
            data: encode(&body).unwrap(),
        });
        resp.metadata_mut().insert(LOG_INDEX_KEY, index.into());
        Ok(resp)
    }

    async fn append_entries(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn stream_append(
        &self,
        _: Request<Streaming<Payload>>,
    ) -> Result<Response<Answers>, Status> {
        Err(unimplemented())
    }
    async fn install_snapshot(
        &self,
        _: Request<Streaming<Payload>>,
    ) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
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
    async fn read_index(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn lease_keep_alive(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
    async fn heard(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
        Err(unimplemented())
    }
}

/// Serves a stand-in leader on loopback; returns it as a member, and its stream and unary
/// call counts.
async fn leader(mode: Mode) -> (Member, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (streams, unary) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let svc = PeerServer::new(Leader {
        mode,
        streams: streams.clone(),
        unary: unary.clone(),
    });
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming),
    );
    let member = Member {
        name: "leader".into(),
        peer_urls: vec![url],
    };
    (member, streams, unary)
}

fn revoke(id: i64) -> Command {
    Command::LeaseRevoke { id }
}

#[tokio::test]
async fn answers_reach_their_own_callers_in_any_order_on_one_stream() {
    // Goal: many calls share one stream and each caller gets the answer to its own call,
    // whatever order the leader answers in.
    let (member, streams, unary) = leader(Mode::Reversed).await;
    let clients = PeerClients::new(2, Transport::default());
    let (three, four) = (revoke(3), revoke(4));
    let (a, b) = tokio::join!(
        clients.forward(1, &member, &three),
        clients.forward(1, &member, &four)
    );
    assert_eq!(a.expect("answered").index, 3);
    assert_eq!(b.expect("answered").index, 4);
    let (lease, read) = tokio::join!(
        clients.lease_call(1, &member, &LeaseCall::KeepAlive(5)),
        clients.read_index(1, &member)
    );
    assert!(
        matches!(lease, Some(LeaseReply::KeepAlive(50))),
        "{lease:?}"
    );
    assert!(read.is_none());
    assert_eq!(
        streams.load(Ordering::SeqCst),
        1,
        "one stream for every call"
    );
    assert_eq!(unary.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_leader_of_an_older_release_gets_unary_calls() {
    // Goal: mid rolling upgrade, a follower's writes still reach a leader without the stream.
    let (member, streams, unary) = leader(Mode::Older).await;
    let clients = PeerClients::new(2, Transport::default());
    for id in [7, 8] {
        let proposed = clients
            .forward(1, &member, &revoke(id))
            .await
            .expect("answered");
        assert_eq!(proposed.index, id as u64);
    }
    assert_eq!(
        streams.load(Ordering::SeqCst),
        1,
        "asked once, then remembered"
    );
    assert_eq!(unary.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_write_on_a_broken_stream_is_ambiguous_and_an_unreachable_leader_is_not() {
    // Goal: a follower retries a write elsewhere only when the leader surely never saw it.
    let (member, _, _) = leader(Mode::Breaks).await;
    let clients = PeerClients::new(2, Transport::default());
    let lost = clients.forward(1, &member, &revoke(1)).await;
    assert!(matches!(lost, Err(Refusal::LeaderChanged)), "{lost:?}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gone = Member {
        name: "gone".into(),
        peer_urls: vec![url],
    };
    let refused = clients.forward(3, &gone, &revoke(1)).await;
    assert!(matches!(refused, Err(Refusal::NotLeader)), "{refused:?}");
}
