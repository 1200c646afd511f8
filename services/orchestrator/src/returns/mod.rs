//! What comes back for a DSN deposit (issue 13): each accepted deposit's returns are
//! followed until its natures are in (10 the AEE/ARE, 11 the conformity, 94 the CRM PAS
//! after the due date) or a limit of days passes; each declarant's returns are scanned
//! window by window from a persisted cursor, to catch overwritten returns and those of
//! deposits made elsewhere. Each new return (or new version) is downloaded once, kept
//! (0600) with its SHA-256, and read: 10/11 give the deposit's conformity and anomalies,
//! 94 the withholding rates, exported for the payroll program (`<data_dir>/crm-pas/`).
//!
//! Layout: this file holds the settings, the clock, the agent's interface and the
//! operations front-ends call; `follow.rs` one pass (following, scans, downloads);
//! `schedule.rs` the back-off and the windows (pure); `read.rs` turns a document into
//! what is stored; `export.rs` the export folder.
//!
//! Invariants: nothing of a return's content (NIR, names, amounts, rates) is logged: logs
//! carry deposit ids, idflux, natures, return ids, sizes and states; a download address
//! outside the configured download service is refused before anything is sent; work on
//! a deposit, a return or a declarant is done under a lease in the database (two
//! orchestrators on one PostgreSQL database never download the same return at once).

mod export;
mod follow;
mod read;
mod schedule;
#[cfg(test)]
mod tests;
mod types;

pub use export::{CSV_HEADER, write_atomically};
pub use follow::PassReport;
pub use read::nature_label as read_nature_label;
pub use schedule::{backoff_next, due_date_of_month, listing_time, valid_until_of};
pub use types::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::agents::{AgentError, Agents, DepositAccess};
use crate::deposits::{DepositSettings, ListingZone};
use crate::network::Network;
use crate::sessions::{self, Principal};
use crate::store::Store;
use crate::users::Role;
use crate::vault::Vault;

/// The limits of the following, a settings record (`returns_follow`) an administrator
/// may change; these defaults apply until one is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowPolicy {
    /// A deposit is no longer listed this many days after it was accepted.
    pub limit_days: u32,
}

impl Default for FollowPolicy {
    fn default() -> Self {
        Self { limit_days: 60 }
    }
}

/// `[returns]` of the orchestrator's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ReturnSettings {
    /// Whether returns are followed at all.
    pub enabled: bool,
    /// The download service (`/telecharger-retour/1.0/…` under it). Default: the
    /// consultation address with `consultation.` turned into `telechargement.` (the
    /// production and test hosts), or the consultation address itself (one host, as the
    /// mock).
    pub download_address: Option<String>,
    /// Between two listings of a deposit's returns, minutes: the n-th listing of a phase
    /// waits the n-th delay, the last one repeats (three listings a day at most once a
    /// phase is a day old). Never before the answer's `Expires`. By default a minute (the
    /// AEE), then an hour, two, four, eight: a conformity is published within hours, not
    /// minutes, and listing sooner only costs requests (« Suivre maintenant » lists at once
    /// for someone waiting for it).
    pub backoff_minutes: Vec<u32>,
    /// Between two scans of a declarant's returns once caught up, seconds. The scan is for
    /// what a deposit's own listing does not see (overwritten returns, deposits made
    /// elsewhere): every 6 hours by default, each scan then listing the six hourly windows
    /// since the last with one authentication instead of one per window.
    pub scan_interval_secs: u64,
    /// A scan's windows end this long before now (publication lag), seconds.
    pub scan_lag_secs: u64,
    /// Windows listed at most per declarant and pass (a catch-up continues on the next).
    pub scan_windows_per_pass: u32,
    /// How far back the first scan of a declarant starts before its first deposit, seconds.
    pub scan_lookback_secs: u64,
    /// Size cap of a return document, bytes.
    pub max_bytes: u64,
    /// Between two looks at what is due, milliseconds.
    pub poll_interval_ms: u64,
    /// A lease's length, seconds.
    pub lease_secs: u64,
    /// Listings and downloads at once.
    pub concurrency: usize,
    /// Before another try of a failed download, seconds.
    pub retry_delay_secs: u64,
    /// After this many failed tries, a download is given up (refused).
    pub max_download_attempts: u32,
}

