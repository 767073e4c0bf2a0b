//! The gRPC edge: one file per etcd service. Each handler validates, calls the server facade,
//! and maps errors through `status`; none of them touches Raft or the store directly.

pub mod auth;
pub mod cluster;
pub mod election;
pub mod http;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod queue;
pub mod status;
pub mod watch;

/// etcd's `--max-request-bytes` default: larger requests get "request is too large".
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// gRPC's own receive limit, as etcd sets it: max request bytes plus 512 KiB of headroom.
pub const MAX_GRPC_RECV_BYTES: usize = MAX_REQUEST_BYTES + 512 * 1024;
