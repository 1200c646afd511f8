//! `iea.v1.Credentials`.

use std::sync::Arc;

use futures::StreamExt;
use iea_declarant::TypedIdentity;
use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::credentials_server::Credentials;
use iea_proto::v1::*;
use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::{agent_error, internal, principal, refuse_in_consultation, timestamp};
use crate::Core;
use crate::credentials::{CredentialsError, Summary, Verification};

pub struct CredentialsApi(pub Arc<Core>);

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

pub(crate) fn credentials_error(e: CredentialsError) -> ApiError {
    match e {
        CredentialsError::PermissionDenied => ApiError::permission_denied(
            "Vous ne pouvez consulter ou modifier que vos propres identifiants Net-entreprises.",
        ),
        CredentialsError::NoSuchAccount(n) => {
            ApiError::not_found(format!("Le compte « {n} » n'existe pas."))
        }
        CredentialsError::NotConfigured(n) => ApiError::of(
            ErrorCode::NotConfigured,
            format!("Aucun identifiant Net-entreprises n'est enregistré pour le compte « {n} »."),
        ),
        CredentialsError::WrongAccountPassword => ApiError::of(
            ErrorCode::WrongAccountPassword,
            "Le mot de passe Impact emploi du compte est incorrect : les identifiants n'ont pas été modifiés.",
        ),
        CredentialsError::InvalidInput(problems) => ApiError::invalid_input(format!(
            "Les identifiants n'ont pas été enregistrés. {}",
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        CredentialsError::BlockedByBudget { user, failures } => ApiError::of(
            ErrorCode::BlockedByBudget,
            format!(
                "Les {failures} dernières vérifications du compte « {user} » ont été refusées par Net-entreprises. Pour ne pas provoquer le blocage du compte du déclarant sur le portail, aucune nouvelle tentative ne sera faite tant que ses identifiants n'auront pas été corrigés."
            ),
        ),
        CredentialsError::InProgress(n) => ApiError::of(
            ErrorCode::VerificationInProgress,
            format!("Une vérification des identifiants du compte « {n} » est déjà en cours."),
        ),
        CredentialsError::Agent(e) => agent_error(e),
        CredentialsError::Internal(e) => internal(e),
    }
}

/// The verification's result as the front-end contract carries it.
fn verification_of(r: crate::credentials::VerificationResult) -> iea_proto::v1::Verification {
    use crate::credentials::Outcome;
    use iea_proto::v1::VerificationOutcome as P;
    let outcome = match r.outcome {
        Outcome::Valid => P::Valid,
        Outcome::InvalidCredentials => P::InvalidCredentials,
        Outcome::PasswordExpired => P::PasswordExpired,
        Outcome::NotRegistered => P::NotRegistered,
        Outcome::AccountLocked => P::AccountLocked,
        Outcome::RejectedFormat => P::RejectedFormat,
        Outcome::Unavailable => P::Unavailable,
        Outcome::Unexpected => P::Unexpected,
        Outcome::InvalidInput => P::InvalidInput,
    };
    iea_proto::v1::Verification {
        outcome: outcome.into(),
        http_status: r.http_status.map(u32::from).unwrap_or(0),
        realm: r.realm.unwrap_or_default(),
        probe: r.failed_step.map(Into::into),
        token_expires_at: r.token_expires_at.map(timestamp),
        input_problems: r
            .identity_problems
            .into_iter()
            .map(|p| IdentityProblem {
                field: p.field,
                code: p.code,
                message: p.message,
            })
            .collect(),
        message: r.message,
    }
}

fn verification(v: Verification) -> VerificationResult {
    VerificationResult {
        user: v.user,
        result: Some(verification_of(v.result)),
        verified_at: Some(timestamp(v.verified_at)),
        blocked_reason: String::new(),
        error_code: String::new(),
    }
}

fn summary(s: Summary) -> CredentialSummary {
    CredentialSummary {
        user: s.user,
        configured: s.configured,
        siret: s.siret,
        nom: s.nom,
        prenom: s.prenom,
        updated_at: s.updated_at.map(timestamp),
        last_verification: s.last.map(verification),
        consecutive_failures: s.consecutive_failures,
    }
}

#[tonic::async_trait]
impl Credentials for CredentialsApi {
    #[tracing::instrument(skip_all, fields(user = %request.get_ref().user))]
    async fn set_credentials(
        &self,
        request: Request<SetCredentialsRequest>,
    ) -> Result<Response<CredentialSummary>, Status> {
        let caller = principal(&self.0, &request).await?;
        refuse_in_consultation(&self.0)?;
        let req = request.into_inner();
        let id = req.identity.unwrap_or_default();
        let s = self
            .0
            .credentials
            .set(
                &caller,
                &req.user,
                SecretString::from(req.account_password),
                TypedIdentity {
                    siret: id.siret,
                    nom: id.nom,
                    prenom: id.prenom,
                    password: SecretString::from(id.password),
                },
            )
            .await
            .map_err(credentials_error)?;
        Ok(Response::new(summary(s)))
    }

    async fn get_credentials(
        &self,
        request: Request<GetCredentialsRequest>,
    ) -> Result<Response<CredentialSummary>, Status> {
        let caller = principal(&self.0, &request).await?;
        let s = self
            .0
            .credentials
            .get(&caller, &request.get_ref().user)
            .await
            .map_err(credentials_error)?;
        Ok(Response::new(summary(s)))
    }

    async fn list_credentials(
        &self,
        request: Request<ListCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let all = self
            .0
            .credentials
            .list(&caller)
            .await
            .map_err(credentials_error)?;
        Ok(Response::new(ListCredentialsResponse {
            credentials: all.into_iter().map(summary).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(from = %request.get_ref().from_user))]
    async fn copy_credentials(
        &self,
        request: Request<CopyCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        refuse_in_consultation(&self.0)?;
        let req = request.into_inner();
        let all = self
            .0
            .credentials
            .copy(&caller, &req.from_user, &req.to_users)
            .await
            .map_err(credentials_error)?;
        Ok(Response::new(ListCredentialsResponse {
            credentials: all.into_iter().map(summary).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user = %request.get_ref().user))]
    async fn verify_credentials(
        &self,
        request: Request<VerifyCredentialsRequest>,
    ) -> Result<Response<VerificationResult>, Status> {
        let caller = principal(&self.0, &request).await?;
        let v = self
            .0
            .credentials
            .verify(&caller, &request.get_ref().user)
            .await
            .map_err(credentials_error)?;
        Ok(Response::new(verification(v)))
    }

    type VerifyAllCredentialsStream = Stream<VerificationResult>;

    async fn verify_all_credentials(
        &self,
        request: Request<VerifyAllCredentialsRequest>,
    ) -> Result<Response<Self::VerifyAllCredentialsStream>, Status> {
        let caller = principal(&self.0, &request).await?;
        let stream = self
            .0
            .credentials
            .verify_all(&caller)
            .await
            .map_err(credentials_error)?;
        let stream = stream.map(|(user, r)| {
            Ok(match r {
                Ok(v) => verification(v),
                Err(e) => {
                    let e = credentials_error(e);
                    VerificationResult {
                        user,
                        result: None,
                        verified_at: None,
                        blocked_reason: e.message,
                        error_code: e.code,
                    }
                }
            })
        });
        let shutdown = self.0.shutdown.wait();
        Ok(Response::new(Box::pin(stream.take_until(shutdown))))
    }

    async fn rotate_encryption_key(
        &self,
        request: Request<RotateEncryptionKeyRequest>,
    ) -> Result<Response<RotateEncryptionKeyResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let n = self
            .0
            .credentials
            .rotate_key(&caller)
            .await
            .map_err(credentials_error)?;
        Ok(Response::new(RotateEncryptionKeyResponse {
            resealed: n as u32,
        }))
    }
}
