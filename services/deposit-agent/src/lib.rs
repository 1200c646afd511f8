//! The deposit agent: deposits DSN files on Net-entreprises, lists a declarant's
//! deposits and the returns published for them, and downloads those returns, with the identity and network settings the orchestrator passes on each
//! call (`iea.agent.v1.DepositAgent`, mutual TLS). It keeps no state about the
//! installation; the only thing it keeps is each identity's token, which never leaves it.
//!
//! Layout:
//! - [`spool`]: the file gzipped as it arrives, kept aside (memory, then an unnamed
//!   temporary file) until sent;
//! - [`session`]: tokens kept per identity, one authentication at a time, the one
//!   re-authentication after a 401 (`iea-net-entreprises` does the exchange);
//! - [`deposit`]: the deposit request and its outcome, above all whether it may be
//!   registered (`Uncertain`) or surely not (`NotSent`);
//! - [`listing`]: `lister-depots` over a window;
//! - [`report`]: reading the AEE / ARE (with `iea_dsn::returns`) and the listings
//!   (roxmltree, no DTD);
//! - [`returns`]: `lister-retours-flux`, `lister-retours-declarant` and the download of a
//!   return's document, streamed in chunks with its SHA-256 under a size cap; download
//!   addresses outside the download service refused before anything is sent;
//! - [`turns`]: at most `at_once` requests to Net-entreprises at once (the caller's
//!   bound), deposits and listings together;
//! - this module: the gRPC service, which converts at the edge.
//!
//! Invariants: an authentication refusal is never retried; a deposit is sent at most
//! twice, the second time only after a 401 (which means it was not registered); an
//! uncertain deposit is never sent again here. A deposit leaves only with its turn, and
//! never once withdrawn, its caller gone or its `may_wait_ms` past. Neither the password, the token nor the
//! DSN's content is ever logged (logs carry the deposit id, the SIRET, sizes, statuses,
//! the idflux).

