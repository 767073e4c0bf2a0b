//! Heartbeats on one long-lived replication stream per follower, one at a time.
//!
//! openraft's heartbeat worker hands each heartbeat over as a stream of exactly one request,
//! and every linearizable read on the leader waits for a heartbeat round to a majority. As a
//! unary call each round cost an HTTP/2 stream of its own, a header block each way and a task
//! on the follower; measured on forwarded writes, that is ~150 µs more per round trip than a
//! message on a stream that is already open. In the simulator, heartbeats are most of the
//! traffic. Here the worker's connection keeps one `StreamAppend` stream open and sends each
//! heartbeat as one message on it; the follower answers in order, as it does a replication
//! session.
//!
//! The worker sends a heartbeat only after the last one was answered or given up; it gives one
//! up at its heartbeat interval, which a slow link (another zone; the simulator's delays)
//! exceeds often. A heartbeat given up stays counted, and its late answer is skipped when the
//! next heartbeat reads its own, so the lane survives slow answers: closing it instead would
//! add a round trip (opening the stream) to every later heartbeat, and on such a link they
//! would all be given up. No answer at all within `ttl`, or a broken stream, closes the lane;
//! the next heartbeat reopens it.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use openraft::errors::{NetworkError, RPCError};
use openraft::raft::AppendEntriesRequest;
use tokio::sync::Mutex;

use super::append_stream::{answer, dial};
use super::raft_network::{unreachable, PeerConnection, StreamAnswer};
use crate::proto::peer::Payload;
use crate::raft::codec::encode;
use crate::raft::typ::TypeConfig;

struct Open {
    requests: mpsc::UnboundedSender<Payload>,
    answers: tonic::Streaming<Payload>,
    /// Heartbeats sent and not yet answered, the last one the caller's: the answers come in
    /// order, so the ones before it belong to heartbeats given up.
    unanswered: usize,
}

/// A connection's heartbeat stream, when one is open.
#[derive(Clone, Default)]
pub struct Lane(Arc<Mutex<Option<Open>>>);

impl Lane {
    /// Sends `heartbeat` to `conn`'s target and waits up to `ttl` for its answer.
    pub(super) async fn send(
        &self,
        conn: &PeerConnection,
        heartbeat: AppendEntriesRequest<TypeConfig>,
        ttl: Duration,
    ) -> StreamAnswer {
        let mut lane = self.0.lock().await;
        if lane.is_none() {
            *lane = Some(Self::open(conn, ttl).await?);
        }
        let answer = match lane.as_mut() {
            Some(open) => Self::exchange(open, conn, heartbeat, ttl).await,
            None => Err(unreachable("heartbeat stream closed")),
        };
        if answer.is_err() {
            *lane = None;
        }
        answer
    }

    /// Sends one heartbeat on `open` and reads answers up to its own.
    async fn exchange(
        open: &mut Open,
        conn: &PeerConnection,
        heartbeat: AppendEntriesRequest<TypeConfig>,
        ttl: Duration,
    ) -> StreamAnswer {
        if conn.is_cut() {
            return Err(unreachable("link cut"));
        }
        let data = encode(&heartbeat).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if open.requests.unbounded_send(Payload { data }).is_err() {
            return Err(unreachable("heartbeat stream closed"));
        }
        open.unanswered += 1;
        loop {
            let payload = match crate::clock::timeout(ttl, open.answers.message()).await {
                Err(_) => return Err(conn.timed_out(ttl)),
                Ok(Err(status)) => return Err(conn.refused(status)),
                Ok(Ok(None)) => return Err(unreachable("heartbeat stream ended")),
                Ok(Ok(Some(payload))) => payload,
            };
            open.unanswered -= 1;
            if open.unanswered == 0 {
                return answer(conn, &payload);
            }
        }
    }

    async fn open(conn: &PeerConnection, ttl: Duration) -> Result<Open, RPCError<TypeConfig>> {
        let (requests, outgoing) = mpsc::unbounded();
        let answers = dial(conn, outgoing, ttl).await?;
        Ok(Open {
            requests,
            answers,
            unanswered: 0,
        })
    }
}
