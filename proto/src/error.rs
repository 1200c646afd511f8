//! The typed error every iea service returns: a gRPC status whose details hold a
//! `google.rpc.ErrorInfo` (domain `iea-connect`, reason = our stable code) and a
//! `google.rpc.LocalizedMessage` in `fr-FR`. Any gRPC client can read it; ours decode it
//! back with [`ApiError::from_status`], so a code chosen by an agent reaches a front-end
//! unchanged.

use std::collections::HashMap;
use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every error we produce.
pub const DOMAIN: &str = "iea-connect";
/// Locale of the message for people.
pub const LOCALE: &str = "fr-FR";

/// Every stable error code the orchestrator returns, each with its one gRPC status: the
/// one mapping from a typed error to the wire. Programs match on [`ErrorCode::as_str`];
/// an error read back from a peer may carry a code this version does not know
/// ([`ApiError::error_code`] is then `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An RPC that a later version will provide.
    Unimplemented,
    /// No valid session.
    Unauthenticated,
    /// The caller may not do this.
    PermissionDenied,
    /// What was given is not acceptable; the message says why.
    InvalidInput,
    /// No such thing.
    NotFound,
    /// Something broke inside; details are in the log.
    Internal,
    /// Too many wrong passwords: the account is locked for a while.
    AccountLocked,
    /// An agent did not answer.
    AgentUnavailable,
    /// An account of that name exists.
    AlreadyExists,
    /// The account's Net-entreprises identity is still needed (an establishment it
    /// deposits for, deposits on their way, returns followed): it cannot be removed.
    AccountInUse,
    /// Refused while assistance mode is on.
    AssistanceActive,
    /// Assistance mode is not on.
    AssistanceNotActive,
    /// A DSN file that does not pass the checks; each problem is named with its line.
    BadDsnFile,
    /// Net-entreprises refused this identity too often: nothing is sent until it changes.
    BlockedByBudget,
    /// The licence is withdrawn: payroll-domain writes are refused.
    ConsultationMode,
    /// Too many wrong daily passwords: deactivation is locked for a while.
    DailyPasswordLocked,
    /// The same declaration was already deposited.
    DuplicateDeclaration,
    /// Wrong user name or password.
    InvalidCredentials,
    /// A connection setting is not acceptable; the field is named.
    InvalidSettings,
    /// The last administrator cannot be removed or demoted.
    LastAdministrator,
    /// In monoposte mode the installation has one account.
    Monoposte,
    /// No newer version is available.
    NoUpdate,
    /// The account has no Net-entreprises identity.
    NotConfigured,
    /// One cannot remove the account one is signed in with.
    RemoveSelf,
    /// The proposed repair no longer applies.
    RepairNotApplicable,
    /// A verification of that account is already running.
    VerificationInProgress,
    /// The account's own password, asked to confirm a change, is wrong.
    WrongAccountPassword,
    /// The current password is wrong.
    WrongCurrentPassword,
    /// The daily password is wrong.
    WrongDailyPassword,
    /// The deposit is not in a state that allows this.
    WrongDepositState,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 30] = [
        ErrorCode::Unimplemented,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::InvalidInput,
        ErrorCode::NotFound,
        ErrorCode::Internal,
        ErrorCode::AccountLocked,
        ErrorCode::AgentUnavailable,
        ErrorCode::AlreadyExists,
        ErrorCode::AccountInUse,
        ErrorCode::AssistanceActive,
        ErrorCode::AssistanceNotActive,
        ErrorCode::BadDsnFile,
        ErrorCode::BlockedByBudget,
        ErrorCode::ConsultationMode,
        ErrorCode::DailyPasswordLocked,
        ErrorCode::DuplicateDeclaration,
        ErrorCode::InvalidCredentials,
        ErrorCode::InvalidSettings,
        ErrorCode::LastAdministrator,
        ErrorCode::Monoposte,
        ErrorCode::NoUpdate,
        ErrorCode::NotConfigured,
        ErrorCode::RemoveSelf,
        ErrorCode::RepairNotApplicable,
        ErrorCode::VerificationInProgress,
        ErrorCode::WrongAccountPassword,
        ErrorCode::WrongCurrentPassword,
        ErrorCode::WrongDailyPassword,
        ErrorCode::WrongDepositState,
    ];

    /// The stable code (English, snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unimplemented => "unimplemented",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal",
            ErrorCode::AccountLocked => "account_locked",
            ErrorCode::AgentUnavailable => "agent_unavailable",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::AccountInUse => "account_in_use",
            ErrorCode::AssistanceActive => "assistance_active",
            ErrorCode::AssistanceNotActive => "assistance_not_active",
            ErrorCode::BadDsnFile => "bad_dsn_file",
            ErrorCode::BlockedByBudget => "blocked_by_budget",
            ErrorCode::ConsultationMode => "consultation_mode",
            ErrorCode::DailyPasswordLocked => "daily_password_locked",
            ErrorCode::DuplicateDeclaration => "duplicate_declaration",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidSettings => "invalid_settings",
            ErrorCode::LastAdministrator => "last_administrator",
            ErrorCode::Monoposte => "monoposte",
            ErrorCode::NoUpdate => "no_update",
            ErrorCode::NotConfigured => "not_configured",
            ErrorCode::RemoveSelf => "remove_self",
            ErrorCode::RepairNotApplicable => "repair_not_applicable",
            ErrorCode::VerificationInProgress => "verification_in_progress",
            ErrorCode::WrongAccountPassword => "wrong_account_password",
            ErrorCode::WrongCurrentPassword => "wrong_current_password",
            ErrorCode::WrongDailyPassword => "wrong_daily_password",
            ErrorCode::WrongDepositState => "wrong_deposit_state",
        }
    }

    /// The gRPC status an error of this code travels with.
    pub fn status(self) -> Code {
        match self {
            ErrorCode::Unimplemented => Code::Unimplemented,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::InvalidInput => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::Internal => Code::Internal,
            ErrorCode::AccountLocked => Code::PermissionDenied,
            ErrorCode::AgentUnavailable => Code::Unavailable,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::AccountInUse => Code::FailedPrecondition,
            ErrorCode::AssistanceActive => Code::FailedPrecondition,
            ErrorCode::AssistanceNotActive => Code::FailedPrecondition,
            ErrorCode::BadDsnFile => Code::InvalidArgument,
            ErrorCode::BlockedByBudget => Code::FailedPrecondition,
            ErrorCode::ConsultationMode => Code::FailedPrecondition,
            ErrorCode::DailyPasswordLocked => Code::ResourceExhausted,
            ErrorCode::DuplicateDeclaration => Code::AlreadyExists,
            ErrorCode::InvalidCredentials => Code::Unauthenticated,
            ErrorCode::InvalidSettings => Code::InvalidArgument,
            ErrorCode::LastAdministrator => Code::FailedPrecondition,
            ErrorCode::Monoposte => Code::FailedPrecondition,
            ErrorCode::NoUpdate => Code::NotFound,
            ErrorCode::NotConfigured => Code::FailedPrecondition,
            ErrorCode::RemoveSelf => Code::FailedPrecondition,
            ErrorCode::RepairNotApplicable => Code::FailedPrecondition,
            ErrorCode::VerificationInProgress => Code::Aborted,
            ErrorCode::WrongAccountPassword => Code::PermissionDenied,
            ErrorCode::WrongCurrentPassword => Code::PermissionDenied,
            ErrorCode::WrongDailyPassword => Code::PermissionDenied,
            ErrorCode::WrongDepositState => Code::FailedPrecondition,
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

/// A stable error code (English, snake_case) with a French sentence for a person.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    /// gRPC status code carried on the wire.
    pub status: Code,
    /// Stable code programs match on, e.g. `invalid_input`.
    pub code: String,
    /// French sentence for a person.
    pub message: String,
}

impl ApiError {
    /// An error of a known code, with its status.
    pub fn of(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code.status(), code.as_str(), message)
    }

    /// The code as this version knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(&self.code)
    }

    pub fn new(status: Code, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// An RPC that a later version will provide. `feature` names it in French.
    pub fn unimplemented(feature: &str) -> Self {
        Self::new(
            Code::Unimplemented,
            "unimplemented",
            format!(
                "La fonction « {feature} » n'est pas encore disponible dans cette version d'iea-connect."
            ),
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, "unauthenticated", message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, "permission_denied", message)
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, "not_found", message)
    }

    /// Something broke inside; the details go to the log, not to the person.
    pub fn internal() -> Self {
        Self::new(
            Code::Internal,
            "internal",
            "Une erreur interne est survenue. Consultez le journal du service ou préparez une demande de support.",
        )
    }

    /// Reads the typed error back from a status; a status from elsewhere (no details)
    /// gets a code derived from its gRPC code and a French sentence for that code.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let info = details.error_info().filter(|i| i.domain == DOMAIN);
        let code = match info {
            Some(info) => info.reason.clone(),
            None => code_name(status.code()).to_owned(),
        };
        let message = match details.localized_message() {
            Some(m) if !m.message.is_empty() => m.message.clone(),
            _ if info.is_some() => status.message().to_owned(),
            _ => default_message(status.code()).to_owned(),
        };
        Self::new(status.code(), code, message)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ApiError({:?}, {}: {})",
            self.status, self.code, self.message
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let mut details = ErrorDetails::new();
        details.set_error_info(e.code, DOMAIN, HashMap::<String, String>::new());
        details.set_localized_message(LOCALE, e.message.clone());
        Status::with_error_details(e.status, e.message, details)
    }
}