pub mod deposit;
pub mod listing;
pub mod report;
pub mod returns;
pub mod session;
pub mod spool;
pub mod turns;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use iea_declarant::{Identity, TypedIdentity};
use iea_net::{Diagnosis, NetworkSettings};
use iea_net_entreprises::auth::user_agent;
use iea_net_entreprises::outcome::settings_diagnosis;
use iea_net_entreprises::{Authentication, Authenticator, ServiceCode};
use iea_proto::agent::v1::deposit_agent_server::{DepositAgent, DepositAgentServer};
use iea_proto::agent::v1::{
    DepositAccepted, DepositAnomaly, DepositChunk, DepositListing, DepositNotSent, DepositRefused,
    DepositRejected, DepositResponse, DepositUncertain, DownloadDone, DownloadFailed,
    DownloadFailure, DownloadReturnChunk, DownloadReturnRequest, ListDeclarantReturnsRequest,
    ListDepositsRequest, ListDepositsResponse, ListFluxReturnsRequest, ListReturnsResponse,
    ListedDeposit, ListedReturn, ListingFailed, ListingFailure, NetEntreprisesAccess,
    ReturnsListing, VerifyResponse, deposit_response, download_outcome as dl,
    list_deposits_response, list_returns_response,
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
use tracing::Instrument;

pub use iea_net_entreprises::Options;

use crate::session::{Access, Sessions};
use crate::spool::Compressor;
use crate::turns::Turns;
use tokio::sync::OwnedSemaphorePermit;

pub const COMPONENT: &str = "deposit-agent";

/// Largest DSN file taken (bytes, before compression).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

pub type Settings = AgentSettings;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct Agent {
    sessions: Arc<Sessions>,
    turns: Arc<Turns>,
}

impl Agent {
    pub fn new(options: Options) -> Self {
        Self {
            sessions: Arc::new(Sessions::new(Arc::new(Authenticator::new(options)))),
            turns: Arc::new(Turns::default()),
        }
    }

    /// Waits for a deposit's turn among the requests to Net-entreprises (`at_once` at
    /// once), at most `may_wait`, watching the caller's stream meanwhile: a withdrawal,
    /// or `may_wait` past, and the deposit has no turn; a stream cut (the caller left) is
    /// an error, nothing sent. A stream that ends cleanly leaves the deposit waiting.
    async fn turn(
        &self,
        stream: &mut Streaming<DepositChunk>,
        at_once: u32,
        may_wait: Duration,
    ) -> Result<Result<OwnedSemaphorePermit, NoTurn>, Status> {
        let turn = self.turns.gate(at_once).acquire_owned();
        let deadline = tokio::time::sleep(may_wait);
        tokio::pin!(turn, deadline);
        let mut open = true;
        loop {
            tokio::select! {
                // The caller first: a withdrawal that came with the turn is heeded.
                biased;
                m = stream.message(), if open => match m? {
                    None => open = false,
                    Some(m) if m.withdraw => return Ok(Err(NoTurn::Withdrawn)),
                    Some(m) if m.start.is_some() => {
                        return Err(invalid(
                            "Un dépôt n'annonce son fichier qu'une fois, dans son premier message.",
                        ));
                    }
                    // Nothing more of the file: nothing to heed.
                    Some(m) if m.data.is_empty() => {}
                    Some(_) => return Err(too_long_after_whole()),
                },
                turn = &mut turn => {
                    return turn.map(Ok).map_err(|_| Status::from(ApiError::internal()));
                }
                () = &mut deadline => return Ok(Err(NoTurn::Missed(may_wait))),
            }
        }
    }
}

impl Default for Agent {
    fn default() -> Self {
        Self::new(Options::default())
    }
}

fn invalid(message: &str) -> Status {
    ApiError::invalid_input(message).into()
}

/// Why an access cannot be used: the identity (as a verification reports it), or the
/// network settings (nothing sent).
enum Unusable {
    Identity(Authentication),
    Settings(Diagnosis),
}

impl Agent {
    fn access(
        &self,
        raw: Option<NetEntreprisesAccess>,
    ) -> Result<Result<Access, Unusable>, Status> {
        let raw =
            raw.ok_or_else(|| invalid("Les accès à Net-entreprises ne sont pas indiqués."))?;
        let service = ServiceCode::new(raw.service).ok_or_else(|| {
            invalid("Le code de service Net-entreprises n'est pas indiqué (25 pour la DSN, 97 pour son test).")
        })?;
        let id = raw.identity.unwrap_or_default();
        let typed = TypedIdentity {
            siret: id.siret,
            nom: id.nom,
            prenom: id.prenom,
            password: SecretString::from(id.password),
        };
        let identity: Identity = match typed.validate() {
            Ok(i) => i,
            Err(problems) => {
                return Ok(Err(Unusable::Identity(Authentication::invalid_input(
                    problems,
                ))));
            }
        };
        let network = raw.network.unwrap_or_default();
        let address = network.address.clone();
        let settings = match NetworkSettings::try_from(network) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Err(Unusable::Settings(settings_diagnosis(&address, &e))));
            }
        };
        let auth_address = if raw.auth_address.is_empty() {
            None
        } else {
            match iea_net::settings::parse_address(&raw.auth_address, settings.mode) {
                Ok(u) => Some(u),
                Err(e) => {
                    return Ok(Err(Unusable::Settings(settings_diagnosis(
                        &raw.auth_address,
                        &e,
                    ))));
                }
            }
        };
        Ok(Ok(self.sessions.access(
            &settings,
            auth_address,
            identity,
            service,
        )))
    }
}

