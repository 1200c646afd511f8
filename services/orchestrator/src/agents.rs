//! The orchestrator's side of the three agents: one lazily connected mutual-TLS channel
//! each, the generated clients, and their health.
//!
//! A channel connects on first use and reconnects after an agent restarts, so an agent
//! that is down makes calls fail (the status says so); it never stops the orchestrator.
//!
//! The one place where agent messages become domain values and back: callers pass and
//! receive domain values only. A call's connection settings come as a
//! [`crate::network::Reach`], written as `iea.common.v1.NetworkSettings` (the proxy
//! password exposed only there) by `agents/reach.rs`, which also reads a probe's
//! `ProbeResult` into an [`crate::access::Probe`].

use std::time::{Duration, Instant};

use iea_declarant::Identity;
use iea_proto::agent::v1 as pb_agent;
use iea_proto::agent::v1::auth_agent_client::AuthAgentClient;
use iea_proto::agent::v1::credential_agent_client::CredentialAgentClient;
use iea_proto::agent::v1::deposit_agent_client::DepositAgentClient;
use iea_proto::agent::v1::update_agent_client::UpdateAgentClient;
use iea_runtime::pki::TlsFiles;
use iea_version::ImpactVersion;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::access::Probe;
use crate::authenticator::{AuthAnswer, Installation};
use crate::connection::Target;
use crate::credentials::{FailedStep, IdentityProblem, Outcome, VerificationResult};
use crate::deposits::{Anomaly, Candidate, ListOutcome, SendOutcome, SendReport, StoredFile};
use crate::network::Reach;
use crate::returns::{
    DownloadFailure, ListedReturn, ListingFailure, ReturnDownload, ReturnsListing,
};
use crate::updates::{Availability, Phase, Progress, Release, ReleaseNotes, Script, ScriptState};

mod reach;

/// Bytes of a large stored file sent in one message to the deposit agent.
pub const DEPOSIT_CHUNK: usize = 256 * 1024;

/// Bound on one call to an agent. An agent's own network calls are bounded by the
/// connection mode (at most 30 s in extended mode, with retries), so this is wider.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on a health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A call to an agent that did not give an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    /// The agent could not be reached or did not answer in time.
    #[error("agent {agent} unavailable: {detail}")]
    Unavailable { agent: &'static str, detail: String },
    /// The agent answered with a typed error (for instance `invalid_input`).
    #[error("agent {agent} refused: {}", error.code)]
    Refused {
        agent: &'static str,
        error: iea_proto::error::ApiError,
    },
}

impl AgentError {
    pub fn from_status(agent: &'static str, status: tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                Self::Unavailable {
                    agent,
                    detail: format!("{}: {}", status.code(), status.message()),
                }
            }
            _ => Self::Refused {
                agent,
                error: iea_proto::error::ApiError::from_status(&status),
            },
        }
    }
}

/// Where the agents listen (`host:port`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentAddresses {
    pub auth_client: String,
    pub update_client: String,
    pub credential_verifier: String,
    #[serde(default = "default_deposit_agent")]
    pub deposit_agent: String,
}

fn default_deposit_agent() -> String {
    "deposit-agent:50064".into()
}

impl Default for AgentAddresses {
    fn default() -> Self {
        Self {
            auth_client: "auth-client:50061".into(),
            update_client: "update-client:50062".into(),
            credential_verifier: "credential-verifier:50063".into(),
            deposit_agent: default_deposit_agent(),
        }
    }
}

/// One agent: its name (also the name its certificate carries), address and channel.
#[derive(Clone)]
pub struct AgentChannel {
    pub name: &'static str,
    pub address: String,
    pub service: &'static str,
    channel: Channel,
}

#[derive(Clone)]
pub struct Agents {
    pub auth: AgentChannel,
    pub update: AgentChannel,
    pub credentials: AgentChannel,
    pub deposit: AgentChannel,
}

/// Health of one agent, as seen from the orchestrator.
#[derive(Debug, Clone)]
pub struct Health {
    pub name: &'static str,
    pub address: String,
    pub healthy: bool,
    pub latency: Duration,
    /// English detail when unhealthy.
    pub detail: String,
    /// The version of iea-connect the agent says it was built as (none from an agent
    /// older than the version header).
    pub version: Option<String>,
}

impl Health {
    /// It answers, but is not of the orchestrator's version.
    pub fn of_another_version(&self) -> bool {
        self.healthy && self.version.as_deref() != Some(iea_runtime::grpc::VERSION)
    }

    /// When the agent answers but is not of the orchestrator's version (a partial
    /// update): what a person should know, in French.
    pub fn version_problem(&self) -> Option<String> {
        let own = iea_runtime::grpc::VERSION;
        if !self.of_another_version() {
            return None;
        }
        let theirs = match &self.version {
            Some(v) => format!("en version {v}"),
            None => "d'une version antérieure".to_owned(),
        };
        Some(format!(
            "Le service « {} » est {theirs}, l'orchestrateur en version {own} : installez \
             la même version de chaque composant (une mise à jour s'est peut-être arrêtée en \
             cours).",
            self.name
        ))
    }
}

