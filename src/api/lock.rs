//! Lock (v3lockpb): not served yet; each RPC answers `Unimplemented` naming itself.

use tonic::{Request, Response, Status};

use super::status::unimplemented;
use crate::proto::v3lockpb::lock_server::Lock;
use crate::proto::v3lockpb::*;

pub struct LockService;

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, _r: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        Err(unimplemented("Lock.Lock"))
    }
    async fn unlock(&self, _r: Request<UnlockRequest>) -> Result<Response<UnlockResponse>, Status> {
        Err(unimplemented("Lock.Unlock"))
    }
}