impl From<Status> for ApiError {
    fn from(s: Status) -> Self {
        Self::from_status(&s)
    }
}

/// Stable snake_case name of a gRPC code, used when a status carries no typed details.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_input",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

fn default_message(code: Code) -> &'static str {
    match code {
        Code::Unavailable => "Le service iea-connect est injoignable. Vérifiez qu'il est démarré.",
        Code::DeadlineExceeded => "Le service iea-connect n'a pas répondu à temps.",
        Code::Unauthenticated => "Vous devez vous connecter (iea login).",
        Code::PermissionDenied => "Vous n'avez pas le droit d'effectuer cette opération.",
        Code::Unimplemented => {
            "Cette fonction n'est pas disponible dans cette version d'iea-connect."
        }
        Code::InvalidArgument => "La demande est invalide.",
        _ => "Une erreur inattendue est survenue.",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_error_code_reads_back_and_travels_with_one_status() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code:?} twice");
            assert_eq!(ErrorCode::from_code(code.as_str()), Some(code));
            let e = ApiError::of(code, "Message.");
            assert_eq!(e.status, code.status());
            let back = ApiError::from_status(&e.clone().into());
            assert_eq!(back.error_code(), Some(code));
        }
        assert_eq!(ErrorCode::from_code("nothing_like_it"), None);
    }

    use super::*;

    #[test]
    fn a_typed_error_survives_the_trip_through_a_status() {
        let e = ApiError::new(
            Code::FailedPrecondition,
            "blocked_by_budget",
            "Vérification bloquée.",
        );
        let status: Status = e.clone().into();
        // What crosses the wire is the encoded status; decode it as a peer would.
        let back = ApiError::from_status(&status);
        assert_eq!(back, e);
    }

    #[test]
    fn a_foreign_status_gets_a_code_and_a_french_message() {
        let back = ApiError::from_status(&Status::unavailable("tcp connect error"));
        assert_eq!(back.code, "unavailable");
        assert!(back.message.contains("injoignable"), "{back:?}");
    }
}
