//! A follower's calls to its leader (forwarded writes, read indexes, lease calls), many at a
//! time on one gRPC stream per leader.
//!
//! As unary calls, each forwarded write cost an HTTP/2 stream of its own: a header block each
//! way, a task on the leader, and several task hand-offs on both sides. Measured with a
//! follower as the endpoint of one client's puts, getting the call to the leader's handler and
//! its answer back took about 340 µs of a 1.1 ms put, where a message on the replication
//! stream takes about 100 µs each way. etcd's follower likewise hands a proposal to its leader
//! over the stream it already has. Here each call is one message tagged with an id, the leader
//! answers each as soon as it is done (in any order), and the follower matches answers to
//! callers by id.
//!
//! A leader of an older release answers the stream "unimplemented"; the caller then makes the
//! unary call, as before, until the channel is forgotten.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::{mpsc, oneshot};
use serde::{Deserialize, Serialize};

use super::{LeaseCall, LeaseReply, ReadLogId, Refusal};
use crate::command::{Command, CommandResult};
use crate::proto::peer::peer_client::PeerClient;
use crate::proto::peer::Payload;
use crate::raft::codec::{decode, encode};

use super::PeerChannel;

/// What a follower asks of its leader. The caller lends its command; the leader owns it.
#[derive(Debug, Serialize, Deserialize)]
pub enum LeaderCall<'a> {
    Forward(Cow<'a, Command>),
    ReadIndex,
    Lease(LeaseCall),
}

/// The leader's answer to a `LeaderCall` of the same kind.
#[derive(Debug, Serialize, Deserialize)]
pub enum LeaderAnswer {
    /// What applying the command produced, and at which log index.
    Forward(Result<(CommandResult, u64), Refusal>),
    ReadIndex(Option<ReadLogId>),
    Lease(LeaseReply),
}

/// Why a call got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailed {
    /// It never reached the leader: the link is cut, or the stream could not be opened.
    NotSent,
    /// The stream broke after the call went out: the leader may have carried it out.
    Lost,
    /// The leader's release has no call stream.
    Unsupported,
}

type Waiter = oneshot::Sender<Result<LeaderAnswer, CallFailed>>;

#[derive(Default)]
struct Calls {
    next_id: u64,
    waiting: BTreeMap<u64, Waiter>,
    /// Set once the stream has ended, with why; no call is taken after that.
    ended: Option<CallFailed>,
}

/// One open stream to a leader, shared by every caller on this member.
pub struct CallStream {
    requests: mpsc::UnboundedSender<Payload>,
    calls: Arc<Mutex<Calls>>,
}

fn lock(calls: &Mutex<Calls>) -> MutexGuard<'_, Calls> {
    calls.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a caller's id out of the waiting calls when it stops waiting (an answer, or a caller
/// that gave up at its deadline), so abandoned calls do not pile up.
struct Unregister<'a>(&'a Mutex<Calls>, u64);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        lock(self.0).waiting.remove(&self.1);
    }
}

impl CallStream {
    /// Opens the stream on `client`'s channel. It is dialled in the background; calls made
    /// meanwhile wait for it.
    pub fn open(mut client: PeerClient<PeerChannel>) -> CallStream {
        let (requests, outgoing) = mpsc::unbounded();
        let calls = Arc::new(Mutex::new(Calls::default()));
        let driver_calls = calls.clone();
        tokio::spawn(async move {
            let why = match client.calls(outgoing).await {
                Err(status) => opening_failed(&status),
                Ok(answers) => {
                    let mut answers = answers.into_inner();
                    while let Ok(Some(payload)) = answers.message().await {
                        deliver(&driver_calls, &payload);
                    }
                    CallFailed::Lost
                }
            };
            let waiting = {
                let mut calls = lock(&driver_calls);
                calls.ended = Some(why);
                std::mem::take(&mut calls.waiting)
            };
            for waiter in waiting.into_values() {
                let _ = waiter.send(Err(why));
            }
        });
        CallStream { requests, calls }
    }

    /// Whether the stream has ended, so a new one must be opened for the next call.
    pub fn is_ended(&self) -> bool {
        lock(&self.calls).ended.is_some()
    }

    /// Sends `call` and waits for the leader's answer.
    pub async fn call(&self, call: &LeaderCall<'_>) -> Result<LeaderAnswer, CallFailed> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut calls = lock(&self.calls);
            if let Some(why) = calls.ended {
                return Err(why);
            }
            let id = calls.next_id;
            calls.next_id += 1;
            calls.waiting.insert(id, tx);
            id
        };
        let _unregister = Unregister(&self.calls, id);
        let data = encode(&(id, call)).map_err(|_| CallFailed::NotSent)?;
        if self.requests.unbounded_send(Payload { data }).is_err() {
            // The stream is closing: unless it already answered for this call, the call was
            // never sent.
            if lock(&self.calls).waiting.remove(&id).is_some() {
                return Err(CallFailed::NotSent);
            }
        }
        rx.await.unwrap_or(Err(CallFailed::Lost))
    }
}

/// Hands an answer to its caller; one for a caller that gave up is dropped.
fn deliver(calls: &Mutex<Calls>, payload: &Payload) {
    let Ok((id, answer)) = decode::<(u64, LeaderAnswer)>(&payload.data) else {
        tracing::warn!("cannot decode a leader's answer; dropped");
        return;
    };
    if let Some(waiter) = lock(calls).waiting.remove(&id) {
        let _ = waiter.send(Ok(answer));
    }
}

fn opening_failed(status: &tonic::Status) -> CallFailed {
    match status.code() {
        tonic::Code::Unimplemented => CallFailed::Unsupported,
        // The leader never saw the stream, so none of its calls.
        _ if super::leader::is_connect_failure(status) => CallFailed::NotSent,
        _ => CallFailed::Lost,
    }
}

#[cfg(test)]
mod tests;
