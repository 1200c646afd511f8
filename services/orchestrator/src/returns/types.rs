//! The values the following of returns keeps: what a listing gives, a return as
//! recorded, what reading its document gave, the rates of a CRM, the cursors.

/// Where a deposit's following stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowState {
    /// Listed on a schedule until its natures are in or the limit passes.
    Following,
    /// Natures 10, 11 and 94 are in.
    Done,
    /// The limit of days passed first.
    Expired,
}

impl FollowState {
    pub fn code(self) -> &'static str {
        match self {
            FollowState::Following => "following",
            FollowState::Done => "done",
            FollowState::Expired => "expired",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Following, Self::Done, Self::Expired]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// An accepted deposit to start following.
#[derive(Debug, Clone)]
pub struct NewFollow {
    pub deposit_id: i64,
    pub idflux: String,
    pub user_id: Option<i64>,
    pub siret: String,
    pub month: String,
    /// The declaration's due date (Unix seconds).
    pub due_at: i64,
    pub started_at: i64,
    /// After this, the deposit is no longer listed (the limit of days).
    pub until_at: i64,
    /// The first listing.
    pub next_at: i64,
}

/// An accepted deposit not followed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedDeposit {
    pub id: i64,
    pub idflux: String,
    pub user_id: Option<i64>,
    pub siret: String,
    pub month: String,
    /// When its attempt ended (or started, or the record last changed).
    pub accepted_at: i64,
}

/// The following of one deposit, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowRecord {
    pub deposit_id: i64,
    pub idflux: String,
    pub user_id: Option<i64>,
    pub siret: String,
    pub month: String,
    pub due_at: i64,
    pub started_at: i64,
    pub until_at: i64,
    pub state: FollowState,
    /// Start of the current waiting phase (the deposit, then the due date): the back-off
    /// counts from it.
    pub phase_started_at: i64,
    /// Listings made in the current phase.
    pub polls: i64,
    pub next_at: i64,
    pub last_polled_at: Option<i64>,
    /// French sentence on the last listing.
    pub message: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub updated_at: i64,
}

/// What a listing did to a following.
#[derive(Debug, Clone)]
pub struct FollowUpdate {
    pub state: FollowState,
    pub phase_started_at: i64,
    pub polls: i64,
    pub next_at: i64,
    pub last_polled_at: Option<i64>,
    pub message: String,
}

/// One `<retour>` as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedReturn {
    pub idflux: String,
    /// `AAAAMMJJHHMMSS`.
    pub publication: String,
    pub production: String,
    pub nature: u32,
    pub statut: String,
    /// Empty for a return without a document.
    pub id: String,
    pub url: String,
}

/// Where a return's document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    /// To download.
    Pending,
    /// Downloaded, kept and read.
    Downloaded,
    /// Refused for good (foreign address, DTD or entities, past the size cap, unreadable).
    Refused,
    /// 404: purged or overwritten.
    Gone,
    /// Not downloaded this time: tried again later.
    Failed,
    /// A return without a document.
    None,
}

impl DownloadState {
    pub fn code(self) -> &'static str {
        match self {
            DownloadState::Pending => "pending",
            DownloadState::Downloaded => "downloaded",
            DownloadState::Refused => "refused",
            DownloadState::Gone => "gone",
            DownloadState::Failed => "failed",
            DownloadState::None => "none",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Downloaded,
            Self::Refused,
            Self::Gone,
            Self::Failed,
            Self::None,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// A return as recorded (one row per version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRecord {
    /// The row's own id.
    pub row: i64,
    pub idflux: String,
    /// Our deposit of that flux; `None` for a deposit made elsewhere.
    pub deposit_id: Option<i64>,
    /// The account whose identity listed it (and downloads it).
    pub user_id: Option<i64>,
    pub nature: u32,
    pub statut: String,
    pub publication: String,
    pub production: String,
    pub return_id: String,
    pub url: String,
    /// 1, then 2 after an overwrite...
    pub version: i64,
    /// Set once a newer version of the same flux and nature was listed.
    pub overwritten_at: Option<i64>,
    pub seen_at: i64,
    pub download_state: DownloadState,
    pub attempts: i64,
    pub next_try_at: i64,
    /// French sentence: why refused, gone or failed, or what reading gave.
    pub message: String,
    pub file_path: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    pub downloaded_at: Option<i64>,
    /// Nature 10: `OK` (AEE) or `KO` (ARE); 11: `OK`, `ANO`, `KO`; 94: the CRM's status.
    pub read_status: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

impl ReturnRecord {
    pub fn is_current(&self) -> bool {
        self.overwritten_at.is_none()
    }
}

/// An anomaly a return lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnAnomaly {
    pub code: String,
    pub message: String,
    /// The DSN field that triggered it; empty when not named.
    pub rubric: String,
    pub category: String,
}

/// One employee's rate in a CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRate {
    pub nir_or_ntt: String,
    pub ntt: bool,
    pub matricule: String,
    /// As written (`7.50`); empty: none given.
    pub rate: String,
    pub rate_hundredths: Option<i64>,
    pub future_rate: String,
    pub future_rate_hundredths: Option<i64>,
    /// `YYYY-MM-DD`; empty without a future rate.
    pub future_effective_on: String,
}

