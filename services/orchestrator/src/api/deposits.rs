//! `iea.v1.Deposits`: the DSN deposit queue for front-ends. The upload is read from the
//! client stream chunk by chunk (a 100 MB file is never one message nor held whole).

use std::sync::Arc;

use futures::StreamExt;
use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::deposits_server::Deposits;
use iea_proto::v1::*;
use tonic::{Request, Response, Status, Streaming};

use super::{bearer, internal, principal, refuse_in_consultation, session_error, timestamp};
use crate::Core;
use crate::deposits::{DepositError, DepositRecord, Resolution, Upload};

pub struct DepositsApi(pub Arc<Core>);

type DepositStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<DsnDeposit, Status>> + Send>>;

fn deposit_error(e: DepositError) -> ApiError {
    match e {
        DepositError::PermissionDenied(m) => ApiError::permission_denied(m),
        DepositError::NotFound(id) => {
            ApiError::not_found(format!("Aucun dépôt n° {id} ne vous est accessible."))
        }
        DepositError::NoSuchAccount(n) => {
            ApiError::not_found(format!("Le compte « {n} » n'existe pas."))
        }
        DepositError::BadFile(problems) => ApiError::of(
            ErrorCode::BadDsnFile,
            format!(
                "Le fichier n'a pas été déposé : il ne respecte pas la norme DSN.\n{}",
                problems.join("\n")
            ),
        ),
        DepositError::InvalidInput(m) => ApiError::invalid_input(m),
        DepositError::Duplicate {
            existing,
            same_file,
        } => ApiError::of(
            ErrorCode::DuplicateDeclaration,
            if same_file {
                format!(
                    "Ce fichier a déjà été déposé ou est en cours de dépôt (dépôt n° {existing}) : il n'est pas envoyé une seconde fois."
                )
            } else {
                format!(
                    "Une déclaration normale du même établissement, du même mois et de la même fraction a déjà été déposée ou est en cours de dépôt (dépôt n° {existing}) : pour la corriger, déposez une déclaration « annule et remplace » (S20.G00.05.002 = 03)."
                )
            },
        ),
        DepositError::WrongState { id, state } => ApiError::of(
            ErrorCode::WrongDepositState,
            format!(
                "Le dépôt n° {id} est « {} » : cette décision ne s'y applique pas (ou il est en cours de traitement).",
                state.label_fr()
            ),
        ),
        DepositError::Internal(e) => internal(e),
    }
}

pub(crate) fn deposit_message(r: DepositRecord) -> DsnDeposit {
    DsnDeposit {
        id: r.id,
        state: r.state.code().to_owned(),
        idflux: r.idflux.unwrap_or_default(),
        anomalies: r
            .anomalies
            .into_iter()
            .map(|a| DsnAnomaly {
                code: a.code,
                message: a.message,
            })
            .collect(),
        anomalies_omitted: r.anomalies_omitted,
        message: r.message,
        siret: r.siret,
        month: r.month,
        kind: r.kind,
        fraction: r.fraction,
        essai_reel: r.essai_reel,
        account: r.account.unwrap_or_default(),
        requested_by: r.requested_by,
        file_name: r.file_name,
        sha256: r.sha256,
        bytes: u64::try_from(r.bytes).unwrap_or(0),
        attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        attempt_started_at: r.attempt_started_at.map(timestamp),
        candidates: r
            .candidates
            .into_iter()
            .map(|c| DsnDepositCandidate {
                idflux: c.idflux,
                date: c.date,
                statut: c.statut,
            })
            .collect(),
        settled: r.state.is_settled(),
    }
}

