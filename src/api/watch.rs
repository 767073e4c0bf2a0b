//! Watch: not served yet.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::status::unimplemented;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{WatchRequest, WatchResponse};
use crate::server::Server;

pub struct WatchService {
    pub server: Arc<Server>,
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = futures::stream::BoxStream<'static, Result<WatchResponse, Status>>;
    async fn watch(
        &self,
        _r: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(unimplemented("Watch.Watch"))
    }
}
