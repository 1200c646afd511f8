//! The credential verifier agent: checks a declarant's Net-entreprises credentials, and
//! probes the Net-entreprises address, with the network settings the orchestrator passes
//! on each call. It keeps no state about the installation; a token it obtains never
//! leaves it (it is dropped at once).
//!
//! Layout:
//! - [`identity`]: what is checked before anything is sent (SIRET key, invisible
//!   characters, lengths), each problem named in French: the `iea-declarant` crate, which
//!   the orchestrator shares to check an identity before storing it;
//! - `iea-net-entreprises`: the authentication exchange itself (request, realms,
//!   outcomes and their sentences, the kept HTTP clients), shared with the deposit agent;
//! - this module: the gRPC service, which converts at the edge, and the `VerifyMany`
//!   streaming (a semaphore bounds the authentications in flight, answers go in batches).
//!
//! Invariant: one verification is one authentication attempt; a refusal is never retried
//! (repeated failures lock the declarant's real account), nor is an attempt that may have
//! reached the server (see `iea_net_entreprises::auth`). The password is held as a secret
//! from the moment the request is decoded, and neither it nor the token is ever logged.

pub use iea_declarant as identity;

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};

use iea_declarant::TypedIdentity;
use iea_net::NetworkSettings;
use iea_net_entreprises::{Authentication, Authenticator, Prepared};
use iea_proto::agent::v1::credential_agent_server::{CredentialAgent, CredentialAgentServer};
use iea_proto::agent::v1::{
    DeclarantIdentity, VerifyManyAnswer, VerifyManyItem, VerifyManyRequest, VerifyManyResponse,
    VerifyRequest, VerifyResponse,
};
use iea_proto::common::v1::{ProbeRequest, ProbeResult};
use iea_proto::error::ApiError;
use iea_runtime::agent::AgentSettings;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::shutdown::Shutdown;
use secrecy::SecretString;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};

pub use iea_net_entreprises::auth::user_agent;
pub use iea_net_entreprises::{Options, Outcome, ServiceCode};

pub const COMPONENT: &str = "credential-verifier";

pub type Settings = AgentSettings;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct Agent {
    verifier: Arc<Authenticator>,
}

