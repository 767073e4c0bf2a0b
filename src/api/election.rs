//! Election (v3electionpb): not served yet; each RPC answers `Unimplemented` naming itself.

use tonic::{Request, Response, Status};

use super::status::unimplemented;
use crate::proto::v3electionpb::election_server::Election;
use crate::proto::v3electionpb::*;

pub struct ElectionService;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        _r: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        Err(unimplemented("Election.Campaign"))
    }
    async fn proclaim(
        &self,
        _r: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        Err(unimplemented("Election.Proclaim"))
    }
    async fn leader(&self, _r: Request<LeaderRequest>) -> Result<Response<LeaderResponse>, Status> {
        Err(unimplemented("Election.Leader"))
    }
    type ObserveStream = futures::stream::BoxStream<'static, Result<LeaderResponse, Status>>;
    async fn observe(
        &self,
        _r: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        Err(unimplemented("Election.Observe"))
    }
    async fn resign(&self, _r: Request<ResignRequest>) -> Result<Response<ResignResponse>, Status> {
        Err(unimplemented("Election.Resign"))
    }
}
