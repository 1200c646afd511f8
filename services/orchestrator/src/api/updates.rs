//! `iea.v1.Updates`: "Mettre à jour Impact Emploi maintenant", "Lisez-moi", maintenance
//! scripts. The update client does the work; the orchestrator passes the connection
//! settings, holds scripts in assistance mode, refuses script application in
//! consultation, and tells the status when an update is available.

use std::sync::Arc;

use futures::StreamExt;
use iea_proto::agent::v1 as agent;
use iea_proto::error::ApiError;
use iea_proto::v1::updates_server::Updates;
use iea_proto::v1::*;
use tonic::{Code, Request, Response, Status};

use super::principal;
use crate::Core;
use crate::agents::AgentError;
use crate::connection::Target;
use crate::status::Indicator;

pub struct UpdatesApi(pub Arc<Core>);

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

fn agent_error(e: AgentError) -> ApiError {
    match e {
        AgentError::Unavailable { agent, detail } => {
            tracing::warn!(agent, detail, "agent unavailable");
            ApiError::new(
                Code::Unavailable,
                "agent_unavailable",
                format!("Le service « {agent} » ne répond pas : réessayez dans un instant."),
            )
        }
        AgentError::Refused { error, .. } => error,
    }
}

/// Records in the status whether a newer version is available.
pub(crate) async fn note_available(core: &Core, check: &agent::CheckResponse) {
    if !check.installed_version.is_empty()
        && let Err(e) = core.software_version.set(&check.installed_version).await
    {
        tracing::warn!(error = format!("{e:#}"), "installed version not recorded");
    }
    let newest = check.available.last().map(|r| r.version.clone());
    let result = core
        .hub
        .update(|cur| {
            (cur.update_available != newest).then(|| {
                let mut next = cur.clone();
                next.update_available = newest.clone();
                next
            })
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = format!("{e:#}"), "update availability not recorded");
    }
}

impl UpdatesApi {
    /// `version`, or when empty the newest the server offers.
    async fn version_or_newest(
        &self,
        version: String,
        network: &iea_proto::common::v1::NetworkSettings,
    ) -> Result<String, ApiError> {
        if !version.is_empty() {
            return Ok(version);
        }
        let check = self
            .0
            .agents
            .check_updates(network.clone())
            .await
            .map_err(agent_error)?;
        check
            .available
            .last()
            .map(|r| r.version.clone())
            .ok_or_else(|| {
                ApiError::new(
                    Code::NotFound,
                    "no_update",
                    "Aucune nouvelle version n'est disponible.",
                )
            })
    }
}

#[tonic::async_trait]
impl Updates for UpdatesApi {
    #[tracing::instrument(skip_all)]
    async fn check_updates(
        &self,
        request: Request<CheckUpdatesRequest>,
    ) -> Result<Response<agent::CheckResponse>, Status> {
        principal(&self.0, &request).await?;
        let check = self
            .0
            .agents
            .check_updates(self.0.network.for_target(Target::UpdateServer))
            .await
            .map_err(agent_error)?;
        note_available(&self.0, &check).await;
        Ok(Response::new(check))
    }

    #[tracing::instrument(skip_all)]
    async fn get_release_notes(
        &self,
        request: Request<GetReleaseNotesRequest>,
    ) -> Result<Response<agent::ReleaseNotes>, Status> {
        principal(&self.0, &request).await?;
        let network = self.0.network.for_target(Target::UpdateServer);
        let version = self
            .version_or_newest(request.into_inner().version, &network)
            .await?;
        let notes = self
            .0
            .agents
            .release_notes(network, version)
            .await
            .map_err(agent_error)?;
        Ok(Response::new(notes))
    }

    type ApplyUpdateStream = Stream<agent::ApplyProgress>;

    #[tracing::instrument(skip_all)]
    async fn apply_update(
        &self,
        request: Request<ApplyUpdateRequest>,
    ) -> Result<Response<Self::ApplyUpdateStream>, Status> {
        principal(&self.0, &request).await?;
        let network = self.0.network.for_target(Target::UpdateServer);
        let version = self
            .version_or_newest(request.into_inner().version, &network)
            .await?;
        // In assistance mode, scripts are downloaded but wait as pending.
        let hold_scripts = self.0.hub.current().indicator == Indicator::Assistance;
        let stream = self
            .0
            .agents
            .apply_update(agent::ApplyRequest {
                network: Some(network),
                version,
                hold_scripts,
            })
            .await
            .map_err(agent_error)?;
        let stream = stream
            .map(|item| {
                item.map_err(|s| {
                    Status::from(agent_error(AgentError::from_status("update-client", s)))
                })
            })
            .take_until(self.0.shutdown.wait());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_pending_scripts(
        &self,
        request: Request<ListPendingScriptsRequest>,
    ) -> Result<Response<agent::ListScriptsResponse>, Status> {
        principal(&self.0, &request).await?;
        let scripts = self.0.agents.list_scripts().await.map_err(agent_error)?;
        Ok(Response::new(scripts))
    }

    #[tracing::instrument(skip_all)]
    async fn apply_pending_scripts(
        &self,
        request: Request<ApplyPendingScriptsRequest>,
    ) -> Result<Response<agent::ApplyScriptsResponse>, Status> {
        principal(&self.0, &request).await?;
        self.0.refuse_in_consultation()?;
        let applied = self.0.agents.apply_scripts().await.map_err(agent_error)?;
        Ok(Response::new(applied))
    }
}

/// Checks for updates every `interval` until `stop` fires, so that the status says when
/// one is available without anyone asking.
pub(crate) async fn check_periodically(
    core: Arc<Core>,
    interval: std::time::Duration,
    stop: iea_runtime::shutdown::Shutdown,
) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match core
            .agents
            .check_updates(core.network.for_target(Target::UpdateServer))
            .await
        {
            Ok(check) => note_available(&core, &check).await,
            Err(e) => tracing::info!(error = %e, "periodic update check failed"),
        }
    }
}
