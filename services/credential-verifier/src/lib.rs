//! The credential verifier agent: checks a declarant's Net-entreprises credentials, and
//! probes the Net-entreprises address, with the network settings the orchestrator passes
//! on each call. It keeps no state about the installation; a token it obtains never
//! leaves it.
//!
//! Layout:
//! - [`identity`]: what is checked before anything is sent (SIRET key, invisible
//!   characters, lengths), each problem named in French: the `iea-declarant` crate, which
//!   the orchestrator shares to check an identity before storing it;
//! - [`verify`]: one authentication against Net-entreprises and its typed outcome;
//! - this module: the gRPC service, which only converts at the edge.
//!
//! Invariant: one verification is one authentication attempt; a refusal is never retried
//! (repeated failures lock the declarant's real account), nor is an attempt that may have
//! reached the server (see [`verify`]). The password is held as a secret from the moment
//! the request is decoded, and neither it nor the token is ever logged.

pub mod verify;

pub use iea_declarant as identity;

use std::sync::Arc;

use iea_net::NetworkSettings;
use iea_proto::agent::v1::credential_agent_server::{CredentialAgent, CredentialAgentServer};
use iea_proto::agent::v1::{InputProblem, VerifyOutcome, VerifyRequest, VerifyResponse};
use iea_proto::common::v1::{ProbeRequest, ProbeResult};
use iea_proto::error::ApiError;
use iea_runtime::agent::AgentSettings;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::shutdown::Shutdown;
use secrecy::SecretString;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

pub use verify::{Options, Outcome, ServiceCode, Verification, Verifier};

pub const COMPONENT: &str = "credential-verifier";

/// The `User-Agent` Net-entreprises expects from software.
pub fn user_agent() -> String {
    format!(
        "Client-DSN (iea-connect/{}; iea-connect)",
        env!("CARGO_PKG_VERSION")
    )
}

pub type Settings = AgentSettings;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct Agent {
    verifier: Arc<Verifier>,
}

impl Agent {
    pub fn new(options: Options) -> Self {
        Self {
            verifier: Arc::new(Verifier::new(user_agent(), options)),
        }
    }
}

impl Default for Agent {
    fn default() -> Self {
        Self::new(Options::default())
    }
}

#[tonic::async_trait]
impl CredentialAgent for Agent {
    #[tracing::instrument(skip_all, fields(service = request.get_ref().service))]
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let request = request.into_inner();
        let service = ServiceCode::new(request.service).ok_or_else(|| {
            ApiError::invalid_input(
                "Le code de service Net-entreprises n'est pas indiqué (25 pour la DSN, 97 pour son test).",
            )
        })?;
        let identity = request.identity.unwrap_or_default();
        let input = verify::Input {
            siret: identity.siret,
            nom: identity.nom,
            prenom: identity.prenom,
            password: SecretString::from(identity.password),
            service,
        };
        let raw = request.network.unwrap_or_default();
        let address = raw.address.clone();
        let verification = match NetworkSettings::try_from(raw) {
            Ok(settings) => self.verifier.verify_input(&input, &settings).await,
            // The input is still checked first: its problems are the person's to fix.
            Err(e) => match input.validate() {
                Err(problems) => Verification::invalid_input(problems),
                Ok(_) => Verification::unusable_settings(&address, &e),
            },
        };
        tracing::info!(
            outcome = verification.outcome.code(),
            http_status = verification.http_status.unwrap_or(0),
            problems = verification.input_problems.len(),
            "verification done"
        );
        Ok(Response::new(to_proto(verification)))
    }

    #[tracing::instrument(skip_all)]
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeResult>, Status> {
        let result = iea_net::probe_rpc(request.into_inner().network, &user_agent()).await;
        Ok(Response::new(result))
    }
}

fn outcome_to_proto(o: Outcome) -> VerifyOutcome {
    match o {
        Outcome::Valid => VerifyOutcome::Valid,
        Outcome::InvalidCredentials => VerifyOutcome::InvalidCredentials,
        Outcome::PasswordExpired => VerifyOutcome::PasswordExpired,
        Outcome::NotRegistered => VerifyOutcome::NotRegistered,
        Outcome::AccountLocked => VerifyOutcome::AccountLocked,
        Outcome::RejectedFormat => VerifyOutcome::RejectedFormat,
        Outcome::Unavailable => VerifyOutcome::Unavailable,
        Outcome::Unexpected => VerifyOutcome::Unexpected,
        Outcome::InvalidInput => VerifyOutcome::InvalidInput,
    }
}

fn to_proto(v: Verification) -> VerifyResponse {
    VerifyResponse {
        outcome: outcome_to_proto(v.outcome).into(),
        http_status: v.http_status.map(u32::from).unwrap_or(0),
        realm: v.realm.unwrap_or_default(),
        probe: v.diagnosis.map(Into::into),
        token_expires_at: v.token_expires_at.map(prost_types::Timestamp::from),
        input_problems: v
            .input_problems
            .into_iter()
            .map(|p| InputProblem {
                field: p.field.name().to_owned(),
                code: p.code.to_owned(),
                message: p.message,
            })
            .collect(),
        message: v.message,
    }
}

/// The agent, bound and ready to run.
pub struct App {
    server: GrpcServer,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Options::default()).await
    }

    /// With verifier options the settings file does not carry (tests of a slow server).
    pub async fn build_with(settings: Settings, options: Options) -> anyhow::Result<Self> {
        let agent = Agent::new(options);
        let routes = Routes::new(CredentialAgentServer::new(agent));
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