#[tonic::async_trait]
impl Deposits for DepositsApi {
    #[tracing::instrument(skip_all)]
    async fn deposit(
        &self,
        request: Request<Streaming<DsnUpload>>,
    ) -> Result<Response<DsnDeposit>, Status> {
        let caller = principal(&self.0, &request).await?;
        refuse_in_consultation(&self.0)?;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| ApiError::invalid_input("Aucun fichier n'a été envoyé."))?;
        let start = first.start.clone().ok_or_else(|| {
            ApiError::invalid_input("Le premier message doit annoncer le fichier (nom, taille).")
        })?;
        let head = (!first.data.is_empty()).then_some(Ok(first.data));
        let rest = stream.map(|m| match m {
            Ok(m) => Ok(m.data),
            Err(s) => Err(s.message().to_owned()),
        });
        let chunks = futures::stream::iter(head).chain(rest).boxed();
        let user = Some(start.user.as_str()).filter(|u| !u.trim().is_empty());
        let r = self
            .0
            .deposits
            .submit(
                &caller,
                user,
                Upload {
                    file_name: start.file_name.clone(),
                    total_size: start.total_size,
                    chunks,
                },
            )
            .await
            .map_err(deposit_error)?;
        Ok(Response::new(deposit_message(r)))
    }

    async fn list_deposits(
        &self,
        request: Request<ListDsnDepositsRequest>,
    ) -> Result<Response<ListDsnDepositsResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let r = request.get_ref();
        let filter = crate::deposits::ListFilter::parse(&r.siret, &r.month, &r.state, r.limit)
            .and_then(|f| f.older_than(r.before))
            .map_err(deposit_error)?;
        let (found, truncated) = self
            .0
            .deposits
            .list(&caller, filter)
            .await
            .map_err(deposit_error)?;
        Ok(Response::new(ListDsnDepositsResponse {
            deposits: found.into_iter().map(deposit_message).collect(),
            truncated,
        }))
    }

    async fn get_deposit(
        &self,
        request: Request<GetDsnDepositRequest>,
    ) -> Result<Response<DsnDeposit>, Status> {
        let caller = principal(&self.0, &request).await?;
        let r = self
            .0
            .deposits
            .get(&caller, request.get_ref().id)
            .await
            .map_err(deposit_error)?;
        Ok(Response::new(deposit_message(r)))
    }

    type WatchDepositStream = DepositStream;

    /// The deposit now, then at each change, until settled (`deposits::watch`); ends
    /// early, without a settled message, when the server stops.
    async fn watch_deposit(
        &self,
        request: Request<WatchDsnDepositRequest>,
    ) -> Result<Response<Self::WatchDepositStream>, Status> {
        let caller = principal(&self.0, &request).await?;
        let token = bearer(&request).unwrap_or_default().to_owned();
        let rx = self
            .0
            .deposits
            .watch(
                &caller,
                request.get_ref().id,
                deposit_message,
                self.0.shutdown.wait(),
            )
            .await
            .map_err(deposit_error)?;
        // Each message goes only while the session that asked is still open: signed out
        // (or expired) meanwhile, the stream ends with its error, and its watcher with it.
        let core = self.0.clone();
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx).then(move |m| {
            let (core, token) = (core.clone(), token.clone());
            async move {
                let d = m.map_err(|e| Status::from(deposit_error(e)))?;
                core.sessions
                    .authenticate(&token)
                    .await
                    .map_err(|e| Status::from(session_error(e)))?;
                Ok(d)
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all, fields(deposit = request.get_ref().id))]
    async fn resolve_deposit(
        &self,
        request: Request<ResolveDsnDepositRequest>,
    ) -> Result<Response<DsnDeposit>, Status> {
        use resolve_dsn_deposit_request::Resolution as R;
        let caller = principal(&self.0, &request).await?;
        refuse_in_consultation(&self.0)?;
        let req = request.into_inner();
        let resolution = match req.resolution {
            Some(R::Idflux(i)) => Resolution::Idflux(i),
            Some(R::Resend(true)) => Resolution::Resend,
            _ => {
                return Err(ApiError::invalid_input(
                    "Indiquez le flux qui est ce dépôt (--idflux) ou demandez un nouvel envoi (--resend).",
                )
                .into());
            }
        };
        let r = self
            .0
            .deposits
            .resolve(&caller, req.id, resolution)
            .await
            .map_err(deposit_error)?;
        Ok(Response::new(deposit_message(r)))
    }

    #[tracing::instrument(skip_all, fields(siret = %request.get_ref().siret))]
    async fn set_deposit_account(
        &self,
        request: Request<SetDepositAccountRequest>,
    ) -> Result<Response<DepositAccount>, Status> {
        let caller = principal(&self.0, &request).await?;
        refuse_in_consultation(&self.0)?;
        let req = request.into_inner();
        let (siret, user) = self
            .0
            .deposits
            .set_account(&caller, &req.siret, &req.user)
            .await
            .map_err(deposit_error)?;
        Ok(Response::new(DepositAccount {
            siret,
            user,
            ..Default::default()
        }))
    }

    async fn list_deposit_accounts(
        &self,
        request: Request<ListDepositAccountsRequest>,
    ) -> Result<Response<ListDepositAccountsResponse>, Status> {
        principal(&self.0, &request).await?;
        let all = self
            .0
            .deposits
            .accounts_due()
            .await
            .map_err(|e| deposit_error(DepositError::Internal(e)))?;
        Ok(Response::new(ListDepositAccountsResponse {
            accounts: all.into_iter().map(account_message).collect(),
        }))
    }
}

