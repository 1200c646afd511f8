//! `iea.v1.Support`.

use std::sync::Arc;

use iea_proto::agent::v1::VerifyOutcome;
use iea_proto::v1::support_server::Support;
use iea_proto::v1::{PrepareSupportRequestRequest, SupportRequest};
use tonic::{Request, Response, Status};

use super::credentials::credentials_error;
use super::{internal, principal};
use crate::Core;
use crate::store;
use crate::support::{self, Facts};
use crate::users::InstallationMode;

pub struct SupportApi(pub Arc<Core>);

#[tonic::async_trait]
impl Support for SupportApi {
    #[tracing::instrument(skip_all)]
    async fn prepare_support_request(
        &self,
        request: Request<PrepareSupportRequestRequest>,
    ) -> Result<Response<SupportRequest>, Status> {
        let caller = principal(&self.0, &request).await?;
        let req = request.into_inner();
        let (last_test, repair_history) = self
            .0
            .store
            .call(|conn| {
                let last = store::get_setting(conn, "last_access_test")?;
                let history = store::get_setting(conn, "repair_history")?;
                Ok((last, history))
            })
            .await
            .map_err(internal)?;
        let accounts = self
            .0
            .credentials
            .list(&caller)
            .await
            .map_err(credentials_error)?
            .into_iter()
            .map(|s| {
                let outcome = s.last.as_ref().map(|v| {
                    VerifyOutcome::try_from(v.result.outcome)
                        .unwrap_or(VerifyOutcome::Unspecified)
                        .as_str_name()
                        .trim_start_matches("VERIFY_OUTCOME_")
                        .to_lowercase()
                });
                (s.user, s.configured, outcome, s.consecutive_failures)
            })
            .collect();
        let mode = match self.0.users.mode().await {
            Ok(InstallationMode::Reseau) => "reseau",
            _ => "monoposte",
        };
        let facts = Facts {
            installation_id: self.0.installation_id.clone(),
            software_version: self.0.software_version.get(),
            installation_mode: mode.to_owned(),
            status: self.0.hub.current(),
            recent: self.0.hub.recent(),
            connection: self.0.network.current(),
            last_test: last_test.and_then(|j| serde_json::from_str(&j).ok()),
            repair_history: repair_history
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or(serde_json::Value::Array(Vec::new())),
            accounts,
        };
        let eml = support::message(&facts, &req.description, &req.from).map_err(internal)?;
        Ok(Response::new(SupportRequest {
            to: support::SUPPORT_ADDRESS.to_owned(),
            subject: support::subject(&self.0.software_version.get()),
            eml,
        }))
    }
}