impl Default for ReturnSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            download_address: None,
            backoff_minutes: vec![1, 60, 120, 240, 480],
            scan_interval_secs: 6 * 3600,
            scan_lag_secs: 120,
            scan_windows_per_pass: 48,
            scan_lookback_secs: 3600,
            max_bytes: 16 << 20,
            poll_interval_ms: 5000,
            lease_secs: 120,
            concurrency: 4,
            retry_delay_secs: 300,
            max_download_attempts: 10,
        }
    }
}

impl ReturnSettings {
    /// The download service's address (see `download_address`).
    pub fn download_address(&self, deposits: &DepositSettings) -> String {
        let address = match &self.download_address {
            Some(a) => a.clone(),
            None => {
                let c = deposits.consultation_address.trim_end_matches('/');
                match c.strip_prefix("https://consultation.") {
                    Some(rest) => format!("https://telechargement.{rest}"),
                    None => c.to_owned(),
                }
            }
        };
        address.trim_end_matches('/').to_owned()
    }
}

/// The time of the following: the system's, moved by an offset a test may change (so
/// that days pass without waiting, as the Net-entreprises mock's clock does).
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> i64 {
        sessions::now() + self.0.load(Ordering::Relaxed)
    }

    /// Moves the clock `secs` ahead.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }

    pub fn offset(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The deposit agent's returns services, as the following uses them (the agent itself,
/// or a fake in tests).
pub trait ReturnsAgent: Send + Sync + 'static {
    fn list_flux_returns(
        &self,
        access: DepositAccess,
        idflux: String,
    ) -> BoxFuture<'_, Result<ReturnsListing, AgentError>>;

    fn list_declarant_returns(
        &self,
        access: DepositAccess,
        debut: String,
        fin: String,
    ) -> BoxFuture<'_, Result<ReturnsListing, AgentError>>;

    /// Writes the document into `dest` (a new file, 0600), removed unless `Done`.
    fn download_return(
        &self,
        access: DepositAccess,
        url: String,
        max_bytes: u64,
        dest: PathBuf,
    ) -> BoxFuture<'_, Result<ReturnDownload, AgentError>>;
}

