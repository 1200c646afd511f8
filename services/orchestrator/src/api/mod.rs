//! The front-end gRPC API: one tonic service per area, each a thin layer that checks the
//! session, calls the domain modules, and turns their typed errors into [`ApiError`]s
//! (stable code + French sentence). No domain decision is taken here.

use std::sync::Arc;

use iea_proto::error::{ApiError, ErrorCode};
use tonic::Request;

use crate::Core;
use crate::agents::AgentError;
use crate::sessions::{Principal, SessionError};

mod board;
mod connection;
mod credentials;
mod deposits;
mod returns;
mod sessions;
mod status;
mod support;
mod updates;
mod users;

pub use board::BoardApi;
pub use connection::ConnectionApi;
pub use credentials::CredentialsApi;
pub use deposits::DepositsApi;
pub use returns::ReturnsApi;
pub use sessions::SessionsApi;
pub use status::StatusApi;
pub use support::SupportApi;
pub use updates::UpdatesApi;
pub use users::UsersApi;

/// The bearer token of a request, from `authorization: Bearer <token>`.
fn bearer<T>(req: &Request<T>) -> Option<&str> {
    req.metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The caller of `req`, or `unauthenticated`.
async fn principal<T>(core: &Arc<Core>, req: &Request<T>) -> Result<Principal, ApiError> {
    let token = bearer(req).ok_or_else(|| {
        ApiError::unauthenticated(
            "Vous devez vous connecter : iea login --user NOM --password-stdin.",
        )
    })?;
    core.sessions
        .authenticate(token)
        .await
        .map_err(session_error)
}

fn session_error(e: SessionError) -> ApiError {
    match e {
        SessionError::InvalidCredentials => ApiError::of(
            ErrorCode::InvalidCredentials,
            "Nom d'utilisateur ou mot de passe incorrect.",
        ),
        SessionError::Locked { until } => ApiError::of(
            ErrorCode::AccountLocked,
            format!(
                "Trop d'essais infructueux : ce compte est bloqué jusqu'au {}.",
                format_time(until)
            ),
        ),
        SessionError::NoSession => ApiError::unauthenticated(
            "Votre session a expiré ou n'existe pas : reconnectez-vous avec iea login.",
        ),
        SessionError::Internal(e) => internal(e),
    }
}

/// Payroll-domain writes are refused while the licence is withdrawn.
fn refuse_in_consultation(core: &Core) -> Result<(), ApiError> {
    if core.hub.in_consultation() {
        return Err(consultation());
    }
    Ok(())
}

fn consultation() -> ApiError {
    ApiError::of(
        ErrorCode::ConsultationMode,
        "La licence de cette installation a été retirée : Impact emploi reste utilisable en consultation, mais cette modification est refusée.",
    )
}

/// An agent that gave no answer, for a person.
fn agent_error(e: AgentError) -> ApiError {
    match e {
        AgentError::Unavailable { agent, detail } => {
            tracing::warn!(agent, detail, "agent unavailable");
            ApiError::of(
                ErrorCode::AgentUnavailable,
                format!("Le service « {agent} » ne répond pas : réessayez dans un instant."),
            )
        }
        AgentError::Refused { error, .. } => error,
    }
}

/// Logs an unexpected error and returns the generic one: details stay in the log.
fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!(error = format!("{e:#}"), "internal error");
    ApiError::internal()
}

/// A time for a person: French words, French local time.
fn format_time(unix: i64) -> String {
    iea_fr_time::date_time_unix(unix)
}

pub(crate) fn timestamp(unix: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    }
}
