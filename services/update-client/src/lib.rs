//! The update client agent: checks, downloads, verifies, stages and applies updates and
//! maintenance scripts, shows release notes, and probes the update server, with the
//! network settings the orchestrator passes on each call.
//!
//! Invariant: nothing is staged, run or shown unless signed metadata covers it
//! (`shared/update-security.md`); what was trusted last, and the highest version
//! installed, survive restarts in the agent's own state directory.
//!
//! Layout:
//! - [`trust`]: TUF metadata refreshed with tough against `trust.json`, our extra checks,
//!   the catalogue of releases;
//! - [`transport`]: tough's transport over `iea-net`;
//! - [`download`]: the package download (capped, deadline, `Range` resume, verified);
//! - [`install`]: versions side by side, atomic switch, start check, failure points;
//! - [`scripts`]: maintenance scripts and the parameters table;
//! - [`notes`]: release notes made plain text;
//! - [`updater`]: the steps put together, and crash recovery;
//! - this module: settings and the gRPC service, which only converts at the edge.
//!
//! Versions are [`iea_version::ImpactVersion`] (the grammar the auth client and the mocks
//! share); a name that is not one is never a version, so a version is always safe as a
//! directory name.

pub mod download;
pub mod error;
pub mod install;
pub mod notes;
pub mod scripts;
pub mod transport;
pub mod trust;
pub mod updater;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use iea_net::NetworkSettings;
use iea_proto::agent::v1::update_agent_server::{UpdateAgent, UpdateAgentServer};
use iea_proto::agent::v1::{
    ApplyPhase, ApplyProgress, ApplyRequest, ApplyScriptsRequest, ApplyScriptsResponse,
    CheckRequest, CheckResponse, ListScriptsRequest, ListScriptsResponse, MaintenanceScript,
    Release, ReleaseNotes, ReleaseNotesRequest,
};
use iea_proto::common::v1::{ProbeRequest, ProbeResult};
use iea_proto::error::ApiError;
use iea_runtime::agent::AgentSettings;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

pub use error::UpdateError;
pub use install::{FailPoints, Step};
pub use updater::Updater;

pub const COMPONENT: &str = "update-client";

pub fn user_agent() -> String {
    format!("iea-connect/{}", env!("CARGO_PKG_VERSION"))
}

/// The agent's settings: where it listens (shared by every agent) and its own state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `listen` and `tls`, at the top level of the settings file.
    #[serde(flatten)]
    pub agent: AgentSettings,
    /// What this agent keeps: trusted metadata (`trust.json`), the highest version
    /// installed, the apply journal, downloads, scripts and the parameters table.
    pub state_dir: PathBuf,
    /// Where versions are installed side by side, with the `current` and `previous`
    /// links.
    pub install_dir: PathBuf,
    /// The update server's root metadata trusted at first use (from the mock:
    /// `root_file`, or `GET /__admin/root`). Afterwards the state directory's copy,
    /// updated through signed root rotations, is used.
    pub trusted_root: Option<PathBuf>,
    /// The version taken as installed while the install directory has none (Impact
    /// emploi installed by other means).
    pub installed_version: Option<String>,
    /// Overall deadline of a metadata refresh (every request of it together), seconds.
    pub metadata_deadline_secs: f64,
    /// Overall deadline of a package download, seconds.
    pub download_deadline_secs: f64,
    /// Longest wait for the next bytes of a download, seconds.
    pub idle_timeout_secs: f64,
    /// Failure points injected by tests (never from a settings file).
    #[serde(skip)]
    pub fail_points: FailPoints,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            agent: AgentSettings::default(),
            state_dir: PathBuf::from("update-client/state"),
            install_dir: PathBuf::from("update-client/install"),
            trusted_root: None,
            installed_version: None,
            metadata_deadline_secs: 60.0,
            download_deadline_secs: 3600.0,
            idle_timeout_secs: 30.0,
            fail_points: FailPoints::default(),
        }
    }
}

