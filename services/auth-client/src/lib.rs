//! The auth client agent: authenticates the installation against the Impact emploi
//! authentication server, and probes it, with the network settings the orchestrator
//! passes on each call. It keeps no state about the installation.
//!
//! Invariant: it is reachable only over mutual TLS from a holder of an internal-CA
//! certificate, and it never decides the status indicator (that is the orchestrator's).

use iea_proto::agent::v1::auth_agent_server::{AuthAgent, AuthAgentServer};
use iea_proto::agent::v1::{AuthenticateRequest, AuthenticateResponse};
use iea_proto::common::v1::{ProbeRequest, ProbeResult};
use iea_proto::error::ApiError;
use iea_runtime::agent::AgentSettings;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::shutdown::Shutdown;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

pub const COMPONENT: &str = "auth-client";

/// Sent with every request to the authentication server.
pub fn user_agent() -> String {
    format!("iea-connect/{}", env!("CARGO_PKG_VERSION"))
}

pub type Settings = AgentSettings;

#[derive(Debug, Default, Clone)]
pub struct Agent;

#[tonic::async_trait]
impl AuthAgent for Agent {
    #[tracing::instrument(skip_all)]
    async fn authenticate(
        &self,
        _request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        Err(ApiError::unimplemented("authentification de l'installation").into())
    }

    #[tracing::instrument(skip_all)]
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeResult>, Status> {
        let result = iea_net::probe_rpc(request.into_inner().network, &user_agent()).await;
        Ok(Response::new(result))
    }
}

/// The agent, bound and ready to run.
pub struct App {
    server: GrpcServer,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let routes = Routes::new(AuthAgentServer::new(Agent));
        let server = iea_runtime::agent::bind(
            COMPONENT,
            &settings,
            routes,
            &[<AuthAgentServer<Agent> as NamedService>::NAME],
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
