//! Authentication of the installation against the Impact emploi server, through the auth
//! client agent: at start, periodically (with jitter, and with exponential back-off while
//! failing), and on demand ("Relancer l'authentification"). Each outcome becomes the
//! status indicator's state; in assistance mode nothing is sent.

use std::sync::Arc;
use std::time::Duration;

use iea_version::ImpactVersion;
use rand::Rng;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use crate::agents::{AgentError, Agents};
use crate::connection::Target;
use crate::network::Network;
use crate::status::{Indicator, Snapshot, StatusHub};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSchedule {
    /// Between two authentications while they succeed.
    pub interval_secs: u64,
    /// Random spread of that interval, in percent, so installations do not all call at once.
    pub jitter_percent: u8,
    /// First retry after a failure; doubled at each failure up to `retry_max_secs`.
    pub retry_initial_ms: u64,
    pub retry_max_secs: u64,
}

impl Default for AuthSchedule {
    fn default() -> Self {
        Self {
            interval_secs: 900,
            jitter_percent: 10,
            retry_initial_ms: 5_000,
            retry_max_secs: 300,
        }
    }
}

/// The installed Impact emploi version, shared by whoever needs it and persisted when an
/// update changes it.
#[derive(Clone)]
pub struct InstalledVersion {
    current: Arc<std::sync::RwLock<ImpactVersion>>,
    store: crate::store::Store,
}

impl InstalledVersion {
    /// The persisted version, or `default` (from the settings) if none was recorded.
    pub async fn load(store: crate::store::Store, default: ImpactVersion) -> anyhow::Result<Self> {
        let saved = store.load::<crate::store::InstalledVersion>().await?;
        Ok(Self {
            current: Arc::new(std::sync::RwLock::new(saved.map_or(default, |v| v.0))),
            store,
        })
    }

    pub fn get(&self) -> ImpactVersion {
        *self.current.read().expect("version lock")
    }

    pub async fn set(&self, version: ImpactVersion) -> anyhow::Result<()> {
        if self.get() == version {
            return Ok(());
        }
        self.store
            .save(crate::store::InstalledVersion(version))
            .await?;
        *self.current.write().expect("version lock") = version;
        tracing::info!(%version, "installed version changed");
        Ok(())
    }
}

/// Who the installation is, as the server knows it.
pub struct Installation {
    pub id: String,
    pub licence_key: SecretString,
    /// Changes when an update is applied.
    pub software_version: InstalledVersion,
    pub workstation: String,
}

#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Arc<StatusHub>,
    agents: Agents,
    network: Arc<Network>,
    installation: Installation,
    schedule: AuthSchedule,
    /// One authentication at a time.
    running: Mutex<()>,
    /// Wakes the periodic loop for an immediate attempt.
    wake: Notify,
}

impl Authenticator {
    pub fn new(
        hub: Arc<StatusHub>,
        agents: Agents,
        network: Arc<Network>,
        installation: Installation,
        schedule: AuthSchedule,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub,
                agents,
                network,
                installation,
                schedule,
                running: Mutex::new(()),
                wake: Notify::new(),
            }),
        }
    }

    /// Asks the periodic loop for an attempt now, without waiting for it.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// One authentication now ("Relancer l'authentification"); the resulting state. A
    /// failure puts the periodic loop on its retry schedule at once.
    pub async fn authenticate_now(&self) -> anyhow::Result<Snapshot> {
        let snap = self.authenticate_once().await?;
        if !succeeded(&snap) {
            self.wake();
        }
        Ok(snap)
    }

    /// One authentication; in assistance mode, none is made.
    async fn authenticate_once(&self) -> anyhow::Result<Snapshot> {
        let _one = self.inner.running.lock().await;
        if self.inner.hub.current().indicator == Indicator::Assistance {
            return Ok(self.inner.hub.current());
        }
        let i = &self.inner.installation;
        let version = i.software_version.get();
        let answer = self
            .inner
            .agents
            .authenticate(
                self.inner.network.for_target(Target::AuthServer),
                i,
                version,
            )
            .await;
        let next = match answer {
            Ok(answer) => snapshot_of(answer, version),
            Err(e) => agent_failure(e),
        };
        // Assistance may have been switched on while the call was out: it wins.
        self.inner
            .hub
            .update(|cur| (cur.indicator != Indicator::Assistance).then_some(next))
            .await
    }

    /// Authenticates at start, then on schedule or when woken, until `stop` fires.
    pub async fn run(self, stop: iea_runtime::shutdown::Shutdown) {
        let s = &self.inner.schedule;
        let mut retry = Duration::from_millis(s.retry_initial_ms);
        let mut delay = Duration::ZERO;
        let stopped = stop.wait();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(delay) => {}
                _ = self.inner.wake.notified() => {}
            }
            let ok = match self.authenticate_now().await {
                Ok(snap) => matches!(
                    snap.indicator,
                    Indicator::Connected | Indicator::Consultation | Indicator::Assistance
                ),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "authentication round failed");
                    false
                }
            };
            delay = if ok {
                retry = Duration::from_millis(s.retry_initial_ms);
                jittered(Duration::from_secs(s.interval_secs), s.jitter_percent)
            } else {
                let d = retry;
                retry = (retry * 2).min(Duration::from_secs(s.retry_max_secs));
                d
            };
        }
    }
}

