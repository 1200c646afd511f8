//! The update client agent: checks, downloads, verifies, stages and applies updates and
//! maintenance scripts, and probes the update server, with the network settings the
//! orchestrator passes on each call.
//!
//! Invariant: nothing is staged or run unless signed metadata covers it
//! (`shared/update-security.md`).

use iea_proto::agent::v1::update_agent_server::{UpdateAgent, UpdateAgentServer};
use iea_proto::agent::v1::{
    ApplyProgress, ApplyRequest, ApplyScriptsRequest, ApplyScriptsResponse, CheckRequest,
    CheckResponse, ListScriptsRequest, ListScriptsResponse, ReleaseNotes, ReleaseNotesRequest,
};
use iea_proto::common::v1::{ProbeRequest, ProbeResult};
use iea_proto::error::ApiError;
use iea_runtime::agent::AgentSettings;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::shutdown::Shutdown;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

pub const COMPONENT: &str = "update-client";

pub fn user_agent() -> String {
    format!("iea-connect/{}", env!("CARGO_PKG_VERSION"))
}

pub type Settings = AgentSettings;

#[derive(Debug, Default, Clone)]
pub struct Agent;

type ProgressStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<ApplyProgress, Status>> + Send>>;

#[tonic::async_trait]
impl UpdateAgent for Agent {
    async fn check(&self, _r: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        Err(ApiError::unimplemented("recherche des mises à jour").into())
    }

    async fn get_release_notes(
        &self,
        _r: Request<ReleaseNotesRequest>,
    ) -> Result<Response<ReleaseNotes>, Status> {
        Err(ApiError::unimplemented("notes de version (Lisez-moi)").into())
    }

    type ApplyStream = ProgressStream;

    async fn apply(
        &self,
        _r: Request<ApplyRequest>,
    ) -> Result<Response<Self::ApplyStream>, Status> {
        Err(ApiError::unimplemented("installation d'une mise à jour").into())
    }

    async fn list_scripts(
        &self,
        _r: Request<ListScriptsRequest>,
    ) -> Result<Response<ListScriptsResponse>, Status> {
        Err(ApiError::unimplemented("scripts de maintenance").into())
    }

    async fn apply_scripts(
        &self,
        _r: Request<ApplyScriptsRequest>,
    ) -> Result<Response<ApplyScriptsResponse>, Status> {
        Err(ApiError::unimplemented("scripts de maintenance").into())
    }

    #[tracing::instrument(skip_all)]
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeResult>, Status> {
        let result = iea_net::probe_rpc(request.into_inner().network, &user_agent()).await;
        Ok(Response::new(result))
    }
}

pub struct App {
    server: GrpcServer,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let routes = Routes::new(UpdateAgentServer::new(Agent));
        let server = iea_runtime::agent::bind(
            COMPONENT,
            &settings,
            routes,
            &[<UpdateAgentServer<Agent> as NamedService>::NAME],
        )
        .await?;
        Ok(Self { server })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        self.server.run_until(shutdown).await
    }
}
