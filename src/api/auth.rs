//! Auth: not served yet; every RPC answers `Unimplemented` naming itself, except AuthStatus,
//! which truthfully reports auth as disabled.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::status::unimplemented;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::*;
use crate::server::Server;

pub struct AuthService {
    pub server: Arc<Server>,
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_status(
        &self,
        _r: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        Ok(Response::new(AuthStatusResponse {
            header: Some(self.server.header()),
            enabled: false,
            auth_revision: 0,
        }))
    }

    async fn auth_enable(
        &self,
        _r: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        Err(unimplemented("Auth.AuthEnable"))
    }

    async fn auth_disable(
        &self,
        _r: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        Err(unimplemented("Auth.AuthDisable"))
    }

    async fn authenticate(
        &self,
        _r: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        Err(unimplemented("Auth.Authenticate"))
    }

    async fn user_add(
        &self,
        _r: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        Err(unimplemented("Auth.UserAdd"))
    }

    async fn user_get(
        &self,
        _r: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        Err(unimplemented("Auth.UserGet"))
    }

    async fn user_list(
        &self,
        _r: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        Err(unimplemented("Auth.UserList"))
    }

    async fn user_delete(
        &self,
        _r: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        Err(unimplemented("Auth.UserDelete"))
    }

    async fn user_change_password(
        &self,
        _r: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        Err(unimplemented("Auth.UserChangePassword"))
    }

    async fn user_grant_role(
        &self,
        _r: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        Err(unimplemented("Auth.UserGrantRole"))
    }

    async fn user_revoke_role(
        &self,
        _r: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        Err(unimplemented("Auth.UserRevokeRole"))
    }

    async fn role_add(
        &self,
        _r: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        Err(unimplemented("Auth.RoleAdd"))
    }

    async fn role_get(
        &self,
        _r: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        Err(unimplemented("Auth.RoleGet"))
    }

    async fn role_list(
        &self,
        _r: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        Err(unimplemented("Auth.RoleList"))
    }

    async fn role_delete(
        &self,
        _r: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        Err(unimplemented("Auth.RoleDelete"))
    }

    async fn role_grant_permission(
        &self,
        _r: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        Err(unimplemented("Auth.RoleGrantPermission"))
    }

    async fn role_revoke_permission(
        &self,
        _r: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        Err(unimplemented("Auth.RoleRevokePermission"))
    }
}
