//! The credential verifier agent: checks a declarant's Net-entreprises credentials, and
//! probes the Net-entreprises address, with the network settings the orchestrator passes
//! on each call. It keeps no state about the installation; a token it obtains never
//! leaves it.
//!
//! Invariant: one verification is one authentication attempt; a refusal is never retried
//! (repeated failures lock the declarant's real account).

use iea_proto::agent::v1::credential_agent_server::{CredentialAgent, CredentialAgentServer};
use iea_proto::agent::v1::{VerifyRequest, VerifyResponse};
use iea_proto::common::v1::{ProbeRequest, ProbeResult};
use iea_proto::error::ApiError;
use iea_runtime::agent::AgentSettings;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::shutdown::Shutdown;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

pub const COMPONENT: &str = "credential-verifier";

/// The `User-Agent` Net-entreprises expects from software.
pub fn user_agent() -> String {
    format!("Client-DSN (iea-connect/{}; iea-connect)", env!("CARGO_PKG_VERSION"))
}

pub type Settings = AgentSettings;

#[derive(Debug, Default, Clone)]
pub struct Agent;

#[tonic::async_trait]
impl CredentialAgent for Agent {
    #[tracing::instrument(skip_all)]
    async fn verify(&self, _request: Request<VerifyRequest>) -> Result<Response<VerifyResponse>, Status> {
        Err(ApiError::unimplemented("vérification des identifiants Net-entreprises").into())
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
        let routes = Routes::new(CredentialAgentServer::new(Agent));
        let server = iea_runtime::agent::bind(
            COMPONENT,
            &settings,
            routes,
            &[<CredentialAgentServer<Agent> as NamedService>::NAME],
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
