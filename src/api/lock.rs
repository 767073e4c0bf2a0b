//! Lock (v3lockpb): a FIFO mutex on the shared candidate queue; the owner key's revision is a
//! fencing token.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::queue;
use crate::command::Command;
use crate::proto::etcdserverpb::{DeleteRangeRequest, DeleteRangeResponse};
use crate::proto::v3lockpb::lock_server::Lock;
use crate::proto::v3lockpb::*;
use crate::server::Server;

pub struct LockService {
    pub server: Arc<Server>,
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, req: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let req = req.into_inner();
        let server = &self.server;
        let lease = match req.lease {
            0 => queue::session_lease(server).await?,
            l => l,
        };
        let mut prefix = req.name.clone();
        prefix.push(b'/');
        let key = [prefix.as_slice(), format!("{lease:x}").as_bytes()].concat();
        let (my_rev, _) = queue::enqueue(server, &key, b"", lease).await?;
        let guard = queue::Withdraw::new(server.clone(), key.clone());
        queue::wait_turn(server, &prefix, &key, my_rev).await?;
        guard.disarm();
        Ok(Response::new(LockResponse {
            header: Some(server.header()),
            key,
        }))
    }

    async fn unlock(
        &self,
        req: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let key = req.into_inner().key;
        let cmd = Command::DeleteRange(DeleteRangeRequest {
            key,
            ..Default::default()
        });
        let resp: DeleteRangeResponse = self.server.request(cmd).await?;
        Ok(Response::new(UnlockResponse {
            header: resp.header,
        }))
    }
}
