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