/// The server answered and the periodic schedule applies (no retry needed).
fn succeeded(s: &Snapshot) -> bool {
    matches!(
        s.indicator,
        Indicator::Connected | Indicator::Consultation | Indicator::Assistance
    )
}

fn jittered(d: Duration, percent: u8) -> Duration {
    if percent == 0 {
        return d;
    }
    let spread = d.as_secs_f64() * f64::from(percent.min(100)) / 100.0;
    let offset = rand::thread_rng().gen_range(-spread..=spread);
    Duration::from_secs_f64((d.as_secs_f64() + offset).max(1.0))
}

/// What the authentication server answered (or why no answer came), as the auth
/// client reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAnswer {
    Authorized {
        licence_holder: String,
    },
    Refused {
        message: String,
    },
    /// `unknown`: the server does not know the installation at all.
    LicenceWithdrawn {
        unknown: bool,
        message: String,
    },
    UpdateRequired {
        minimum_version: ImpactVersion,
    },
    /// French sentence of where the attempt stopped.
    Unreachable {
        detail: String,
    },
    /// An answer the auth client could not make sense of.
    Unexpected,
}

/// The state an answer of the authentication server leads to.
pub fn snapshot_of(answer: AuthAnswer, installed: ImpactVersion) -> Snapshot {
    match answer {
        AuthAnswer::Authorized { licence_holder } => {
            let holder = if licence_holder.is_empty() {
                String::new()
            } else {
                format!(" (licence de « {licence_holder} »)")
            };
            Snapshot::new(
                Indicator::Connected,
                "authorized",
                format!("Connecté au serveur d'authentification Impact emploi{holder}."),
            )
        }
        AuthAnswer::Refused { message } => Snapshot::new(
            Indicator::Disconnected,
            "auth_refused",
            format!(
                "Serveur d'authentification : {}.",
                if message.is_empty() {
                    "Autorisation refusée"
                } else {
                    message.trim_end_matches('.')
                }
            ),
        ),
        AuthAnswer::LicenceWithdrawn { unknown, message } => Snapshot::new(
            Indicator::Consultation,
            if unknown {
                "licence_unknown"
            } else {
                "licence_withdrawn"
            },
            if message.is_empty() {
                "La licence vous a été retirée, mais vous pouvez utiliser Impact Emploi pour de la consultation.".to_owned()
            } else {
                message
            },
        ),
        AuthAnswer::UpdateRequired { minimum_version } => {
            let mut s = Snapshot::new(
                Indicator::Disconnected,
                "update_required",
                format!(
                    "Une mise à jour d'Impact emploi est nécessaire : le serveur demande au moins la version {minimum_version} (version installée : {installed})."
                ),
            );
            s.update_required = true;
            s.update_available = Some(minimum_version);
            s
        }
        AuthAnswer::Unreachable { detail } => Snapshot::new(
            Indicator::Disconnected,
            "auth_unreachable",
            format!("Le serveur d'authentification Impact emploi est injoignable. {detail}")
                .trim_end()
                .to_owned(),
        ),
        AuthAnswer::Unexpected => Snapshot::new(
            Indicator::Disconnected,
            "auth_unexpected",
            "Le service d'authentification a donné une réponse incompréhensible.",
        ),
    }
}

fn agent_failure(e: AgentError) -> Snapshot {
    match e {
        AgentError::Unavailable { agent, detail } => {
            tracing::warn!(agent, detail, "agent unavailable");
            Snapshot::new(
                Indicator::Disconnected,
                "agent_unavailable",
                format!(
                    "Le service d'authentification ({agent}) ne répond pas : l'état de la connexion sera vérifié à nouveau automatiquement."
                ),
            )
        }
        AgentError::Refused { agent, error } => {
            tracing::warn!(agent, code = %error.code, "authentication request refused by the agent");
            Snapshot::new(
                Indicator::Disconnected,
                "auth_request_invalid",
                error.message,
            )
        }
    }
}
