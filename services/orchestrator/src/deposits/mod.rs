//! The DSN deposit queue: each deposit a durable record that goes
//! `checked → queued → sending → accepted | rejected | uncertain → …`, worked on by one
//! orchestrator at a time (a lease in the database), sent through the deposit agent with
//! the identity of the account designated for its establishment.
//!
//! Rules (issue 12):
//! - a file is checked (`iea-dsn`) before anything is recorded or sent; a bad file
//!   changes nothing and each problem is named with its line;
//! - the file is kept under `<data_dir>/dsn/store/` (mode 0600) with its SHA-256;
//! - the same file, or the same normal declaration (SIRET, month, fraction, test or
//!   real), already deposited or on its way, is refused unless the new one is an
//!   "annule et remplace" (`S20.G00.05.002 = 03`);
//! - which account deposits: the one chosen for the SIRET (`deposit_accounts`), else the
//!   one account that has credentials; otherwise the deposit waits and says why. A user
//!   deposits only with their own identity, an administrator with any;
//! - an authentication refusal counts against the account's budget of refusals, the same
//!   as verifications'; nothing is sent with an account whose budget is spent;
//! - **exactly once**: the record is `sending`, with the attempt's start, committed
//!   before the request leaves. A deposit whose answer is lost becomes `uncertain` and is
//!   resolved by listing the declarant's deposits over the attempt's window, never by
//!   sending again blindly: one deposit unknown to us → ours (accepted with its idflux);
//!   none once the window is past → sent again; more than one → `to_check`, for a person
//!   (`iea dsn resolve ID --idflux X | --resend`). On start, a `sending` record of this
//!   orchestrator's former life (or one whose lease expired) becomes `uncertain`.
//!
//! Layout: this file holds the types, settings and the operations front-ends call;
//! `intake.rs` receives a file into the store and checks it; `worker.rs` the loop that
//! claims deposits and sends or resolves them, and on a stop waits for those under way;
//! `watch.rs` signals each deposit written and follows one for a front-end
//! (`WatchDeposit`).
//!
//! Cost: a deposit takes one store call to be recorded and routed and two to be sent
//! (the claim, which reads its account, reads back its file and commits `sending`; the
//! answer), each one blocking task and one transaction; its file one more blocking task
//! to be stored (write, sync, rename).
//!
//! Invariants: nothing of a DSN's content (NIR, names, amounts) is ever logged: logs
//! carry the deposit id, the SIRET, sizes, states and idflux only.

mod due;
mod folder;
mod intake;
mod watch;
pub(crate) mod worker;

pub use due::{AccountDue, next_due};
pub use intake::{StoredFile, Upload};

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::agents::Agents;
use crate::network::Network;
use crate::sessions::{self, Principal};
use crate::store::{Duplicate, Store, Transition};
use crate::users::Role;
use crate::vault::Vault;

/// Most deposits a list gives at once.
pub const LIST_MAX: usize = 500;

/// Which deposits a list keeps (each filter when given), and how many at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub siret: Option<String>,
    pub month: Option<iea_dsn::Month>,
    pub state: Option<State>,
    /// Only deposits whose number is below this one: the next page of a truncated list.
    pub before: Option<i64>,
    pub limit: usize,
}

impl Default for ListFilter {
    fn default() -> Self {
        Self {
            siret: None,
            month: None,
            state: None,
            before: None,
            limit: LIST_MAX,
        }
    }
}

