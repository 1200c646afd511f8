//! `iea.v1.Sessions`.

use std::sync::Arc;

use iea_proto::error::ApiError;
use iea_proto::v1::sessions_server::Sessions;
use iea_proto::v1::{
    LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, Role, UserInfo, WhoAmIRequest,
};
use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response, Status};

use super::{bearer, principal, session_error, timestamp};
use crate::Core;
use crate::sessions::Principal;

pub struct SessionsApi(pub Arc<Core>);

pub(crate) fn user_info(p: &Principal) -> UserInfo {
    UserInfo {
        name: p.name.clone(),
        role: role(p.role).into(),
    }
}

pub(crate) fn role(r: crate::users::Role) -> Role {
    match r {
        crate::users::Role::Administrator => Role::Administrator,
        crate::users::Role::User => Role::User,
    }
}

#[tonic::async_trait]
impl Sessions for SessionsApi {
    #[tracing::instrument(skip_all, fields(user = %request.get_ref().user))]
    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let req = request.into_inner();
        if req.user.trim().is_empty() {
            return Err(ApiError::invalid_input("Indiquez le nom d'utilisateur.").into());
        }
        let opened = self
            .0
            .sessions
            .login(req.user.trim(), SecretString::from(req.password))
            .await
            .map_err(session_error)?;
        Ok(Response::new(LoginResponse {
            token: opened.token.expose_secret().to_owned(),
            expires_at: Some(timestamp(opened.expires_at)),
            user: Some(user_info(&opened.principal)),
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        principal(&self.0, &request).await?;
        if let Some(token) = bearer(&request) {
            self.0.sessions.logout(token).await.map_err(session_error)?;
        }
        Ok(Response::new(LogoutResponse {}))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<UserInfo>, Status> {
        let p = principal(&self.0, &request).await?;
        Ok(Response::new(user_info(&p)))
    }
}