impl ReturnsAgent for Agents {
    fn list_flux_returns(
        &self,
        access: DepositAccess,
        idflux: String,
    ) -> BoxFuture<'_, Result<ReturnsListing, AgentError>> {
        Box::pin(Agents::list_flux_returns(self, access, idflux))
    }

    fn list_declarant_returns(
        &self,
        access: DepositAccess,
        debut: String,
        fin: String,
    ) -> BoxFuture<'_, Result<ReturnsListing, AgentError>> {
        Box::pin(Agents::list_declarant_returns(self, access, debut, fin))
    }

    fn download_return(
        &self,
        access: DepositAccess,
        url: String,
        max_bytes: u64,
        dest: PathBuf,
    ) -> BoxFuture<'_, Result<ReturnDownload, AgentError>> {
        Box::pin(Agents::download_return(self, access, url, max_bytes, dest))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    #[error("not allowed")]
    PermissionDenied(String),
    #[error("no such deposit")]
    NotFound(i64),
    #[error("invalid input")]
    InvalidInput(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The returns of one deposit, for a front-end.
#[derive(Debug, Clone)]
pub struct DepositReturns {
    pub deposit_id: i64,
    pub idflux: String,
    pub follow: Option<FollowRecord>,
    /// `OK`, `ANO`, `KO`, or empty until known.
    pub conformity: String,
    /// French sentence.
    pub conformity_message: String,
    pub returns: Vec<ReturnDetail>,
}

/// The following of returns; cheap to clone.
#[derive(Clone)]
pub struct Returns {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Store,
    vault: Vault,
    agent: Arc<dyn ReturnsAgent>,
    network: Arc<Network>,
    settings: ReturnSettings,
    consultation_address: String,
    download_address: String,
    listing_zone: ListingZone,
    deposits: DepositSettings,
    budget: u32,
    /// Where documents are kept (`<data_dir>/returns`, 0700).
    files_dir: PathBuf,
    /// `<data_dir>/crm-pas`.
    export_dir: PathBuf,
    owner: String,
    clock: Clock,
    /// One pass at a time in this orchestrator.
    pass_lock: tokio::sync::Mutex<()>,
}

impl Returns {
    /// Documents are kept in `<data_dir>/returns`, rates exported to `<data_dir>/crm-pas`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        vault: Vault,
        agent: Arc<dyn ReturnsAgent>,
        network: Arc<Network>,
        settings: ReturnSettings,
        deposits: &DepositSettings,
        budget: u32,
        data_dir: &Path,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let files_dir = data_dir.join("returns");
        iea_runtime::pki::private_dir(&files_dir)?;
        // This orchestrator's name on leases (stable across restarts of one data directory).
        let owner_file = files_dir.join("worker-id");
        let owner = match std::fs::read_to_string(&owner_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => {
                let id = format!("returns-{}", sessions::random_secret(9));
                iea_runtime::pki::write_file(&owner_file, id.as_bytes(), true)?;
                id
            }
        };
        let export_dir = data_dir.join("crm-pas");
        iea_runtime::pki::private_dir(&export_dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                vault,
                agent,
                network,
                download_address: settings.download_address(deposits),
                consultation_address: deposits
                    .consultation_address
                    .trim_end_matches('/')
                    .to_owned(),
                listing_zone: deposits.listing_time_zone,
                deposits: deposits.clone(),
                settings,
                budget,
                files_dir,
                export_dir,
                owner,
                clock,
                pass_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock.clone()
    }

    /// The export folder of `siret`'s rates.
    pub fn export_dir(&self, siret: &str) -> PathBuf {
        self.inner.export_dir.join(siret)
    }

    /// One pass now (`all`: every followed deposit and declarant, whatever their time).
    /// Administrator only.
    pub async fn follow_now(
        &self,
        caller: &Principal,
        all: bool,
    ) -> Result<PassReport, ReturnsError> {
        if caller.role != Role::Administrator {
            return Err(ReturnsError::PermissionDenied(
                "Seul un administrateur peut lancer le suivi des retours.".into(),
            ));
        }
        Ok(follow::pass(&self.inner, all).await?)
    }

    /// One pass (tests, tools).
    pub async fn pass(&self, all: bool) -> anyhow::Result<PassReport> {
        follow::pass(&self.inner, all).await
    }

    fn filter(caller: &Principal) -> Option<(i64, String)> {
        (caller.role != Role::Administrator).then(|| (caller.user_id, caller.name.clone()))
    }

    fn check_siret(siret: Option<&str>) -> Result<Option<String>, ReturnsError> {
        iea_declarant::optional_siret(siret.unwrap_or_default()).map_err(ReturnsError::InvalidInput)
    }

    /// The current rate of each employee the caller may see (an administrator: all;
    /// another account: those of deposits it requested or made).
    pub async fn rates(
        &self,
        caller: &Principal,
        siret: Option<&str>,
        include_expired: bool,
    ) -> Result<Vec<CurrentRate>, ReturnsError> {
        let siret = Self::check_siret(siret)?;
        let today = schedule::day_of(self.inner.clock.now());
        Ok(self
            .inner
            .store
            .current_rates(siret, Self::filter(caller), today, include_expired)
            .await?)
    }

    /// The returns of deposit `id`, with its conformity.
    pub async fn of_deposit(
        &self,
        caller: &Principal,
        id: i64,
    ) -> Result<DepositReturns, ReturnsError> {
        let store = &self.inner.store;
        let d = store.deposit(id).await?.ok_or(ReturnsError::NotFound(id))?;
        let visible = caller.role == Role::Administrator
            || d.user_id == Some(caller.user_id)
            || d.requested_by.eq_ignore_ascii_case(&caller.name);
        if !visible {
            return Err(ReturnsError::NotFound(id));
        }
        let follow = store.follow_record(id).await?;
        let returns = store.returns_of_deposit(id).await?;
        let (conformity, conformity_message) = read::conformity_of(&returns);
        Ok(DepositReturns {
            deposit_id: id,
            idflux: d.idflux.unwrap_or_default(),
            follow,
            conformity,
            conformity_message,
            returns,
        })
    }

    /// One line per followed deposit the caller may see.
    pub async fn follows(
        &self,
        caller: &Principal,
        siret: Option<&str>,
    ) -> Result<Vec<FollowSummary>, ReturnsError> {
        let siret = Self::check_siret(siret)?;
        Ok(self
            .inner
            .store
            .follow_summaries(siret, Self::filter(caller))
            .await?)
    }

    /// Runs passes until `shutdown`.
    pub async fn run(self, shutdown: iea_runtime::shutdown::Shutdown) {
        if !self.inner.settings.enabled {
            return;
        }
        let every = std::time::Duration::from_millis(self.inner.settings.poll_interval_ms.max(50));
        loop {
            if let Err(e) = follow::pass(&self.inner, false).await {
                tracing::error!(error = format!("{e:#}"), "returns pass failed");
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