impl ListFilter {
    /// The filter a person or a program asked for, each part checked: a clear French
    /// sentence for the first that is not valid. Empty parts do not filter; a limit of 0
    /// is the maximum, one over it is refused.
    pub fn parse(siret: &str, month: &str, state: &str, limit: u32) -> Result<Self, DepositError> {
        let siret = iea_declarant::optional_siret(siret).map_err(DepositError::InvalidInput)?;
        let month = match month.trim() {
            "" => None,
            m => Some(m.parse::<iea_dsn::Month>().map_err(|e| {
                // « mois « 2026-13 » invalide : … » as a sentence.
                let e = e.to_string();
                let mut c = e.chars();
                let first = c.next().map(|f| f.to_uppercase().collect::<String>());
                DepositError::InvalidInput(format!("{}{}.", first.unwrap_or_default(), c.as_str()))
            })?),
        };
        let state = match state.trim() {
            "" => None,
            s => Some(State::from_code(s).ok_or_else(|| {
                DepositError::InvalidInput(format!(
                    "État de dépôt « {s} » inconnu : attendu l'un de {}.",
                    State::ALL.map(State::code).join(", ")
                ))
            })?),
        };
        let limit = match usize::try_from(limit) {
            Ok(0) => LIST_MAX,
            Ok(n) if n <= LIST_MAX => n,
            _ => {
                return Err(DepositError::InvalidInput(format!(
                    "Une liste donne au plus {LIST_MAX} dépôts : demandez-en {LIST_MAX} au plus."
                )));
            }
        };
        Ok(Self {
            siret,
            month,
            state,
            before: None,
            limit,
        })
    }

    /// The same filter, from the deposit numbered `before` on (older ones only); 0 is from
    /// the newest, a negative number is refused.
    pub fn older_than(self, before: i64) -> Result<Self, DepositError> {
        match before {
            0 => Ok(self),
            n if n > 0 => Ok(Self {
                before: Some(n),
                ..self
            }),
            _ => Err(DepositError::InvalidInput(
                "Le numéro de dépôt à partir duquel lister doit être un nombre positif.".into(),
            )),
        }
    }
}

/// The state of a deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Stored, not yet checked (a transient state of the intake).
    Received,
    /// Checked, its account not yet decided.
    Checked,
    /// Ready to be sent (possibly later: `not_before`).
    Queued,
    /// Cannot be sent until a person acts (no account, refused identity); `message` says.
    Waiting,
    /// An attempt is under way (committed before the request leaves).
    Sending,
    /// Registered by Net-entreprises (AEE), with its idflux.
    Accepted,
    /// Rejected by Net-entreprises (ARE), with its anomalies.
    Rejected,
    /// The answer was lost: resolved by listing the declarant's deposits.
    Uncertain,
    /// The listing shows more than one deposit that could be this one: a person decides.
    ToCheck,
    /// Refused for good (a request Net-entreprises refuses, a file it cannot take).
    Failed,
}

impl State {
    pub const ALL: [State; 10] = [
        State::Received,
        State::Checked,
        State::Queued,
        State::Waiting,
        State::Sending,
        State::Accepted,
        State::Rejected,
        State::Uncertain,
        State::ToCheck,
        State::Failed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Checked => "checked",
            State::Queued => "queued",
            State::Waiting => "waiting",
            State::Sending => "sending",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Uncertain => "uncertain",
            State::ToCheck => "to_check",
            State::Failed => "failed",
        }
    }

    pub fn from_code(code: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The state's name for a person.
    pub fn label_fr(self) -> &'static str {
        match self {
            State::Received => "reçu",
            State::Checked => "contrôlé",
            State::Queued => "en file d'attente",
            State::Waiting => "en attente",
            State::Sending => "en cours d'envoi",
            State::Accepted => "accepté",
            State::Rejected => "rejeté",
            State::Uncertain => "réponse perdue, en vérification",
            State::ToCheck => "à vérifier",
            State::Failed => "refusé",
        }
    }

    /// Nothing more happens to it without a person.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            State::Accepted | State::Rejected | State::Failed | State::ToCheck | State::Waiting
        )
    }
}

/// Why a deposit waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// No account is designated and none (or several) has credentials.
    NoAccount,
    /// Its account has no credentials.
    NoCredentials,
    /// Net-entreprises refused its account's identity, or its budget is spent: goes again
    /// once the identity changes.
    Refused,
}