impl From<AgentSettings> for Settings {
    fn from(agent: AgentSettings) -> Self {
        Self {
            agent,
            ..Self::default()
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(60))
}

/// The gRPC service: converts at the edge, the [`Updater`] does the work.
#[derive(Clone)]
pub struct Agent {
    updater: Arc<Updater>,
}

type ProgressStream = Pin<Box<dyn futures::Stream<Item = Result<ApplyProgress, Status>> + Send>>;

fn network(raw: Option<iea_proto::common::v1::NetworkSettings>) -> Result<NetworkSettings, Status> {
    NetworkSettings::try_from(raw.unwrap_or_default()).map_err(|e| {
        tracing::info!(field = %e.field, "unusable network settings");
        Status::from(ApiError::invalid_input(e.message))
    })
}

fn status(e: UpdateError) -> Status {
    match &e {
        UpdateError::Internal(inner) => {
            tracing::error!(error = format!("{inner:#}"), "update failed")
        }
        other => tracing::info!(error = %other, "update refused"),
    }
    e.to_api().into()
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn phase(p: updater::Phase) -> ApplyPhase {
    use updater::Phase as P;
    match p {
        P::Metadata => ApplyPhase::Metadata,
        P::Download => ApplyPhase::Download,
        P::Verify => ApplyPhase::Verify,
        P::Stage => ApplyPhase::Stage,
        P::Switch => ApplyPhase::Switch,
        P::StartCheck => ApplyPhase::StartCheck,
        P::Scripts => ApplyPhase::Scripts,
        P::Done => ApplyPhase::Done,
    }
}

fn progress(e: updater::Event) -> ApplyProgress {
    let p = e.progress.unwrap_or(download::Progress {
        done: 0,
        total: 0,
        bytes_per_second: 0,
        seconds_remaining: 0,
    });
    ApplyProgress {
        phase: phase(e.phase).into(),
        bytes_done: p.done,
        bytes_total: p.total,
        bytes_per_second: p.bytes_per_second,
        seconds_remaining: p.seconds_remaining,
        message: e.message,
    }
}

fn script(r: scripts::ScriptRecord) -> MaintenanceScript {
    MaintenanceScript {
        name: r.name,
        version: r.version,
        state: match r.state {
            scripts::ScriptState::Pending => "pending".into(),
            scripts::ScriptState::Applied => "applied".into(),
        },
        applied_at: r.applied_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl UpdateAgent for Agent {
    #[tracing::instrument(skip_all)]
    async fn check(&self, r: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let net = network(r.into_inner().network)?;
        let result = self.updater.check(&net).await.map_err(status)?;
        let available = result
            .available
            .into_iter()
            .map(|rel| Release {
                version: rel.version.to_string(),
                published_at: rel.published_at.map(timestamp),
                package_length: rel.package.as_ref().map(|p| p.length).unwrap_or(0),
                script_count: u32::try_from(rel.scripts.len()).unwrap_or(u32::MAX),
                notes_available: rel.notes.is_some(),
            })
            .collect();
        Ok(Response::new(CheckResponse {
            installed_version: result.installed.map(|v| v.to_string()).unwrap_or_default(),
            available,
            minimum_version: result.minimum.map(|v| v.to_string()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_release_notes(
        &self,
        r: Request<ReleaseNotesRequest>,
    ) -> Result<Response<ReleaseNotes>, Status> {
        let r = r.into_inner();
        let net = network(r.network)?;
        let text = self.updater.notes(&net, &r.version).await.map_err(status)?;
        Ok(Response::new(ReleaseNotes {
            version: r.version,
            text,
        }))
    }

    type ApplyStream = ProgressStream;

    #[tracing::instrument(skip_all)]
    async fn apply(&self, r: Request<ApplyRequest>) -> Result<Response<Self::ApplyStream>, Status> {
        let r = r.into_inner();
        let net = network(r.network)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ApplyProgress, Status>>(64);
        let cancel = CancellationToken::new();
        // Dropping the response stream (the caller gone) cancels the download; the steps
        // after it run to their end.
        let guard = cancel.clone().drop_guard();
        let updater = self.updater.clone();
        let span =
            tracing::info_span!("apply", version = %r.version, hold_scripts = r.hold_scripts);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let events = tx.clone();
                let emit = move |e: updater::Event| {
                    let _ = events.try_send(Ok(progress(e)));
                };
                let result = updater
                    .apply(&net, &r.version, r.hold_scripts, &emit, &cancel)
                    .await;
                if let Err(e) = result {
                    let _ = tx.send(Err(status(e))).await;
                }
            },
            span,
        ));
        let stream = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            rx.recv().await.map(|item| (item, (rx, guard)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_scripts(
        &self,
        _r: Request<ListScriptsRequest>,
    ) -> Result<Response<ListScriptsResponse>, Status> {
        let scripts = self.updater.list_scripts().map_err(status)?;
        Ok(Response::new(ListScriptsResponse {
            scripts: scripts.into_iter().map(script).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn apply_scripts(
        &self,
        _r: Request<ApplyScriptsRequest>,
    ) -> Result<Response<ApplyScriptsResponse>, Status> {
        let applied = self.updater.apply_scripts().await.map_err(status)?;
        Ok(Response::new(ApplyScriptsResponse {
            applied: applied.into_iter().map(script).collect(),
        }))
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
    updater: Arc<Updater>,
}

impl App {
    /// Creates the state and install directories, repairs what an interrupted update left,
    /// and binds the gRPC server. Accepts bare [`AgentSettings`] (default directories, no
    /// trusted root: checks then answer `not_configured`).
    pub async fn build(settings: impl Into<Settings>) -> anyhow::Result<Self> {
        let settings: Settings = settings.into();
        let installed_version = match &settings.installed_version {
            None => None,
            Some(text) => Some(
                text.parse::<iea_version::ImpactVersion>()
                    .map_err(|e| anyhow::anyhow!("installed_version {text:?}: {e}"))?,
            ),
        };
        let cfg = updater::Config {
            state_dir: settings.state_dir.clone(),
            install_dir: settings.install_dir.clone(),
            trusted_root: settings.trusted_root.clone(),
            installed_version,
            metadata_deadline: secs(settings.metadata_deadline_secs),
            download_deadline: secs(settings.download_deadline_secs),
            idle_timeout: secs(settings.idle_timeout_secs),
            user_agent: user_agent(),
        };
        let updater = Updater::new(cfg, settings.fail_points.clone())
            .map_err(|e| anyhow::anyhow!("update client state: {e}"))?;
        updater.recover().await;
        let agent = Agent {
            updater: updater.clone(),
        };
        let routes = Routes::new(UpdateAgentServer::new(agent));
        let server = iea_runtime::agent::bind(
            COMPONENT,
            &settings.agent,
            routes,
            &[<UpdateAgentServer<Agent> as NamedService>::NAME],
        )
        .await?;
        Ok(Self { server, updater })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// The domain side, for in-process callers (tests, benchmark).
    pub fn updater(&self) -> Arc<Updater> {
        self.updater.clone()
    }

    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        self.server.run_until(shutdown).await
    }
}