#[tonic::async_trait]
impl DepositAgent for Agent {
    #[tracing::instrument(skip_all, fields(deposit_id))]
    async fn deposit(
        &self,
        request: Request<Streaming<DepositChunk>>,
    ) -> Result<Response<DepositResponse>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| invalid("Le dépôt ne contient aucun message."))?;
        let start = first.start.ok_or_else(|| {
            invalid("Le premier message d'un dépôt doit annoncer le fichier (start).")
        })?;
        tracing::Span::current().record("deposit_id", start.deposit_id.as_str());
        let total = start.total_size;
        if total == 0 {
            return Err(invalid("Le fichier à déposer est vide."));
        }
        if total > MAX_FILE_BYTES {
            return Err(invalid(&format!(
                "Le fichier à déposer dépasse {} Mo.",
                MAX_FILE_BYTES >> 20
            )));
        }
        let access = match self.access(start.access)? {
            Ok(a) => a,
            Err(unusable) => return Ok(Response::new(unusable_deposit(unusable))),
        };
        let mut compressor = Compressor::for_size(total);
        if first.data.len() as u64 > total {
            return Err(too_long(total));
        }
        compressor.push(first.data).await.map_err(spool_error)?;
        // The file is whole once its announced bytes have arrived.
        while compressor.received() < total {
            let Some(m) = stream.message().await? else {
                return Err(invalid(&format!(
                    "Le fichier reçu fait {} octets au lieu des {total} annoncés : rien n'a été envoyé.",
                    compressor.received()
                )));
            };
            if m.start.is_some() {
                return Err(invalid(
                    "Un dépôt n'annonce son fichier qu'une fois, dans son premier message.",
                ));
            }
            if m.withdraw {
                tracing::info!("deposit withdrawn before the whole file arrived: nothing sent");
                return Ok(Response::new(no_turn(
                    NoTurn::Withdrawn,
                    compressor.received(),
                    0,
                )));
            }
            if compressor.received() + m.data.len() as u64 > total {
                return Err(too_long(total));
            }
            compressor.push(m.data).await.map_err(spool_error)?;
        }
        let spool = compressor.finish().await.map_err(spool_error)?;
        let may_wait = turns::may_wait(start.may_wait_ms);
        let turn = match self.turn(&mut stream, start.at_once, may_wait).await? {
            Ok(turn) => turn,
            Err(why) => {
                tracing::info!(
                    why = why.code(),
                    may_wait_ms = may_wait.as_millis() as u64,
                    "deposit without a turn: nothing sent"
                );
                return Ok(Response::new(no_turn(why, spool.bytes, spool.compressed)));
            }
        };
        // In a task of its own, with its turn: a caller that leaves does not cut a deposit
        // that may be reaching Net-entreprises; its outcome is still awaited and logged.
        let sessions = self.sessions.clone();
        let deposit_id = start.deposit_id;
        let span = tracing::Span::current();
        let report = tokio::spawn(
            async move {
                let report = deposit::deposit(&sessions, &access, &spool, &deposit_id).await;
                drop(turn);
                tracing::info!(
                    outcome = report.outcome.code(),
                    http_status = report.http_status.unwrap_or(0),
                    bytes = report.bytes,
                    compressed_bytes = report.compressed_bytes,
                    reauthenticated = report.reauthenticated,
                    detail = %report.detail,
                    "deposit done"
                );
                report
            }
            .instrument(span),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the deposit task failed");
            Status::from(ApiError::internal())
        })?;
        Ok(Response::new(deposit_to_proto(report)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_deposits(
        &self,
        request: Request<ListDepositsRequest>,
    ) -> Result<Response<ListDepositsResponse>, Status> {
        let request = request.into_inner();
        let window = listing::Window::new(&request.debut, &request.fin).map_err(|e| invalid(&e))?;
        let access = match self.access(request.access)? {
            Ok(a) => a,
            Err(Unusable::Identity(a)) => {
                return Ok(Response::new(ListDepositsResponse {
                    message: a.message.clone(),
                    outcome: Some(list_deposits_response::Outcome::Authentication(a.into())),
                    ..Default::default()
                }));
            }
            Err(Unusable::Settings(d)) => {
                return Ok(Response::new(ListDepositsResponse {
                    message: d.message.clone(),
                    outcome: Some(list_deposits_response::Outcome::Failed(ListingFailed {
                        failure: ListingFailure::Unavailable.into(),
                        probe: Some(d.into()),
                    })),
                    ..Default::default()
                }));
            }
        };
        // As long as the caller waits (a caller that leaves drops the wait).
        let turn = self
            .turns
            .gate(request.at_once)
            .acquire_owned()
            .await
            .map_err(|_| Status::from(ApiError::internal()))?;
        let report = listing::list(&self.sessions, &access, &window).await;
        drop(turn);
        tracing::info!(
            http_status = report.http_status.unwrap_or(0),
            reauthenticated = report.reauthenticated,
            "listing done"
        );
        Ok(Response::new(listing_to_proto(report)))
    }

    #[tracing::instrument(skip_all, fields(idflux))]
    async fn list_flux_returns(
        &self,
        request: Request<ListFluxReturnsRequest>,
    ) -> Result<Response<ListReturnsResponse>, Status> {
        let request = request.into_inner();
        let idflux = request.idflux.trim().to_owned();
        if !report::is_idflux(&idflux) {
            return Err(invalid(
                "L'identifiant du dépôt (idflux) doit compter de 1 à 50 lettres ou chiffres.",
            ));
        }
        tracing::Span::current().record("idflux", idflux.as_str());
        let access = match self.access(request.access)? {
            Ok(a) => a,
            Err(unusable) => return Ok(Response::new(unusable_returns(unusable))),
        };
        let report = returns::list_flux(&self.sessions, &access, &idflux).await;
        Ok(Response::new(returns_to_proto(report)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_declarant_returns(
        &self,
        request: Request<ListDeclarantReturnsRequest>,
    ) -> Result<Response<ListReturnsResponse>, Status> {
        let request = request.into_inner();
        let window = listing::Window::new(&request.debut, &request.fin).map_err(|e| invalid(&e))?;
        let access = match self.access(request.access)? {
            Ok(a) => a,
            Err(unusable) => return Ok(Response::new(unusable_returns(unusable))),
        };
        let report = returns::list_declarant(&self.sessions, &access, &window).await;
        Ok(Response::new(returns_to_proto(report)))
    }

    type DownloadReturnStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<DownloadReturnChunk, Status>> + Send>>;

    #[tracing::instrument(skip_all)]
    async fn download_return(
        &self,
        request: Request<DownloadReturnRequest>,
    ) -> Result<Response<Self::DownloadReturnStream>, Status> {
        let request = request.into_inner();
        let max = if request.max_bytes == 0 {
            returns::DEFAULT_MAX_BYTES
        } else {
            request.max_bytes
        };
        let last = |report: returns::DownloadReport| -> Self::DownloadReturnStream {
            Box::pin(futures::stream::iter(download_outcome(report).map(Ok)))
        };
        let access = match self.access(request.access)? {
            Ok(a) => a,
            Err(unusable) => {
                let report = match unusable {
                    Unusable::Identity(a) => returns::DownloadReport {
                        message: format!("Le retour n'a pas pu être téléchargé : {}", a.message),
                        outcome: returns::DownloadOutcome::Authentication(a),
                        http_status: None,
                        reauthenticated: false,
                    },
                    Unusable::Settings(d) => returns::DownloadReport {
                        message: format!("Le retour n'a pas pu être téléchargé : {}", d.message),
                        outcome: returns::DownloadOutcome::Failed(
                            returns::DownloadFailure::Unavailable,
                            Some(d),
                        ),
                        http_status: None,
                        reauthenticated: false,
                    },
                };
                return Ok(Response::new(last(report)));
            }
        };
        let url = match returns::check_url(&access.business.settings().address, &request.url) {
            Ok(u) => u,
            Err(reason) => {
                return Ok(Response::new(last(returns::DownloadReport::foreign(
                    reason,
                ))));
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let sessions = self.sessions.clone();
        let span = tracing::Span::current();
        let task = tokio::spawn(
            async move { returns::download(&sessions, &access, &url, max, &tx).await }
                .instrument(span),
        );
        let data = tokio_stream::wrappers::ReceiverStream::new(rx).map(|data| {
            Ok(DownloadReturnChunk {
                data,
                outcome: None,
            })
        });
        let end = futures::stream::once(async move {
            match task.await {
                Ok(report) => download_outcome(report),
                Err(e) => {
                    tracing::error!(error = %e, "the download task failed");
                    None
                }
            }
        })
        .filter_map(|o| async move { o.map(Ok) });
        Ok(Response::new(Box::pin(data.chain(end))))
    }

    #[tracing::instrument(skip_all)]
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeResult>, Status> {
        let result = iea_net::probe_rpc(request.into_inner().network, &user_agent()).await;
        Ok(Response::new(result))
    }
}

/// Why a deposit never left the agent.
#[derive(Debug, Clone, Copy)]
enum NoTurn {
    /// The caller withdrew it.
    Withdrawn,
    /// Its turn did not come within this wait.
    Missed(Duration),
}

impl NoTurn {
    fn code(self) -> &'static str {
        match self {
            Self::Withdrawn => "withdrawn",
            Self::Missed(_) => "missed",
        }
    }
}

/// The answer of a deposit that never left the agent.
fn no_turn(why: NoTurn, bytes: u64, compressed_bytes: u64) -> DepositResponse {
    let (message, detail) = match why {
        NoTurn::Withdrawn => (
            "La DSN n'a pas été déposée : le dépôt a été retiré avant son tour. Rien n'a été envoyé à Net-entreprises ; il pourra être refait.".to_owned(),
            "no turn: withdrawn by the caller".to_owned(),
        ),
        NoTurn::Missed(wait) => (
            format!(
                "La DSN n'a pas été déposée : d'autres échanges avec Net-entreprises ont occupé toutes les places pendant {} s. Rien n'a été envoyé ; le dépôt pourra être refait.",
                wait.as_secs().max(1)
            ),
            format!("no turn within {} ms", wait.as_millis()),
        ),
    };
    DepositResponse {
        outcome: Some(deposit_response::Outcome::NotSent(DepositNotSent {
            probe: None,
            no_turn: true,
        })),
        message,
        detail,
        bytes,
        compressed_bytes,
        ..Default::default()
    }
}

/// Data after the whole file, while the deposit waits for its turn.
fn too_long_after_whole() -> Status {
    invalid("Le fichier reçu dépasse la taille annoncée : rien n'a été envoyé.")
}

fn too_long(total: u64) -> Status {
    invalid(&format!(
        "Le fichier reçu dépasse les {total} octets annoncés : rien n'a été envoyé."
    ))
}

fn spool_error(e: std::io::Error) -> Status {
    tracing::error!(error = %e, "the file could not be kept aside for sending");
    ApiError::internal().into()
}

fn unusable_deposit(unusable: Unusable) -> DepositResponse {
    match unusable {
        Unusable::Identity(a) => DepositResponse {
            message: format!("La DSN n'a pas été déposée : {}", a.message),
            detail: "invalid identity".into(),
            outcome: Some(deposit_response::Outcome::Authentication(a.into())),
            ..Default::default()
        },
        Unusable::Settings(d) => DepositResponse {
            message: format!("La DSN n'a pas été déposée : {}", d.message),
            detail: d.detail.clone(),
            outcome: Some(deposit_response::Outcome::NotSent(DepositNotSent {
                probe: Some(d.into()),
                no_turn: false,
            })),
            ..Default::default()
        },
    }
}

fn deposit_to_proto(r: deposit::DepositReport) -> DepositResponse {
    use deposit_response::Outcome as P;
    let outcome = match r.outcome {
        deposit::Outcome::Accepted(a) => P::Accepted(DepositAccepted {
            idflux: a.idflux,
            date_enregistrement: a.date_enregistrement,
            heure_enregistrement: a.heure_enregistrement,
            essai_reel: a.essai_reel,
        }),
        deposit::Outcome::Rejected(r) => P::Rejected(DepositRejected {
            anomalies: r
                .anomalies
                .into_iter()
                .map(|a| DepositAnomaly {
                    code: a.code,
                    message: a.message,
                })
                .collect(),
            idflux: r.idflux.unwrap_or_default(),
            anomalies_omitted: r.omitted as u64,
        }),
        deposit::Outcome::Authentication(a) => P::Authentication(VerifyResponse::from(a)),
        deposit::Outcome::NotSent(d) => P::NotSent(DepositNotSent {
            probe: Some(d.into()),
            no_turn: false,
        }),
        deposit::Outcome::Refused => P::Refused(DepositRefused {}),
        deposit::Outcome::Uncertain(d) => P::Uncertain(DepositUncertain {
            probe: d.map(Into::into),
        }),
    };
    DepositResponse {
        outcome: Some(outcome),
        http_status: r.http_status.map(u32::from).unwrap_or(0),
        message: r.message,
        detail: r.detail,
        bytes: r.bytes,
        compressed_bytes: r.compressed_bytes,
        reauthenticated: r.reauthenticated,
    }
}

fn listing_to_proto(r: listing::ListingReport) -> ListDepositsResponse {
    use list_deposits_response::Outcome as P;
    let outcome = match r.outcome {
        listing::Outcome::Listing {
            deposits,
            window_max_minutes,
        } => P::Listing(DepositListing {
            deposits: deposits
                .into_iter()
                .map(|d| ListedDeposit {
                    idflux: d.idflux,
                    date: d.date,
                    statut: d.statut,
                })
                .collect(),
            window_max_minutes: window_max_minutes.unwrap_or(0),
        }),
        listing::Outcome::Authentication(a) => P::Authentication(a.into()),
        listing::Outcome::Failed(f, d) => P::Failed(ListingFailed {
            failure: match f {
                listing::Failure::WindowTooWide => ListingFailure::WindowTooWide,
                listing::Failure::BadDates => ListingFailure::BadDates,
                listing::Failure::Unavailable => ListingFailure::Unavailable,
                listing::Failure::Unexpected => ListingFailure::Unexpected,
            }
            .into(),
            probe: d.map(Into::into),
        }),
    };
    ListDepositsResponse {
        outcome: Some(outcome),
        http_status: r.http_status.map(u32::from).unwrap_or(0),
        message: r.message,
        reauthenticated: r.reauthenticated,
    }
}

fn unusable_returns(unusable: Unusable) -> ListReturnsResponse {
    match unusable {
        Unusable::Identity(a) => ListReturnsResponse {
            message: format!(
                "La liste des retours n'a pas pu être obtenue : {}",
                a.message
            ),
            outcome: Some(list_returns_response::Outcome::Authentication(a.into())),
            ..Default::default()
        },
        Unusable::Settings(d) => ListReturnsResponse {
            message: format!(
                "La liste des retours n'a pas pu être obtenue : {}",
                d.message
            ),
            outcome: Some(list_returns_response::Outcome::Failed(ListingFailed {
                failure: ListingFailure::Unavailable.into(),
                probe: Some(d.into()),
            })),
            ..Default::default()
        },
    }
}

fn returns_to_proto(r: returns::ListReport) -> ListReturnsResponse {
    use list_returns_response::Outcome as P;
    let outcome = match r.outcome {
        returns::ListOutcome::Listing {
            returns,
            window_max_minutes,
            expires_in_seconds,
        } => P::Listing(ReturnsListing {
            returns: returns
                .into_iter()
                .map(|r| ListedReturn {
                    idflux: r.idflux,
                    publication: r.publication,
                    production: r.production,
                    nature: r.nature,
                    statut: r.statut,
                    id: r.id,
                    url: r.url,
                })
                .collect(),
            window_max_minutes: window_max_minutes.unwrap_or(0),
            expires_in_seconds,
        }),
        returns::ListOutcome::Authentication(a) => P::Authentication(a.into()),
        returns::ListOutcome::Failed(f, d) => P::Failed(ListingFailed {
            failure: match f {
                returns::ListFailure::WindowTooWide => ListingFailure::WindowTooWide,
                returns::ListFailure::BadDates => ListingFailure::BadDates,
                returns::ListFailure::Unavailable => ListingFailure::Unavailable,
                returns::ListFailure::Unexpected => ListingFailure::Unexpected,
                returns::ListFailure::UnknownFlux => ListingFailure::UnknownFlux,
            }
            .into(),
            probe: d.map(Into::into),
        }),
    };
    ListReturnsResponse {
        outcome: Some(outcome),
        http_status: r.http_status.map(u32::from).unwrap_or(0),
        message: r.message,
        reauthenticated: r.reauthenticated,
    }
}

/// The last message of a download; `None` when the caller is gone.
fn download_outcome(r: returns::DownloadReport) -> Option<DownloadReturnChunk> {
    let outcome = match r.outcome {
        returns::DownloadOutcome::Done {
            bytes,
            sha256,
            expires_in_seconds,
        } => dl::Outcome::Done(DownloadDone {
            bytes,
            sha256,
            expires_in_seconds,
        }),
        returns::DownloadOutcome::Authentication(a) => dl::Outcome::Authentication(a.into()),
        returns::DownloadOutcome::Failed(f, d) => dl::Outcome::Failed(DownloadFailed {
            failure: match f {
                returns::DownloadFailure::ForeignAddress => DownloadFailure::ForeignAddress,
                returns::DownloadFailure::Gone => DownloadFailure::Gone,
                returns::DownloadFailure::TooLarge => DownloadFailure::TooLarge,
                returns::DownloadFailure::Unavailable => DownloadFailure::Unavailable,
                returns::DownloadFailure::Unexpected => DownloadFailure::Unexpected,
            }
            .into(),
            probe: d.map(Into::into),
        }),
        returns::DownloadOutcome::CallerGone => return None,
    };
    Some(DownloadReturnChunk {
        data: Vec::new(),
        outcome: Some(iea_proto::agent::v1::DownloadOutcome {
            outcome: Some(outcome),
            http_status: r.http_status.map(u32::from).unwrap_or(0),
            message: r.message,
            reauthenticated: r.reauthenticated,
        }),
    })
}

/// The agent, bound and ready to run.
pub struct App {
    server: GrpcServer,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Options::default()).await
    }

    /// With options the settings file does not carry (a bound on every call's timeouts,
    /// for tests of a slow server).
    pub async fn build_with(settings: Settings, options: Options) -> anyhow::Result<Self> {
        let agent = Agent::new(options);
        let routes = Routes::new(DepositAgentServer::new(agent));
        let server = iea_runtime::agent::bind(
            COMPONENT,
            &settings,
            routes,
            &[<DepositAgentServer<Agent> as NamedService>::NAME],
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