impl WaitKind {
    pub fn code(self) -> &'static str {
        match self {
            WaitKind::NoAccount => "no_account",
            WaitKind::NoCredentials => "no_credentials",
            WaitKind::Refused => "refused",
        }
    }

    pub fn from_code(code: &str) -> Option<WaitKind> {
        [
            WaitKind::NoAccount,
            WaitKind::NoCredentials,
            WaitKind::Refused,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// An anomaly of an ARE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub code: String,
    pub message: String,
}

/// A deposit of the listing that could be this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub idflux: String,
    /// `AAAAMMJJHHMMSS` as listed.
    pub date: String,
    pub statut: String,
}

/// What the deposit agent says of one attempt.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// AEE.
    Accepted { idflux: String, essai_reel: String },
    /// ARE: its first anomalies (at most `agents::MAX_KEPT_ANOMALIES`, in order) and how
    /// many others it listed.
    Rejected {
        anomalies: Vec<Anomaly>,
        anomalies_omitted: u64,
        idflux: Option<String>,
    },
    /// The authentication gave no token: nothing was deposited.
    Authentication(crate::credentials::VerificationResult),
    /// Nothing registered, for sure: safe to send again later.
    NotSent,
    /// It never left the agent (withdrawn, or its turn did not come in time): may be
    /// sent again at once.
    NoTurn,
    /// Refused by the service: nothing registered, sending again would be refused again.
    Refused,
    /// The file may have been registered: resolved by listing.
    Uncertain,
}

#[derive(Debug, Clone)]
pub struct SendReport {
    pub outcome: SendOutcome,
    /// French sentence.
    pub message: String,
    /// English detail (never DSN content nor a secret).
    pub detail: String,
    pub http_status: Option<u16>,
}

/// What a listing of the declarant's deposits gave.
#[derive(Debug, Clone)]
pub enum ListOutcome {
    Listing(Vec<Candidate>),
    Authentication(crate::credentials::VerificationResult),
    Failed,
}

/// A deposit as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct DepositRecord {
    pub id: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: State,
    pub requested_by: String,
    /// The account whose identity deposits, once known.
    pub user_id: Option<i64>,
    pub account: Option<String>,
    pub siret: String,
    /// `YYYY-MM`.
    pub month: String,
    pub nature: String,
    /// `S20.G00.05.002`: `01` normal, `03` annule et remplace.
    pub kind: String,
    pub fraction: String,
    pub essai_reel: String,
    pub file_name: String,
    pub file_path: String,
    pub sha256: String,
    pub bytes: i64,
    /// French sentence about the current state.
    pub message: String,
    pub idflux: Option<String>,
    /// The ARE's first anomalies (at most `agents::MAX_KEPT_ANOMALIES`, in order).
    pub anomalies: Vec<Anomaly>,
    /// How many more anomalies the ARE listed after those in `anomalies` (0: all are there).
    pub anomalies_omitted: u64,
    pub candidates: Vec<Candidate>,
    pub attempts: i64,
    pub attempt_started_at: Option<i64>,
    pub attempt_ended_at: Option<i64>,
    pub not_before: i64,
    pub wait_kind: Option<WaitKind>,
    /// For `Refused`: the identity's `updated_at` when it was refused.
    pub wait_credential_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// For a file of the deposit folder: where it waits (`en-cours/…`) until settled.
    pub source_path: Option<String>,
}

#[cfg(test)]
pub(crate) mod testing {
    use super::{Anomaly, NewDeposit};

    /// `n` anomalies of an ARE: codes `A0`, `A1`…
    pub(crate) fn anomalies(n: usize) -> Vec<Anomaly> {
        (0..n)
            .map(|i| Anomaly {
                code: format!("A{i}"),
                message: format!("anomalie {i}"),
            })
            .collect()
    }

