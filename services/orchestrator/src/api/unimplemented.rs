//! Areas of the front-end API that later versions provide. Each RPC answers
//! UNIMPLEMENTED with the code `unimplemented` and names the feature in French; none
//! returns an invented result.

use iea_proto::agent::v1 as agent;
use iea_proto::error::ApiError;
use iea_proto::v1::*;
use tonic::{Request, Response, Status};

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

fn not_yet<T>(feature: &str) -> Result<Response<T>, Status> {
    Err(ApiError::unimplemented(feature).into())
}

pub struct UpdatesApi;

#[tonic::async_trait]
impl updates_server::Updates for UpdatesApi {
    async fn check_updates(
        &self,
        _: Request<CheckUpdatesRequest>,
    ) -> Result<Response<agent::CheckResponse>, Status> {
        not_yet("recherche des mises à jour")
    }
    async fn get_release_notes(
        &self,
        _: Request<GetReleaseNotesRequest>,
    ) -> Result<Response<agent::ReleaseNotes>, Status> {
        not_yet("notes de version (Lisez-moi)")
    }
    type ApplyUpdateStream = Stream<agent::ApplyProgress>;
    async fn apply_update(
        &self,
        _: Request<ApplyUpdateRequest>,
    ) -> Result<Response<Self::ApplyUpdateStream>, Status> {
        not_yet("mettre à jour Impact Emploi maintenant")
    }
    async fn list_pending_scripts(
        &self,
        _: Request<ListPendingScriptsRequest>,
    ) -> Result<Response<agent::ListScriptsResponse>, Status> {
        not_yet("scripts de maintenance")
    }
    async fn apply_pending_scripts(
        &self,
        _: Request<ApplyPendingScriptsRequest>,
    ) -> Result<Response<agent::ApplyScriptsResponse>, Status> {
        not_yet("scripts de maintenance")
    }
}
