//! KV: Range, Put, DeleteRange, Txn, Compact. Each carries its caller's credentials: Range is
//! checked where it is served, the writes when they are applied.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use super::credentials;
use super::status::unimplemented;
use super::MAX_REQUEST_BYTES;
use crate::command::Command;
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

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let creds = credentials(&req);
        let req = req.into_inner();
        validate::range(&req).map_err(Error::from)?;
        Ok(Response::new(self.server.range_as(&creds, &req).await?))
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
        let creds = credentials(&req);
        let req = req.into_inner();
        check_size(&req)?;
        validate::put(&req).map_err(Error::from)?;
        // Whether the lease exists is decided at apply time, on the replicated table: a check
        // against this member's state here could miss a grant the leader has just applied.
        Ok(Response::new(
            self.server.request_as(&creds, Command::Put(req)).await?,
        ))
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let creds = credentials(&req);
        let req = req.into_inner();
        check_size(&req)?;
        validate::delete_range(&req).map_err(Error::from)?;
        Ok(Response::new(
            self.server
                .request_as(&creds, Command::DeleteRange(req))
                .await?,
        ))
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let creds = credentials(&req);
        let req = req.into_inner();
        check_size(&req)?;
        validate::txn(&req, MAX_TXN_OPS).map_err(Error::from)?;
        Ok(Response::new(
            self.server.request_as(&creds, Command::Txn(req)).await?,
        ))
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let creds = credentials(&req);
        let req = req.into_inner();
        Ok(Response::new(
            self.server
                .request_as(&creds, Command::Compact(req))
                .await?,
        ))
    }
}
