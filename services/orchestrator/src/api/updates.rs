//! `iea.v1.Updates`: the updates domain module ([`crate::updates`]) on the front-end
//! contract.

use std::sync::Arc;

use futures::StreamExt;
use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::updates_server::Updates;
use iea_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{agent_error, consultation, principal, timestamp};
use crate::Core;
use crate::updates::{self as domain, UpdatesError};

pub struct UpdatesApi(pub Arc<Core>);

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

fn updates_error(e: UpdatesError) -> ApiError {
    match e {
        UpdatesError::NoUpdate => ApiError::of(
            ErrorCode::NoUpdate,
            "Aucune nouvelle version n'est disponible.",
        ),
        UpdatesError::Consultation => consultation(),
        UpdatesError::Agent(e) => agent_error(e),
    }
}

fn check(a: domain::Availability) -> UpdateCheck {
    UpdateCheck {
        installed_version: a.installed_version.to_string(),
        available: a
            .available
            .into_iter()
            .map(|r| Release {
                version: r.version.to_string(),
                published_at: r.published_at.map(timestamp),
                package_length: r.package_length,
                script_count: r.script_count,
                notes_available: r.notes_available,
            })
            .collect(),
        minimum_version: a.minimum_version.map(|v| v.to_string()).unwrap_or_default(),
    }
}

fn progress(p: domain::Progress) -> UpdateProgress {
    use domain::Phase;
    let phase = match p.phase {
        Phase::Metadata => UpdatePhase::Metadata,
        Phase::Download => UpdatePhase::Download,
        Phase::Verify => UpdatePhase::Verify,
        Phase::Stage => UpdatePhase::Stage,
        Phase::Switch => UpdatePhase::Switch,
        Phase::StartCheck => UpdatePhase::StartCheck,
        Phase::Scripts => UpdatePhase::Scripts,
        Phase::Done => UpdatePhase::Done,
    };
    UpdateProgress {
        phase: phase.into(),
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        bytes_per_second: p.bytes_per_second,
        seconds_remaining: p.seconds_remaining,
        message: p.message,
    }
}

fn scripts(list: Vec<domain::Script>) -> Vec<MaintenanceScript> {
    list.into_iter()
        .map(|s| MaintenanceScript {
            name: s.name,
            version: s.version,
            state: match s.state {
                domain::ScriptState::Pending => ScriptState::Pending,
                domain::ScriptState::Applied => ScriptState::Applied,
            }
            .into(),
            applied_at: s.applied_at.map(timestamp),
        })
        .collect()
}

/// The version a front-end asked for; empty means "the newest".
fn version(v: String) -> Result<Option<iea_version::ImpactVersion>, ApiError> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|e: iea_version::ParseVersionError| ApiError::invalid_input(e.to_string()))
}

#[tonic::async_trait]
impl Updates for UpdatesApi {
    #[tracing::instrument(skip_all)]
    async fn check_updates(
        &self,
        request: Request<CheckUpdatesRequest>,
    ) -> Result<Response<UpdateCheck>, Status> {
        principal(&self.0, &request).await?;
        let a = self.0.updates.check().await.map_err(updates_error)?;
        Ok(Response::new(check(a)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_release_notes(
        &self,
        request: Request<GetReleaseNotesRequest>,
    ) -> Result<Response<ReleaseNotes>, Status> {
        principal(&self.0, &request).await?;
        let notes = self
            .0
            .updates
            .release_notes(version(request.into_inner().version)?)
            .await
            .map_err(updates_error)?;
        Ok(Response::new(ReleaseNotes {
            version: notes.version.to_string(),
            text: notes.text,
        }))
    }

    type ApplyUpdateStream = Stream<UpdateProgress>;

    #[tracing::instrument(skip_all)]
    async fn apply_update(
        &self,
        request: Request<ApplyUpdateRequest>,
    ) -> Result<Response<Self::ApplyUpdateStream>, Status> {
        principal(&self.0, &request).await?;
        let stream = self
            .0
            .updates
            .apply(version(request.into_inner().version)?)
            .await
            .map_err(updates_error)?
            .map(|item| {
                item.map(progress)
                    .map_err(|e| Status::from(updates_error(e)))
            })
            .take_until(self.0.shutdown.wait());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_pending_scripts(
        &self,
        request: Request<ListPendingScriptsRequest>,
    ) -> Result<Response<ListPendingScriptsResponse>, Status> {
        principal(&self.0, &request).await?;
        let list = self
            .0
            .updates
            .pending_scripts()
            .await
            .map_err(updates_error)?;
        Ok(Response::new(ListPendingScriptsResponse {
            scripts: scripts(list),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn apply_pending_scripts(
        &self,
        request: Request<ApplyPendingScriptsRequest>,
    ) -> Result<Response<ApplyPendingScriptsResponse>, Status> {
        principal(&self.0, &request).await?;
        let applied = self
            .0
            .updates
            .apply_scripts()
            .await
            .map_err(updates_error)?;
        Ok(Response::new(ApplyPendingScriptsResponse {
            applied: scripts(applied),
        }))
    }
}
