//! The outcome of an authentication in its `iea.agent.v1` form, for the agents' gRPC
//! edge (the credential verifier's answers, the deposit agent's refused
//! authentications). The token is not part of it.

use iea_proto::agent::v1::{InputProblem, VerifyOutcome, VerifyResponse};

use crate::outcome::{Authentication, Outcome};

impl From<Outcome> for VerifyOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Valid => Self::Valid,
            Outcome::InvalidCredentials => Self::InvalidCredentials,
            Outcome::PasswordExpired => Self::PasswordExpired,
            Outcome::NotRegistered => Self::NotRegistered,
            Outcome::AccountLocked => Self::AccountLocked,
            Outcome::RejectedFormat => Self::RejectedFormat,
            Outcome::Unavailable => Self::Unavailable,
            Outcome::Unexpected => Self::Unexpected,
            Outcome::InvalidInput => Self::InvalidInput,
        }
    }
}

/// An outcome as the agents answered it (the orchestrator judges the budget with
/// [`Outcome::is_refusal`] on it). `Err`: `UNSPECIFIED`, which names no outcome.
impl TryFrom<VerifyOutcome> for Outcome {
    type Error = VerifyOutcome;

    fn try_from(o: VerifyOutcome) -> Result<Self, VerifyOutcome> {
        Ok(match o {
            VerifyOutcome::Valid => Self::Valid,
            VerifyOutcome::InvalidCredentials => Self::InvalidCredentials,
            VerifyOutcome::PasswordExpired => Self::PasswordExpired,
            VerifyOutcome::NotRegistered => Self::NotRegistered,
            VerifyOutcome::AccountLocked => Self::AccountLocked,
            VerifyOutcome::RejectedFormat => Self::RejectedFormat,
            VerifyOutcome::Unavailable => Self::Unavailable,
            VerifyOutcome::Unexpected => Self::Unexpected,
            VerifyOutcome::InvalidInput => Self::InvalidInput,
            VerifyOutcome::Unspecified => return Err(o),
        })
    }
}

impl From<Authentication> for VerifyResponse {
    fn from(v: Authentication) -> Self {
        VerifyResponse {
            outcome: VerifyOutcome::from(v.outcome).into(),
            http_status: v.http_status.map(u32::from).unwrap_or(0),
            realm: v.realm.unwrap_or_default(),
            probe: v.diagnosis.map(Into::into),
            token_expires_at: v.token_expires_at.map(prost_types::Timestamp::from),
            input_problems: v
                .input_problems
                .into_iter()
                .map(|p| InputProblem {
                    field: p.field.name().to_owned(),
                    code: p.code.to_owned(),
                    message: p.message,
                })
                .collect(),
            message: v.message,
        }
    }
}
