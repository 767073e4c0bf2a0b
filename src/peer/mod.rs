//! Peer traffic, both halves, in one place: everything members say to each other.
//!
//! Outbound, `PeerClients` dials peers over the member's `Transport`, caches one channel per
//! peer URL, applies the message-size limits and the in-process link faults, and forgets a
//! channel after a failure so a dead connection is redialled. Raft replication
//! (`raft_network`) and a follower's calls to its leader (`leader`: forwarded writes, read
//! index, lease calls) share it. Inbound, `service` decodes each peer RPC and hands it to a
//! `PeerHandler`, a narrow trait the server implements; Raft messages go straight to openraft.
//!
//! **Boundary:** nothing here decides anything; it moves typed messages between members.
//! Payloads are `raft::codec`-encoded in `quorumpeer.Payload`.

mod append_stream;
mod call_stream;
mod channel;
mod clients;
mod heartbeat_lane;
mod leader;
mod messages;
mod raft_network;
mod service;

pub use channel::PeerChannel;
pub use clients::{PeerClients, PEER_MESSAGE_MAX_BYTES};
pub use messages::{
    ConfigView, HeardReply, LeaseCall, LeaseReply, Proposed, ReadLogId, Refusal, LOG_INDEX_KEY,
};
pub use raft_network::NetworkFactory;
pub use service::{PeerHandler, PeerService};