impl Agent {
    pub fn new(options: Options) -> Self {
        Self {
            verifier: Arc::new(Authenticator::new(options)),
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
        let service = service_code(request.service)?;
        let network = Network::new(request.network.unwrap_or_default(), &self.verifier);
        let verification = verify_one(
            &self.verifier,
            request.identity.unwrap_or_default(),
            service,
            &network,
            None,
        )
        .await;
        Ok(Response::new(to_proto(verification)))
    }

    type VerifyManyStream =
        Pin<Box<dyn Stream<Item = Result<VerifyManyResponse, Status>> + Send + 'static>>;

    #[tracing::instrument(skip_all)]
    async fn verify_many(
        &self,
        request: Request<Streaming<VerifyManyRequest>>,
    ) -> Result<Response<Self::VerifyManyStream>, Status> {
        // Settings, service and concurrency come with the first message: read there, then
        // shared by every verification of the stream.
        let mut context: Option<Result<Arc<StreamContext>, Status>> = None;
        let verifier = self.verifier.clone();
        let jobs = request.into_inner().flat_map(move |message| {
            let jobs: Vec<_> = match message.and_then(|m| {
                let ctx = context
                    .get_or_insert_with(|| StreamContext::from_first(&m, &verifier).map(Arc::new))
                    .clone()?;
                Ok(m.items.into_iter().map(move |item| Ok((ctx.clone(), item))))
            }) {
                Ok(jobs) => jobs.collect(),
                Err(status) => vec![Err(status)],
            };
            futures::stream::iter(jobs)
        });
        let verifier = self.verifier.clone();
        let answers = jobs
            .map(move |job| answer(verifier.clone(), job))
            .buffer_unordered(MAX_OUTSTANDING);
        let responses =
            tokio_stream::StreamExt::chunks_timeout(answers, ANSWER_BATCH, ANSWER_DELAY)
                .flat_map(|batch| futures::stream::iter(responses_of(batch)));
        Ok(Response::new(Box::pin(responses)))
    }

    #[tracing::instrument(skip_all)]
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeResult>, Status> {
        let result = iea_net::probe_rpc(request.into_inner().network, &user_agent()).await;
        Ok(Response::new(result))
    }
}

/// Identities a `VerifyMany` stream takes at once; a caller that sends more waits.
const MAX_OUTSTANDING: usize = 64;

/// One identity of a `VerifyMany` stream verified with its stream's context, or the
/// error that ends the stream.
async fn answer(
    verifier: Arc<Authenticator>,
    job: Result<(Arc<StreamContext>, VerifyManyItem), Status>,
) -> Result<VerifyManyAnswer, Status> {
    let (ctx, item) = job?;
    let v = verify_one(
        &verifier,
        item.identity.unwrap_or_default(),
        ctx.service,
        &ctx.network,
        Some(&ctx.permits),
    )
    .await;
    Ok(VerifyManyAnswer {
        id: item.id,
        result: Some(to_proto(v)),
    })
}

/// Answers that finish within `ANSWER_DELAY` of the first of them go in one message, up
/// to `ANSWER_BATCH`: at thousands of verifications a second, one write and one wake-up
/// of the orchestrator per batch rather than per answer (which cost as much CPU as the
/// verification itself). An answer waits at most 2 ms, nothing beside a round trip to
/// Net-entreprises.
const ANSWER_BATCH: usize = 8;
const ANSWER_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// The answers of a batch as one message, then the error that ended the stream, if one
/// did: the answers before it are still delivered, since each may count against the
/// budget of its account.
fn responses_of(
    batch: Vec<Result<VerifyManyAnswer, Status>>,
) -> Vec<Result<VerifyManyResponse, Status>> {
    let mut answers = Vec::with_capacity(batch.len());
    let mut error = None;
    for r in batch {
        match r {
            Ok(a) => answers.push(a),
            Err(status) => {
                error.get_or_insert(status);
            }
        }
    }
    let mut out = Vec::with_capacity(2);
    if !answers.is_empty() {
        out.push(Ok(VerifyManyResponse { answers }));
    }
    out.extend(error.map(Err));
    out
}

/// Authentications at once on a `VerifyMany` stream whose first message does not say.
const DEFAULT_CONCURRENCY: usize = 8;

/// What the first message of a `VerifyMany` stream sets for the whole stream.
struct StreamContext {
    service: ServiceCode,
    network: Network,
    /// Bounds the authentications in flight: identities beyond it wait, checked but not
    /// sent.
    permits: tokio::sync::Semaphore,
}

impl StreamContext {
    fn from_first(m: &VerifyManyRequest, verifier: &Authenticator) -> Result<Self, Status> {
        let concurrency = match m.concurrency {
            0 => DEFAULT_CONCURRENCY,
            n => usize::try_from(n)
                .unwrap_or(MAX_OUTSTANDING)
                .min(MAX_OUTSTANDING),
        };
        Ok(Self {
            service: service_code(m.service)?,
            network: Network::new(m.network.clone().unwrap_or_default(), verifier),
            permits: tokio::sync::Semaphore::new(concurrency),
        })
    }
}

fn service_code(code: u32) -> Result<ServiceCode, Status> {
    ServiceCode::new(code).ok_or_else(|| {
        ApiError::invalid_input(
            "Le code de service Net-entreprises n'est pas indiqué (25 pour la DSN, 97 pour son test).",
        )
        .into()
    })
}

/// The network settings of a call, as passed, and whether they are usable.
struct Network {
    address: String,
    settings: Result<Prepared, iea_net::SettingsError>,
}

impl Network {
    fn new(raw: iea_proto::common::v1::NetworkSettings, verifier: &Authenticator) -> Self {
        Self {
            address: raw.address.clone(),
            settings: NetworkSettings::try_from(raw).map(|s| verifier.prepare(&s)),
        }
    }
}

/// Checks the identity, then verifies it if the settings are usable (the input's own
/// problems are reported first: they are the person's to fix), holding one of `permits`
/// while it authenticates.
async fn verify_one(
    verifier: &Authenticator,
    identity: DeclarantIdentity,
    service: ServiceCode,
    network: &Network,
    permits: Option<&tokio::sync::Semaphore>,
) -> Authentication {
    let typed = TypedIdentity {
        siret: identity.siret,
        nom: identity.nom,
        prenom: identity.prenom,
        password: SecretString::from(identity.password),
    };
    let verification = match (typed.validate(), &network.settings) {
        (Err(problems), _) => Authentication::invalid_input(problems),
        (Ok(_), Err(e)) => Authentication::unusable_settings(&network.address, e),
        (Ok(identity), Ok(settings)) => {
            // Never closed, so the permit is always granted in the end.
            let _permit = match permits {
                Some(p) => p.acquire().await.ok(),
                None => None,
            };
            verifier
                .authenticate_prepared(&identity, service, settings)
                .await
        }
    };
    tracing::info!(
        outcome = verification.outcome.code(),
        http_status = verification.http_status.unwrap_or(0),
        problems = verification.input_problems.len(),
        "verification done"
    );
    verification
}

fn to_proto(v: Authentication) -> VerifyResponse {
    VerifyResponse::from(v)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: u64) -> Result<VerifyManyAnswer, Status> {
        Ok(VerifyManyAnswer {
            id,
            result: Some(VerifyResponse::default()),
        })
    }

    #[test]
    fn every_outcome_goes_to_its_proto_form_and_back() {
        use iea_proto::agent::v1::VerifyOutcome;
        for o in Outcome::ALL {
            assert_eq!(Outcome::try_from(VerifyOutcome::from(o)), Ok(o));
        }
        assert!(Outcome::try_from(VerifyOutcome::Unspecified).is_err());
    }

    #[test]
    fn a_batch_is_one_message_and_an_error_comes_after_the_answers_it_ended() {
        let out = responses_of(vec![answer(1), answer(2)]);
        let ids: Vec<u64> = match &out[..] {
            [Ok(m)] => m.answers.iter().map(|a| a.id).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ids, [1, 2]);

        let out = responses_of(vec![
            answer(3),
            Err(Status::data_loss("cut")),
            answer(4),
            Err(Status::internal("second")),
        ]);
        match &out[..] {
            [Ok(m), Err(status)] => {
                assert_eq!(m.answers.iter().map(|a| a.id).collect::<Vec<_>>(), [3, 4]);
                assert_eq!(status.code(), tonic::Code::DataLoss);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &responses_of(vec![Err(Status::internal("alone"))])[..],
            [Err(_)]
        ));
    }
}
