//! Raft replication to peers: openraft's `RaftNetworkFactory` over the shared `PeerClients`.
//!
//! Every call is bounded by openraft's soft TTL; a refused or cut connection is `Unreachable`
//! (openraft backs off), any other failure a `NetworkError` (openraft retries). After a timeout
//! or a failure the channel is forgotten, so the next call redials.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{stream_append_sequential, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::heartbeat_lane::Lane;
use super::PeerClients;
use crate::proto::peer::peer_client::PeerClient;
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};
use crate::raft::rejoin::Admission;
use crate::raft::snapshot_data::SnapshotData;
use crate::raft::typ::{Member, NodeId, Snapshot, TypeConfig, Vote};
use crate::storage::{blocking, ValueRead};

pub(super) type StreamAnswer = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// Snapshot chunks stay well under gRPC's message limit.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

pub struct NetworkFactory {
    self_id: NodeId,
    clients: Arc<PeerClients>,
    rpc_timeout_min: Duration,
    admission: Arc<Admission>,
}

impl NetworkFactory {
    /// `rpc_timeout_min` bounds an RPC from below (the member's election timeout): openraft
    /// asks for append-entries and heartbeats to end within 3/4 of a heartbeat interval, which
    /// a link whose round trip is longer than that (another zone; the simulator's delays) never
    /// meets, so every append would time out, be redialled and retried, and nothing would
    /// commit. A slow answer within an election timeout is still an answer.
    pub fn new(
        self_id: NodeId,
        clients: Arc<PeerClients>,
        rpc_timeout_min: Duration,
        admission: Arc<Admission>,
    ) -> NetworkFactory {
        NetworkFactory {
            self_id,
            clients,
            rpc_timeout_min,
            admission,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        PeerConnection {
            self_id: self.self_id,
            target,
            member: node.clone(),
            clients: self.clients.clone(),
            rpc_timeout_min: self.rpc_timeout_min,
            admission: self.admission.clone(),
            heartbeats: Lane::default(),
        }
    }
}

#[derive(Clone)]
pub struct PeerConnection {
    self_id: NodeId,
    target: NodeId,
    member: Member,
    clients: Arc<PeerClients>,
    rpc_timeout_min: Duration,
    admission: Arc<Admission>,
    /// Where openraft's heartbeat worker, which keeps its connection, sends its heartbeats.
    heartbeats: Lane,
}

pub(super) fn unreachable(msg: impl ToString) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other(msg.to_string())))
}

impl PeerConnection {
    pub(super) fn client(&self) -> Result<PeerClient<super::PeerChannel>, RPCError<TypeConfig>> {
        self.clients
            .client(self.target, &self.member)
            .map_err(unreachable)
    }

    /// A stalled or failed stream may be dead for good: redial next time.
    fn forget(&self) {
        self.clients.forget(&self.member);
    }

    pub(super) fn is_cut(&self) -> bool {
        self.clients.is_cut(self.target)
    }

    /// No answer within `ttl`: the connection may have died silently, so it is redialled.
    pub(super) fn timed_out(&self, ttl: Duration) -> RPCError<TypeConfig> {
        self.forget();
        RPCError::Timeout(Timeout {
            action: openraft::network::RPCTypes::AppendEntries,
            id: self.self_id,
            target: self.target,
            timeout: ttl,
        })
    }

    /// A refused connection is `Unreachable` (openraft backs off) and is redialled; any other
    /// failure is a `NetworkError` (openraft retries).
    pub(super) fn refused(&self, status: tonic::Status) -> RPCError<TypeConfig> {
        if status.code() == tonic::Code::Unimplemented {
            // A member on an older release: the next session retries with unary calls.
            self.clients.set_unary_only(&self.member);
        }
        if status.code() == tonic::Code::Unavailable {
            self.forget();
            return unreachable(status.message());
        }
        RPCError::Network(NetworkError::new(&io::Error::other(
            status.message().to_string(),
        )))
    }