/// A CRM nominatif as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRecord {
    pub siret: String,
    /// The rate identifier (root `identifiant`).
    pub identifiant: String,
    /// `YYYY-MM-DD`.
    pub available_on: String,
    pub valid_until: String,
    /// The name of its file in the export folder.
    pub file_name: String,
    pub rates: Vec<CrmRate>,
}

/// What a downloaded document gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Nature 10 or 11: its status and anomalies.
    Conformity {
        status: String,
        anomalies: Vec<ReturnAnomaly>,
        message: String,
    },
    /// Nature 94.
    Crm {
        status: String,
        crm: CrmRecord,
        anomalies: Vec<ReturnAnomaly>,
        message: String,
    },
    /// Another nature: kept, not read.
    Kept { message: String },
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadEnd {
    Downloaded {
        file_path: String,
        sha256: String,
        bytes: i64,
        read: Box<ReadResult>,
    },
    Refused(String),
    Gone(String),
    Failed {
        message: String,
        next_try_at: i64,
    },
}

/// The current rate of one employee (what the payroll must use), with its CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentRate {
    pub siret: String,
    pub rate: CrmRate,
    pub identifiant: String,
    pub available_on: String,
    pub valid_until: String,
    /// Still valid on the day asked.
    pub valid: bool,
    pub crm_id: i64,
    pub deposit_id: Option<i64>,
    pub idflux: String,
}

/// A CRM of an establishment, for its export folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmFile {
    pub crm_id: i64,
    pub file_name: String,
    /// The kept document.
    pub file_path: String,
    /// False once overwritten.
    pub current: bool,
}

/// The scan of one declarant's returns (`lister-retours-declarant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCursor {
    pub user_id: i64,
    /// End of the last window fully seen (Unix seconds).
    pub cursor_at: i64,
    /// The width of the next window, learned from the service.
    pub window_minutes: i64,
    /// The width the service last announced (`Accept-Ranges`).
    pub announced_minutes: Option<i64>,
    pub next_at: i64,
    pub last_scan_at: Option<i64>,
    pub message: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

/// One return of a deposit with its anomalies and, for a CRM, its identifier and number
/// of rates.
#[derive(Debug, Clone)]
pub struct ReturnDetail {
    pub record: ReturnRecord,
    pub anomalies: Vec<ReturnAnomaly>,
    pub crm: Option<(String, i64)>,
}

/// A deposit's following with what came back, for the board.
#[derive(Debug, Clone)]
pub struct FollowSummary {
    pub follow: FollowRecord,
    pub aee: Option<ReturnRecord>,
    pub conformity: Option<ReturnRecord>,
    pub anomaly_count: i64,
    pub crm: Option<(ReturnRecord, String, i64)>,
    pub refused_count: i64,
    pub gone_count: i64,
}

/// Why a listing gave no returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingFailure {
    /// 429: the window is wider than the service allows.
    WindowTooWide,
    /// 422: the service could not read the dates.
    BadDates,
    /// No answer or the service is unavailable: later.
    Unavailable,
    Unexpected,
    /// 404 to `lister-retours-flux`: the flux is not known (yet).
    UnknownFlux,
}

/// What a returns listing of the deposit agent gave.
#[derive(Debug, Clone)]
pub enum ReturnsListing {
    Listing {
        returns: Vec<ListedReturn>,
        /// The widest window the service allows (`Accept-Ranges`), 0 when unsaid.
        window_max_minutes: u32,
        /// Seconds until the answer's `Expires`, 0 when absent.
        expires_in_secs: u32,
    },
    /// The authentication gave no token.
    Authentication(crate::credentials::VerificationResult),
    Failed {
        failure: ListingFailure,
        /// French sentence.
        message: String,
    },
}

/// Why a download gave no document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFailure {
    /// The url is outside the download service: nothing was sent.
    ForeignAddress,
    /// 404: purged or overwritten.
    Gone,
    /// Past the size cap.
    TooLarge,
    Unavailable,
    Unexpected,
}

/// What a download gave (the document itself is in the file the caller named).
#[derive(Debug, Clone)]
pub enum ReturnDownload {
    Done {
        bytes: u64,
        /// As the agent computed it (hex).
        sha256: String,
        expires_in_secs: u32,
    },
    Authentication(crate::credentials::VerificationResult),
    Failed {
        failure: DownloadFailure,
        /// French sentence.
        message: String,
    },
}
