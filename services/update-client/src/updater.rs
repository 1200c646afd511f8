//! What the agent does, without tonic: check, release notes, apply (download, verify,
//! stage, switch, start check, scripts) and the maintenance scripts, with crash recovery.
//!
//! Apply, step by step (each a failure point for tests, see [`Step`]):
//! 1. refresh the metadata ([`trust::refresh`]); the version must be published and above
//!    both the installed version and the highest version ever installed here;
//! 2. download the package, verified ([`download`]);
//! 3. fetch the release's scripts through tough (verified), record them as pending;
//! 4. extract into a staging directory, rename it to `versions/V` ([`install`]);
//! 5. write the apply journal (`apply.json`), point `previous` at the running version,
//!    then `current` at the new one (each an atomic rename);
//! 6. start check; on failure, `current` goes back to `previous`, the new version and its
//!    pending scripts are removed;
//! 7. apply the pending scripts in order (unless held: assistance mode);
//! 8. record the highest version installed, clear the journal, keep only `current` and
//!    `previous`.
//!
//! [`Updater::recover`] runs at start and before each apply: it removes what a crash can
//! leave half-made and finishes (or undoes) an apply that the journal says was switched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use iea_net::{HttpClient, NetError, NetworkSettings};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tough::{IntoVec, TargetName};

use crate::download::{self, Progress};
use crate::error::UpdateError;
use crate::install::{CURRENT, FailPoints, InstallDir, PREVIOUS, Step};
use crate::notes;
use crate::scripts::{self, MAX_SCRIPT, ScriptDocument, ScriptRecord, ScriptsFile};
use crate::trust::{self, ReleaseInfo, TargetRef, Trusted};
use iea_version::ImpactVersion;

const JOURNAL: &str = "apply.json";
const INSTALLED: &str = "installed.json";

/// How the agent is set up (from its settings).
#[derive(Debug, Clone)]
pub struct Config {
    pub state_dir: PathBuf,
    pub install_dir: PathBuf,
    pub trusted_root: Option<PathBuf>,
    /// Assumed installed when the install directory has no current version.
    pub installed_version: Option<ImpactVersion>,
    pub metadata_deadline: Duration,
    pub download_deadline: Duration,
    pub idle_timeout: Duration,
    pub user_agent: String,
}

/// Phases of an apply, as progress reports them.
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

/// A progress event of an apply.
#[derive(Debug, Clone)]
pub struct Event {
    pub phase: Phase,
    pub progress: Option<Progress>,
    /// French, for a person.
    pub message: String,
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub installed: Option<ImpactVersion>,
    /// Newer than what is installed, oldest first.
    pub available: Vec<ReleaseInfo>,
    /// The highest release marked required, when above what is installed.
    pub minimum: Option<ImpactVersion>,
}

/// How an apply ended.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    pub version: ImpactVersion,
    pub previous: Option<ImpactVersion>,
    pub scripts_applied: usize,
    pub scripts_pending: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    version: String,
    previous: Option<String>,
    hold_scripts: bool,
    checked: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Installed {
    highest: Option<String>,
}

pub struct Updater {
    cfg: Config,
    install: InstallDir,
    fail: FailPoints,
    /// One apply (or script run) at a time.
    apply_lock: tokio::sync::Mutex<()>,
    /// One metadata refresh at a time: each reads and replaces `trust.json`.
    trust_lock: tokio::sync::Mutex<()>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, UpdateError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), UpdateError> {
    iea_runtime::pki::write_file(
        path,
        &serde_json::to_vec_pretty(value).context("serialising state")?,
        true,
    )?;
    Ok(())
}

impl Updater {
    pub fn new(cfg: Config, fail: FailPoints) -> Result<Arc<Self>, UpdateError> {
        std::fs::create_dir_all(&cfg.state_dir)?;
        std::fs::create_dir_all(&cfg.install_dir)?;
        // Scratch datastores of refreshes cut short by a crash (none runs yet).
        for e in std::fs::read_dir(&cfg.state_dir)?.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tuf-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let install = InstallDir::new(cfg.install_dir.clone());
        let this = Arc::new(Self {
            cfg,
            install,
            fail,
            apply_lock: tokio::sync::Mutex::new(()),
            trust_lock: tokio::sync::Mutex::new(()),
        });
        Ok(this)
    }

    pub fn install_dir(&self) -> &InstallDir {
        &self.install
    }

    fn state(&self) -> &Path {
        &self.cfg.state_dir
    }

    /// The installed version: the install directory's current one, else the configured.
    pub fn installed(&self) -> Option<ImpactVersion> {
        self.install.current().or(self.cfg.installed_version)
    }