impl Agents {
    /// `tls` is the orchestrator's own certificate (presented to agents) and the internal CA.
    pub fn new(addresses: &AgentAddresses, tls: &TlsFiles) -> anyhow::Result<Self> {
        let make = |name: &'static str,
                    service: &'static str,
                    address: &str|
         -> anyhow::Result<AgentChannel> {
            let cfg = iea_runtime::tls::client_config(tls, name)?;
            Ok(AgentChannel {
                name,
                service,
                address: address.to_owned(),
                channel: iea_runtime::grpc::channel(address, cfg, CALL_TIMEOUT)?,
            })
        };
        Ok(Self {
            auth: make(
                "auth-client",
                "iea.agent.v1.AuthAgent",
                &addresses.auth_client,
            )?,
            update: make(
                "update-client",
                "iea.agent.v1.UpdateAgent",
                &addresses.update_client,
            )?,
            credentials: make(
                "credential-verifier",
                "iea.agent.v1.CredentialAgent",
                &addresses.credential_verifier,
            )?,
            deposit: make(
                "deposit-agent",
                "iea.agent.v1.DepositAgent",
                &addresses.deposit_agent,
            )?,
        })
    }

    pub fn auth_client(&self) -> AuthAgentClient<Channel> {
        AuthAgentClient::new(self.auth.channel.clone())
    }

    pub fn update_client(&self) -> UpdateAgentClient<Channel> {
        UpdateAgentClient::new(self.update.channel.clone())
    }

    pub fn credential_client(&self) -> CredentialAgentClient<Channel> {
        CredentialAgentClient::new(self.credentials.channel.clone())
    }

    pub fn deposit_client(&self) -> DepositAgentClient<Channel> {
        DepositAgentClient::new(self.deposit.channel.clone())
    }

