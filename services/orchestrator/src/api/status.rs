//! `iea.v1.Status`: for now the agents' health; the indicator's state machine comes with
//! installation authentication.

use std::sync::Arc;

use iea_proto::error::ApiError;
use iea_proto::v1::status_server::Status as StatusService;
use iea_proto::v1::{
    ActivateAssistanceRequest, ActivateAssistanceResponse, AgentHealth,
    DeactivateAssistanceRequest, GetStatusRequest, Indicator, ReauthenticateRequest, StatusReport,
    WatchStatusRequest,
};
use tonic::{Request, Response, Status};

use super::timestamp;
use crate::Core;

pub struct StatusApi(pub Arc<Core>);

type ReportStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<StatusReport, Status>> + Send>>;

impl StatusApi {
    async fn report(&self, include_agents: bool) -> StatusReport {
        let agents = if include_agents {
            self.0
                .agents
                .health()
                .await
                .into_iter()
                .map(|h| AgentHealth {
                    message: if h.healthy {
                        String::new()
                    } else {
                        format!("Le service « {} » ne répond pas ({}).", h.name, h.detail)
                    },
                    name: h.name.to_owned(),
                    address: h.address,
                    healthy: h.healthy,
                    latency: prost_types::Duration::try_from(h.latency).ok(),
                })
                .collect()
        } else {
            Vec::new()
        };
        StatusReport {
            indicator: Indicator::Unspecified.into(),
            reason: "L'état de la connexion n'est pas encore déterminé : l'authentification de l'installation n'est pas disponible dans cette version.".into(),
            reason_code: "not_determined".into(),
            since: Some(timestamp(self.0.started_at)),
            installation_id: self.0.installation_id.clone(),
            software_version: self.0.software_version.clone(),
            agents,
            update_available: String::new(),
            update_required: false,
        }
    }
}

#[tonic::async_trait]
impl StatusService for StatusApi {
    #[tracing::instrument(skip_all)]
    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<StatusReport>, Status> {
        Ok(Response::new(
            self.report(request.get_ref().include_agents).await,
        ))
    }

    type WatchStatusStream = ReportStream;

    async fn watch_status(
        &self,
        _request: Request<WatchStatusRequest>,
    ) -> Result<Response<Self::WatchStatusStream>, Status> {
        Err(ApiError::unimplemented("suivi en continu de l'état de la connexion").into())
    }

    async fn reauthenticate(
        &self,
        _request: Request<ReauthenticateRequest>,
    ) -> Result<Response<StatusReport>, Status> {
        Err(ApiError::unimplemented("relancer l'authentification auprès du serveur").into())
    }

    async fn activate_assistance(
        &self,
        _request: Request<ActivateAssistanceRequest>,
    ) -> Result<Response<ActivateAssistanceResponse>, Status> {
        Err(ApiError::unimplemented("mode assistance").into())
    }

    async fn deactivate_assistance(
        &self,
        _request: Request<DeactivateAssistanceRequest>,
    ) -> Result<Response<StatusReport>, Status> {
        Err(ApiError::unimplemented("mode assistance").into())
    }
}