    async fn call<Req, Resp, F, Fut>(
        &mut self,
        req: &Req,
        option: &RPCOption,
        f: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(PeerClient<super::PeerChannel>, Payload) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Payload>, tonic::Status>>,
    {
        let client = self.client()?;
        let data = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let ttl = option.soft_ttl().max(self.rpc_timeout_min);
        let res = crate::clock::timeout(ttl, f(client, Payload { data })).await;
        let resp = match res {
            Err(_) => return Err(self.timed_out(ttl)),
            Ok(Err(status)) => return Err(self.refused(status)),
            Ok(Ok(resp)) => resp.into_inner(),
        };
        let resp = decode(&resp.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.note_heard()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        Ok(resp)
    }

    /// Records on disk that the target answered, before Raft may count the answer (see
    /// `raft::heard`).
    pub(super) fn note_heard(&self) -> io::Result<()> {
        self.admission.heard.note(self.target)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, p| async move {
            c.append_entries(p).await
        })
        .await
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, StreamAnswer>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        if self.clients.is_unary_only(&self.member) {
            return stream_append_sequential(self, input, option);
        }
        let ttl = option.soft_ttl().max(self.rpc_timeout_min);
        // A stream of exactly one request is a heartbeat (a linearizable read's leadership
        // check among them): it goes on the heartbeat lane, not a session of its own.
        if input.size_hint() == (1, Some(1)) {
            return Box::pin(async move {
                let mut input = input;
                let Some(heartbeat) = input.next().await else {
                    return Ok(futures::stream::empty().boxed());
                };
                let answer = self.heartbeats.send(self, heartbeat, ttl).await;
                Ok(futures::stream::once(async move { answer }).boxed())
            });
        }
        let conn = self.clone();
        Box::pin(async move {
            let answers: BoxStream<'s, StreamAnswer> =
                super::append_stream::open(conn, input, ttl).await?;
            Ok(answers)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, p| async move { c.vote(p).await })
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, p| async move { c.pre_vote(p).await })
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&req, &option, |mut c, p| async move {
            c.transfer_leader(p).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(rpc_to_streaming)?;
        let data = blocking(|| snapshot.snapshot.open())
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        // The length rides after the meta, where a member built before it ignores it: the
        // receiver holds the bytes in one buffer of the right size, and refuses a stream that
        // ends short of it.
        let head = encode(&(vote, snapshot.meta.clone(), data.size()))
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let frames = futures::stream::iter([Payload { data: head }]).chain(chunks(data));
        let fut = client.install_snapshot(frames);
        let resp = match crate::clock::timeout(option.hard_ttl(), fut).await {
            Err(_) => {
                self.forget();
                return Err(StreamingError::Network(NetworkError::new(
                    &io::Error::other("snapshot transfer timed out"),
                )));
            }
            Ok(Err(status)) => {
                self.forget();
                return Err(StreamingError::Network(NetworkError::new(
                    &io::Error::other(status.message().to_string()),
                )));
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let resp =
            decode(&resp.data).map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        self.note_heard()
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        Ok(resp)
    }
}

/// A snapshot's bytes as the stream's chunks, read as they are sent. The last chunk goes only
/// once the whole snapshot has read back sound (a file's checksum is known at its end), so a
/// damaged one reaches the receiver short, and is refused there.
fn chunks(data: Box<dyn ValueRead>) -> impl Stream<Item = Payload> + Send + 'static {
    let left = data.size();
    futures::stream::unfold(Some((data, left)), |state| async move {
        let (mut data, left) = state?;
        let n = left.min(SNAPSHOT_CHUNK_BYTES as u64);
        let read = blocking(|| {
            let mut chunk = vec![0; n as usize];
            data.read_exact(&mut chunk)?;
            match left == n {
                true => data.finish().map(|()| (chunk, None)),
                false => Ok((chunk, Some((data, left - n)))),
            }
        });
        match read {
            Ok((chunk, rest)) if n > 0 => Some((Payload { data: chunk }, rest)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("a snapshot being sent could not be read: {e}");
                None
            }
        }
    })
}

fn rpc_to_streaming(e: RPCError<TypeConfig>) -> StreamingError<TypeConfig> {
    match e {
        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
        RPCError::Timeout(t) => StreamingError::Timeout(t),
        RPCError::Network(n) => StreamingError::Network(n),
        RPCError::RemoteError(r) => {
            StreamingError::Network(NetworkError::new(&io::Error::other(r.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::SeqCst;

    use futures::StreamExt;
    use openraft::network::RaftNetworkFactory;
    use tonic::{Request, Response, Status, Streaming};

    use super::*;
    use crate::proto::peer::peer_server::{Peer, PeerServer};
    use crate::raft::heard::HeardFrom;
    use crate::storage::MemoryBackend;
    use crate::transport::Transport;

    /// A peer that answers appends with success and counts how they came: unary calls or
    /// replication streams. Without `streams` it is a member on a release before replication
    /// streams, which refuses them as "unimplemented".
    #[derive(Default)]
    struct Recorder {
        streams: bool,
        unary_calls: AtomicUsize,
        streams_opened: AtomicUsize,
    }

    impl Recorder {
        fn counts(&self) -> (usize, usize) {
            (
                self.unary_calls.load(SeqCst),
                self.streams_opened.load(SeqCst),
            )
        }
    }

    fn old() -> Status {
        Status::unimplemented("not in this release")
    }

    #[tonic::async_trait]
    impl Peer for Arc<Recorder> {
        type StreamAppendStream =
            Pin<Box<dyn futures::Stream<Item = Result<Payload, Status>> + Send>>;
        type CallsStream = Self::StreamAppendStream;

        async fn append_entries(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            self.unary_calls.fetch_add(1, SeqCst);
            let ok = AppendEntriesResponse::<TypeConfig>::Success;
            Ok(Response::new(Payload {
                data: encode(&ok).unwrap(),
            }))
        }
        async fn stream_append(
            &self,
            req: Request<Streaming<Payload>>,
        ) -> Result<Response<Self::StreamAppendStream>, Status> {
            if !self.streams {
                return Err(old());
            }
            self.streams_opened.fetch_add(1, SeqCst);
            // A stream answers each request with a `StreamAppendResult`: matched nothing yet.
            let answer: StreamAppendResult<TypeConfig> = Ok(None);
            let data = encode(&answer).unwrap();
            let answers = req
                .into_inner()
                .map(move |_| Ok(Payload { data: data.clone() }));
            Ok(Response::new(Box::pin(answers)))
        }
        async fn vote(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn pre_vote(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn install_snapshot(
            &self,
            _: Request<Streaming<Payload>>,
        ) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn transfer_leader(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn forward(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn read_index(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn lease_keep_alive(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn heard(&self, _: Request<Payload>) -> Result<Response<Payload>, Status> {
            Err(old())
        }
        async fn calls(
            &self,
            _: Request<Streaming<Payload>>,
        ) -> Result<Response<Self::CallsStream>, Status> {
            Err(old())
        }
    }

    fn heartbeat() -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![],
        }
    }

    /// A connection from member 1 to a member served by `peer` on loopback.
    async fn connect_to(peer: impl Peer) -> PeerConnection {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(PeerServer::new(peer))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let disk = Arc::new(MemoryBackend::new());
        let admission = Arc::new(Admission::new(HeardFrom::open(disk).unwrap(), true));
        let clients = Arc::new(PeerClients::new(1, Transport::default()));
        let mut factory = NetworkFactory::new(1, clients, Duration::from_secs(5), admission);
        let member = Member {
            name: "peer".into(),
            peer_urls: vec![url],
        };
        factory.new_client(2, &member).await
    }

    #[tokio::test]
    async fn heartbeats_share_one_stream_and_more_requests_open_a_session() {
        // Goal: a heartbeat (openraft hands it over as a stream of exactly one request) goes
        // on the connection's one heartbeat stream, not a call or a stream of its own; two
        // requests open a replication session.
        let peer = Arc::new(Recorder {
            streams: true,
            ..Default::default()
        });
        let mut conn = connect_to(peer.clone()).await;
        let option = RPCOption::new(Duration::from_secs(5));

        for _ in 0..3 {
            let one = Box::pin(futures::stream::iter([heartbeat()]));
            let answers: Vec<_> = conn
                .stream_append(one, option.clone())
                .await
                .unwrap()
                .collect()
                .await;
            assert!(matches!(answers.as_slice(), [Ok(Ok(None))]), "{answers:?}");
        }
        assert_eq!(peer.counts(), (0, 1), "(unary calls, streams)");

        let two = Box::pin(futures::stream::iter([heartbeat(), heartbeat()]));
        let answers: Vec<_> = conn
            .stream_append(two, option)
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            matches!(answers.as_slice(), [Ok(Ok(None)), Ok(Ok(None))]),
            "{answers:?}"
        );
        assert_eq!(peer.counts(), (0, 2), "(unary calls, streams)");
    }

    #[tokio::test]
    async fn a_member_without_streams_gets_unary_heartbeats() {
        // Goal: mid rolling upgrade, a leader on this release still reaches a member on an
        // older one with heartbeats (and so serves linearizable reads): the refused stream
        // turns the next heartbeat into a unary call.
        let peer = Arc::new(Recorder::default());
        let mut conn = connect_to(peer.clone()).await;
        let option = RPCOption::new(Duration::from_secs(5));
        let one = || Box::pin(futures::stream::iter([heartbeat()]));
        let first = match conn.stream_append(one(), option.clone()).await {
            Ok(answers) => answers.collect::<Vec<_>>().await,
            Err(e) => vec![Err(e)],
        };
        assert!(
            matches!(first.as_slice(), [Err(RPCError::Network(_))]),
            "the stream is refused: {first:?}"
        );
        let answers: Vec<_> = conn
            .stream_append(one(), option)
            .await
            .unwrap()
            .collect()
            .await;
        assert!(matches!(answers.as_slice(), [Ok(Ok(None))]), "{answers:?}");
        assert_eq!(peer.counts(), (1, 0), "(unary calls, streams)");
    }

    #[tokio::test]
    async fn a_member_without_replication_streams_gets_unary_calls() {
        // Goal: mid rolling upgrade, a leader on this release still replicates to a member on
        // an older one: its "unimplemented" answer to the stream turns the next session into
        // unary calls, which it answers.
        let peer = Arc::new(Recorder::default());
        let mut conn = connect_to(peer.clone()).await;
        let option = RPCOption::new(Duration::from_secs(5));

        // Two requests: a single one (a heartbeat) always goes unary.
        let two = || Box::pin(futures::stream::iter([heartbeat(), heartbeat()]));
        let first = conn.stream_append(two(), option.clone()).await;
        assert!(
            matches!(first, Err(RPCError::Network(_))),
            "the stream is refused"
        );
        drop(first);
        let answers = conn
            .stream_append(two(), option)
            .await
            .unwrap_or_else(|e| panic!("the unary session opens: {e}"));
        let answers: Vec<_> = answers.collect().await;
        assert!(
            matches!(answers.as_slice(), [Ok(Ok(None)), Ok(Ok(None))]),
            "{answers:?}"
        );
        assert_eq!(peer.counts(), (2, 0), "(unary calls, streams)");
    }

    /// A snapshot whose bytes read back fine but whose checksum, known at the end, does not.
    struct Damaged(crate::storage::HeldValue);

    impl io::Read for Damaged {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl ValueRead for Damaged {
        fn size(&self) -> u64 {
            self.0.size()
        }

        fn finish(self: Box<Self>) -> io::Result<()> {
            Err(io::Error::other("checksum mismatch"))
        }
    }

    #[tokio::test]
    async fn a_snapshot_is_sent_in_chunks_and_a_damaged_one_stops_short_of_its_length() {
        // Goal: the chunks are the snapshot's bytes in order; one that does not read back
        // sound withholds its last chunk, so the receiver, which knows the length, refuses it.
        let bytes: Vec<u8> = (0..SNAPSHOT_CHUNK_BYTES * 5 / 2).map(|i| i as u8).collect();
        let held = Box::new(crate::storage::HeldValue::new(bytes.clone()));
        let sent: Vec<Payload> = chunks(held).collect().await;
        let sizes: Vec<usize> = sent.iter().map(|p| p.data.len()).collect();
        let half = SNAPSHOT_CHUNK_BYTES / 2;
        assert_eq!(sizes, [SNAPSHOT_CHUNK_BYTES, SNAPSHOT_CHUNK_BYTES, half]);
        assert_eq!(concat(&sent), bytes);

        let damaged = Box::new(Damaged(crate::storage::HeldValue::new(bytes.clone())));
        let sent: Vec<Payload> = chunks(damaged).collect().await;
        assert_eq!(sent.len(), 2, "the last chunk is withheld");
        assert_eq!(concat(&sent), bytes[..2 * SNAPSHOT_CHUNK_BYTES]);

        let empty = Box::new(crate::storage::HeldValue::new(Vec::new()));
        assert_eq!(chunks(empty).count().await, 0);
    }

    fn concat(sent: &[Payload]) -> Vec<u8> {
        sent.iter().flat_map(|p| p.data.iter().copied()).collect()
    }
}
