//! Outbound peer channels: dial, size limits, link faults and a cache with forgetting.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::call_stream::{CallFailed, CallStream, LeaderAnswer, LeaderCall};
use super::PeerChannel;
use crate::proto::peer::peer_client::PeerClient;
use crate::raft::{Member, NodeId};
use crate::transport::Transport;

/// Large enough for a full batch of maximum-size entries.
pub const PEER_MESSAGE_MAX_BYTES: usize = 64 << 20;

/// Why a peer cannot be called right now.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    #[error("link to {0:x} is cut")]
    Cut(NodeId),
    #[error("cannot dial {url}: {reason}")]
    Dial { url: String, reason: String },
}

/// One member's channels to its peers, keyed by peer URL (a member re-added at another URL
/// gets a fresh channel).
pub struct PeerClients {
    self_id: NodeId,
    transport: Transport,
    cache: Mutex<BTreeMap<String, PeerClient<PeerChannel>>>,
    /// Peer URLs that answered a replication stream with "unimplemented": members still on a
    /// release before streams, mid rolling upgrade. They get unary calls until redialled.
    unary_only: Mutex<BTreeSet<String>>,
    /// The open call stream to each leader this member has called (see `call_stream`).
    call_streams: Mutex<BTreeMap<String, Arc<CallStream>>>,
    /// Peer URLs whose release has no call stream: they get unary calls until redialled.
    no_call_stream: Mutex<BTreeSet<String>>,
}

impl PeerClients {
    pub fn new(self_id: NodeId, transport: Transport) -> PeerClients {
        PeerClients {
            self_id,
            transport,
            cache: Mutex::new(BTreeMap::new()),
            unary_only: Mutex::new(BTreeSet::new()),
            call_streams: Mutex::new(BTreeMap::new()),
            no_call_stream: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Whether the link to `target` is cut now; a stream opened before the cut checks this
    /// for every message, as a new call would.
    pub fn is_cut(&self, target: NodeId) -> bool {
        self.transport.faults.is_cut(self.self_id, target)
    }

    /// A client for `target`, which Raft's membership knows as `member`. Channels connect
    /// lazily, so this never waits; a cut link fails at once, as a refused connection would.
    pub fn client(
        &self,
        target: NodeId,
        member: &Member,
    ) -> Result<PeerClient<PeerChannel>, Unreachable> {
        if self.is_cut(target) {
            return Err(Unreachable::Cut(target));
        }
        let url = peer_url(member);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(url) {
            return Ok(c.clone());
        }
        let tls = self.transport.peer_tls.as_ref();
        let channel =
            PeerChannel::dial(&self.transport.net, url, tls).map_err(|e| Unreachable::Dial {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let c = PeerClient::new(channel)
            .max_decoding_message_size(PEER_MESSAGE_MAX_BYTES)
            .max_encoding_message_size(PEER_MESSAGE_MAX_BYTES);
        cache.insert(url.to_string(), c.clone());
        Ok(c)
    }

    /// Drops the channel to `member` after a failure: a connection that died silently (a
    /// partition, a crashed peer) must be redialled, not reused.
    pub fn forget(&self, member: &Member) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer_url(member));
        // Its calls in flight end as lost when the stream closes.
        self.call_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer_url(member));
        // It may come back upgraded.
        self.unary_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer_url(member));
        self.no_call_stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer_url(member));
    }

    /// Makes `call` of the leader `target` on the call stream, opening one if none is open.
    /// `Unsupported` means the caller makes the unary call instead.
    pub(super) async fn leader_call(
        &self,
        target: NodeId,
        member: &Member,
        call: &LeaderCall<'_>,
    ) -> Result<LeaderAnswer, CallFailed> {
        let url = peer_url(member);
        if self
            .no_call_stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(url)
        {
            return Err(CallFailed::Unsupported);
        }
        let client = self
            .client(target, member)
            .map_err(|_| CallFailed::NotSent)?;
        let stream = {
            let mut streams = self.call_streams.lock().unwrap_or_else(|e| e.into_inner());
            match streams.get(url) {
                Some(open) if !open.is_ended() => open.clone(),
                _ => {
                    let stream = Arc::new(CallStream::open(client));
                    streams.insert(url.to_string(), stream.clone());
                    stream
                }
            }
        };
        let answer = stream.call(call).await;
        match answer {
            Err(CallFailed::Unsupported) => {
                self.no_call_stream
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(url.to_string());
            }
            // A broken stream may sit on a dead connection: redial.
            Err(_) => self.forget(member),
            Ok(_) => {}
        }
        answer
    }

    /// Whether `member` takes only unary append-entries calls (see `unary_only`).
    pub fn is_unary_only(&self, member: &Member) -> bool {
        self.unary_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(peer_url(member))
    }

    pub fn set_unary_only(&self, member: &Member) {
        self.unary_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer_url(member).to_string());
    }
}

/// Members are dialled at their first peer URL, as etcd's transport prefers it.
fn peer_url(member: &Member) -> &str {
    member.peer_urls.first().map(String::as_str).unwrap_or("")
}
