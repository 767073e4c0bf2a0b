//! Replication over one gRPC stream per replication session: the leader's side.
//!
//! openraft hands a replication session a stream of AppendEntries requests that lasts as long
//! as the member leads (between writes it waits for new entries or a new commit index). Sent
//! as unary calls, every request cost a new HTTP/2 stream, a header block each way and a task
//! on the follower, and openraft's sequential adapter waited for each answer before sending
//! the next. On one stream a request is one DATA frame, and the next request (the commit index
//! of the write just acknowledged, or the next write) goes out while the follower still syncs
//! the last; the follower answers in order (`service`, through `Raft::stream_append`).
//!
//! A request left unanswered for `ttl` ends the stream as a timeout and the channel is
//! redialled next time, because a partition drops packets without a reset. The in-process
//! cluster's cut links are checked for every message, as every unary call checks them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::{AbortHandle, Abortable};
use futures::{Stream, StreamExt};
use openraft::base::BoxStream;
use openraft::errors::{NetworkError, RPCError};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use tonic::Streaming;

use super::raft_network::PeerConnection;
use crate::clock::{self, LocalInstant};
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};
use crate::raft::typ::TypeConfig;

type Answer = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// When each request still waiting for its answer was sent, oldest first.
#[derive(Clone, Default)]
struct Unanswered(Arc<Mutex<VecDeque<LocalInstant>>>);

impl Unanswered {
    fn lock(&self) -> MutexGuard<'_, VecDeque<LocalInstant>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn overdue(&self, ttl: Duration) -> bool {
        self.lock()
            .front()
            .is_some_and(|sent| sent.elapsed() >= ttl)
    }
}

/// Ends the requests when the answers end or are dropped.
struct EndRequests(AbortHandle);

impl Drop for EndRequests {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn network_error(e: impl std::error::Error + 'static) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&e))
}

/// Opens the stream to `conn`'s target and returns the follower's answers, one per request.
pub(super) async fn open<S>(
    conn: PeerConnection,
    requests: S,
    ttl: Duration,
) -> Result<BoxStream<'static, Answer>, RPCError<TypeConfig>>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
{
    // openraft's backoff after a failure runs inside the request stream, before its next
    // request: taking the first one before dialling keeps a dead peer from being redialled
    // at once, in a loop, as the unary adapter never did.
    let mut requests = requests;
    let Some(first) = requests.next().await else {
        return Ok(futures::stream::empty().boxed());
    };
    let requests = futures::stream::iter([first]).chain(requests);
    let unanswered = Unanswered::default();
    let payloads = {
        let (conn, unanswered) = (conn.clone(), unanswered.clone());
        // Ending the requests early (a cut link, a request that cannot be encoded) ends the
        // answers short of them; openraft then starts a new session, which finds the cut.
        requests.scan((), move |_, req| {
            let payload = match encode(&req) {
                Ok(_) if conn.is_cut() => None,
                Ok(data) => {
                    unanswered.lock().push_back(clock::now());
                    Some(Payload { data })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode an append-entries request");
                    None
                }
            };
            futures::future::ready(payload)
        })
    };
    // hyper polls the requests from its own task, and openraft's request stream never ends
    // by itself: it waits for the next entry, holding the session's state. Left running after
    // the session, it would keep the connection open and take the next session's entries.
    let (abort, registration) = AbortHandle::new_pair();
    let end_requests = EndRequests(abort);
    let payloads = Abortable::new(payloads, registration);
    let answers = dial(&conn, payloads, ttl).await?;
    let first = Some((answers, conn, unanswered, end_requests));
    let answers = futures::stream::unfold(first, move |state| async move {
        let (mut answers, conn, unanswered, end_requests) = state?;
        loop {
            let answer = match clock::timeout(ttl, answers.message()).await {
                // Idle (no request waiting) or waiting less than `ttl`: keep listening.
                Err(_) if !unanswered.overdue(ttl) => continue,
                Err(_) => Err(conn.timed_out(ttl)),
                Ok(Err(status)) => Err(conn.refused(status)),
                Ok(Ok(None)) => return None,
                Ok(Ok(Some(payload))) => {
                    unanswered.lock().pop_front();
                    answer(&conn, &payload)
                }
            };
            // A refused append (conflict, higher vote) ends the session, as an error does.
            let more = matches!(answer, Ok(Ok(_)));
            let state = (answers, conn, unanswered, end_requests);
            return Some((answer, more.then_some(state)));
        }
    });
    Ok(answers.boxed())
}

/// Opens a `StreamAppend` stream to `conn`'s target that carries `payloads`: its answers, or
/// why it did not open within `ttl`.
pub(super) async fn dial<S>(
    conn: &PeerConnection,
    payloads: S,
    ttl: Duration,
) -> Result<Streaming<Payload>, RPCError<TypeConfig>>
where
    S: Stream<Item = Payload> + Send + 'static,
{
    let mut client = conn.client()?;
    match clock::timeout(ttl, client.stream_append(payloads)).await {
        Err(_) => Err(conn.timed_out(ttl)),
        Ok(Err(status)) => Err(conn.refused(status)),
        Ok(Ok(answers)) => Ok(answers.into_inner()),
    }
}

pub(super) fn answer(conn: &PeerConnection, payload: &Payload) -> Answer {
    if conn.is_cut() {
        return Err(super::raft_network::unreachable("link cut"));
    }
    let result = decode(&payload.data).map_err(network_error)?;
    conn.note_heard().map_err(network_error)?;
    Ok(result)
}
