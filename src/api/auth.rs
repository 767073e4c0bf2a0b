//! Auth: users, roles, permissions, enabling auth and logging in, as etcd 3.4 serves them.
//!
//! Each handler reads the caller's credentials, does what must happen before proposing
//! (bcrypt hashing, decoding a permission), calls one `Server` method and builds the response.
//! Who may do what (the root role, a user reading itself) is decided below, not here.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::credentials;
use crate::auth::{AuthChange, AuthError, KeyPermission, PermType};
use crate::error::Error;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::*;
use crate::server::Server;

pub struct AuthService {
    pub server: Arc<Server>,
}

impl AuthService {
    /// Applies `change` for the caller of `req` and answers with a header.
    async fn change<T>(
        &self,
        req: &Request<T>,
        change: AuthChange,
    ) -> Result<Option<ResponseHeader>, Status> {
        self.server.auth_change(&credentials(req), change).await?;
        Ok(Some(self.server.header()))
    }

    /// The stored form of a new password: a hash of it, or nothing for a user that may only
    /// log in by certificate; a client that sends a ready hash (etcd 3.5's field) keeps it.
    fn password_hash(
        &self,
        password: &str,
        hashed: &str,
        no_password: bool,
    ) -> Result<String, Status> {
        if no_password {
            return Ok(String::new());
        }
        if password.is_empty() && !hashed.is_empty() {
            return Ok(hashed.to_string());
        }
        Ok(self.server.hash_password(password)?)
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_status(
        &self,
        _r: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        let (enabled, auth_revision) = self.server.auth_status();
        Ok(Response::new(AuthStatusResponse {
            header: Some(self.server.header()),
            enabled,
            auth_revision,
        }))
    }

    async fn auth_enable(
        &self,
        r: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        let header = self.change(&r, AuthChange::Enable).await?;
        Ok(Response::new(AuthEnableResponse { header }))
    }

    async fn auth_disable(
        &self,
        r: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        let header = self.change(&r, AuthChange::Disable).await?;
        Ok(Response::new(AuthDisableResponse { header }))
    }

    async fn authenticate(
        &self,
        r: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let r = r.into_inner();
        let token = self.server.authenticate(&r.name, &r.password).await?;
        Ok(Response::new(AuthenticateResponse {
            header: Some(self.server.header()),
            token,
        }))
    }

    async fn user_add(
        &self,
        r: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let req = r.get_ref();
        let no_password = req.options.as_ref().is_some_and(|o| o.no_password);
        let password_hash = self.password_hash(&req.password, &req.hashed_password, no_password)?;
        let change = AuthChange::UserAdd {
            name: req.name.clone(),
            password_hash,
        };
        let header = self.change(&r, change).await?;
        Ok(Response::new(AuthUserAddResponse { header }))
    }

    async fn user_get(
        &self,
        r: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        let roles = self
            .server
            .user_get(&credentials(&r), &r.get_ref().name)
            .await?;
        Ok(Response::new(AuthUserGetResponse {
            header: Some(self.server.header()),
            roles,
        }))
    }

    async fn user_list(
        &self,
        r: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        let users = self.server.user_list(&credentials(&r)).await?;
        Ok(Response::new(AuthUserListResponse {
            header: Some(self.server.header()),
            users,
        }))
    }

    async fn user_delete(
        &self,
        r: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let name = r.get_ref().name.clone();
        let header = self.change(&r, AuthChange::UserDelete { name }).await?;
        Ok(Response::new(AuthUserDeleteResponse { header }))
    }

    async fn user_change_password(
        &self,
        r: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let req = r.get_ref();
        let password_hash = self.password_hash(&req.password, &req.hashed_password, false)?;
        let change = AuthChange::UserChangePassword {
            name: req.name.clone(),
            password_hash,
        };
        let header = self.change(&r, change).await?;
        Ok(Response::new(AuthUserChangePasswordResponse { header }))
    }

    async fn user_grant_role(
        &self,
        r: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let change = AuthChange::UserGrantRole {
            user: r.get_ref().user.clone(),
            role: r.get_ref().role.clone(),
        };
        let header = self.change(&r, change).await?;
        Ok(Response::new(AuthUserGrantRoleResponse { header }))
    }

    async fn user_revoke_role(
        &self,
        r: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let change = AuthChange::UserRevokeRole {
            user: r.get_ref().name.clone(),
            role: r.get_ref().role.clone(),
        };
        let header = self.change(&r, change).await?;
        Ok(Response::new(AuthUserRevokeRoleResponse { header }))
    }

    async fn role_add(
        &self,
        r: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        let name = r.get_ref().name.clone();
        let header = self.change(&r, AuthChange::RoleAdd { name }).await?;
        Ok(Response::new(AuthRoleAddResponse { header }))
    }

    async fn role_get(
        &self,
        r: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        let perm = self
            .server
            .role_get(&credentials(&r), &r.get_ref().role)
            .await?;
        Ok(Response::new(AuthRoleGetResponse {
            header: Some(self.server.header()),
            perm,
        }))
    }

    async fn role_list(
        &self,
        r: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        let roles = self.server.role_list(&credentials(&r)).await?;
        Ok(Response::new(AuthRoleListResponse {
            header: Some(self.server.header()),
            roles,
        }))
    }

    async fn role_delete(
        &self,
        r: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let name = r.get_ref().role.clone();
        let header = self.change(&r, AuthChange::RoleDelete { name }).await?;
        Ok(Response::new(AuthRoleDeleteResponse { header }))
    }

    async fn role_grant_permission(
        &self,
        r: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let req = r.get_ref();
        let perm = req
            .perm
            .as_ref()
            .ok_or(Error::Auth(AuthError::PermissionNotGiven))?;
        let perm_type = PermType::from_wire(perm.perm_type)
            .ok_or(Error::Auth(AuthError::PermissionNotGiven))?;
        let change = AuthChange::RoleGrantPermission {
            name: req.name.clone(),
            perm: KeyPermission {
                perm_type,
                key: perm.key.clone(),
                range_end: perm.range_end.clone(),
            },
        };
        let header = self.change(&r, change).await?;
        Ok(Response::new(AuthRoleGrantPermissionResponse { header }))
    }

    async fn role_revoke_permission(
        &self,
        r: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let req = r.get_ref();
        let change = AuthChange::RoleRevokePermission {
            name: req.role.clone(),
            key: req.key.clone(),
            range_end: req.range_end.clone(),
        };
        let header = self.change(&r, change).await?;
        Ok(Response::new(AuthRoleRevokePermissionResponse { header }))
    }
}