    fn highest(&self) -> Result<Option<ImpactVersion>, UpdateError> {
        let rec: Option<Installed> = read_json(&self.state().join(INSTALLED))?;
        Ok(rec
            .and_then(|r| r.highest)
            .and_then(|h| h.parse::<ImpactVersion>().ok()))
    }

    /// No version at or below this one is offered or installed.
    fn floor(&self) -> Result<Option<ImpactVersion>, UpdateError> {
        Ok(self.installed().max(self.highest()?))
    }

    async fn trusted(&self, net: &NetworkSettings) -> Result<(Trusted, HttpClient), UpdateError> {
        let client = HttpClient::new(net, &self.cfg.user_agent).map_err(|e| match e {
            NetError::Settings(s) => UpdateError::InvalidRequest(s),
            NetError::Transport(d) => UpdateError::Unreachable(d),
        })?;
        let _g = self.trust_lock.lock().await;
        let trusted = trust::refresh(
            self.state(),
            self.cfg.trusted_root.as_ref(),
            client.clone(),
            self.cfg.metadata_deadline,
        )
        .await?;
        Ok((trusted, client))
    }

    /// Installed against available.
    pub async fn check(&self, net: &NetworkSettings) -> Result<CheckResult, UpdateError> {
        let (trusted, _) = self.trusted(net).await?;
        let releases = trust::catalogue(&trusted.repo);
        let installed = self.installed();
        let floor = self.floor()?;
        let minimum = releases
            .iter()
            .filter(|r| r.required && installed.as_ref().is_none_or(|i| r.version > *i))
            .map(|r| r.version)
            .max();
        let available = releases
            .into_iter()
            .filter(|r| floor.as_ref().is_none_or(|f| r.version > *f))
            .collect();
        Ok(CheckResult {
            installed,
            available,
            minimum,
        })
    }

    /// Reads a small signed target through tough (length and hash checked).
    async fn read_small(
        &self,
        trusted: &Trusted,
        target: &TargetRef,
        max: u64,
    ) -> Result<Vec<u8>, UpdateError> {
        if target.length > max {
            return Err(UpdateError::TooLarge(format!(
                "{} is {} bytes",
                target.name, target.length
            )));
        }
        let name = TargetName::new(target.name.clone())
            .map_err(|e| UpdateError::MetadataRefused(e.to_string()))?;
        let read = async {
            let stream = trusted
                .repo
                .read_target(&name)
                .await
                .map_err(|e| UpdateError::MetadataRefused(e.to_string()))?
                .ok_or_else(|| {
                    UpdateError::MetadataRefused(format!("{} not found", target.name))
                })?;
            stream.into_vec().await.map_err(|e| {
                let text = e.to_string();
                match trusted.transport.last_failure() {
                    Some(d) if !text.to_lowercase().contains("hash") => UpdateError::Unreachable(d),
                    _ => UpdateError::DownloadRefused(text),
                }
            })
        };
        match tokio::time::timeout(self.cfg.metadata_deadline, read).await {
            Err(_) => Err(UpdateError::Deadline("la lecture d'un fichier signé")),
            Ok(r) => r,
        }
    }

    /// The release notes of `version`, as plain text, when signed metadata covers them.
    pub async fn notes(&self, net: &NetworkSettings, version: &str) -> Result<String, UpdateError> {
        let v: ImpactVersion = version
            .parse()
            .map_err(|e| UpdateError::InvalidRequest(format!("{e}")))?;
        let (trusted, _) = self.trusted(net).await?;
        let release = trust::catalogue(&trusted.repo)
            .into_iter()
            .find(|r| r.version == v)
            .ok_or_else(|| UpdateError::UnknownVersion(v.to_string()))?;
        let target = release
            .notes
            .ok_or_else(|| UpdateError::NotesUnavailable(v.to_string()))?;
        let bytes = self.read_small(&trusted, &target, notes::MAX_NOTES).await?;
        notes::to_plain_text(&bytes).map_err(|p| {
            tracing::warn!(version = %v, problem = ?p, "release notes refused");
            UpdateError::NotesUnsafe(v.to_string())
        })
    }