    /// A checked file of the declaration of DUPONT's establishment for 2026-11 (`kind`:
    /// 01 normal, 03 annule et remplace), its bytes named by `sha`, stored nowhere.
    pub(crate) fn new(sha: &str, kind: &str) -> NewDeposit {
        NewDeposit {
            requested_by: "Administrateur".into(),
            user_id: None,
            siret: "78214563500010".into(),
            month: "2026-11".into(),
            nature: "01".into(),
            kind: kind.into(),
            fraction: "11".into(),
            essai_reel: "02".into(),
            file_name: "dsn.txt".into(),
            file_path: format!("/nowhere/{sha}.dsn"),
            sha256: sha.into(),
            bytes: 10,
            source_path: None,
        }
    }
}

/// A checked file to record.
pub struct NewDeposit {
    pub requested_by: String,
    pub user_id: Option<i64>,
    pub siret: String,
    pub month: String,
    pub nature: String,
    pub kind: String,
    pub fraction: String,
    pub essai_reel: String,
    pub file_name: String,
    pub file_path: String,
    pub sha256: String,
    pub bytes: i64,
    pub source_path: Option<String>,
}

/// `[deposits]` of the orchestrator's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DepositSettings {
    /// The deposit service (`/deposer-dsn/1.0/` is added by the agent).
    pub deposit_address: String,
    /// The consultation service (`/lister-depots/1.0/…`).
    pub consultation_address: String,
    /// Zone of the listings' `AAAAMMJJHHMMSS`: `europe_paris` or `utc`.
    pub listing_time_zone: ListingZone,
    /// Requests to Net-entreprises at once (deposits and listings), a bound the deposit
    /// agent keeps; four times as many deposits are claimed at once (`sending`), those beyond
    /// waiting at the agent for their turn.
    pub concurrency: usize,
    /// Between two looks at the queue when nothing wakes the worker, milliseconds.
    pub poll_interval_ms: u64,
    /// A lease's length, seconds (renewed while the work goes on).
    pub lease_secs: u64,
    /// Before another try after "not sent" (503…) or a failed listing, seconds.
    pub retry_delay_secs: u64,
    /// The longest an attempt may last, and the longest a deposit waits for its turn at
    /// the agent (at most 60 s; so an attempt whose end is unknown has its window closed
    /// twice this long after its start).
    pub max_attempt_secs: u64,
    /// Listing window taken before the attempt's start and after its end (clock skew,
    /// registration delay), seconds.
    pub window_margin_secs: u64,
    /// Automatic mode: the folder the payroll program writes its DSN files into;
    /// default `<data_dir>/dsn/a-deposer`.
    pub folder: Option<PathBuf>,
    /// Whether the folder is watched.
    pub folder_enabled: bool,
    /// A file (not `*.tmp`) is taken once its size and time have not changed for this
    /// long, seconds.
    pub folder_settle_secs: u64,
    /// Due day of the declarations (5 or 15: the 5th or the 15th of the month at noon).
    pub due_day: u8,
    /// Due day per establishment SIRET, when not `due_day`.
    pub due_days: std::collections::BTreeMap<String, u8>,
    /// Days before a due date when the depositing accounts' credentials are verified.
    pub verify_days_before: u32,
    /// Between two looks at the coming due dates, seconds.
    pub due_check_interval_secs: u64,
    /// On a graceful stop, how long the worker waits for the attempts under way (a file
    /// being sent, a listing, a verification before a due date) to end, seconds; 0: not
    /// at all. An attempt still running then is left as a killed process leaves it:
    /// `sending` under this orchestrator's lease, `uncertain` at the next start and
    /// settled by listing. Default 45: the longest request timeout the deposit agent
    /// uses (30 s, *Étendu* mode) plus a margin for its authentication and for writing
    /// the answer. A supervisor that kills sooner (Docker's 10 s) cuts the wait short.
    pub stop_deadline_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingZone {
    EuropeParis,
    Utc,
}

