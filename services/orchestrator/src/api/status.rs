//! `iea.v1.Status`: the indicator, its watch stream, re-authentication, assistance mode.

use std::sync::Arc;

use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::status_server::Status as StatusService;
use iea_proto::v1::{
    ActivateAssistanceRequest, ActivateAssistanceResponse, AgentHealth,
    DeactivateAssistanceRequest, GetStatusRequest, Indicator, ReauthenticateRequest, StatusReport,
    WatchStatusRequest,
};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::{bearer, format_time, internal, principal, timestamp};
use crate::Core;
use crate::assistance::{self, AssistanceError};
use crate::status::{self, Snapshot};

pub struct StatusApi(pub Arc<Core>);

type ReportStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<StatusReport, Status>> + Send>>;

fn indicator(i: status::Indicator) -> Indicator {
    match i {
        status::Indicator::Unknown => Indicator::Unspecified,
        status::Indicator::Connected => Indicator::Connected,
        status::Indicator::Disconnected => Indicator::Disconnected,
        status::Indicator::Consultation => Indicator::Consultation,
        status::Indicator::Assistance => Indicator::Assistance,
    }
}

pub(crate) fn report(core: &Core, s: &Snapshot) -> StatusReport {
    StatusReport {
        indicator: indicator(s.indicator).into(),
        reason: s.reason.clone(),
        reason_code: s.reason_code.clone(),
        since: Some(timestamp(s.since)),
        installation_id: core.installation_id.clone(),
        software_version: core.software_version.get().to_string(),
        agents: Vec::new(),
        update_available: s
            .update_available
            .map(|v| v.to_string())
            .unwrap_or_default(),
        update_required: s.update_required,
        alert_count: 0,
        most_urgent_alert: None,
        refused_deposit_accounts: Vec::new(),
        orchestrator_version: iea_runtime::grpc::VERSION.to_owned(),
    }
}

fn assistance_error(e: AssistanceError) -> ApiError {
    match e {
        AssistanceError::NotActive => ApiError::of(
            ErrorCode::AssistanceNotActive,
            "Le mode assistance n'est pas activé.",
        ),
        AssistanceError::Locked { until } => ApiError::of(
            ErrorCode::DailyPasswordLocked,
            format!(
                "Trop d'essais du mot de passe du jour : la désactivation du mode assistance est bloquée jusqu'au {}.",
                format_time(until)
            ),
        ),
        AssistanceError::WrongPassword { remaining } => ApiError::of(
            ErrorCode::WrongDailyPassword,
            format!(
                "Ce n'est pas le mot de passe du jour de cette installation. Essais restants avant blocage pendant 15 minutes : {remaining}."
            ),
        ),
        AssistanceError::Internal(e) => internal(e),
    }
}

#[tonic::async_trait]
impl StatusService for StatusApi {
    #[tracing::instrument(skip_all)]
    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<StatusReport>, Status> {
        let mut r = report(&self.0, &self.0.hub.current());
        // The status is readable without a session; the board's alerts only with one
        // (they name establishments and deposits of the caller).
        if let Some(token) = bearer(&request)
            && let Ok(caller) = self.0.sessions.authenticate(token).await
        {
            match self.0.board.alerts(&caller).await {
                Ok((n, top)) => {
                    r.alert_count = u32::try_from(n).unwrap_or(u32::MAX);
                    r.most_urgent_alert = top.as_ref().map(super::board::alert_message);
                }
                Err(e) => tracing::warn!(error = ?e, "board alerts not computed for the status"),
            }
            match self.0.deposits.refused_accounts(&caller).await {
                Ok(refused) => {
                    r.refused_deposit_accounts = refused
                        .into_iter()
                        .map(super::deposits::account_message)
                        .collect();
                }
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "refused deposit accounts not read for the status"
                ),
            }
        }
        if request.get_ref().include_agents {
            r.agents = self
                .0
                .agents
                .health()
                .await
                .into_iter()
                .map(|h| {
                    let mismatch = h.version_problem();
                    AgentHealth {
                        message: if h.healthy {
                            mismatch.clone().unwrap_or_default()
                        } else {
                            format!("Le service « {} » ne répond pas ({}).", h.name, h.detail)
                        },
                        version_mismatch: mismatch.is_some(),
                        version: h.version.unwrap_or_default(),
                        name: h.name.to_owned(),
                        address: h.address,
                        healthy: h.healthy,
                        latency: prost_types::Duration::try_from(h.latency).ok(),
                    }
                })
                .collect();
        }
        Ok(Response::new(r))
    }

    type WatchStatusStream = ReportStream;

    async fn watch_status(
        &self,
        _request: Request<WatchStatusRequest>,
    ) -> Result<Response<Self::WatchStatusStream>, Status> {
        let core = self.0.clone();
        let (first, mut rx) = core.hub.subscribe();
        let stop = core.shutdown.wait();
        let stream = async_stream(move |tx| async move {
            if tx.send(Ok(report(&core, &first))).await.is_err() {
                return;
            }
            tokio::pin!(stop);
            loop {
                let next = tokio::select! {
                    _ = &mut stop => return,
                    r = rx.recv() => r,
                };
                let snap = match next {
                    Ok(s) => s,
                    // Fell behind: resynchronise with the current state.
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "status watcher fell behind");
                        core.hub.current()
                    }
                    Err(RecvError::Closed) => return,
                };
                if tx.send(Ok(report(&core, &snap))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn reauthenticate(
        &self,
        request: Request<ReauthenticateRequest>,
    ) -> Result<Response<StatusReport>, Status> {
        principal(&self.0, &request).await?;
        if self.0.hub.current().indicator == status::Indicator::Assistance {
            return Err(ApiError::of(
            ErrorCode::AssistanceActive,
                "En mode assistance, aucune connexion n'est faite au serveur de production : désactivez d'abord le mode assistance.",
            )
            .into());
        }
        let snap = self
            .0
            .authenticator
            .authenticate_now()
            .await
            .map_err(internal)?;
        Ok(Response::new(report(&self.0, &snap)))
    }

    #[tracing::instrument(skip_all)]
    async fn activate_assistance(
        &self,
        request: Request<ActivateAssistanceRequest>,
    ) -> Result<Response<ActivateAssistanceResponse>, Status> {
        principal(&self.0, &request).await?;
        let snap = self.0.assistance.activate().await.map_err(internal)?;
        Ok(Response::new(ActivateAssistanceResponse {
            status: Some(report(&self.0, &snap)),
            warning: assistance::WARNING.to_owned(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn deactivate_assistance(
        &self,
        request: Request<DeactivateAssistanceRequest>,
    ) -> Result<Response<StatusReport>, Status> {
        principal(&self.0, &request).await?;
        let snap = self
            .0
            .assistance
            .deactivate(&request.get_ref().daily_password)
            .await
            .map_err(assistance_error)?;
        Ok(Response::new(report(&self.0, &snap)))
    }
}

/// A stream fed by a task through a small channel; the task ends when the client goes.
fn async_stream<F, Fut>(f: F) -> ReportStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<StatusReport, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