    /// Downloads, verifies, stages and applies `version`. `emit` gets progress; `cancel`
    /// stops the download (the partial file stays for a resume).
    pub async fn apply(
        &self,
        net: &NetworkSettings,
        version: &str,
        hold_scripts: bool,
        emit: &(dyn Fn(Event) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ApplyOutcome, UpdateError> {
        let v: ImpactVersion = version
            .parse()
            .map_err(|e| UpdateError::InvalidRequest(format!("{e}")))?;
        let _g = tokio::time::timeout(Duration::from_secs(5), self.apply_lock.lock())
            .await
            .map_err(|_| UpdateError::Busy)?;
        self.recover_locked();
        let say = |phase, message: String| {
            emit(Event {
                phase,
                progress: None,
                message,
            })
        };

        say(
            Phase::Metadata,
            "Vérification des informations signées du serveur de mise à jour".into(),
        );
        let (trusted, _client) = self.trusted(net).await?;
        let release = trust::catalogue(&trusted.repo)
            .into_iter()
            .find(|r| r.version == v)
            .ok_or_else(|| UpdateError::UnknownVersion(v.to_string()))?;
        if let Some(floor) = self.floor()?
            && v <= floor
        {
            return Err(UpdateError::Downgrade {
                requested: v.to_string(),
                installed: floor.to_string(),
            });
        }
        let package = release
            .package
            .clone()
            .ok_or_else(|| UpdateError::UnknownVersion(v.to_string()))?;

        say(Phase::Download, format!("Téléchargement de la version {v}"));
        download::prune(self.state(), &[&package]);
        let limits = download::Limits {
            deadline: Instant::now() + self.cfg.download_deadline,
            idle: self.cfg.idle_timeout,
        };
        let mut report = |p: Progress| {
            emit(Event {
                phase: Phase::Download,
                progress: Some(p),
                message: String::new(),
            })
        };
        let bulk = HttpClient::new_http1(net, &self.cfg.user_agent).map_err(|e| match e {
            NetError::Settings(s) => UpdateError::InvalidRequest(s),
            NetError::Transport(d) => UpdateError::Unreachable(d),
        })?;
        let fetch = download::fetch_package(
            &bulk,
            &trusted.targets_base,
            &package,
            self.state(),
            limits,
            &mut report,
        );
        let pkg = tokio::select! {
            r = fetch => r?,
            _ = cancel.cancelled() => {
                tracing::info!(version = %v, "download cancelled, partial file kept");
                return Err(UpdateError::Cancelled);
            }
        };
        self.fail.hit(Step::Downloaded)?;
        say(
            Phase::Verify,
            format!(
                "Paquet vérifié : longueur et empreinte SHA-256 conformes ({} octets)",
                package.length
            ),
        );

        let mut docs = Vec::new();
        for (order, target) in &release.scripts {
            let bytes = self.read_small(&trusted, target, MAX_SCRIPT).await?;
            let doc = ScriptDocument::parse(&bytes, &v, *order)?;
            docs.push((target.name.clone(), target.sha256_hex(), doc));
        }
        let mut scripts_file = ScriptsFile::read(self.state())?;
        scripts_file.add_pending(docs);
        scripts_file.write(self.state())?;
        self.fail.hit(Step::ScriptsRecorded)?;

        say(Phase::Stage, format!("Préparation de la version {v}"));
        let install = self.install.clone();
        let fail = self.fail.clone();
        let v2 = v;
        let pkg2 = pkg.clone();
        let staged = tokio::task::spawn_blocking(move || install.stage(&pkg2, &v2, &fail))
            .await
            .map_err(|e| UpdateError::Internal(e.into()))?;
        if let Err(e) = staged {
            if !matches!(e, UpdateError::Crash(_)) {
                self.forget(&v)?;
            }
            return Err(e);
        }
        self.fail.hit(Step::Staged)?;

        say(Phase::Switch, format!("Passage à la version {v}"));
        let previous = self.install.current();
        let journal = Journal {
            version: v.to_string(),
            previous: previous.as_ref().map(|p| p.to_string()),
            hold_scripts,
            checked: false,
        };
        write_json(&self.state().join(JOURNAL), &journal)?;
        if let Some(p) = &previous {
            self.install.set_pointer(PREVIOUS, p)?;
        }
        self.fail.hit(Step::PreviousSet)?;
        self.install.set_pointer(CURRENT, &v)?;
        self.fail.hit(Step::Switched)?;

        say(
            Phase::StartCheck,
            format!("Vérification du démarrage de la version {v}"),
        );
        let applied = self.finish(journal)?;
        let pending = ScriptsFile::read(self.state())?.pending_count();
        if applied > 0 || pending > 0 {
            say(
                Phase::Scripts,
                match (hold_scripts, pending > 1, applied > 1) {
                    (true, false, _) => {
                        format!("Mode assistance : {pending} script de maintenance en attente")
                    }
                    (true, true, _) => {
                        format!("Mode assistance : {pending} scripts de maintenance en attente")
                    }
                    (false, _, false) => format!("{applied} script de maintenance appliqué"),
                    (false, _, true) => format!("{applied} scripts de maintenance appliqués"),
                },
            );
        }
        say(Phase::Done, format!("Version {v} installée"));
        Ok(ApplyOutcome {
            version: v,
            previous,
            scripts_applied: applied,
            scripts_pending: pending,
        })
    }

    /// A version that will not be installed: its staged directory and pending scripts go.
    fn forget(&self, v: &ImpactVersion) -> Result<(), UpdateError> {
        self.install.clean_leftovers();
        if self.install.current().as_ref() != Some(v) && self.install.previous().as_ref() != Some(v)
        {
            self.install.remove_version(v);
        }
        let mut s = ScriptsFile::read(self.state())?;
        s.drop_pending(v);
        s.write(self.state())
    }

    /// From the switch on: start check (fall-back on failure), scripts, record, clean.
    fn finish(&self, mut journal: Journal) -> Result<usize, UpdateError> {
        let v: ImpactVersion = journal
            .version
            .parse()
            .map_err(|e| UpdateError::Internal(anyhow::anyhow!("journal version: {e}")))?;
        let journal_path = self.state().join(JOURNAL);
        if !journal.checked {
            if self.install.start_check(&v) {
                journal.checked = true;
                write_json(&journal_path, &journal)?;
                self.fail.hit(Step::Checked)?;
            } else {
                let previous = journal
                    .previous
                    .as_deref()
                    .and_then(|s| s.parse::<ImpactVersion>().ok());
                match &previous {
                    Some(p) if self.install.is_complete(p) => {
                        self.install.set_pointer(CURRENT, p)?;
                        tracing::warn!(version = %v, fallback = %p, "start check failed, back to the previous version");
                    }
                    _ => {
                        let _ = std::fs::remove_file(self.install.root().join(CURRENT));
                        tracing::warn!(version = %v, "start check failed, nothing to fall back to");
                    }
                }
                self.install.remove_version(&v);
                let mut s = ScriptsFile::read(self.state())?;
                s.drop_pending(&v);
                s.write(self.state())?;
                let _ = std::fs::remove_file(&journal_path);
                return Err(UpdateError::StartCheckFailed {
                    version: v.to_string(),
                    fallback: previous.map(|p| p.to_string()),
                });
            }
        }
        let applied = if journal.hold_scripts {
            0
        } else {
            scripts::apply_pending(self.state(), &v, &self.fail)?.len()
        };
        let highest = self.highest()?;
        if highest.as_ref().is_none_or(|h| v > *h) {
            write_json(
                &self.state().join(INSTALLED),
                &Installed {
                    highest: Some(v.to_string()),
                },
            )?;
        }
        self.fail.hit(Step::Done)?;
        let _ = std::fs::remove_file(&journal_path);
        let previous = self.install.previous();
        let keep: Vec<&ImpactVersion> = [Some(&v), previous.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        self.install.prune(&keep);
        download::prune(self.state(), &[]);
        tracing::info!(version = %v, applied, "update applied");
        Ok(applied)
    }

    /// Repairs what a crash left (see the module documentation). Errors are logged: a
    /// start must not fail because of them.
    pub async fn recover(&self) {
        let _g = self.apply_lock.lock().await;
        self.recover_locked();
    }

    fn recover_locked(&self) {
        self.install.clean_leftovers();
        let journal: Option<Journal> = match read_json(&self.state().join(JOURNAL)) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "unreadable apply journal, removed");
                let _ = std::fs::remove_file(self.state().join(JOURNAL));
                None
            }
        };
        let Some(journal) = journal else {
            return;
        };
        let current = self.install.current();
        if journal.version.parse::<ImpactVersion>().ok() == current {
            tracing::info!(version = %journal.version, "finishing an interrupted update");
            if let Err(e) = self.finish(journal) {
                tracing::warn!(error = %e, "interrupted update finished with an error");
            }
        } else {
            tracing::info!(version = %journal.version, "undoing an update interrupted before its switch");
            if let Ok(v) = journal.version.parse::<ImpactVersion>()
                && let Err(e) = self.forget(&v)
            {
                tracing::warn!(error = %e, "could not forget the interrupted version");
            }
            let _ = std::fs::remove_file(self.state().join(JOURNAL));
        }
    }

    pub fn list_scripts(&self) -> Result<Vec<ScriptRecord>, UpdateError> {
        Ok(ScriptsFile::read(self.state())?.scripts)
    }

    /// Applies the pending scripts of the installed version and older (assistance mode
    /// left).
    pub async fn apply_scripts(&self) -> Result<Vec<ScriptRecord>, UpdateError> {
        let _g = tokio::time::timeout(Duration::from_secs(5), self.apply_lock.lock())
            .await
            .map_err(|_| UpdateError::Busy)?;
        let Some(installed) = self.installed() else {
            return Ok(Vec::new());
        };
        scripts::apply_pending(self.state(), &installed, &self.fail)
    }

    /// The parameters table that scripts change.
    pub fn parameters(&self) -> Result<std::collections::BTreeMap<String, String>, UpdateError> {
        Ok(ScriptsFile::read(self.state())?.parameters)
    }
}
