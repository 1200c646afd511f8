//! Updates of Impact emploi ("Mettre à jour Impact Emploi maintenant", "Lisez-moi",
//! maintenance scripts). The update client does the work; this module decides what
//! the installation asks of it and what follows:
//! - the connection settings of the update server are passed on each call;
//! - in assistance mode an update's scripts are downloaded but held as pending, never
//!   run; while the licence is withdrawn (consultation) pending scripts are not applied;
//! - once an update is in place, the installed version is the new one everywhere at once
//!   (status, support e-mail) and the installation authenticates again with it, since
//!   the server judges the minimum version;
//! - availability is checked periodically and shown in the status.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use iea_version::ImpactVersion;

use crate::agents::{AgentError, Agents};
use crate::authenticator::{Authenticator, InstalledVersion};
use crate::connection::Target;
use crate::network::Network;
use crate::status::{Indicator, StatusHub};

/// A version the server offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: ImpactVersion,
    /// Unix seconds.
    pub published_at: Option<i64>,
    pub package_length: u64,
    pub script_count: u32,
    pub notes_available: bool,
}

/// What the update server offers this installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub installed_version: ImpactVersion,
    /// Newer releases, oldest first.
    pub available: Vec<Release>,
    /// Set when the installed version is below what the server requires.
    pub minimum_version: Option<ImpactVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNotes {
    pub version: ImpactVersion,
    /// Plain text.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Metadata,
    Download,
    Verify,
    Stage,
    Switch,
    StartCheck,
    Scripts,
    Done,
}

/// How an update is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub bytes_per_second: u64,
    pub seconds_remaining: u32,
    /// French sentence.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptState {
    Pending,
    Applied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub version: String,
    pub state: ScriptState,
    /// Unix seconds.
    pub applied_at: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpdatesError {
    #[error("no newer version")]
    NoUpdate,
    #[error("refused in consultation")]
    Consultation,
    #[error(transparent)]
    Agent(#[from] AgentError),
}

#[derive(Clone)]
pub struct Updates {
    agents: Agents,
    network: Arc<Network>,
    hub: Arc<StatusHub>,
    version: InstalledVersion,
    authenticator: Authenticator,
}

impl Updates {
    pub fn new(
        agents: Agents,
        network: Arc<Network>,
        hub: Arc<StatusHub>,
        version: InstalledVersion,
        authenticator: Authenticator,
    ) -> Self {
        Self {
            agents,
            network,
            hub,
            version,
            authenticator,
        }
    }

    /// What the server offers; the status learns whether a newer version is available.
    pub async fn check(&self) -> Result<Availability, UpdatesError> {
        let check = self
            .agents
            .check_updates(self.network.for_target(Target::UpdateServer))
            .await?;
        self.note_available(&check).await;
        Ok(check)
    }

    /// The notes of `version`, or of the newest when `None`.
    pub async fn release_notes(
        &self,
        version: Option<ImpactVersion>,
    ) -> Result<ReleaseNotes, UpdatesError> {
        let version = self.version_or_newest(version).await?;
        Ok(self
            .agents
            .release_notes(self.network.for_target(Target::UpdateServer), version)
            .await?)
    }

    /// Installs `version` (the newest when `None`), as a stream of its progress. Once it
    /// is done, the installed version is the new one and the installation
    /// authenticates again with it.
    pub async fn apply(
        &self,
        version: Option<ImpactVersion>,
    ) -> Result<impl Stream<Item = Result<Progress, UpdatesError>> + Send + use<>, UpdatesError>
    {
        let version = self.version_or_newest(version).await?;
        // In assistance mode, scripts are downloaded but wait as pending.
        let hold_scripts = self.hub.current().indicator == Indicator::Assistance;
        let progress = self
            .agents
            .apply_update(
                self.network.for_target(Target::UpdateServer),
                version,
                hold_scripts,
            )
            .await?;
        let this = self.clone();
        Ok(progress.then(move |item| {
            let this = this.clone();
            async move {
                let p = item?;
                if p.phase == Phase::Done {
                    this.installed(version).await;
                }
                Ok(p)
            }
        }))
    }

    /// The version in place after an update: recorded before anyone is told it is done,
    /// then the installation authenticates with it.
    async fn installed(&self, version: ImpactVersion) {
        if let Err(e) = self.version.set(version).await {
            tracing::warn!(error = format!("{e:#}"), "installed version not recorded");
        }
        // Whether the server still requires a newer one, the authentication says.
        let result = self
            .hub
            .update(|cur| {
                (cur.update_available == Some(version)).then(|| {
                    let mut next = cur.clone();
                    next.update_available = None;
                    next
                })
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(
                error = format!("{e:#}"),
                "status not updated after the update"
            );
        }
        self.authenticator.wake();
    }

    pub async fn pending_scripts(&self) -> Result<Vec<Script>, UpdatesError> {
        Ok(self.agents.list_scripts().await?)
    }

    /// Runs the pending scripts; refused while the licence is withdrawn.
    pub async fn apply_scripts(&self) -> Result<Vec<Script>, UpdatesError> {
        if self.hub.in_consultation() {
            return Err(UpdatesError::Consultation);
        }
        Ok(self.agents.apply_scripts().await?)
    }

    /// `version`, or when `None` the newest the server offers.
    async fn version_or_newest(
        &self,
        version: Option<ImpactVersion>,
    ) -> Result<ImpactVersion, UpdatesError> {
        if let Some(v) = version {
            return Ok(v);
        }
        let check = self
            .agents
            .check_updates(self.network.for_target(Target::UpdateServer))
            .await?;
        check
            .available
            .iter()
            .map(|r| r.version)
            .max()
            .ok_or(UpdatesError::NoUpdate)
    }

    /// Records in the status whether a newer version is available.
    async fn note_available(&self, check: &Availability) {
        if let Err(e) = self.version.set(check.installed_version).await {
            tracing::warn!(error = format!("{e:#}"), "installed version not recorded");
        }
        let newest = check.available.iter().map(|r| r.version).max();
        let result = self
            .hub
            .update(|cur| {
                (cur.update_available != newest).then(|| {
                    let mut next = cur.clone();
                    next.update_available = newest;
                    next
                })
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = format!("{e:#}"), "update availability not recorded");
        }
    }

    /// Checks for updates every `interval` until `stop` fires, so that the status says
    /// when one is available without anyone asking.
    pub async fn check_periodically(
        self,
        interval: std::time::Duration,
        stop: iea_runtime::shutdown::Shutdown,
    ) {
        let stopped = stop.wait();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(e) = self.check().await {
                tracing::info!(error = %e, "periodic update check failed");
            }
        }
    }
}