impl Default for DepositSettings {
    fn default() -> Self {
        Self {
            deposit_address: "https://depot.dsnrg.net-entreprises.fr".into(),
            consultation_address: "https://consultation.dsnrg.net-entreprises.fr".into(),
            listing_time_zone: ListingZone::EuropeParis,
            concurrency: 4,
            poll_interval_ms: 2000,
            lease_secs: 60,
            retry_delay_secs: 30,
            max_attempt_secs: 180,
            window_margin_secs: 60,
            folder: None,
            folder_enabled: true,
            folder_settle_secs: 3,
            due_day: 15,
            due_days: Default::default(),
            verify_days_before: 3,
            due_check_interval_secs: 600,
            stop_deadline_secs: 45,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DepositError {
    #[error("not allowed")]
    PermissionDenied(String),
    #[error("no such deposit")]
    NotFound(i64),
    #[error("no such account")]
    NoSuchAccount(String),
    /// The file failed the checks: each problem in French with its line.
    #[error("bad file")]
    BadFile(Vec<String>),
    #[error("invalid input")]
    InvalidInput(String),
    #[error("duplicate")]
    Duplicate { existing: i64, same_file: bool },
    /// A decision that the deposit's state does not allow.
    #[error("wrong state")]
    WrongState { id: i64, state: State },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How a person settles an uncertain deposit.
pub enum Resolution {
    /// This listed deposit is ours.
    Idflux(String),
    /// None is ours: send it again.
    Resend,
}

impl Inner {
    /// Wakes the worker for its upkeep as well as for the queue.
    fn wake_for_upkeep(&self) {
        self.upkeep.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// The deposit queue; cheap to clone.
#[derive(Clone)]
pub struct Deposits {
    inner: Arc<Inner>,
}

struct Inner {
    /// Each write of a deposit through it signals the deposit's watchers.
    store: watch::DepositStore,
    vault: Vault,
    agents: Agents,
    network: Arc<Network>,
    settings: DepositSettings,
    budget: u32,
    store_dir: PathBuf,
    /// This orchestrator's name on leases (stable across restarts of one data directory).
    owner: String,
    wake: tokio::sync::Notify,
    /// Asks the worker's next look for its upkeep too (an account designated, a deposit
    /// settled by a person), not only for the queue.
    upkeep: std::sync::atomic::AtomicBool,
    folder: Option<folder::Layout>,
    /// For the verifications before due dates.
    credentials: Option<crate::credentials::Credentials>,
}

impl Deposits {
    pub fn new(
        store: Store,
        vault: Vault,
        agents: Agents,
        network: Arc<Network>,
        settings: DepositSettings,
        budget: u32,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let dsn_dir = data_dir.join("dsn");
        let store_dir = dsn_dir.join("store");
        iea_runtime::pki::private_dir(&store_dir)?;
        let owner_file = dsn_dir.join("worker-id");
        let owner = match std::fs::read_to_string(&owner_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => {
                let id = format!("orch-{}", sessions::random_secret(9));
                iea_runtime::pki::write_file(&owner_file, id.as_bytes(), true)?;
                id
            }
        };
        let folder = settings.folder_enabled.then(|| {
            folder::Layout::new(
                settings
                    .folder
                    .clone()
                    .unwrap_or_else(|| dsn_dir.join("a-deposer")),
                &owner,
            )
        });
        Ok(Self {
            inner: Arc::new(Inner {
                store: watch::DepositStore::new(store),
                vault,
                agents,
                network,
                settings,
                budget,
                store_dir,
                owner,
                wake: tokio::sync::Notify::new(),
                upkeep: std::sync::atomic::AtomicBool::new(false),
                folder,
                credentials: None,
            }),
        })
    }

    /// The credentials module, for the verifications before due dates.
    pub fn with_credentials(mut self, credentials: crate::credentials::Credentials) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.credentials = Some(credentials);
        }
        self
    }

    /// Whether `caller` may see `r`.
    fn may_see(caller: &Principal, r: &DepositRecord) -> bool {
        caller.role == Role::Administrator
            || r.user_id == Some(caller.user_id)
            || r.requested_by.eq_ignore_ascii_case(&caller.name)
    }

    /// The account `name` asked for, if `caller` may deposit with it.
    async fn chosen_account(
        &self,
        caller: &Principal,
        name: Option<&str>,
    ) -> Result<Option<i64>, DepositError> {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            None if caller.role == Role::Administrator => Ok(None),
            None => Ok(Some(caller.user_id)),
            Some(n) => {
                if caller.role != Role::Administrator && !n.eq_ignore_ascii_case(&caller.name) {
                    return Err(DepositError::PermissionDenied(
                        "Vous ne pouvez déposer une DSN qu'avec vos propres identifiants Net-entreprises.".into(),
                    ));
                }
                let u = self.inner.store.user_by_name(n).await?;
                Ok(Some(
                    u.ok_or_else(|| DepositError::NoSuchAccount(n.to_owned()))?
                        .id,
                ))
            }
        }
    }

    /// Receives, checks, stores and queues a file. `user`: the account to deposit with
    /// (a user: only their own).
    pub async fn submit(
        &self,
        caller: &Principal,
        user: Option<&str>,
        upload: Upload,
    ) -> Result<DepositRecord, DepositError> {
        self.submit_from(caller, user, upload, None).await
    }

    /// As [`Self::submit`]; `source_path`: the file of the deposit folder it came from.
    async fn submit_from(
        &self,
        caller: &Principal,
        user: Option<&str>,
        upload: Upload,
        source_path: Option<String>,
    ) -> Result<DepositRecord, DepositError> {
        let user_id = self.chosen_account(caller, user).await?;
        let checked = intake::receive(&self.inner.store_dir, upload).await?;
        let new = NewDeposit {
            requested_by: caller.name.clone(),
            user_id,
            siret: checked.siret.clone(),
            month: checked.month.clone(),
            nature: checked.nature.clone(),
            kind: checked.kind.clone(),
            fraction: checked.fraction.clone(),
            essai_reel: checked.essai_reel.clone(),
            file_name: checked.file_name.clone(),
            file_path: checked.path.display().to_string(),
            sha256: checked.sha256.clone(),
            bytes: checked.bytes,
            source_path,
        };
        let now = sessions::now();
        // Recorded and routed (queued with its account, or waiting) in one store call.
        let routing = worker::routing(self.inner.budget);
        let record = match self.inner.store.record_deposit(new, now, routing).await? {
            Ok(r) => r,
            Err(dup) => {
                // The stored file stays if another deposit holds the same bytes.
                let (existing, same_file) = match dup {
                    Duplicate::SameFile(id) => (id, true),
                    Duplicate::SameDeclaration(id) => (id, false),
                };
                if !same_file {
                    intake::discard_unless_used(&self.inner.store, &checked.path, &checked.sha256)
                        .await;
                }
                return Err(DepositError::Duplicate {
                    existing,
                    same_file,
                });
            }
        };
        tracing::info!(
            deposit = record.id,
            siret = %record.siret,
            month = %record.month,
            bytes = record.bytes,
            state = record.state.code(),
            "dsn deposit recorded"
        );
        if record.state == State::Waiting {
            tracing::info!(deposit = record.id, siret = %record.siret, "dsn deposit waiting for an account");
        }
        self.inner.wake.notify_one();
        Ok(record)
    }

    pub async fn get(&self, caller: &Principal, id: i64) -> Result<DepositRecord, DepositError> {
        let r = self
            .inner
            .store
            .deposit(id)
            .await?
            .ok_or(DepositError::NotFound(id))?;
        if !Self::may_see(caller, &r) {
            return Err(DepositError::NotFound(id));
        }
        Ok(r)
    }

    /// The deposits `caller` may see that `filter` keeps, newest first, at most
    /// `filter.limit`; and whether more matched.
    pub async fn list(
        &self,
        caller: &Principal,
        filter: ListFilter,
    ) -> Result<(Vec<DepositRecord>, bool), DepositError> {
        let of_user =
            (caller.role != Role::Administrator).then(|| (caller.user_id, caller.name.clone()));
        let limit = filter.limit.clamp(1, LIST_MAX);
        let mut found = self
            .inner
            .store
            .deposits(of_user, filter, limit as i64 + 1)
            .await?;
        let truncated = found.len() > limit;
        found.truncate(limit);
        Ok((found, truncated))
    }

    /// A person settles a deposit in `to_check` (or `uncertain`), or sends a waiting or
    /// failed one again.
    pub async fn resolve(
        &self,
        caller: &Principal,
        id: i64,
        resolution: Resolution,
    ) -> Result<DepositRecord, DepositError> {
        self.get(caller, id).await?;
        let now = sessions::now();
        let (from, t): (&'static [State], Transition) = match resolution {
            Resolution::Idflux(idflux) => {
                let idflux = idflux.trim().to_owned();
                if idflux.is_empty()
                    || idflux.len() > 50
                    || !idflux.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(DepositError::InvalidInput(
                        "L'identifiant de flux (idflux) attendu est fait de lettres et de chiffres, 23 en général.".into(),
                    ));
                }
                if self.inner.store.known_idflux(vec![idflux.clone()]).await?[0] {
                    return Err(DepositError::InvalidInput(format!(
                        "Le flux {idflux} est déjà celui d'un autre dépôt."
                    )));
                }
                (
                    &[State::ToCheck, State::Uncertain],
                    Transition {
                        state: Some(State::Accepted),
                        message: Some(format!(
                            "Dépôt enregistré par Net-entreprises (flux {idflux}, désigné par {}).",
                            caller.name
                        )),
                        idflux: Some(idflux),
                        ..Default::default()
                    },
                )
            }
            Resolution::Resend => (
                &[
                    State::ToCheck,
                    State::Uncertain,
                    State::Waiting,
                    State::Failed,
                ],
                Transition {
                    state: Some(State::Queued),
                    message: Some(format!("Nouvel envoi demandé par {}.", caller.name)),
                    not_before: Some(0),
                    ..Default::default()
                },
            ),
        };
        let (after, written) = self
            .inner
            .store
            .decide_deposit(id, from, t, now)
            .await?
            .ok_or(DepositError::NotFound(id))?;
        if !written {
            return Err(DepositError::WrongState {
                id,
                state: after.state,
            });
        }
        tracing::info!(deposit = id, state = after.state.code(), by = %caller.name, "dsn deposit resolved by a person");
        self.inner.wake_for_upkeep();
        Ok(after)
    }

    /// Designates the account that deposits for `siret`. Administrator only.
    pub async fn set_account(
        &self,
        caller: &Principal,
        siret: &str,
        user: &str,
    ) -> Result<(String, String), DepositError> {
        if caller.role != Role::Administrator {
            return Err(DepositError::PermissionDenied(
                "Seul un administrateur peut désigner le compte qui dépose pour un établissement."
                    .into(),
            ));
        }
        // Typed with spaces is fine; a wrong key is a typo that would designate an
        // account for an establishment that does not exist.
        let siret = iea_declarant::siret_or_reason(siret).map_err(DepositError::InvalidInput)?;
        let u = self
            .inner
            .store
            .user_by_name(user.trim())
            .await?
            .ok_or_else(|| DepositError::NoSuchAccount(user.trim().to_owned()))?;
        self.inner
            .store
            .set_deposit_account(siret.clone(), u.id, sessions::now())
            .await?;
        tracing::info!(siret = %siret, user = %u.name, "deposit account set");
        self.inner.wake_for_upkeep();
        Ok((siret, u.name))
    }

    /// Runs the worker until `shutdown`, then waits (at most `stop_deadline_secs`) for
    /// the attempts under way to end.
    pub async fn run(self, shutdown: iea_runtime::shutdown::Shutdown) {
        worker::run(self.inner.clone(), shutdown).await
    }
}
