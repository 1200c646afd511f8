//! What one verification of a Net-entreprises identity gave, as the orchestrator keeps
//! and shows it (the verifier's answer, converted at the edge in `agents.rs`).

pub use iea_net::probe::Diagnosis as FailedStep;

/// The outcome of one authentication attempt (or why none was made), with its stable
/// code and the one rule of what counts against the budget (`is_refusal`): the
/// Net-entreprises protocol's own definition.
pub use iea_net_entreprises::Outcome;

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