    /// One deposit of a stored file (`size` bytes) through the deposit agent: a small
    /// file (read whole) goes in one message with the announcement, a large one in chunks
    /// of [`DEPOSIT_CHUNK`] read as they are sent. The deposit then waits for its turn
    /// among the agent's requests to Net-entreprises (`turn`), the stream kept open: a
    /// message on `withdraw` withdraws it (if its turn has not come, it never leaves:
    /// [`SendOutcome::NoTurn`]). An error means no answer came: the attempt may or may
    /// not have reached Net-entreprises.
    #[tracing::instrument(skip_all, fields(agent = "deposit-agent", deposit = deposit_id))]
    pub async fn deposit(
        &self,
        access: DepositAccess,
        deposit_id: i64,
        file: StoredFile,
        size: u64,
        turn: DepositTurn,
        withdraw: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<SendReport, AgentError> {
        use futures::StreamExt;
        let agent = self.deposit.name;
        let start = pb_agent::DepositStart {
            access: Some(access.into_proto()),
            deposit_id: deposit_id.to_string(),
            total_size: size,
            at_once: turn.at_once,
            may_wait_ms: u64::try_from(turn.may_wait.as_millis()).unwrap_or(u64::MAX),
        };
        let mut client = self.deposit_client();
        let answer = match file {
            StoredFile::Whole(data) => {
                let only = pb_agent::DepositChunk {
                    start: Some(start),
                    data,
                    withdraw: false,
                };
                client
                    .deposit(futures::stream::iter([only]).chain(withdrawal(withdraw)))
                    .await
            }
            StoredFile::Open(file) => {
                client
                    .deposit(file_chunks(start, file, size, withdraw))
                    .await
            }
        };
        answer
            .map(|r| send_report(r.into_inner()))
            .map_err(|s| AgentError::from_status(agent, s))
    }

    /// `lister-depots` over `[debut, fin]` (`AAAAMMJJHHMMSS`) through the deposit agent,
    /// which lists when its turn comes (`at_once` requests to Net-entreprises at once).
    #[tracing::instrument(skip_all, fields(agent = "deposit-agent"))]
    pub async fn list_deposits(
        &self,
        access: DepositAccess,
        debut: String,
        fin: String,
        at_once: u32,
    ) -> Result<(ListOutcome, String), AgentError> {
        use pb_agent::list_deposits_response::Outcome as O;
        let r = self
            .deposit_client()
            .list_deposits(pb_agent::ListDepositsRequest {
                access: Some(access.into_proto()),
                debut,
                fin,
                at_once,
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| AgentError::from_status(self.deposit.name, s))?;
        let outcome = match r.outcome {
            Some(O::Listing(l)) => ListOutcome::Listing(
                l.deposits
                    .into_iter()
                    .map(|d| Candidate {
                        idflux: d.idflux,
                        date: d.date,
                        statut: d.statut,
                    })
                    .collect(),
            ),
            Some(O::Authentication(v)) => ListOutcome::Authentication(verification_result(v)),
            Some(O::Failed(_)) | None => ListOutcome::Failed,
        };
        Ok((outcome, r.message))
    }

    /// `lister-retours-flux` of `idflux` through the deposit agent.
    #[tracing::instrument(skip_all, fields(agent = "deposit-agent"))]
    pub async fn list_flux_returns(
        &self,
        access: DepositAccess,
        idflux: String,
    ) -> Result<ReturnsListing, AgentError> {
        self.deposit_client()
            .list_flux_returns(pb_agent::ListFluxReturnsRequest {
                access: Some(access.into_proto()),
                idflux,
            })
            .await
            .map(|r| returns_listing(r.into_inner()))
            .map_err(|s| AgentError::from_status(self.deposit.name, s))
    }

    /// `lister-retours-declarant` over `[debut, fin]` (`AAAAMMJJHHMMSS`) through the
    /// deposit agent.
    #[tracing::instrument(skip_all, fields(agent = "deposit-agent"))]
    pub async fn list_declarant_returns(
        &self,
        access: DepositAccess,
        debut: String,
        fin: String,
    ) -> Result<ReturnsListing, AgentError> {
        self.deposit_client()
            .list_declarant_returns(pb_agent::ListDeclarantReturnsRequest {
                access: Some(access.into_proto()),
                debut,
                fin,
            })
            .await
            .map(|r| returns_listing(r.into_inner()))
            .map_err(|s| AgentError::from_status(self.deposit.name, s))
    }

    /// Downloads the return document at `url` (at most `max_bytes`) into `dest`, a new
    /// file created 0600; on any outcome but `Done` the file is removed.
    #[tracing::instrument(skip_all, fields(agent = "deposit-agent"))]
    pub async fn download_return(
        &self,
        access: DepositAccess,
        url: String,
        max_bytes: u64,
        dest: std::path::PathBuf,
    ) -> Result<ReturnDownload, AgentError> {
        let agent = self.deposit.name;
        let result = self
            .download_return_into(access, url, max_bytes, &dest)
            .await;
        if !matches!(result, Ok(ReturnDownload::Done { .. })) {
            let _ = tokio::fs::remove_file(&dest).await;
        }
        result.map_err(|e| match e {
            DownloadError::Agent(e) => e,
            DownloadError::Io(detail) => AgentError::Unavailable { agent, detail },
        })
    }

    async fn download_return_into(
        &self,
        access: DepositAccess,
        url: String,
        max_bytes: u64,
        dest: &std::path::Path,
    ) -> Result<ReturnDownload, DownloadError> {
        use pb_agent::download_outcome::Outcome as O;
        use tokio::io::AsyncWriteExt;
        let agent = self.deposit.name;
        let mut stream = self
            .deposit_client()
            .download_return(pb_agent::DownloadReturnRequest {
                access: Some(access.into_proto()),
                url,
                max_bytes,
            })
            .await
            .map_err(|s| DownloadError::Agent(AgentError::from_status(agent, s)))?
            .into_inner();
        let io = |e: std::io::Error| DownloadError::Io(format!("writing the return: {e}"));
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(dest).await.map_err(io)?;
        let mut written: u64 = 0;
        loop {
            let chunk = match tokio::time::timeout(CALL_TIMEOUT, stream.message()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => {
                    return Err(DownloadError::Agent(AgentError::Unavailable {
                        agent,
                        detail: "the download stream ended without an outcome".into(),
                    }));
                }
                Ok(Err(s)) => return Err(DownloadError::Agent(AgentError::from_status(agent, s))),
                Err(_) => {
                    return Err(DownloadError::Agent(AgentError::Unavailable {
                        agent,
                        detail: format!("no download data within {CALL_TIMEOUT:?}"),
                    }));
                }
            };
            if !chunk.data.is_empty() {
                written += chunk.data.len() as u64;
                // The agent enforces the cap; a peer that does not is stopped here too.
                if max_bytes > 0 && written > max_bytes {
                    return Ok(ReturnDownload::Failed {
                        failure: DownloadFailure::TooLarge,
                        message: "Le document de retour dépasse la taille maximale acceptée : il n'a pas été conservé.".into(),
                    });
                }
                file.write_all(&chunk.data).await.map_err(io)?;
            }
            let Some(outcome) = chunk.outcome else {
                continue;
            };
            return Ok(match outcome.outcome {
                Some(O::Done(d)) => {
                    file.flush().await.map_err(io)?;
                    file.sync_all().await.map_err(io)?;
                    ReturnDownload::Done {
                        bytes: written,
                        sha256: d.sha256,
                        expires_in_secs: d.expires_in_seconds,
                    }
                }
                Some(O::Authentication(v)) => {
                    ReturnDownload::Authentication(verification_result(v))
                }
                Some(O::Failed(f)) => {
                    use pb_agent::DownloadFailure as P;
                    let failure = match P::try_from(f.failure).unwrap_or(P::Unspecified) {
                        P::ForeignAddress => DownloadFailure::ForeignAddress,
                        P::Gone => DownloadFailure::Gone,
                        P::TooLarge => DownloadFailure::TooLarge,
                        P::Unavailable => DownloadFailure::Unavailable,
                        P::Unexpected | P::Unspecified => DownloadFailure::Unexpected,
                    };
                    ReturnDownload::Failed {
                        failure,
                        message: outcome.message,
                    }
                }
                None => ReturnDownload::Failed {
                    failure: DownloadFailure::Unexpected,
                    message: outcome.message,
                },
            });
        }
    }

    /// One authentication of the installation, with `version` as the installed one.
    #[tracing::instrument(skip_all, fields(agent = "auth-client"))]
    pub async fn authenticate(
        &self,
        network: Reach,
        installation: &Installation,
        version: ImpactVersion,
    ) -> Result<AuthAnswer, AgentError> {
        use secrecy::ExposeSecret;
        let request = pb_agent::AuthenticateRequest {
            network: Some(reach::network_settings(network)),
            installation: Some(pb_agent::InstallationIdentity {
                installation_id: installation.id.clone(),
                licence_key: installation.licence_key.expose_secret().to_owned(),
                software_version: version.to_string(),
                workstation: installation.workstation.clone(),
            }),
        };
        self.auth_client()
            .authenticate(request)
            .await
            .map(|r| auth_answer(r.into_inner()))
            .map_err(|s| AgentError::from_status(self.auth.name, s))
    }

    /// One authentication of `identity` at Net-entreprises, through the credential
    /// verifier.
    #[tracing::instrument(skip_all, fields(agent = "credential-verifier"))]
    pub async fn verify(
        &self,
        network: Reach,
        service: u32,
        identity: &Identity,
    ) -> Result<VerificationResult, AgentError> {
        let request = pb_agent::VerifyRequest {
            network: Some(reach::network_settings(network)),
            identity: Some(declarant_identity(identity)),
            service,
        };
        self.credential_client()
            .verify(request)
            .await
            .map(|r| verification_result(r.into_inner()))
            .map_err(|s| AgentError::from_status(self.credentials.name, s))
    }

    /// Opens a `VerifyMany` stream: each batch of `items` goes out as one message as it
    /// comes (the first with `settings`), answers come back as the verifications finish
    /// ([`VerifyManyAnswers::next_batch`]).
    #[tracing::instrument(skip_all, fields(agent = "credential-verifier"))]
    pub async fn verify_many(
        &self,
        settings: VerifyManySettings,
        items: impl futures::Stream<Item = Vec<VerifyItem>> + Send + 'static,
    ) -> Result<VerifyManyAnswers, AgentError> {
        use futures::StreamExt;
        let agent = self.credentials.name;
        let mut first = Some(settings);
        let requests = items.map(move |batch| {
            let settings = first.take();
            pb_agent::VerifyManyRequest {
                service: settings.as_ref().map_or(0, |s| s.service),
                concurrency: settings.as_ref().map_or(0, |s| s.concurrency),
                network: settings.map(|s| reach::network_settings(s.network)),
                items: batch
                    .into_iter()
                    .map(|i| pb_agent::VerifyManyItem {
                        id: i.id,
                        identity: Some(declarant_identity(&i.identity)),
                    })
                    .collect(),
            }
        });
        self.credential_client()
            .verify_many(requests)
            .await
            .map(|r| VerifyManyAnswers {
                stream: r.into_inner(),
                agent,
            })
            .map_err(|s| AgentError::from_status(agent, s))
    }

    #[tracing::instrument(skip_all, fields(agent = "update-client"))]
    pub async fn check_updates(&self, network: Reach) -> Result<Availability, AgentError> {
        self.update_client()
            .check(pb_agent::CheckRequest {
                network: Some(reach::network_settings(network)),
            })
            .await
            .map_err(|s| AgentError::from_status(self.update.name, s))
            .and_then(|r| availability(r.into_inner(), self.update.name))
    }

    #[tracing::instrument(skip_all, fields(agent = "update-client", %version))]
    pub async fn release_notes(
        &self,
        network: Reach,
        version: ImpactVersion,
    ) -> Result<ReleaseNotes, AgentError> {
        let agent = self.update.name;
        let n = self
            .update_client()
            .get_release_notes(pb_agent::ReleaseNotesRequest {
                network: Some(reach::network_settings(network)),
                version: version.to_string(),
            })
            .await
            .map_err(|s| AgentError::from_status(agent, s))?
            .into_inner();
        Ok(ReleaseNotes {
            version: version_of(&n.version, agent)?,
            text: n.text,
        })
    }

    /// Installs `version`, as the stream of its progress.
    #[tracing::instrument(skip_all, fields(agent = "update-client", %version))]
    pub async fn apply_update(
        &self,
        network: Reach,
        version: ImpactVersion,
        hold_scripts: bool,
    ) -> Result<impl futures::Stream<Item = Result<Progress, AgentError>> + Send + use<>, AgentError>
    {
        use futures::StreamExt;
        let agent = self.update.name;
        let stream = self
            .update_client()
            .apply(pb_agent::ApplyRequest {
                network: Some(reach::network_settings(network)),
                version: version.to_string(),
                hold_scripts,
            })
            .await
            .map_err(|s| AgentError::from_status(agent, s))?
            .into_inner();
        Ok(stream.map(move |item| match item {
            Ok(p) => Ok(progress(p)),
            Err(s) => Err(AgentError::from_status(agent, s)),
        }))
    }

    pub async fn list_scripts(&self) -> Result<Vec<Script>, AgentError> {
        self.update_client()
            .list_scripts(pb_agent::ListScriptsRequest {})
            .await
            .map(|r| r.into_inner().scripts.into_iter().map(script).collect())
            .map_err(|s| AgentError::from_status(self.update.name, s))
    }

    pub async fn apply_scripts(&self) -> Result<Vec<Script>, AgentError> {
        self.update_client()
            .apply_scripts(pb_agent::ApplyScriptsRequest {})
            .await
            .map(|r| r.into_inner().applied.into_iter().map(script).collect())
            .map_err(|s| AgentError::from_status(self.update.name, s))
    }

    /// `Probe` of `network`'s address (the one of `target`), by the agent whose real calls
    /// use it. An agent that cannot be asked, or whose answer cannot be read, leaves the
    /// address [`Probe::NotTested`].
    #[tracing::instrument(skip_all, fields(target = target.name()))]
    pub async fn probe(&self, target: Target, network: Reach) -> Probe {
        let address = network.address.clone();
        let req = iea_proto::common::v1::ProbeRequest {
            network: Some(reach::network_settings(network)),
        };
        let (name, result) = match target {
            Target::AuthServer => (self.auth.name, self.auth_client().probe(req).await),
            Target::UpdateServer => (self.update.name, self.update_client().probe(req).await),
            Target::NetEntreprises => (
                self.credentials.name,
                self.credential_client().probe(req).await,
            ),
        };
        match result.map_err(|s| AgentError::from_status(name, s)) {
            Ok(r) => reach::probe(r.into_inner(), address),
            Err(AgentError::Unavailable { agent, detail })
            | Err(AgentError::Refused {
                agent,
                error:
                    iea_proto::error::ApiError {
                        message: detail, ..
                    },
            }) => Probe::NotTested {
                address,
                message: format!(
                    "Le service « {agent} » ne répond pas : cette adresse n'a pas pu être testée."
                ),
                detail,
            },
        }
    }

    /// Checks the agents at once.
    pub async fn health(&self) -> Vec<Health> {
        let (a, u, c, d) = tokio::join!(
            check(&self.auth),
            check(&self.update),
            check(&self.credentials),
            check(&self.deposit)
        );
        vec![a, u, c, d]
    }
}

#[tracing::instrument(skip_all, fields(agent = agent.name))]
async fn check(agent: &AgentChannel) -> Health {
    let started = Instant::now();
    let mut client = HealthClient::new(agent.channel.clone());
    let req = HealthCheckRequest {
        service: agent.service.to_owned(),
    };
    let result = tokio::time::timeout(HEALTH_TIMEOUT, client.check(req)).await;
    let latency = started.elapsed();
    let version = match &result {
        Ok(Ok(resp)) => iea_runtime::grpc::answer_version(resp.metadata()),
        _ => None,
    };
    let (healthy, detail) = match result {
        Ok(Ok(resp)) if resp.get_ref().status == ServingStatus::Serving as i32 => {
            (true, String::new())
        }
        Ok(Ok(resp)) => (false, format!("health status {}", resp.get_ref().status)),
        Ok(Err(status)) => (false, format!("{}: {}", status.code(), status.message())),
        Err(_) => (
            false,
            format!("no answer within {} s", HEALTH_TIMEOUT.as_secs()),
        ),
    };
    if !healthy {
        tracing::warn!(detail, "agent unhealthy");
    }
    let health = Health {
        name: agent.name,
        address: agent.address.clone(),
        healthy,
        latency,
        detail,
        version,
    };
    if health.of_another_version() {
        tracing::warn!(
            version = health.version.as_deref().unwrap_or("none"),
            own = iea_runtime::grpc::VERSION,
            "agent of another version"
        );
    }
    health
}

/// The answers of a `VerifyMany` stream.
pub struct VerifyManyAnswers {
    stream: tonic::Streaming<iea_proto::agent::v1::VerifyManyResponse>,
    agent: &'static str,
}

impl VerifyManyAnswers {
    /// The next answers: one message awaited (at most `CALL_TIMEOUT`), then whatever else
    /// has arrived already, up to `max` answers; and why the stream ended, if it did.
    /// Cancel-safe: it can only be dropped while awaiting the first message.
    pub async fn next_batch(&mut self, max: usize) -> (Vec<VerifyAnswer>, Option<AgentError>) {
        use futures::FutureExt;
        let agent = self.agent;
        let ended = || AgentError::Unavailable {
            agent,
            detail: "the verification stream ended early".into(),
        };
        let first = match tokio::time::timeout(CALL_TIMEOUT, self.stream.message()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => return (Vec::new(), Some(ended())),
            Ok(Err(status)) => return (Vec::new(), Some(AgentError::from_status(agent, status))),
            Err(_) => {
                let detail = format!("no answer within {CALL_TIMEOUT:?}");
                return (Vec::new(), Some(AgentError::Unavailable { agent, detail }));
            }
        };
        let answers = |m: pb_agent::VerifyManyResponse| {
            m.answers.into_iter().map(|a| VerifyAnswer {
                id: a.id,
                result: a.result.map(verification_result),
            })
        };
        let mut batch: Vec<VerifyAnswer> = answers(first).collect();
        while batch.len() < max {
            match self.stream.message().now_or_never() {
                Some(Ok(Some(m))) => batch.extend(answers(m)),
                None => break,
                Some(Ok(None)) => return (batch, Some(ended())),
                Some(Err(status)) => return (batch, Some(AgentError::from_status(agent, status))),
            }
        }
        (batch, None)
    }
}

/// How a deposit waits for its turn at the deposit agent.
#[derive(Debug, Clone, Copy)]
pub struct DepositTurn {
    /// Requests to Net-entreprises the agent makes at once (`deposits.concurrency`).
    pub at_once: u32,
    /// How long the deposit may wait for its turn once its file has gone; past it, it
    /// never leaves.
    pub may_wait: Duration,
}

/// What a `VerifyMany` stream is opened with.
pub struct VerifyManySettings {
    /// The Net-entreprises authentication service.
    pub network: Reach,
    /// Net-entreprises service code.
    pub service: u32,
    /// Authentications at once, at the verifier.
    pub concurrency: u32,
}

/// An identity to verify on a `VerifyMany` stream, under an id its answer repeats.
pub struct VerifyItem {
    pub id: u64,
    pub identity: Identity,
}

/// The answer to the item `id` (`None`: the verifier sent an answer without a result).
pub struct VerifyAnswer {
    pub id: u64,
    pub result: Option<VerificationResult>,
}

fn declarant_identity(i: &Identity) -> pb_agent::DeclarantIdentity {
    use secrecy::ExposeSecret;
    pb_agent::DeclarantIdentity {
        siret: i.siret.clone(),
        nom: i.nom.clone(),
        prenom: i.prenom.clone(),
        password: i.password.expose_secret().to_owned(),
    }
}

/// The verifier's answer as the orchestrator keeps it. An outcome this version does not
/// know is `Unexpected`.
pub fn verification_result(r: pb_agent::VerifyResponse) -> VerificationResult {
    use pb_agent::VerifyOutcome as P;
    let outcome = match P::try_from(r.outcome).unwrap_or(P::Unspecified) {
        P::Valid => Outcome::Valid,
        P::InvalidCredentials => Outcome::InvalidCredentials,
        P::PasswordExpired => Outcome::PasswordExpired,
        P::NotRegistered => Outcome::NotRegistered,
        P::AccountLocked => Outcome::AccountLocked,
        P::RejectedFormat => Outcome::RejectedFormat,
        P::Unavailable => Outcome::Unavailable,
        P::InvalidInput => Outcome::InvalidInput,
        P::Unexpected | P::Unspecified => Outcome::Unexpected,
    };
    let failed_step = r.probe.and_then(|p| FailedStep::try_from(p).ok());
    VerificationResult {
        outcome,
        message: r.message,
        http_status: u16::try_from(r.http_status).ok().filter(|s| *s != 0),
        realm: Some(r.realm).filter(|r| !r.is_empty()),
        token_expires_at: r.token_expires_at.map(|t| t.seconds),
        failed_step,
        identity_problems: r
            .input_problems
            .into_iter()
            .map(|p| IdentityProblem {
                field: p.field,
                code: p.code,
                message: p.message,
            })
            .collect(),
    }
}

/// Who deposits (or lists) and where, as the deposit agent receives it.
pub struct DepositAccess {
    /// `address`: the deposit or consultation service.
    pub network: Reach,
    /// The authentication service.
    pub auth_address: String,
    pub identity: Identity,
    /// Net-entreprises service code.
    pub service: u32,
}

impl DepositAccess {
    fn into_proto(self) -> pb_agent::NetEntreprisesAccess {
        pb_agent::NetEntreprisesAccess {
            network: Some(reach::network_settings(self.network)),
            auth_address: self.auth_address,
            identity: Some(declarant_identity(&self.identity)),
            service: self.service,
        }
    }
}

/// A download that gave no outcome: the agent's fault, or the file could not be written.
enum DownloadError {
    Agent(AgentError),
    Io(String),
}

/// A returns listing of the deposit agent as the orchestrator keeps it.
fn returns_listing(r: pb_agent::ListReturnsResponse) -> ReturnsListing {
    use pb_agent::list_returns_response::Outcome as O;
    match r.outcome {
        Some(O::Listing(l)) => ReturnsListing::Listing {
            returns: l
                .returns
                .into_iter()
                .map(|x| ListedReturn {
                    idflux: x.idflux,
                    publication: x.publication,
                    production: x.production,
                    nature: x.nature,
                    statut: x.statut,
                    id: x.id,
                    url: x.url,
                })
                .collect(),
            window_max_minutes: l.window_max_minutes,
            expires_in_secs: l.expires_in_seconds,
        },
        Some(O::Authentication(v)) => ReturnsListing::Authentication(verification_result(v)),
        Some(O::Failed(f)) => {
            use pb_agent::ListingFailure as P;
            let failure = match P::try_from(f.failure).unwrap_or(P::Unspecified) {
                P::WindowTooWide => ListingFailure::WindowTooWide,
                P::BadDates => ListingFailure::BadDates,
                P::Unavailable => ListingFailure::Unavailable,
                P::UnknownFlux => ListingFailure::UnknownFlux,
                P::Unexpected | P::Unspecified => ListingFailure::Unexpected,
            };
            ReturnsListing::Failed {
                failure,
                message: r.message,
            }
        }
        None => ReturnsListing::Failed {
            failure: ListingFailure::Unexpected,
            message: r.message,
        },
    }
}

/// Most anomalies of an ARE a deposit's record keeps, the first ones in order. The
/// deposit agent passes on no more (its `deposit::MAX_ANOMALIES`, the same number) and
/// counts the others; an answer with more (another version of the agent) is cut here as
/// well, so that the record, its message and the answers to front-ends stay bounded.
pub const MAX_KEPT_ANOMALIES: usize = 100;

/// The deposit agent's answer as the orchestrator keeps it.
fn send_report(r: pb_agent::DepositResponse) -> SendReport {
    use pb_agent::deposit_response::Outcome as O;
    let outcome = match r.outcome {
        Some(O::Accepted(a)) => SendOutcome::Accepted {
            idflux: a.idflux,
            essai_reel: a.essai_reel,
        },
        Some(O::Rejected(a)) => {
            let beyond = a.anomalies.len().saturating_sub(MAX_KEPT_ANOMALIES) as u64;
            SendOutcome::Rejected {
                anomalies_omitted: a.anomalies_omitted.saturating_add(beyond),
                anomalies: a
                    .anomalies
                    .into_iter()
                    .take(MAX_KEPT_ANOMALIES)
                    .map(|x| Anomaly {
                        code: x.code,
                        message: x.message,
                    })
                    .collect(),
                idflux: Some(a.idflux).filter(|i| !i.is_empty()),
            }
        }
        Some(O::Authentication(v)) => SendOutcome::Authentication(verification_result(v)),
        Some(O::NotSent(n)) if n.no_turn => SendOutcome::NoTurn,
        Some(O::NotSent(_)) => SendOutcome::NotSent,
        Some(O::Refused(_)) => SendOutcome::Refused,
        // An answer this version does not know says nothing of what became of it.
        Some(O::Uncertain(_)) | None => SendOutcome::Uncertain,
    };
    SendReport {
        outcome,
        message: r.message,
        detail: r.detail,
        http_status: u16::try_from(r.http_status).ok().filter(|s| *s != 0),
    }
}

/// A version the update client gave; one that is not a version is the agent's fault.
fn version_of(text: &str, agent: &'static str) -> Result<ImpactVersion, AgentError> {
    text.parse().map_err(|e| AgentError::Unavailable {
        agent,
        detail: format!("the agent answered an invalid version: {e}"),
    })
}

fn availability(
    c: pb_agent::CheckResponse,
    agent: &'static str,
) -> Result<Availability, AgentError> {
    Ok(Availability {
        installed_version: version_of(&c.installed_version, agent)?,
        available: c
            .available
            .into_iter()
            .map(|r| {
                Ok(Release {
                    version: version_of(&r.version, agent)?,
                    published_at: r.published_at.map(|t| t.seconds),
                    package_length: r.package_length,
                    script_count: r.script_count,
                    notes_available: r.notes_available,
                })
            })
            .collect::<Result<_, AgentError>>()?,
        minimum_version: match c.minimum_version.as_str() {
            "" => None,
            v => Some(version_of(v, agent)?),
        },
    })
}

fn progress(p: pb_agent::ApplyProgress) -> Progress {
    use pb_agent::ApplyPhase as P;
    // A phase this version does not know is shown as the download going on.
    let phase = match P::try_from(p.phase).unwrap_or(P::Unspecified) {
        P::Metadata => Phase::Metadata,
        P::Download | P::Unspecified => Phase::Download,
        P::Verify => Phase::Verify,
        P::Stage => Phase::Stage,
        P::Switch => Phase::Switch,
        P::StartCheck => Phase::StartCheck,
        P::Scripts => Phase::Scripts,
        P::Done => Phase::Done,
    };
    Progress {
        phase,
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        bytes_per_second: p.bytes_per_second,
        seconds_remaining: p.seconds_remaining,
        message: p.message,
    }
}

/// The update client says `pending` or `applied`.
fn script(s: pb_agent::MaintenanceScript) -> Script {
    Script {
        state: if s.state == "applied" {
            ScriptState::Applied
        } else {
            ScriptState::Pending
        },
        name: s.name,
        version: s.version,
        applied_at: s.applied_at.map(|t| t.seconds),
    }
}

fn auth_answer(r: pb_agent::AuthenticateResponse) -> AuthAnswer {
    use pb_agent::authenticate_response::Outcome;
    match r.outcome {
        Some(Outcome::Authorized(a)) => AuthAnswer::Authorized {
            licence_holder: a.licence_holder,
        },
        Some(Outcome::Refused(r)) => AuthAnswer::Refused { message: r.message },
        Some(Outcome::LicenceWithdrawn(w)) => AuthAnswer::LicenceWithdrawn {
            unknown: w.unknown,
            message: w.message,
        },
        // A minimum that is not a version is an answer nobody can act on.
        Some(Outcome::UpdateRequired(u)) => match u.minimum_version.parse() {
            Ok(minimum_version) => AuthAnswer::UpdateRequired { minimum_version },
            Err(_) => AuthAnswer::Unexpected,
        },
        Some(Outcome::Unreachable(u)) => AuthAnswer::Unreachable {
            detail: u.probe.map(|p| p.message).unwrap_or_default(),
        },
        None => AuthAnswer::Unexpected,
    }
}

/// The message withdrawing a deposit whose file has gone.
fn withdrawn() -> pb_agent::DepositChunk {
    pb_agent::DepositChunk {
        withdraw: true,
        ..Default::default()
    }
}

/// What a deposit's stream ends with once the file has gone: nothing until `withdraw`
/// says (then one message withdrawing the deposit) or is dropped (then the end).
fn withdrawal(
    withdraw: tokio::sync::oneshot::Receiver<()>,
) -> impl futures::Stream<Item = pb_agent::DepositChunk> + Send + 'static {
    use futures::StreamExt;
    futures::stream::once(withdraw).filter_map(|w| std::future::ready(w.ok().map(|()| withdrawn())))
}

/// The messages of a large file's deposit: `start`, then the file's `size` bytes in chunks
/// of [`DEPOSIT_CHUNK`], each read on the blocking pool as the stream is polled, then the
/// [`withdrawal`]. A read error ends the stream short: the agent then sends nothing.
fn file_chunks(
    start: pb_agent::DepositStart,
    file: std::fs::File,
    size: u64,
    withdraw: tokio::sync::oneshot::Receiver<()>,
) -> impl futures::Stream<Item = pb_agent::DepositChunk> + Send + 'static {
    use futures::StreamExt;
    let first = pb_agent::DepositChunk {
        start: Some(start),
        ..Default::default()
    };
    let rest = futures::stream::unfold(Some((file, size, withdraw)), |state| async move {
        let (mut file, left, withdraw) = state?;
        if left == 0 {
            // The whole file has gone: then the withdrawal, if it comes.
            withdraw.await.ok()?;
            return Some((withdrawn(), None));
        }
        let len = usize::try_from(left.min(DEPOSIT_CHUNK as u64)).unwrap_or(DEPOSIT_CHUNK);
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0u8; len];
            file.read_exact(&mut buf).map(|()| (file, buf))
        })
        .await;
        match read {
            Ok(Ok((file, data))) => Some((
                pb_agent::DepositChunk {
                    data,
                    ..Default::default()
                },
                Some((file, left - len as u64, withdraw)),
            )),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the stored dsn file failed");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the stored dsn file failed");
                None
            }
        }
    });
    futures::stream::once(async move { first }).chain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(healthy: bool, version: Option<&str>) -> Health {
        Health {
            name: "deposit-agent",
            address: "127.0.0.1:1".into(),
            healthy,
            latency: Duration::ZERO,
            detail: String::new(),
            version: version.map(str::to_owned),
        }
    }

    #[test]
    fn an_agent_of_another_version_is_named_with_both_versions_in_french() {
        let own = iea_runtime::grpc::VERSION;
        assert_eq!(health(true, Some(own)).version_problem(), None);
        let other = health(true, Some("0.0.1")).version_problem().unwrap();
        assert!(
            other.contains("« deposit-agent » est en version 0.0.1"),
            "{other}"
        );
        assert!(
            other.contains(&format!("l'orchestrateur en version {own}")),
            "{other}"
        );
        let older = health(true, None).version_problem().unwrap();
        assert!(older.contains("d'une version antérieure"), "{older}");
        // One that does not answer is unreachable, whatever its version.
        assert_eq!(health(false, None).version_problem(), None);
    }

    fn rejected(anomalies: usize, omitted: u64) -> pb_agent::DepositResponse {
        pb_agent::DepositResponse {
            outcome: Some(pb_agent::deposit_response::Outcome::Rejected(
                pb_agent::DepositRejected {
                    anomalies: (0..anomalies)
                        .map(|i| pb_agent::DepositAnomaly {
                            code: format!("A{i}"),
                            message: format!("anomalie {i}"),
                        })
                        .collect(),
                    idflux: "UR5WJEBAhi54RcZN8Lur71F".into(),
                    anomalies_omitted: omitted,
                },
            )),
            http_status: 422,
            ..Default::default()
        }
    }

    /// The anomalies kept and the count of the others.
    fn kept(a: &SendReport) -> (&[Anomaly], u64) {
        match &a.outcome {
            SendOutcome::Rejected {
                anomalies,
                anomalies_omitted,
                ..
            } => (anomalies, *anomalies_omitted),
            other => panic!("rejected: {other:?}"),
        }
    }

    #[test]
    fn an_are_keeps_its_first_anomalies_and_the_count_of_the_others() {
        let a = send_report(rejected(3, 0));
        assert_eq!((kept(&a).0.len(), kept(&a).1), (3, 0));

        let a = send_report(rejected(MAX_KEPT_ANOMALIES, 4_900));
        assert_eq!((kept(&a).0.len(), kept(&a).1), (MAX_KEPT_ANOMALIES, 4_900));

        // An agent that passed on more than the bound: cut here too, in order.
        let a = send_report(rejected(250, 10));
        let (k, omitted) = kept(&a);
        assert_eq!(k.len(), MAX_KEPT_ANOMALIES);
        assert_eq!((k[0].code.as_str(), k[99].code.as_str()), ("A0", "A99"));
        assert_eq!(omitted, 160);
    }
}
