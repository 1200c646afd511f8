//! `iea.v1.Returns`: what came back for the deposits (returns, conformity, anomalies)
//! and the current withholding rates. Personal data: an administrator sees all, another
//! account what concerns the deposits it requested or made (the domain module filters).

use std::sync::Arc;

use iea_proto::error::ApiError;
use iea_proto::v1::returns_server::Returns;
use iea_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{internal, principal, timestamp};
use crate::Core;
use crate::returns::{CurrentRate, DepositReturns, FollowSummary, ReturnsError, read_nature_label};

pub struct ReturnsApi(pub Arc<Core>);

fn returns_error(e: ReturnsError) -> ApiError {
    match e {
        ReturnsError::PermissionDenied(m) => ApiError::permission_denied(m),
        ReturnsError::NotFound(id) => {
            ApiError::not_found(format!("Aucun dépôt n° {id} ne vous est accessible."))
        }
        ReturnsError::InvalidInput(m) => ApiError::invalid_input(m),
        ReturnsError::Internal(e) => internal(e),
    }
}

fn hundredths(v: Option<i64>) -> Option<u32> {
    v.and_then(|x| u32::try_from(x).ok())
}

fn rate_message(r: CurrentRate) -> PasRate {
    PasRate {
        siret: r.siret,
        nir_or_ntt: r.rate.nir_or_ntt,
        ntt: r.rate.ntt,
        matricule: r.rate.matricule,
        rate: r.rate.rate,
        rate_hundredths: hundredths(r.rate.rate_hundredths),
        rate_identifier: r.identifiant,
        available_on: r.available_on,
        valid_until: r.valid_until,
        future_rate: r.rate.future_rate,
        future_rate_hundredths: hundredths(r.rate.future_rate_hundredths),
        future_effective_on: r.rate.future_effective_on,
        valid: r.valid,
        deposit_id: r.deposit_id.unwrap_or(0),
        idflux: r.idflux,
    }
}

fn deposit_returns(d: DepositReturns) -> DsnReturnsOfDeposit {
    DsnReturnsOfDeposit {
        deposit_id: d.deposit_id,
        idflux: d.idflux,
        follow_state: d
            .follow
            .as_ref()
            .map(|f| f.state.code().to_owned())
            .unwrap_or_default(),
        conformity: d.conformity,
        conformity_message: d.conformity_message,
        next_check_at: d
            .follow
            .as_ref()
            .filter(|f| f.state == crate::returns::FollowState::Following)
            .map(|f| timestamp(f.next_at)),
        follow_until: d.follow.as_ref().map(|f| timestamp(f.until_at)),
        returns: d
            .returns
            .into_iter()
            .map(|d| (d.record, d.anomalies, d.crm))
            .map(|(r, anomalies, crm)| DsnReturn {
                nature: r.nature,
                nature_label: read_nature_label(r.nature).to_owned(),
                current: r.is_current(),
                download_state: r.download_state.code().to_owned(),
                message: r.message,
                bytes: r.bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or(0),
                sha256: r.sha256.unwrap_or_default(),
                downloaded_at: r.downloaded_at.map(timestamp),
                version: u32::try_from(r.version).unwrap_or(0),
                statut: r.statut,
                publication: r.publication,
                production: r.production,
                return_id: r.return_id,
                anomalies: anomalies
                    .into_iter()
                    .map(|a| iea_proto::v1::ReturnAnomaly {
                        code: a.code,
                        message: a.message,
                        rubric: a.rubric,
                        category: a.category,
                    })
                    .collect(),
                crm_identifier: crm.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
                rate_count: crm
                    .map(|c| u32::try_from(c.1).unwrap_or(u32::MAX))
                    .unwrap_or(0),
            })
            .collect(),
    }
}

fn follow_message(s: FollowSummary) -> DepositFollow {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    DepositFollow {
        deposit_id: s.follow.deposit_id,
        idflux: s.follow.idflux,
        siret: s.follow.siret,
        month: s.follow.month,
        due_at: Some(timestamp(s.follow.due_at)),
        follow_state: s.follow.state.code().to_owned(),
        aee_statut: s.aee.as_ref().map(|r| r.statut.clone()).unwrap_or_default(),
        aee_at: s
            .aee
            .as_ref()
            .and_then(|r| r.downloaded_at.or(Some(r.seen_at)))
            .map(timestamp),
        conformity: s
            .conformity
            .as_ref()
            .and_then(|r| r.read_status.clone())
            .unwrap_or_default(),
        conformity_at: s
            .conformity
            .as_ref()
            .and_then(|r| r.downloaded_at)
            .map(timestamp),
        anomaly_count: count(s.anomaly_count),
        crm_received: s.crm.is_some(),
        crm_at: s
            .crm
            .as_ref()
            .and_then(|(r, _, _)| r.downloaded_at)
            .map(timestamp),
        crm_identifier: s.crm.as_ref().map(|c| c.1.clone()).unwrap_or_default(),
        rate_count: s.crm.as_ref().map(|c| count(c.2)).unwrap_or(0),
        refused_count: count(s.refused_count),
        gone_count: count(s.gone_count),
        next_check_at: (s.follow.state == crate::returns::FollowState::Following)
            .then(|| timestamp(s.follow.next_at)),
    }
}

#[tonic::async_trait]
impl Returns for ReturnsApi {
    async fn list_rates(
        &self,
        request: Request<ListPasRatesRequest>,
    ) -> Result<Response<ListPasRatesResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let req = request.into_inner();
        let rates = self
            .0
            .returns
            .rates(&caller, Some(req.siret.as_str()), req.include_expired)
            .await
            .map_err(returns_error)?;
        Ok(Response::new(ListPasRatesResponse {
            rates: rates.into_iter().map(rate_message).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(deposit = request.get_ref().deposit_id))]
    async fn list_returns(
        &self,
        request: Request<ListDsnReturnsRequest>,
    ) -> Result<Response<DsnReturnsOfDeposit>, Status> {
        let caller = principal(&self.0, &request).await?;
        let d = self
            .0
            .returns
            .of_deposit(&caller, request.get_ref().deposit_id)
            .await
            .map_err(returns_error)?;
        Ok(Response::new(deposit_returns(d)))
    }

    async fn list_deposit_follows(
        &self,
        request: Request<ListDepositFollowsRequest>,
    ) -> Result<Response<ListDepositFollowsResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let all = self
            .0
            .returns
            .follows(&caller, Some(request.get_ref().siret.as_str()))
            .await
            .map_err(returns_error)?;
        Ok(Response::new(ListDepositFollowsResponse {
            follows: all.into_iter().map(follow_message).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn follow_now(
        &self,
        request: Request<FollowNowRequest>,
    ) -> Result<Response<FollowNowResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let r = self
            .0
            .returns
            .follow_now(&caller, request.get_ref().all)
            .await
            .map_err(returns_error)?;
        Ok(Response::new(FollowNowResponse {
            flux_listed: r.flux_listed,
            windows_listed: r.windows_listed,
            downloaded: r.downloaded,
            refused: r.refused,
            gone: r.gone,
            message: r.message(),
        }))
    }
}
