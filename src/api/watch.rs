//! Watch: the bidi stream, served by a `watch::run_session` per client stream.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::status::go_status_text;
use crate::auth::AuthError;
use crate::error::Error;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{WatchRequest, WatchResponse};
use crate::server::Server;
use crate::watch::run_session;
use crate::watch::session::WatchPermit;

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
        // A watcher denied READ on its range is canceled with etcd's reason: the Go text of
        // the permission-denied status, which clientv3 prints as it is.
        let creds = super::credentials(&req);
        let checker = self.server.clone();
        let permit: WatchPermit = Arc::new(move |key: &[u8], range_end: &[u8]| {
            let denied = Error::Auth(AuthError::PermissionDenied);
            let check = checker.check_watch(&creds, key, range_end);
            check.err().map(|_| go_status_text(denied))
        });
        let ctx = self.server.watch_context(require_leader, permit);
        let inbound = req.into_inner();
        let (out, rx) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE_MAX);
        tokio::spawn(run_session(ctx, inbound, out));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
