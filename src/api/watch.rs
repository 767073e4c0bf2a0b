//! Watch: the bidi stream, served by a `watch::run_session` per client stream.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{WatchRequest, WatchResponse};
use crate::server::Server;
use crate::watch::run_session;

/// Responses buffered per stream toward a slow client before the session waits.
const OUTBOUND_QUEUE_MAX: usize = 256;

pub struct WatchService {
    pub server: Arc<Server>,
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ReceiverStream<Result<WatchResponse, Status>>;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // clientv3's WithRequireLeader: refuse to watch on a member that has no leader.
        let require_leader = req.metadata().get("hasleader").is_some_and(|v| v == "true");
        if require_leader && self.server.leader().is_none() {
            return Err(Error::NoLeader.into());
        }
        let ctx = self
            .server
            .watch_context(require_leader, super::credentials(&req));
        let inbound = req.into_inner();
        let (out, rx) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE_MAX);
        tokio::spawn(run_session(ctx, inbound, out));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
