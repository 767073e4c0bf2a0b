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
pub mod too_large;
pub mod watch;

/// Who a request says it is from: the `token` metadata (the gateway's `authorization` header
/// as a fallback, as etcd reads it) and the client certificate's common name, if the TLS
/// layer verified one.
pub fn credentials<T>(req: &tonic::Request<T>) -> crate::auth::Credentials {
    let meta = req.metadata();
    let token = ["token", "authorization"]
        .iter()
        .find_map(|k| meta.get(*k)?.to_str().ok())
        .map(str::to_string);
    crate::auth::Credentials {
        token,
        // tonic copies each connection's `ClientCertCn` into its requests' extensions.
        cert_cn: req
            .extensions()
            .get::<crate::transport::ClientCertCn>()
            .and_then(|cn| cn.0.clone()),
    }
}

/// etcd's `--max-request-bytes` default: larger requests get "request is too large".
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// gRPC's own receive limit, as etcd sets it: max request bytes plus 512 KiB of headroom.
pub const MAX_GRPC_RECV_BYTES: usize = MAX_REQUEST_BYTES + 512 * 1024;
