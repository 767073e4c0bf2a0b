//! KV: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use super::status::unimplemented;
use super::MAX_REQUEST_BYTES;
use crate::command::{Command, CommandResult};
use crate::error::Error;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, RangeStreamResponse, TxnRequest, TxnResponse,
};
use crate::server::Server;
use crate::store::{validate, MAX_TXN_OPS};

pub struct KvService {
    pub server: Arc<Server>,
}

fn check_size(m: &impl Message) -> Result<(), Status> {
    if m.encoded_len() > MAX_REQUEST_BYTES {
        return Err(Error::RequestTooLarge.into());
    }
    Ok(())
}

fn unexpected(r: CommandResult) -> Status {
    Status::internal(format!("unexpected apply result {r:?}"))
}

impl KvService {
    /// Serves a Range from local state, after a read barrier unless serializable.
    pub async fn range_local(&self, req: &RangeRequest) -> Result<RangeResponse, Status> {
        validate::range(req).map_err(Error::from)?;
        if !req.serializable && !self.server.plants.stale_read {
            self.server.read_barrier().await?;
        }
        let (mut resp, revision) = {
            let state = self.server.sm.read();
            let resp = state.store.range(req).map_err(Error::from)?;
            (resp, state.store.revision())
        };
        resp.header = Some(self.server.header_at(revision));
        Ok(resp)
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let req = req.into_inner();
        Ok(Response::new(self.range_local(&req).await?))
    }

    type RangeStreamStream =
        futures::stream::BoxStream<'static, Result<RangeStreamResponse, Status>>;

    async fn range_stream(
        &self,
        _req: Request<RangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        Err(unimplemented("KV.RangeStream"))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let req = req.into_inner();
        check_size(&req)?;
        validate::put(&req).map_err(Error::from)?;
        // Whether the lease exists is decided at apply time, on the replicated table: a check
        // against this member's state here could miss a grant the leader has just applied.
        match self.server.write(Command::Put(req)).await? {
            CommandResult::Put(mut resp) => {
                self.server.stamp(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let req = req.into_inner();
        check_size(&req)?;
        validate::delete_range(&req).map_err(Error::from)?;
        match self.server.write(Command::DeleteRange(req)).await? {
            CommandResult::DeleteRange(mut resp) => {
                self.server.stamp(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let req = req.into_inner();
        check_size(&req)?;
        validate::txn(&req, MAX_TXN_OPS).map_err(Error::from)?;
        match self.server.write(Command::Txn(req)).await? {
            CommandResult::Txn(mut resp) => {
                self.server.stamp(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let req = req.into_inner();
        match self.server.write(Command::Compact(req)).await? {
            CommandResult::Compact(mut resp) => {
                self.server.stamp(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(other)),
        }
    }
}
