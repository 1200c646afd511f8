//! What one verification of a Net-entreprises identity gave, as the orchestrator keeps
//! and shows it (the verifier's answer, converted at the edge in `agents.rs`).

pub use iea_net::probe::Diagnosis as FailedStep;

/// The outcome of one authentication attempt (or why none was made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    InvalidCredentials,
    PasswordExpired,
    NotRegistered,
    AccountLocked,
    RejectedFormat,
    Unavailable,
    Unexpected,
    /// Refused before anything was sent: the identity itself is wrong.
    InvalidInput,
}

impl Outcome {
    /// Net-entreprises refused the login: counts against the account's budget.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::PasswordExpired
                | Self::NotRegistered
                | Self::AccountLocked
        )
    }

    /// Stable code, as stored and logged.
    pub fn code(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::InvalidCredentials => "invalid_credentials",
            Self::PasswordExpired => "password_expired",
            Self::NotRegistered => "not_registered",
            Self::AccountLocked => "account_locked",
            Self::RejectedFormat => "rejected_format",
            Self::Unavailable => "unavailable",
            Self::Unexpected => "unexpected",
            Self::InvalidInput => "invalid_input",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::Valid,
            Self::InvalidCredentials,
            Self::PasswordExpired,
            Self::NotRegistered,
            Self::AccountLocked,
            Self::RejectedFormat,
            Self::Unavailable,
            Self::Unexpected,
            Self::InvalidInput,
        ]
        .into_iter()
        .find(|o| o.code() == code)
    }
}

/// A problem of the identity itself, found before sending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityProblem {
    /// `siret`, `nom`, `prenom` or `password`.
    pub field: String,
    /// Stable code (`leading_space`, `too_long`…).
    pub code: String,
    /// French sentence; never quotes a password.
    pub message: String,
}

/// One verification's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationResult {
    pub outcome: Outcome,
    /// French sentence summarising the outcome.
    pub message: String,
    /// For diagnosis, when an answer came.
    pub http_status: Option<u16>,
    pub realm: Option<String>,
    /// For `Valid`: a token was obtained (never kept) and expired then (Unix seconds).
    pub token_expires_at: Option<i64>,
    /// For `Unavailable`: where the attempt stopped.
    pub failed_step: Option<FailedStep>,
    /// For `InvalidInput`.
    pub identity_problems: Vec<IdentityProblem>,
}
