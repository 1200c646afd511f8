//! The auth client agent: authenticates the installation against the Impact emploi
//! authentication server, and probes it, with the network settings the orchestrator
//! passes on each call. It keeps no state about the installation.
//!
//! Layout:
//! - [`protocol`]: the wire form of the authentication protocol (shared with the auth
//!   mock, documented in its README);
//! - [`authenticate`]: one authentication over [`iea_net::HttpClient`], with typed
//!   outcomes and the failing step when the server cannot be reached;
//! - this module: the gRPC service, which only converts at the edge.
//!
//! Invariant: it is reachable only over mutual TLS from a holder of an internal-CA
//! certificate, and it never decides the status indicator (that is the orchestrator's).
//! The licence key is held as a secret and never logged.

pub mod authenticate;
pub mod protocol;

use iea_net::NetworkSettings;
use iea_proto::agent::v1::auth_agent_server::{AuthAgent, AuthAgentServer};
use iea_proto::agent::v1::authenticate_response::Outcome as PbOutcome;
use iea_proto::agent::v1::{
    AuthenticateRequest, AuthenticateResponse, Authorized, InstallationIdentity, LicenceWithdrawn,
    Refused, Unreachable, UpdateRequired,
};
use iea_proto::common::v1::{ProbeRequest, ProbeResult, ProbeStep};
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
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let request = request.into_inner();
        let identity = identity_from_proto(request.installation)?;
        let raw = request.network.unwrap_or_default();
        let address = raw.address.clone();
        let settings = match NetworkSettings::try_from(raw) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(field = %e.field, "unusable network settings for authentication");
                let probe = ProbeResult {
                    address,
                    reachable: false,
                    step: ProbeStep::Address.into(),
                    message: e.message,
                    detail: format!("invalid setting: {}", e.field),
                    ..Default::default()
                };
                return Ok(Response::new(AuthenticateResponse {
                    outcome: Some(PbOutcome::Unreachable(Unreachable { probe: Some(probe) })),
                }));
            }
        };
        let outcome = authenticate::authenticate(&settings, &identity, &user_agent()).await;
        Ok(Response::new(outcome_to_proto(outcome)))
    }

    #[tracing::instrument(skip_all)]
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeResult>, Status> {
        let result = iea_net::probe_rpc(request.into_inner().network, &user_agent()).await;
        Ok(Response::new(result))
    }
}

/// The installation's identity from its proto form; every field but the workstation is
/// required, and the version must be an Impact emploi version ([`iea_version`]).
fn identity_from_proto(p: Option<InstallationIdentity>) -> Result<protocol::Identity, ApiError> {
    let p = p.ok_or_else(|| {
        ApiError::invalid_input("L'identité de l'installation est absente de la demande.")
    })?;
    if p.installation_id.trim().is_empty() {
        return Err(ApiError::invalid_input(
            "L'identifiant de l'installation est vide.",
        ));
    }
    if p.licence_key.is_empty() {
        return Err(ApiError::invalid_input(
            "La clé de licence de l'installation est vide.",
        ));
    }
    let software_version = p.software_version.parse().map_err(|e| {
        ApiError::invalid_input(format!("La version du logiciel est incorrecte : {e}"))
    })?;
    Ok(protocol::Identity {
        installation_id: p.installation_id,
        licence_key: p.licence_key.into(),
        software_version,
        workstation: p.workstation,
    })
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn outcome_to_proto(outcome: authenticate::Outcome) -> AuthenticateResponse {
    use authenticate::Outcome as O;
    let outcome = match outcome {
        O::Authorized {
            licence_holder,
            valid_until,
            server_time,
        } => PbOutcome::Authorized(Authorized {
            licence_holder,
            valid_until: Some(timestamp(valid_until)),
            server_time: Some(timestamp(server_time)),
        }),
        O::Refused { message } => PbOutcome::Refused(Refused { message }),
        O::LicenceWithdrawn { unknown, message } => {
            PbOutcome::LicenceWithdrawn(LicenceWithdrawn { unknown, message })
        }
        O::UpdateRequired { minimum_version } => PbOutcome::UpdateRequired(UpdateRequired {
            minimum_version: minimum_version.to_string(),
        }),
        O::Unreachable(d) => PbOutcome::Unreachable(Unreachable {
            probe: Some(d.into()),
        }),
    };
    AuthenticateResponse {
        outcome: Some(outcome),
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