/// A depositing account with its next due date and last verification, as the API gives
/// it (`ListDepositAccounts`, and the status's refused accounts).
pub(super) fn account_message(a: crate::deposits::AccountDue) -> DepositAccount {
    DepositAccount {
        next_due: Some(timestamp(a.next_due)),
        last_check_valid: a.last_check.as_ref().is_some_and(|c| c.0),
        last_check_message: a
            .last_check
            .as_ref()
            .map(|c| c.1.clone())
            .unwrap_or_default(),
        last_checked_at: a.last_check.as_ref().map(|c| timestamp(c.2)),
        siret: a.siret,
        user: a.user,
    }
}

#[cfg(test)]
mod tests {
    //! On the engine of the test run (SQLite, or PostgreSQL with `IEA_TEST_DATABASE_URL`).

    use super::*;
    use crate::deposits::State;
    use crate::store::Transition;
    use crate::store::testing::store;

    use crate::deposits::testing::{anomalies, new};

    /// A deposit whose ARE listed more anomalies than its record keeps, as the worker
    /// writes it: the front-ends' message carries the first ones and how many more there
    /// were, so that a program reading it knows the list is incomplete.
    #[tokio::test]
    async fn a_rejected_deposit_says_how_many_anomalies_were_left_out() {
        let t = store().await;
        let s = &t.store;
        let d = s.insert_deposit(new("a", "01"), 1).await.unwrap().unwrap();
        let queued = Transition {
            state: Some(State::Queued),
            ..Default::default()
        };
        s.decide_deposit(d.id, &[State::Checked], queued, 1)
            .await
            .unwrap();
        s.lease_deposit(d.id, State::Queued, "me".into(), 10, 70)
            .await
            .unwrap()
            .unwrap();
        let are = crate::deposits::worker::rejected(anomalies(100), 4_900, None);
        assert!(
            s.transition_deposit(d.id, "me".into(), are, true, 11)
                .await
                .unwrap()
        );
        let m = deposit_message(s.deposit(d.id).await.unwrap().unwrap());
        assert_eq!(m.state, "rejected");
        assert_eq!(m.anomalies.len(), 100);
        assert_eq!(m.anomalies[99].code, "A99");
        assert_eq!(m.anomalies_omitted, 4_900);
        assert!(
            m.message.ends_with(
                "… et 4\u{202f}990 autres anomalies (seules les 100 premières sont conservées)."
            ),
            "{}",
            m.message
        );
        // One never rejected says nothing was left out.
        let other = s.insert_deposit(new("b", "03"), 12).await.unwrap().unwrap();
        assert_eq!(deposit_message(other).anomalies_omitted, 0);
    }
}
